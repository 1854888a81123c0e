#!/usr/bin/env bash
# Runs `cargo deny check bans` (deny.toml: no HTTP client, DNS resolver, telemetry or update
# crate in the server's build), installing the pinned cargo-deny first if it is missing. The
# install lands next to the cargo target directory, so a CI cache of that directory keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.20.2
root="${CARGO_TARGET_DIR:-$PWD/target}/tools/cargo-deny-$version"
if [ ! -x "$root/bin/cargo-deny" ]; then
  echo "installing cargo-deny $version into $root" >&2
  cargo install cargo-deny --locked --quiet --version "$version" --root "$root"
fi
PATH="$root/bin:$PATH" cargo deny --log-level error check bans
