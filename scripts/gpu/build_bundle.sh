#!/usr/bin/env bash
# `make gpu-bundle`: libiqa built against PyPI's torch 2.11.0 (the libtorch of the device tool's GPU machine,
# which has no Rust toolchain), then .gpu/ assembled by scripts/gpu/bundle.py for scripts/gpu_check.sh.
#   - torch 2.11 lives in its own venv outside the repository (TORCH211_VENV, default ../venv-torch211), with
#     numpy, safetensors and pillow for bundle.py and for trying scripts/gpu_check.sh here on the CPU;
#   - the build goes to target/torch211 (CARGO_TARGET_DIR), so the default build (torch 2.13, target/release)
#     is untouched;
#   - tch 0.26 is generated from libtorch 2.13: LIBTORCH_BYPASS_VERSION_CHECK=1, and scripts/gpu/torch211_shim.h
#     is force-included (CXXFLAGS) into torch-sys's C++ wrappers so that the 14 ops 2.11 lacks compile as stubs.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
venv=${TORCH211_VENV:-$(cd .. && pwd)/venv-torch211}
py="$venv/bin/python"
TORCH=2.11.0

if [ ! -x "$py" ]; then
  # Python 3.12 as on the GPU machine where it runs (a pyenv shim may exist without running), else python3
  base=python3
  if python3.12 -c '' 2>/dev/null; then base=python3.12; fi
  echo "gpu-bundle: creating $venv with $base (torch $TORCH from PyPI, about 5 GB with its CUDA libraries)" >&2
  "$base" -m venv "$venv"
  "$py" -m pip install -q --upgrade pip
fi
have=$("$py" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)
if [ "${have%%+*}" != "$TORCH" ]; then
  "$py" -m pip install -q "torch==$TORCH"
fi
"$py" -c 'import numpy, safetensors, PIL' 2>/dev/null || "$py" -m pip install -q numpy safetensors pillow

weights=${IQA_WEIGHTS_DIR:-$(cd .. && pwd)/shared/weights}
torch_dir=$("$py" -c 'import importlib.util as u, os; print(os.path.dirname(u.find_spec("torch").origin))')
export LIBTORCH="$torch_dir" LIBTORCH_BYPASS_VERSION_CHECK=1 CARGO_TARGET_DIR="$root/target/torch211"
export CXXFLAGS="-include $root/scripts/gpu/torch211_shim.h"
cargo build --release --lib
"$py" scripts/gpu/bundle.py --lib "$CARGO_TARGET_DIR/release/libiqa.so" --weights "$weights" --out "$root/.gpu" \
  --torch-version "$("$py" -c 'import importlib.metadata as m; print(m.version("torch"))')"
