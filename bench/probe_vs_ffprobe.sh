#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Probe vs ffprobe, per file: wall time and bytes read from the file.
#
#   bash bench/probe_vs_ffprobe.sh            # samples + big files (~100 MB and >= 1 GB each
#                                             # of MP4, fragmented MP4 with and without sidx,
#                                             # MKV, TS, AVI, joined TS); about 6-10 minutes
#   bash bench/probe_vs_ffprobe.sh --quick    # samples only
#   bash bench/probe_vs_ffprobe.sh --big-only # big files only (no samples)
#   CM_BENCH_TMP=/mnt/scratch bash ...        # where the big files go (default $TMPDIR or /tmp;
#                                             # needs ~9 GB free; deleted at the end)
#
# For each file it compares
#   cm-probe --json FILE                                    (measures and verifies)
#   ffprobe -v error -show_entries format=duration FILE     (reads the header's claim)
# Time: hyperfine (no shell, 3 warm-up runs, >= 10 timed runs), mean wall time per file,
#   warm page cache (the warm-ups load the pages either tool touches; a cold cache
#   would add the disk's latency to both, per byte read: see the bytes columns).
# Bytes: every read/pread64/readv/preadv on the file's own descriptor, summed from
#   strace -f -y (libraries and other files excluded), for both tools alike; the
#   probe's own count (cm_probe_report_bytes_read, via bench_probe_bytes) is printed
#   beside it as a cross-check.
# Targets (issue 11): cm-probe at most 0.6x ffprobe's time on the samples; on the 1 GB
#   MP4, fragmented MP4 and MKV at most 1.0x ffprobe's time and at most 2 % of the file
#   read; time and bytes flat in file size (the 1 GB file costs about what the 100 MB
#   one does). The READ column is the probe's bytes read in % of the file.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=0
BIG_ONLY=0
[[ ${1:-} == --quick ]] && QUICK=1
[[ ${1:-} == --big-only ]] && BIG_ONLY=1
BUILD=$ROOT/build-bench
JOBS=$(( $(nproc) < 2 ? $(nproc) : 2 ))
for tool in hyperfine strace ffprobe ffmpeg jq; do
    command -v $tool >/dev/null || { echo "bench: $tool is not installed" >&2; exit 1; }
