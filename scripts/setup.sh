#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what creditmeter needs to build, test and benchmark on Debian 12 (run as root).
# Only missing packages are installed, so a second run costs a few dpkg queries.
set -euo pipefail
pkgs=(build-essential cmake pkg-config git ffmpeg
      libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev
      libsqlite3-dev sqlite3 libcmocka-dev libpq-dev postgresql
      clang clang-format libclang-rt-14-dev valgrind hyperfine strace jq mkvtoolnix
      python3 python3-setuptools python3-wheel python3-pip)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
