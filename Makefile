# Two commands on a fresh machine (rustup, gcc, python3): `make demo` and `make test`.
# Both run scripts/setup.sh first (PyPI's torch 2.13.0 into .venv, cargo pointed at it); it is quick when done.
.PHONY: setup setup-dev demo test lint header references bench

# Pretrained weights for the deep metrics: ../shared/weights when it is there (this project's CI), unless set.
IQA_WEIGHTS_DIR ?= $(if $(wildcard ../shared/weights),$(abspath ../shared/weights),)
export IQA_WEIGHTS_DIR

setup:
	@scripts/setup.sh

# Dev extras: pyiqa 0.1.16, the reference implementation (reference scripts, benchmark).
setup-dev:
	@scripts/setup.sh --dev

# The main job: score the bundled sample images with every metric ready here, print a table and write a CSV.
demo: setup
	cargo run --release --quiet --bin iqa -- demo data/calibration --csv target/demo.csv

# The whole test suite (Rust API, C ABI, C and Python clients, header drift, linking, TorchScript exports
# checked against pyiqa: hence setup-dev).
test: setup-dev
	cargo test --release

lint: setup
	cargo fmt --all -- --check
	cargo clippy --release --all-targets -- -D warnings

# Regenerate include/iqa.h after changing src/ffi.
header: setup
	IQA_UPDATE_HEADER=1 cargo test --release --test header

# Regenerate the pyiqa references under tests/data.
references: setup-dev
	.venv/bin/python scripts/make_references.py
	.venv/bin/python scripts/make_deep_references.py

# pyiqa 0.1.16 against iqa on the same images and threads (cold start, s/image at 512x384 and 1920x1080, batch,
# peak RSS, bf16, ratios); writes BENCHMARKS.md (and target/benchmark.json). Long: run it on a quiet machine.
bench: setup-dev
	cargo build --release --lib --quiet
	.venv/bin/python scripts/benchmark.py --precision-check --markdown BENCHMARKS.md --json target/benchmark.json
