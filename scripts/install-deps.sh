#!/usr/bin/env bash
# Installs the Debian 12 packages the build, the test camera and the tests need, if missing.
# Safe to run repeatedly: it does nothing when everything is present.
set -euo pipefail

packages=(
  # Build: C toolchain and GStreamer development headers for the gstreamer-rs crates.
  build-essential pkg-config
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  # The test camera's elements: x264enc (ugly), x265enc, h26xparse (bad), RTP payloaders
  # (good), avenc_aac (libav), videotestsrc/appsrc (base), timeoverlay (x).
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools gstreamer1.0-x
  # Tests check every MP4 we produce with ffprobe and make reference clips with ffmpeg.
  ffmpeg
  # The zero-egress proofs: strace records every connect(); systemd-analyze rates the unit.
  strace systemd
  # The hostile-LAN tests: network namespaces with veth pairs (ip), a server started under an
  # open-file limit (prlimit).
  iproute2 util-linux
  # Browser tests: Debian's Chromium, driven by playwright-core (tests/browser), and Firefox
  # ESR for the bundle's player, driven by puppeteer-core over WebDriver BiDi.
  chromium firefox-esr
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js runs the browser tests; the machines have one (20+), Debian's is the fallback.
if ! command -v node >/dev/null; then
  missing+=(nodejs npm)
fi

if ((${#missing[@]} > 0)); then
  echo "installing missing packages: ${missing[*]}"
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "cargo is not installed: install Rust 1.95 (rustup) and run this again" >&2
  exit 1
fi
