#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Bills every file of a packaging matrix (make-matrix.sh) with two cm-probe binaries, e.g.
# a build of an older commit and today's, and prints per file what the construction says,
# what each bills, and whether each is right: the before/after table of a probe change.
#
#   bash tests/packaging/compare.sh OLD_CM_PROBE NEW_CM_PROBE MATRIXDIR
#
# A file is right ("ok") when it is billed within max(250 ms, 1 %) of expected_ms, or
# refused with the outcome the manifest names; "any" (cut files) is right when billed or
# refused as damaged. Needs jq.
set -euo pipefail
[[ $# -eq 3 ]] || { echo "usage: $0 OLD_CM_PROBE NEW_CM_PROBE MATRIXDIR" >&2; exit 2; }
OLD=$1 NEW=$2 DIR=$3
command -v jq >/dev/null || { echo "compare: jq is not installed" >&2; exit 1; }
# bill BIN FILE -> "<ms>" or "refused:<error>"
bill() {
    local out
    out=$("$1" --json "$2" 2>/dev/null || true)
    jq -r 'if .ok then (.billable_ms|tostring) else "refused:" + (.error.code // (.error|tostring)) end' \
        <<<"$out" 2>/dev/null || echo "refused:?"
}
# verdict EXPECTED_MS OUTCOME RESULT
verdict() {
    local exp=$1 outcome=$2 r=$3
    case $outcome in
    billed)
        [[ $r == refused:* ]] && { echo WRONG; return; }
        local tol=$((exp / 100 > 250 ? exp / 100 : 250)) d=$((r - exp))
        ((d < 0)) && d=$((-d))
        ((d <= tol)) && echo ok || echo WRONG ;;
    refused:*) [[ $r == "$outcome" ]] && echo ok || echo WRONG ;;
    *) [[ $r != refused:* || $r == refused:damaged ]] && echo ok || echo WRONG ;;
    esac
}
printf '%-34s %10s %-16s %-18s %-5s %-18s %-5s\n' FILE EXPECTED OUTCOME BEFORE "" AFTER ""
nb=0 na=0 n=0
while IFS=$'\t' read -r f exp outcome how; do
    [[ -z $f || $f == \#* ]] && continue
    b=$(bill "$OLD" "$DIR/$f") a=$(bill "$NEW" "$DIR/$f")
    vb=$(verdict "$exp" "$outcome" "$b") va=$(verdict "$exp" "$outcome" "$a")
    n=$((n + 1)); [[ $vb == ok ]] && nb=$((nb + 1)); [[ $va == ok ]] && na=$((na + 1))
    printf '%-34s %10s %-16s %-18s %-5s %-18s %-5s\n' "$f" "$exp" "$outcome" "$b" "$vb" "$a" "$va"
done <"$DIR/manifest.tsv"
echo "right: before $nb of $n, after $na of $n"
