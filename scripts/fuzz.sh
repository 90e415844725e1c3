#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer) on the nightly toolchain: README "Reliability".
#   scripts/fuzz.sh setup                 nightly (minimal profile) and cargo-fuzz, when missing
#   scripts/fuzz.sh run SECONDS [TARGET]  every target (or one) for SECONDS each, from fuzz/corpus/TARGET
# New inputs go to target/fuzz-corpus/TARGET (not committed); a crash stops the run and is saved in
# fuzz/artifacts/TARGET/: fix it and keep the input in fuzz/regressions/TARGET/ (tests/fuzz_regressions.rs
# feeds every file there, and every seed, to the same entry point with plain `cargo test`).
set -euo pipefail
cd "$(dirname "$0")/.."
# Every target of fuzz/fuzz_targets (the same list as iqa::fuzzing::TARGETS, which tests/fuzz_regressions.rs checks).
mapfile -t targets < <(ls fuzz/fuzz_targets | sed 's/\.rs$//')

setup() {
  if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz: installing the nightly toolchain (minimal profile)" >&2
    rustup toolchain install nightly --profile minimal
  fi
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
  fi
}

case "${1:-}" in
  setup) setup ;;
  run)
    seconds="${2:?usage: scripts/fuzz.sh run SECONDS [TARGET]}"
    [ -n "${3:-}" ] && targets=("$3")
    setup
    # cargo-fuzz's defaults: AddressSanitizer on the Rust code (the C libraries, built by cc, are not
    # instrumented), optimised.
    cargo +nightly fuzz build -O
    # The fuzz binaries have no rpath to libtorch (libiqa.so's is set by build.rs): the .venv's torch/lib.
    torch_lib=$(.venv/bin/python -c \
      'import importlib.util as u, os; print(os.path.join(os.path.dirname(u.find_spec("torch").origin), "lib"))')
    export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    for t in "${targets[@]}"; do
      work="$PWD/target/fuzz-corpus/$t"
      mkdir -p "$work"
      echo "fuzz: $t for ${seconds}s" >&2
      # rss_limit: libtorch's arenas; timeout: one input may take a second on a loaded machine, not 30.
      log="$PWD/target/fuzz-corpus/$t.log"
      status=0
      cargo +nightly fuzz run -O "$t" "$work" "$PWD/fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=30 -print_final_stats=1 >"$log" 2>&1 || status=$?
      grep -E "DONE|stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY|panic|Test unit written" "$log" || true
      if [ "$status" != 0 ]; then
        tail -40 "$log" >&2
        echo "fuzz: $t failed (exit $status): the input is in fuzz/artifacts/$t, the log in $log" >&2
        exit 1
      fi
    done
    ;;
  *) sed -n '2,7p' "$0" >&2; exit 2 ;;
esac
