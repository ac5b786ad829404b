#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Regenerates the fuzzer's seed corpus in tests/fuzz/seeds/probe/: one tiny file (1 s, 16x16
# pictures at 4 fps, 8 kHz sound; a few KB each) per container the probe allows, plus the
# shapes it must refuse. Small seeds keep each mutation cheap; samples/ (tens to hundreds
# of KB a file) is added as a second, read-only seed directory by scripts/fuzz.sh.
# It also makes tests/fuzz/seeds/probe_diff/, the seeds of fuzz_probe_diff: a few seconds
# each (16x16, 4 fps, 0.5-1 s fragments, GOPs and clusters), so the structures its mutator
# edits (fragments, sidx entries, Clusters, idx1 entries) appear several times in a file of
# a few KB.
# Usage: bash tests/fuzz/make-seeds.sh [probe|probe_diff]   (default: both)
set -euo pipefail
cd "$(dirname "$0")"
WHICH=${1:-all}
ff() { ffmpeg -hide_banner -loglevel error -nostdin -y "$@"; }

if [[ $WHICH == all || $WHICH == probe_diff ]]; then
    rm -rf seeds/probe_diff && mkdir -p seeds/probe_diff
    (
        cd seeds/probe_diff
        V4="testsrc2=size=16x16:rate=4:duration=4"
        A4="sine=frequency=440:sample_rate=8000:duration=4"
        A4_48="sine=frequency=440:sample_rate=48000:duration=4"
        h264=(-c:v libx264 -preset ultrafast -g 2 -c:a aac -b:a 8k)
        av4() { ff -f lavfi -i "$V4" -f lavfi -i "$1" "${@:2}"; }
        av4 "$A4" "${h264[@]}" -movflags frag_keyframe+empty_moov frag.mp4
        av4 "$A4" "${h264[@]}" -movflags frag_keyframe+empty_moov+default_base_moof frag-dbm.mp4
        av4 "$A4" "${h264[@]}" -movflags frag_keyframe+empty_moov+default_base_moof+global_sidx \
            frag-sidx.mp4
        av4 "$A4" "${h264[@]}" -movflags dash+frag_keyframe frag-dash.mp4
        av4 "$A4" "${h264[@]}" -movflags cmaf+frag_keyframe cmaf.mp4
        av4 "$A4" "${h264[@]}" -f ismv seed.ismv
        av4 "$A4" "${h264[@]}" plain.mp4
        av4 "$A4" "${h264[@]}" -bf 2 -preset fast bframes.mp4
        av4 "$A4_48" -c:v libx264 -preset ultrafast -g 2 -c:a libopus -b:a 6k \
            -cluster_time_limit 500 clusters.mkv
        av4 "$A4_48" -c:v libx264 -preset ultrafast -g 2 -c:a libopus -b:a 6k \
            -cluster_time_limit 500 -f matroska - >clusters-streamed.mkv
        av4 "$A4" -c:v mpeg4 -q:v 20 -g 2 -c:a libmp3lame -b:a 8k seed.avi
        av4 "$A4" "${h264[@]}" seed.ts
        av4 "$A4" "${h264[@]}" -f mpegts -mpegts_m2ts_mode 1 seed.m2ts
        av4 "$A4" "${h264[@]}" seed.flv
        av4 "$A4" -c:v mpeg2video -q:v 31 -c:a mp2 -b:a 32k -ar 16000 seed.mpg
        cat seed.ts seed.ts >joined.ts
        av4 "$A4" "${h264[@]}" -output_ts_offset 3600 later.ts
        cat seed.ts later.ts >joined-clock-1h.ts
        rm later.ts
        ls -l
    )
fi
[[ $WHICH == all || $WHICH == probe ]] || exit 0

rm -rf seeds/probe && mkdir -p seeds/probe && cd seeds/probe
V="testsrc2=size=16x16:rate=4:duration=1"
A="sine=frequency=440:sample_rate=8000:duration=1"
A48="sine=frequency=440:sample_rate=48000:duration=1"
av() { ff -f lavfi -i "$V" -f lavfi -i "$1" "${@:2}"; }

av "$A" -c:v libx264 -preset ultrafast -c:a aac -b:a 8k seed.mp4
av "$A" -c:v libx264 -preset ultrafast -c:a aac -b:a 8k -movflags +faststart faststart.mp4
av "$A" -c:v libx264 -preset ultrafast -c:a aac -b:a 8k -movflags frag_keyframe+empty_moov frag.mp4
av "$A" -c:v libx264 -preset ultrafast -c:a aac -b:a 8k seed.mov
av "$A" -c:v libx264 -preset ultrafast -c:a aac -b:a 8k seed.3gp
av "$A48" -c:v libx264 -preset ultrafast -c:a libopus -b:a 6k seed.mkv
av "$A48" -c:v libx264 -preset ultrafast -c:a libopus -b:a 6k -f matroska - > streamed.mkv
av "$A48" -c:v libvpx -b:v 8k -c:a libopus -b:a 6k seed.webm
av "$A" -c:v libx264 -preset ultrafast -c:a aac -b:a 8k seed.ts
av "$A" -c:v mpeg2video -q:v 31 -c:a mp2 -b:a 32k -ar 16000 seed.mpg
av "$A" -c:v mpeg4 -q:v 20 -c:a libmp3lame -b:a 8k seed.avi
av "$A" -c:v flv1 -q:v 20 -c:a libmp3lame -b:a 8k -ar 11025 seed.flv
av "$A" -c:v wmv2 -q:v 20 -c:a wmav2 -b:a 24k seed.wmv
av "$A" -c:v libtheora -q:v 0 -c:a libvorbis -q:a 0 seed.ogg
ff -f lavfi -i "testsrc2=size=16x16:rate=25:duration=0.2" -c:v mpeg2video -q:v 31 -bf 0 seed.mxf
ff -f lavfi -i "$A" seed.wav
ff -f lavfi -i "$A" -f w64 seed.w64
ff -f lavfi -i "$A" seed.aiff
ff -f lavfi -i "$A" -c:a pcm_s16le seed.caf
ff -f lavfi -i "$A" -c:a libmp3lame -b:a 8k seed.mp3
ff -f lavfi -i "$A" -c:a aac -b:a 8k -f adts seed.aac
ff -f lavfi -i "$A" seed.flac
ff -f lavfi -i "$A" -c:a libopencore_amrnb -ar 8000 -ac 1 seed.amr 2>/dev/null || true
ff -f lavfi -i "color=c=green:size=8x8" -frames:v 1 still.png
printf '1\n00:00:01,000 --> 00:00:02,000\nHello\n' > subs.srt
printf '#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nseed.ts\n#EXT-X-ENDLIST\n' > playlist.m3u8
printf "ffconcat version 1.0\nfile 'seed.mp4'\n" > concat.ffconcat
head -c $(( $(stat -c %s seed.mp4) / 2 )) seed.mp4 > truncated.mp4
ls -l