done

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCM_SANITIZE=OFF -DCM_FUZZ=OFF \
    -DCM_BUILD_TESTS=OFF -DCM_BUILD_BENCH=ON ${CM_BENCH_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target cm-probe bench_probe_bytes >/dev/null
PROBE=$BUILD/probe/cm-probe
BYTES=$BUILD/bench/bench_probe_bytes

TMP=$(mktemp -d "${CM_BENCH_TMP:-${TMPDIR:-/tmp}}/cm-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

files=()
if [[ $BIG_ONLY -eq 0 ]]; then
    for f in samples/*; do
        [[ -f $f && $f != *.sh ]] && files+=("$f")
    done
fi

# Big files: a 10 s clip of noise at ~40 Mbit/s (so 1 GB is minutes, not hours, of
# video), stream-copied end to end with the concat demuxer: no re-encoding. Besides MP4
# (index at the end), MKV and TS: fragmented MP4 with 2 s fragments (the clip's GOP)
# without and with a global sidx, AVI (OpenDML past 1 GB), and a joined TS (the clip as a
# TS of its own, cat-joined: the clock restarts every 10 s).
big=()
if [[ $QUICK -eq 0 ]]; then
    ff() { ffmpeg -hide_banner -loglevel error -nostdin -y "$@"; }
    echo "bench: making big files in $TMP ..." >&2
    ff -f lavfi -i "testsrc2=size=640x360:rate=25:duration=10" \
       -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=10" \
       -vf noise=alls=40:allf=t -c:v libx264 -preset ultrafast -b:v 40M -maxrate 40M \
       -bufsize 20M -g 50 -c:a aac -b:a 128k "$TMP/clip.mp4"
    ff -i "$TMP/clip.mp4" -map 0 -c copy "$TMP/clip.ts"
    clip=$(stat -c %s "$TMP/clip.mp4")
    for target_mb in 100 1100; do
        copies=$(( (target_mb * 1000000 + clip - 1) / clip ))
        : >"$TMP/list.txt"
        for _ in $(seq "$copies"); do echo "file '$TMP/clip.mp4'" >>"$TMP/list.txt"; done
        label=$([[ $target_mb -ge 1000 ]] && echo 1G || echo 100M)
        for ext in mp4 mkv ts avi; do
            ff -f concat -safe 0 -i "$TMP/list.txt" -c copy "$TMP/big-$label.$ext"
            big+=("$TMP/big-$label.$ext")
        done
        ff -f concat -safe 0 -i "$TMP/list.txt" -c copy \
            -movflags frag_keyframe+empty_moov+default_base_moof "$TMP/big-$label.frag.mp4"
        ff -f concat -safe 0 -i "$TMP/list.txt" -c copy \
            -movflags frag_keyframe+empty_moov+default_base_moof+global_sidx "$TMP/big-$label.sidx.mp4"
        for _ in $(seq "$copies"); do cat "$TMP/clip.ts"; done >"$TMP/big-$label.join.ts"
        big+=("$TMP/big-$label.frag.mp4" "$TMP/big-$label.sidx.mp4" "$TMP/big-$label.join.ts")
    done
    rm -f "$TMP/clip.mp4" "$TMP/clip.ts"
fi

# Bytes read from FILE by COMMAND..., from strace: reads on descriptors whose path is FILE.
strace_bytes() {
    local file=$1
    shift
    local abs log=$TMP/strace.log
    abs=$(realpath "$file")
    strace -f -y -qq -e trace=read,pread64,readv,preadv -o "$log" "$@" >/dev/null 2>&1 || true
    awk -v f="<$abs>" 'index($0, f) && $NF ~ /^[0-9]+$/ { s += $NF } END { print s + 0 }' "$log"
}

# Mean wall time in ms of PROBE_CMD and FFPROBE_CMD for FILE, from hyperfine.
hyper_ms() {
    local file=$1 json=$TMP/hf.json
    hyperfine -N -i --warmup 3 --min-runs 10 --max-runs 30 --export-json "$json" \
        "$PROBE --json $file" "ffprobe -v error -show_entries format=duration $file" \
        >/dev/null 2>&1
    jq -r '[.results[].mean * 1000] | map(tostring) | join(" ")' "$json"
}

printf '%-22s %9s %9s %9s %6s %11s %11s %11s %6s %7s  %s\n' FILE SIZE_MB PROBE_MS FFPROBE_MS RATIO \
    PROBE_B PROBE_LIB_B FFPROBE_B B_RATIO READ RESULT
results=$TMP/results.tsv
: >"$results"
for f in "${files[@]}" "${big[@]}"; do
    [[ -n $f ]] || continue
    size=$(stat -c %s "$f")
    read -r t_probe t_ff < <(hyper_ms "$f")
    b_probe=$(strace_bytes "$f" "$PROBE" --json "$f")
    b_ff=$(strace_bytes "$f" ffprobe -v error -show_entries format=duration "$f")
    lib=$("$BYTES" "$f" | awk -F'\t' 'NR == 2 { print $3 "\t" $5 "\t" $6 }')
    b_lib=$(cut -f1 <<<"$lib")
    result=$(cut -f2 <<<"$lib")
    [[ $result == ok ]] && result="ok $(cut -f3 <<<"$lib") ms"
    name=$(basename "$f")
    awk -v n="$name" -v s="$size" -v tp="$t_probe" -v tf="$t_ff" -v bp="$b_probe" \
        -v bl="$b_lib" -v bf="$b_ff" -v r="$result" 'BEGIN {
        printf "%-22s %9.1f %9.2f %9.2f %5.2fx %11d %11d %11d %5.2fx %6.2f%%  %s\n", n, s / 1e6, tp, tf,
               tp / tf, bp, bl, bf, (bf > 0 ? bp / bf : 0), 100 * bp / s, r }'
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$size" "$t_probe" "$t_ff" "$b_probe" "$b_ff" \
        "$([[ $f == samples/* ]] && echo sample || echo big)" >>"$results"
done

echo
awk -F'\t' '{ n++; r = $3 / $4; sum += log(r); if (r <= 1.0) ok++ }
    END { printf "time ratio probe/ffprobe: geometric mean %.2fx over %d files; %d of %d at or under 1.0x\n",
          exp(sum / n), n, ok, n }' "$results"
awk -F'\t' '$7 == "sample" { n++; r = $3 / $4; sum += log(r); if (r <= 0.6) ok++ }
    END { if (n) printf "samples: geometric mean %.2fx of ffprobe'"'"'s time; %d of %d at or under 0.6x (target: all)\n",
          exp(sum / n), ok, n }' "$results"
if [[ ${#big[@]} -gt 0 ]]; then
    echo "1 GB files (target: at most 1.0x ffprobe's time and 2 % of the file read):"
    awk -F'\t' '$1 ~ /^big-1G\./ { r = $3 / $4; pct = 100 * $5 / $2;
        target = $1 ~ /^big-1G\.(mp4|frag\.mp4|sidx\.mp4|mkv)$/;
        printf "  %-18s time %.2fx  read %6.2f %%  %s\n", $1, r, pct,
               !target ? "(no target)" : (r <= 1.0 && pct <= 2.0) ? "met" : "NOT met" }' "$results"
fi
if [[ ${#big[@]} -gt 0 ]]; then
    echo "flatness in file size (1G file / 100M file; target: about 1.0x for time and bytes):"
    for ext in mp4 frag.mp4 sidx.mp4 mkv ts join.ts avi; do
        awk -F'\t' -v e="$ext" '
            $1 == "big-100M." e { s1 = $2; tp1 = $3; tf1 = $4; bp1 = $5; bf1 = $6 }
            $1 == "big-1G." e   { s2 = $2; tp2 = $3; tf2 = $4; bp2 = $5; bf2 = $6 }
            END { printf "  %-8s size x%.1f   cm-probe: time x%.2f, bytes x%.2f   ffprobe: time x%.2f, bytes x%.2f\n",
                  e, s2 / s1, tp2 / tp1, bp2 / bp1, tf2 / tf1, bf2 / bf1 }' "$results"
    done
fi
