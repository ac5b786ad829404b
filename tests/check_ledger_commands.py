#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The docs cannot drift from cm-ledger's command table.

Usage: check_ledger_commands.py CM_LEDGER README.md ledger/README.md man/cm-ledger.1.in

Every command line `cm-ledger --help` prints (from the table in ledger/cm-ledger.c) must
be, word for word, a line of README.md's command block (under "cm-ledger: credits, holds,
charges and refunds") and of ledger/README.md's command block (comments after "#" left
aside), and every line of those blocks must be one of them: no command missing, none
stale, no synopsis that differs. The manual must have an entry (.B/.BI) for each command
name. And the per-command help is made from the same table: `cm-ledger help NAME` and
`cm-ledger NAME --help` print that command's line, a help line and who may run it;
`help WORD` every command starting with WORD; `help` of no such command is a usage error
(exit 2, nothing on stdout). Exit 0 when all agree, 1 with one line per disagreement.
"""
import re
import subprocess
import sys


def help_lines(binary):
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True).stdout
    lines = [l.strip() for l in out.splitlines() if re.match(r"^  [a-z]", l)]
    if len(lines) < 10:
        sys.exit(f"check_ledger_commands: only {len(lines)} commands in {binary} --help")
    return lines


def readme_block(path):
    """README.md: the fenced block after the cm-ledger heading, without its first line."""
    text = open(path, encoding="utf-8").read().splitlines()
    start = next(i for i, l in enumerate(text)
                 if l.startswith("## cm-ledger: credits, holds, charges and refunds"))
    fence = next(i for i in range(start, len(text)) if text[i].startswith("```"))
    end = next(i for i in range(fence + 1, len(text)) if text[i].startswith("```"))
    block = text[fence + 1:end]
    if not block or not block[0].startswith("cm-ledger "):
        sys.exit(f"check_ledger_commands: {path}: the block does not start with cm-ledger")
    return [" ".join(l.split()) for l in block[1:] if l.strip()]


def ledger_readme_block(path):
    """ledger/README.md: the indented block holding "workspace create", comments aside."""
    text = open(path, encoding="utf-8").read().splitlines()
    at = next(i for i, l in enumerate(text) if l.startswith("    workspace create "))
    while at > 0 and text[at - 1].startswith("    "):
        at -= 1
    lines = []
    while at < len(text) and text[at].startswith("    "):
        l = re.split(r"\s#", text[at], maxsplit=1)[0]
        if l.strip():
            lines.append(" ".join(l.split()))
        at += 1
    return lines


def run(binary, *args):
    return subprocess.run([binary, *args], capture_output=True, text=True)


def check_command_help(binary, want):
    fail = 0
    head = "usage: cm-ledger [--ledger LOCATION] [--now TIME] [--json] [--create] "
    names = [re.match(r"(.*?)(?= [A-Z\[]|$)", l).group(1) for l in want]
    for line, name in zip(want, names):
        # "help price" shows price and price set: every command named so or below
        blocks = [l for l, n in zip(want, names) if n == name or n.startswith(name + " ")]
        for args in (["help", *name.split()], [*name.split(), "--help"]):
            r = run(binary, *args)
            out = r.stdout.splitlines()
            at = out.index(head + line) if head + line in out else -1
            shown = [l[len(head):] for l in out if l.startswith(head)]
            if (r.returncode != 0 or at < 0 or sorted(shown) != sorted(blocks)
                    or at + 2 >= len(out) or not out[at + 1].strip()
                    or not out[at + 2].startswith("  who may run it: ")):
                print(f"cm-ledger {' '.join(args)}: not the help of `{line}`: {r.stdout!r}")
                fail = 1
    plan = [l for l in want if l.startswith("plan ")]
    r = run(binary, "help", "plan")
    got = [l[len(head):] for l in r.stdout.splitlines() if l.startswith(head)]
    if r.returncode != 0 or got != plan:
        print(f"cm-ledger help plan: {got} instead of {plan}")
        fail = 1
    for args in (["help", "bogus"], ["help", "plan", "bogus"]):
        r = run(binary, *args)
        if r.returncode != 2 or r.stdout or "no command" not in r.stderr:
            print(f"cm-ledger {' '.join(args)}: exit {r.returncode}, stdout {r.stdout!r}")
            fail = 1
    r = run(binary, "help")
    if r.returncode != 0 or r.stdout != run(binary, "--help").stdout:
        print("cm-ledger help: not the same as --help")
        fail = 1
    return fail


def main():
    binary, readme, ledger_readme, manpage = sys.argv[1:5]
    want = help_lines(binary)
    fail = 0
    for path, got in ((readme, readme_block(readme)),
                      (ledger_readme, ledger_readme_block(ledger_readme))):
        for l in want:
            if l not in got:
                print(f"{path}: missing the command line `{l}` (cm-ledger --help)")
                fail = 1
        for l in got:
            if l not in want:
                print(f"{path}: `{l}` is not a command line of cm-ledger --help")
                fail = 1
    man = open(manpage, encoding="utf-8").read()
    names = {re.match(r"(.*?)(?= [A-Z\[]|$)", l).group(1) for l in want}
    for name in sorted(names):
        if not re.search(r'^\.BI? "?' + re.escape(name) + r'( |"|$)', man, re.M):
            print(f"{manpage}: no entry for the command `{name}`")
            fail = 1
    fail |= check_command_help(binary, want)
    if not fail:
        print(f"check_ledger_commands: {len(want)} commands agree in --help, "
              f"{readme}, {ledger_readme} and {manpage}")
    return fail


if __name__ == "__main__":
    sys.exit(main())
