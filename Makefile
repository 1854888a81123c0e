# The two commands of README.md. Both install missing Debian packages first.

CARGO ?= cargo
# Where cargo builds: CARGO_TARGET_DIR when set (e.g. a cache outside the clone), else target/.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: demo test test-long test-browser bench bench-load deps build lint clean-demo

## Build, start 4 test cameras and the recorder on 127.0.0.1, print the URL and login.
demo: deps
	$(CARGO) build --release --bin nvr
	$(TARGET_DIR)/release/nvr demo

## Everything CI runs: formatting, lints, every Rust test, and the browser tests.
test: deps lint
	$(CARGO) test --workspace
	$(CARGO) test --manifest-path vendor/retina/Cargo.toml --locked --lib --target-dir $(TARGET_DIR)/retina
	./tests/browser/run.sh

## The long variants of the fault tests (50 kill -9 cycles, 200 camera restarts, ...).
test-long: deps
	NVR_LONG_TESTS=1 $(CARGO) test --test faults -- --nocapture

## Only the browser tests (headless Chromium against the real binary).
test-browser: deps
	./tests/browser/run.sh

## Micro-benchmarks (criterion): segment seal/open, moov, timeline, view.mp4, export, fan-out,
## motion search and index size.
bench: deps
	$(CARGO) bench -p nvr-storage -p nvr-ingest

## The load bench: nvr serve vs ffmpeg -c copy vs a retina-only floor, N = 1..64 cameras.
## Pass options with LOADBENCH_ARGS="--cameras 16 --rounds 3" (see BENCHMARKS.md).
bench-load: deps
	$(CARGO) build --release --bin nvr
	$(CARGO) build --release -p nvr-loadbench
	$(TARGET_DIR)/release/nvr-loadbench --nvr $(TARGET_DIR)/release/nvr $(LOADBENCH_ARGS)

deps:
	@./scripts/install-deps.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	./scripts/cargo-deny.sh
	./scripts/cargo-machete.sh

build: deps
	$(CARGO) build --release --bin nvr

## Forget the demo's footage, keys and login.
clean-demo:
	rm -rf demo-data
