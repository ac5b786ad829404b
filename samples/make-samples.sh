#!/usr/bin/env bash
# Regenerates every fixture in samples/ with the ffmpeg CLI (Debian 12's ffmpeg 5.1).
# Usage: bash samples/make-samples.sh   (from anywhere; writes beside this script)
#
# The pictures are tiny (64x48, a few frames a second) and the sound is a quiet tone at
# a low sample rate, so each file is tens to a few hundred KB while keeping the exact
# lengths the tests bill. File names carry the expected length:
#   exact-3m00.<container>  an exact 3:00 recording: must bill 3 credits in every container
#   clip-40s.mp4            the product page's example: 40 s bills 1
#   long-25m40.mkv          the product page's example: 25:40 bills 26
#   edge-<s>s.mkv           minute boundaries for the grace rule (59.4 / 60.0 / 60.4 / 60.6 s)
#   audio-40s.m4a/.mp3      audio-only uploads, billed by their length
#   streamed-*.mkv/.webm    written to a pipe: no duration in the header
#   wrap-90s.ts             a TS whose 33-bit clock wraps in the middle
#   long-10m.mp4/.mkv, minute-1m.mp4  sources for the lying-header tests
#   faststart-2m.mp4        index at the front (the source of the truncated-MP4 test)
#   bad/                    inputs that must be refused, one per error
set -euo pipefail
cd "$(dirname "$0")"
ff() { ffmpeg -hide_banner -loglevel error -nostdin -y "$@"; }
vid() { echo "testsrc2=size=64x48:rate=$1:duration=$2"; }
aud() { echo "sine=frequency=440:sample_rate=$1:duration=$2"; }
T=180

# --- exact 3:00 in every common container ---
ff -f lavfi -i "$(vid 5 $T)" -f lavfi -i "$(aud 8000 $T)" -c:v libx264 -preset veryfast -g 50 -b:v 8k \
   -c:a aac -b:a 8k exact-3m00.mp4
ff -f lavfi -i "$(vid 5 $T)" -f lavfi -i "$(aud 8000 $T)" -c:v libx264 -preset veryfast -g 50 -b:v 8k \
   -c:a aac -b:a 8k exact-3m00.mov
ff -f lavfi -i "$(vid 5 $T)" -f lavfi -i "$(aud 8000 $T)" -c:v libx264 -preset veryfast -g 50 -b:v 8k \
   -c:a aac -b:a 8k -movflags frag_keyframe+empty_moov exact-3m00-frag.mp4
ff -f lavfi -i "$(vid 5 $T)" -f lavfi -i "$(aud 8000 $T)" -c:v libx264 -preset veryfast -g 50 -b:v 8k \
   -c:a aac -b:a 8k exact-3m00.3gp
ff -f lavfi -i "$(vid 5 $T)" -f lavfi -i "$(aud 48000 $T)" -c:v libx264 -preset veryfast -g 50 -b:v 8k \
   -c:a libopus -b:a 6k exact-3m00.mkv
ff -f lavfi -i "$(vid 5 $T)" -f lavfi -i "$(aud 48000 $T)" -c:v libvpx -b:v 8k -g 50 \
   -c:a libopus -b:a 6k exact-3m00.webm
ff -f lavfi -i "$(vid 5 $T)" -f lavfi -i "$(aud 8000 $T)" -c:v libx264 -preset veryfast -g 50 -b:v 8k \
   -c:a aac -b:a 8k exact-3m00.ts
ff -f lavfi -i "$(vid 25 $T)" -f lavfi -i "$(aud 16000 $T)" -c:v mpeg2video -q:v 31 -g 250 \
   -c:a mp2 -b:a 8k exact-3m00.mpg
ff -f lavfi -i "$(vid 5 $T)" -f lavfi -i "$(aud 8000 $T)" -c:v mpeg4 -q:v 20 -g 50 \
   -c:a libmp3lame -b:a 8k exact-3m00.avi
ff -f lavfi -i "$(vid 5 $T)" -f lavfi -i "$(aud 11025 $T)" -c:v flv1 -q:v 20 -g 50 \
   -c:a libmp3lame -b:a 8k exact-3m00.flv
ff -f lavfi -i "$(vid 5 $T)" -f lavfi -i "$(aud 8000 $T)" -c:v wmv2 -q:v 20 -g 50 \
   -c:a wmav2 -b:a 24k exact-3m00.wmv
ff -f lavfi -i "$(vid 5 $T)" -f lavfi -i "$(aud 8000 $T)" -c:v libtheora -q:v 0 -g 50 \
   -c:a libvorbis -q:a 0 exact-3m00.ogg
