#!/usr/bin/env bash
# Runs `cargo machete` (dependencies a crate declares and never uses), installing the pinned
# cargo-machete first if it is missing. Like cargo-deny, the install lands next to the cargo
# target directory, so a CI cache of that directory keeps it. vendor/ is not ours to trim.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.9.2
root="${CARGO_TARGET_DIR:-$PWD/target}/tools/cargo-machete-$version"
if [ ! -x "$root/bin/cargo-machete" ]; then
  echo "installing cargo-machete $version into $root" >&2
  cargo install cargo-machete --locked --quiet --version "$version" --root "$root"
fi
PATH="$root/bin:$PATH" cargo machete --skip-target-dir
