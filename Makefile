# Two commands on a fresh machine (rustup, gcc, python3): `make demo` and `make test`.
# Both run scripts/setup.sh first (PyPI's torch 2.13.0 into .venv, cargo pointed at it); it is quick when done.
.PHONY: setup setup-dev setup-bench build install uninstall demo test lint header abi references zoo-references \
	zoo-parity \
	bench bench-peers \
	gpu-bundle python-wheel python-test python-test-full python-test-ray python-wheel-test python-bench bench-video fuzz \
	fuzz-check fuzz-stable memcheck

# Pretrained weights for the deep metrics: ../shared/weights when it is there (this project's CI), unless set.
IQA_WEIGHTS_DIR ?= $(if $(wildcard ../shared/weights),$(abspath ../shared/weights),)
export IQA_WEIGHTS_DIR

setup:
	@scripts/setup.sh

# Dev extras: pyiqa 0.1.16, the reference implementation (reference scripts, benchmark).
setup-dev:
	@scripts/setup.sh --dev

# Benchmark extras (setup-dev plus the peers: OpenCV contrib, piq, torchmetrics into .bench-peers/, ffmpeg).
setup-bench:
	@scripts/setup.sh --bench

# Installation (README "Install"): make install PREFIX=DIR [DESTDIR=STAGING] [LIBTORCH_BUNDLE=none|cpu|cuda].
# LIBTORCH_BUNDLE: none = the installed library uses the libtorch it was built against (this checkout's .venv);
# cpu = copy libtorch's CPU libraries into PREFIX/lib/iqa (about 450 MB; survives the checkout's removal);
# cuda = cpu plus libtorch's CUDA libraries and the NVIDIA libraries they load (about 3.5 GB).
# STRIP= keeps the build's line tables in the installed files. NO_BUILD=1 installs what `make build` left in
# target/release without running cargo (for `make build && sudo make install NO_BUILD=1`).
PREFIX ?= /usr/local
LIBTORCH_BUNDLE ?= none
STRIP ?= strip --strip-debug
INSTALL_ENV = PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" LIBTORCH_BUNDLE="$(LIBTORCH_BUNDLE)" STRIP="$(STRIP)"

build: setup
	cargo build --release --lib --bin iqa

install: $(if $(NO_BUILD),,build)
	@$(INSTALL_ENV) scripts/install.sh install

uninstall:
	@$(INSTALL_ENV) scripts/install.sh uninstall

# The main job: score the bundled sample images with every metric ready here, print a table and write a CSV.
demo: setup
	cargo run --release --quiet --bin iqa -- demo data/calibration --csv target/demo.csv

# The whole test suite (Rust API, C ABI, C and Python clients, header drift, linking, TorchScript exports
# checked against pyiqa: hence setup-dev).
test: setup-dev
	cargo test --release

# pyiqa's scores on the model zoo's random checkpoints (tests/data/zoo_references.csv; README "pyiqa's model zoo,
# built in"): every zoo metric, or only NAMES="topiq_nr hyperiqa". About 10 minutes for all on 2 cores.
zoo-references: setup-dev
	.venv/bin/python scripts/make_zoo_references.py $(NAMES)

# The model zoo's whole parity run: tests/zoo.rs with every 1920×1080 row (make test checks that size for one
# metric per network; the variants sharing it and the slowest networks only here). About 25 minutes on 2 cores.
zoo-parity: setup-dev
	IQA_ZOO_LONG=1 cargo test --release --test zoo

# Fuzzing (README "Reliability"): cargo-fuzz/libFuzzer on the nightly toolchain (installed on first use), every
# target of fuzz/ for FUZZ_SECONDS each. fuzz-check is the short run .ci/run makes.
FUZZ_SECONDS ?= 600
fuzz: setup
	scripts/fuzz.sh run $(FUZZ_SECONDS)

fuzz-check: setup
	scripts/fuzz.sh run 20

# The stable-toolchain mutation run of every target that `make test` makes for 3 s each, for FUZZ_SECONDS each.
fuzz-stable: setup-dev
	IQA_FUZZ_SECONDS=$(FUZZ_SECONDS) cargo test --release --test fuzz_regressions mutated -- --nocapture

