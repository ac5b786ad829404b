#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Regenerates tests/fuzz/seeds/ledger_args/: realistic cm-ledger command lines for
# fuzz_ledger_args, one input per file, one command per line (see the harness's header
# for the format). Every input starts from the harness's template ledger: workspace
# acme (owner alice, member bob, region eu), a monthly plan of 100, add-on payment
# pay-1 of 50 credits, job-held (10 held by bob) and job-done (5 reserved, 4 committed),
# all at 2026-01-15T10:00:00Z.
# Usage: bash tests/fuzz/make-ledger-seeds.sh
set -euo pipefail
cd "$(dirname "$0")"
rm -rf seeds/ledger_args && mkdir -p seeds/ledger_args && cd seeds/ledger_args
n=0
s() { local name=$1; shift; n=$((n + 1)); printf '%s\n' "$@" > "$(printf '%02d' $n)-$name.txt"; }

s check "check"
s check-json "--json check"
s help "--help"
s no-command "--json"
s unknown-command "frobnicate now"
s unknown-option "--bogus check"
s missing-value "check --now"
s twice "--now 2026-01-15T10:00:00Z --now 2026-01-16T10:00:00Z check"
s now-leap "--now 2024-02-29T23:59:59.999Z sweep"
s now-epoch "--now 1970-01-01T00:00:00Z balance acme --json"
s now-bad-day "--now 2025-02-29T00:00:00Z check"
s now-leap-second "--now 2026-06-30T23:59:60Z check"
s now-no-z "--now 2026-01-31T12:00:00 check"
s now-offset "--now 2026-01-31T12:00:00+01:00 check"
s now-frac "--now 2026-01-31T12:00:00.5Z --json job job-held" "--now 2026-01-31T12:00:00.123456Z sweep"
s now-year-0 "--now 0000-01-01T00:00:00Z --json sweep"
s now-year-9999 "--now 9999-12-31T23:59:59.999Z --json balance acme"
s now-before-epoch "--now 1969-12-31T23:59:59.999Z --json history acme"
s workspace "--now 2026-01-15T10:00:00Z workspace create beta --owner carol --region us" \
    "--now 2026-01-15T10:00:00Z --json workspace create beta --owner carol --region us" \
    "--json workspace create beta --owner dave"
s member "member add acme eve --as alice" "member remove acme eve --as alice" \
    "--json member remove acme alice --as alice" "member add acme mallory --as bob"
s plan "--now 2026-02-20T00:00:00Z plan set acme --credits 300 --interval annual --tier max --as alice" \
    "--now 2026-03-01T00:00:00Z --json balance acme" "plan cancel acme --as alice" \
    "plan set acme --credits -5 --interval weekly --as alice"
s price "price set us USD 15" "price set eu eur 12" "--json price set eu EUR -1" "price set eu EUR 1x"
s buy "--now 2026-01-16T00:00:00Z --json buy acme 20 --as alice --ref pay-2" \
    "--now 2026-01-16T00:00:00Z --json buy acme 20 --as alice --ref pay-2" \
    "--json buy acme 21 --as alice --ref pay-2" "buy acme 5 --as bob"
s quote "--json quote acme 120 --as bob" "quote acme 1000" "quote acme 0" "--json quote nosuch 5"
s reserve "--now 2026-01-15T10:01:00Z --json reserve acme j1 30 --as bob --lease 60" \
    "--now 2026-01-15T10:01:30Z renew j1 --lease 120" \
    "--now 2026-01-15T10:02:00Z --json commit j1 25" "--json job j1"
s release "--now 2026-01-15T10:01:00Z reserve acme j2 30 --as alice" "--json release j2" \
    "release j2" "--json commit j2"
s lapse "--now 2026-01-15T10:01:00Z reserve acme j3 5 --as bob --lease 1" \
    "--now 2026-01-15T10:05:00Z --json renew j3" "--now 2026-01-15T10:06:00Z --json sweep"
s insufficient "--json reserve acme big 100000 --as alice" "reserve acme big 100000 --as alice"
s refund "--now 2026-01-20T00:00:00Z --json refund job-done 2 --reason goodwill --by ops --ref r-1" \
    "--now 2026-01-20T00:00:00Z --json refund job-done 2 --reason goodwill --by ops --ref r-1" \
    "refund job-done --reason rest --by ops" "--json refund job-done 1 --reason more --by ops"
s refund-tab "$(printf -- '--json\trefund\tjob-done\t1\t--reason\tcustomer said "late"\t--by\tops team')" \
    "$(printf -- '--json\thistory\tacme')"
s refund-expired "--now 2026-03-01T00:00:00Z --json refund job-done --reason plan-over --by ops" \
    "--now 2026-03-01T00:00:00Z --json balance acme"
s commit-held "--now 2026-01-15T10:05:00Z --json commit job-held" "--json refund job-held 3 --reason x --by y"
s commit-too-much "--json commit job-held 11" "commit job-held -1" "commit job-held 1 2"
s history "--json history acme --as bob" "history acme" "--json history acme --as nobody"
s job "--json job job-done" "job nosuch" "--json job job-held"
s options-mismatch "check --as alice" "sweep --lease 5" "--json buy acme 5 --as alice --reason why"
s lease-bad "reserve acme j4 1 --as bob --lease 0" "reserve acme j4 1 --as bob --lease 9999999999999999999999"
s numbers "buy acme 9223372036854775807 --as alice" "--json quote acme 9223372036854775807" \
    "reserve acme j5 +5 --as bob" "reserve acme j5 0x10 --as bob"
s json-quotes "$(printf -- '--json\tworkspace\tcreate\tq"ws\t--owner\to"wner')" \
    "$(printf -- '--json\tbuy\tq"ws\t3\t--as\to"wner\t--ref\tp"1')" \
    "$(printf -- '--json\tbalance\tq"ws')"
s too-many-args "quote a b c d e f g h i j"
s empty-values "--json workspace create '' --owner ''" "$(printf -- '--json\tbuy\tacme\t5\t--as\t\t--ref\tx')" "$(printf -- 'quote\t\t5')"
s sweep-far "--now 2031-07-31T00:00:00Z --json sweep" "--now 2031-07-31T00:00:00Z check"
s time-only "2024-02-29T23:59:59.999Z"
# The first 8 bytes of every input are also formatted as an int64 of ms: the extremes.
printf '\x00\x00\x00\x00\x00\x00\x00\x80check\n' > 44-format-int64-min.txt
printf '\xff\xff\xff\xff\xff\xff\xff\x7fcheck\n' > 45-format-int64-max.txt
n=45
# issue 15: the outbox, alerts, export, metrics, ping, init, usage errors as JSON
s alerts "alert set acme --below 60 --as alice" "reserve acme j6 10 --as bob" \
    "--json events --limit 3" "--json alert set acme --below 0 --as alice"
s events-cursor "--json events --after 0.2 --limit 1" "events --after x.y" "events --limit 99999"
s export "export --format csv --workspace acme --since 2026-01-01T00:00:00Z" \
    "export --format ndjson --until 2026-02-01T00:00:00Z" "--json export --format csv"
s metrics-ping "--json metrics" "metrics" "--json ping --timeout 500" "ping --timeout -1"
s init-create "init" "--json init" "--create balance acme" "--json --create sweep"
ls | wc -l
