#!/bin/sh
# SPDX-License-Identifier: MIT
# check_exports.sh LIBRARY.so HEADER.h PREFIX SONAME VERSION_NODE
#
# The dynamic symbol table of a shared library is exactly its public header: every
# function the header declares (each declaration carries the CM_*_EXTERN macro) is
# exported, and nothing else is, each under the library's version node; the SONAME
# is the one given. Exits 0 when so, 1 with the differences otherwise.
set -eu
lib=$1 header=$2 prefix=$3 soname=$4 node=$5
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cm-exports.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Declared: the name before the "(" of each CM_*_EXTERN declaration (joined lines, so a
# declaration split over lines is still one).
grep -v '^ *#' "$header" | tr '\n' ' ' | grep -oE 'CM_[A-Z]+_EXTERN[^;(]*\(' |
    sed -E 's/.*[^a-zA-Z0-9_]([a-zA-Z_][a-zA-Z0-9_]*) *\($/\1/' | sort -u >"$tmp/declared"
# Exported: defined dynamic symbols, without the version node entry itself (type A).
nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' >"$tmp/raw"
sed -E 's/@.*//' "$tmp/raw" | sort -u >"$tmp/exported"

fail=0
if [ ! -s "$tmp/declared" ]; then
    echo "check_exports: no declarations found in $header"
    fail=1
fi
if ! diff -u "$tmp/declared" "$tmp/exported" >"$tmp/diff"; then
    echo "check_exports: $lib does not export exactly what $header declares"
    echo "  (- declared but not exported, + exported but not declared)"
    sed -n '3,$p' "$tmp/diff" | grep -E '^[-+]' | sed 's/^/  /'
    fail=1
fi
if grep -v "^${prefix}" "$tmp/exported" >"$tmp/foreign"; then
    echo "check_exports: names without the public prefix $prefix:"
    sed 's/^/  /' "$tmp/foreign"
    fail=1
fi
if grep -v "@@${node}\$" "$tmp/raw" >"$tmp/unversioned"; then
    echo "check_exports: symbols not under the version node $node:"
    sed 's/^/  /' "$tmp/unversioned"
    fail=1
fi
got=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ "$got" != "$soname" ]; then
    echo "check_exports: SONAME is '$got', expected '$soname'"
    fail=1
fi
[ $fail -eq 0 ] && echo "check_exports: $(wc -l <"$tmp/exported") symbols of $(basename "$lib") = $(basename "$header"), soname $soname, node $node"
exit $fail
