#!/bin/sh
# SPDX-License-Identifier: MIT
# check_manpage.sh PROGRAM MANPAGE: the manual documents what the program offers.
#   - every --option that `PROGRAM --help` prints is in the manual's text,
#   - every command that `PROGRAM --help` lists (an indented line starting with a
#     lower-case word, as cm-ledger's) is in the manual's text,
#   - --version is documented and prints "NAME VERSION" with the manual's version,
#   - the manual renders without a groff warning.
set -eu
prog=$1 page=$2
name=$(basename "$prog")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cm-man.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$prog" --help >"$tmp/help" 2>&1 || true
# The manual's words with troff's escaped hyphens made plain.
sed 's/\\-/-/g; s/\\f[BIRP]//g' "$page" >"$tmp/text"
fail=0
for opt in $(grep -oE -- '--[a-z][a-z-]*' "$tmp/help" | sort -u) --version; do
    if ! grep -qF -- "$opt" "$tmp/text"; then
        echo "check_manpage: $page does not document $opt (from $name --help)"
        fail=1
    fi
done
grep -E '^  [a-z]' "$tmp/help" | awk '{print $1}' | sort -u >"$tmp/commands"
while read -r cmd; do
    if ! grep -qE "^\.(B|BI|BR|TP)? *\"?$cmd\\b" "$tmp/text"; then
        echo "check_manpage: $page has no entry for the command $cmd (from $name --help)"
        fail=1
    fi
done <"$tmp/commands"
ver=$(sed -n 's/^\.TH [^ ]* [0-9] [^ ]* "[^ ]* \([0-9.]*\)".*/\1/p' "$page")
got=$("$prog" --version)
if [ "$got" != "$name $ver" ]; then
    echo "check_manpage: $name --version prints '$got', the manual is of '$name $ver'"
    fail=1
fi
if command -v groff >/dev/null; then
    groff -man -ww -z "$page" >"$tmp/groff" 2>&1 || true
    if [ -s "$tmp/groff" ]; then
        echo "check_manpage: groff warns on $page:"
        sed 's/^/  /' "$tmp/groff"
        fail=1
    fi
fi
[ $fail -eq 0 ] && echo "check_manpage: $page documents every option$( [ -s "$tmp/commands" ] && echo " and command") of $name --help"
exit $fail