# MXF pads every frame to about 1 KB, so its fixture is 10 s long (the tests make a 3:00 one).
ff -f lavfi -i "$(vid 25 10)" -c:v mpeg2video -q:v 31 -g 250 -bf 0 short-10s.mxf

# --- the product page's examples and the grace rule's minute boundaries ---
ff -f lavfi -i "$(vid 5 40)" -f lavfi -i "$(aud 8000 40)" -c:v libx264 -preset veryfast -b:v 8k \
   -c:a aac -b:a 8k clip-40s.mp4
ff -f lavfi -i "color=c=navy:size=64x48:rate=1:duration=1540" -c:v libx264 -preset veryfast -g 300 \
   long-25m40.mkv
for s in 59.4 60.0 60.4 60.6; do
    ff -f lavfi -i "$(vid 5 $s)" -c:v libx264 -preset veryfast -b:v 8k "edge-${s}s.mkv"
done

# --- sources for the lying-header tests (the tests patch copies of these) ---
ff -f lavfi -i "color=c=teal:size=64x48:rate=1:duration=600" -c:v libx264 -preset veryfast -g 300 long-10m.mp4
ff -f lavfi -i "color=c=teal:size=64x48:rate=1:duration=600" -c:v libx264 -preset veryfast -g 300 long-10m.mkv
ff -f lavfi -i "$(vid 5 60)" -f lavfi -i "$(aud 8000 60)" -c:v libx264 -preset veryfast -b:v 8k \
   -c:a aac -b:a 8k minute-1m.mp4

# --- audio only ---
ff -f lavfi -i "$(aud 8000 40)" -c:a aac -b:a 8k audio-40s.m4a
ff -f lavfi -i "$(aud 8000 40)" -c:a libmp3lame -b:a 8k audio-40s.mp3
# audio with a cover picture: the picture is never billed
ff -f lavfi -i "$(aud 8000 40)" -f lavfi -i "color=c=red:size=32x32:duration=1" -map 0 -map 1 \
   -c:a libmp3lame -b:a 8k -c:v png -frames:v 1 -disposition:v attached_pic -id3v2_version 3 \
   audio-cover-40s.mp3

# --- streamed: written to a pipe, so the header carries no duration ---
ff -f lavfi -i "$(vid 5 90)" -f lavfi -i "$(aud 48000 90)" -c:v libx264 -preset veryfast -b:v 8k \
   -c:a libopus -b:a 6k -f matroska - > streamed-90s.mkv
ff -f lavfi -i "$(vid 5 90)" -f lavfi -i "$(aud 48000 90)" -c:v libvpx -b:v 8k \
   -c:a libopus -b:a 6k -f webm - > streamed-90s.webm

# --- a TS whose 33-bit 90 kHz clock (wraps at 95443.717 s) wraps 45 s in ---
ff -f lavfi -i "$(vid 5 90)" -f lavfi -i "$(aud 8000 90)" -c:v libx264 -preset veryfast -b:v 8k \
   -c:a aac -b:a 8k -output_ts_offset 95398.7 wrap-90s.ts

# --- index at the front: the truncated-MP4 test cuts a copy of it ---
ff -f lavfi -i "$(vid 5 120)" -f lavfi -i "$(aud 8000 120)" -c:v libx264 -preset veryfast -b:v 8k \
   -c:a aac -b:a 8k -movflags +faststart faststart-2m.mp4

# --- inputs that must be refused ---
mkdir -p bad
: > bad/empty.mp4
printf 'This is a text file, not a video.\n' > bad/notes.txt
awk 'BEGIN { srand(7); for (i = 0; i < 4096; i++) printf "%c", int(rand() * 256) }' > bad/random.bin
ff -f lavfi -i "color=c=green:size=32x32" -frames:v 1 bad/still.png
ff -f lavfi -i "color=c=green:size=32x32" -frames:v 1 bad/still.jpg
printf '1\n00:00:01,000 --> 00:00:02,000\nHello\n' > bad/subs.srt
ff -i bad/subs.srt -c:s ass bad/subs-only.mkv
printf '#EXTM3U\n#EXT-X-TARGETDURATION:90\n#EXTINF:90.0,\n../wrap-90s.ts\n#EXT-X-ENDLIST\n' > bad/playlist.m3u8
printf "ffconcat version 1.0\nfile '../clip-40s.mp4'\n" > bad/concat.ffconcat
# the first 30 % of an MP4 whose index sits at the end: the index is gone
head -c $(( $(stat -c %s exact-3m00.mp4) * 3 / 10 )) exact-3m00.mp4 > bad/truncated-noindex.mp4
ls -l . bad