# The C contract test and a create/score/free loop over every metric under valgrind memcheck (README
# "Reliability"); valgrind comes with setup-dev.
memcheck: setup-dev
	cargo test --release --test reliability_memcheck -- --ignored --nocapture --test-threads=1
	cargo test --release --test reliability_memory rss_is_flat -- --ignored --nocapture

lint: setup
	cargo fmt --all -- --check
	cargo clippy --release --all-targets -- -D warnings

# Regenerate include/iqa.h after changing src/ffi.
header: setup
	IQA_UPDATE_HEADER=1 cargo test --release --test header

# Record additions to the C ABI in abi/iqa.abi (refuses removals and layout changes unless IQA_ABI_VERSION was
# bumped in src/ffi/types.rs); run after `make header`.
abi: setup
	IQA_UPDATE_ABI=1 cargo test --release --test abi

# Regenerate the pyiqa references under tests/data (make references METRICS="vif niqe" for some).
references: setup-dev
	.venv/bin/python scripts/make_references.py $(METRICS)
	.venv/bin/python scripts/make_yuv_references.py

# pyiqa 0.1.16 against iqa on the same images and threads (cold start, s/image at 512x384 and 1920x1080, batch,
# peak RSS, bf16, ratios), then the other libraries (scripts/bench_peers.py: OpenCV, piq, torchmetrics,
# scikit-image, ffmpeg) and one reference against eight images (examples/prepared_reference); writes
# BENCHMARKS.md (and target/benchmark.json). Long: run it on a quiet machine.
bench: setup-bench
	cargo build --release --lib --bin iqa --example prepared_reference --quiet
	.venv/bin/python scripts/benchmark.py --precision-check --peers --prepared --markdown BENCHMARKS.md \
		--json target/benchmark.json

# iqa against the other libraries only, quick (a few minutes): prints the tables, writes target/bench_peers.md.
bench-peers: setup-bench
	cargo build --release --lib --bin iqa --quiet
	.venv/bin/python scripts/bench_peers.py --quick --markdown target/bench_peers.md --json target/bench_peers.json

# Video: frames/s at 1920x1080 I420 through `iqa video` (psnr, ssim, lpips) beside ffmpeg's psnr/ssim filters and
# pyiqa on the frames as PNG (needs ffmpeg with libx264 to make the clip); writes target/bench_video.md.
bench-video: setup-dev
	cargo build --release --bin iqa --quiet
	.venv/bin/python scripts/bench_video.py --markdown target/bench_video.md

# For the device tool's GPU machine (torch 2.11, no Rust): libiqa built against PyPI's torch 2.11.0 (its own venv,
# TORCH211_VENV, default ../venv-torch211; build in target/torch211), the C contract test, float16-rounded backbones
# and pyiqa, in .gpu/ (ignored), which `run` carries; prints the size that travels. Then, there:
# `bash scripts/gpu_check.sh` (see that script). About 12 min the first time (libtorch-sys and a 5 GB venv).
gpu-bundle:
	scripts/gpu/build_bundle.sh

# The `iqa` Python package (python/, README "Using it from Python"). python-wheel: target/wheels/iqa-*.whl
# carrying libiqa.so (scripts/build_wheel.sh). python-test: its pytest suite against target/release, as
# `make test` runs it (tests/python_package.rs); python-test-full: every pyiqa reference row through every input
# kind (long); python-test-ray: examples/ray_score.py on a local 2-worker Ray cluster; python-wheel-test: the
# wheel pip-installed into a fresh venv (PyPI's torch), then the suite against it; python-bench: against pyiqa.
python-wheel: build
	@scripts/build_wheel.sh

python-test: setup-dev build
	cd python && ../.venv/bin/python -m pytest -q -p no:cacheprovider tests

python-test-full: setup-dev build
	cd python && IQA_PYTEST_FULL=1 IQA_PYTEST_RAY=1 ../.venv/bin/python -m pytest -q -p no:cacheprovider tests

python-test-ray: setup-dev build
	cd python && IQA_PYTEST_RAY=1 ../.venv/bin/python -m pytest -q -p no:cacheprovider tests/test_ray_score.py

python-wheel-test: python-wheel
	@scripts/test_wheel.sh

python-bench: setup-dev build
	.venv/bin/python scripts/benchmark_python.py
