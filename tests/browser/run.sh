#!/usr/bin/env bash
# Runs the browser tests of the web UI: headless Debian Chromium driven by playwright-core, and
# the bundle's player also in Debian's Firefox ESR driven by puppeteer-core over WebDriver BiDi
# (both browsers installed with apt when missing; npm ci when node_modules is missing or stale),
# against the debug binary target/debug/nvr (built first, in $CARGO_TARGET_DIR if set; NVR_BIN overrides
# it and skips the build).
# Screenshots land in target/browser-screenshots/. Extra arguments go to `node --test`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/firefox-esr ] || missing+=(firefox-esr)
if ((${#missing[@]} > 0)); then
  echo "installing Debian's ${missing[*]}" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v node >/dev/null || { echo "node (>= 20) is required" >&2; exit 1; }

cd "$here"
stamp=node_modules/.package-lock.json
if [ ! -d node_modules ] || [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi

if [ -z "${NVR_BIN:-}" ]; then
  (cd "$repo" && cargo build --quiet --bin nvr)
  # Where cargo put it: CARGO_TARGET_DIR (a CI cache outside the clone) or the repo's target/.
  target_dir="${CARGO_TARGET_DIR:-$repo/target}"
  case "$target_dir" in /*) ;; *) target_dir="$repo/$target_dir" ;; esac
  export NVR_BIN="$target_dir/debug/nvr"
fi
mkdir -p "$repo/target/browser-screenshots"
exec node --test --test-concurrency=1 "$@" tests/
