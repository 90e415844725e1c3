#!/usr/bin/env bash
# Prepares a fresh machine (rustup, gcc, python3) for building iqa, idempotently:
#   1. .venv with PyPI's torch==2.13.0, the libtorch that tch 0.26 is written against
#      (download.pytorch.org is not needed; pip's wheel carries libtorch and its CUDA libraries);
#   2. .cargo/config.toml pointing torch-sys at that libtorch, so that plain `cargo build|test|run` work;
#   3. nasm where apt-get can install it (as root or through password-less sudo): the mozjpeg crate builds
#      libjpeg-turbo's SIMD code when nasm is on PATH; without it JPEG decoding is about 2x slower (same pixels).
# With --dev it also installs pyiqa 0.1.16, the reference implementation used by scripts/ and the benchmark,
# Ray Data (examples/ray_score.py and its test, `make python-test-ray`; about 10 s, 80 MB),
# cmake and pkg-config (Debian/Ubuntu packages, as root or through password-less sudo) for tests/install.rs, and
# valgrind for tests/reliability_memcheck.rs.
# With --bench (`make bench`; implies --dev) also the peers scripts/bench_peers.py compares against, pinned, into
# .bench-peers/ (pip --target, first on the benchmark children's sys.path, so that OpenCV's contrib build does not
# replace the cv2 pyiqa installed in .venv), and ffmpeg (apt-get). `make test` installs none of them.
# A second run is a no-op taking well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

TORCH_VERSION=2.13.0
PYIQA_VERSION=0.1.16
RAY_VERSION=2.60.0
venv="$root/.venv"
py="$venv/bin/python"

want_dev=0
want_bench=0
[ "${1:-}" = "--dev" ] && want_dev=1
[ "${1:-}" = "--bench" ] && want_dev=1 && want_bench=1
# The peers' own dependencies (numpy, scipy, torch, torchvision, scikit-image, Pillow) come with pyiqa.
BENCH_PEERS="opencv-contrib-python-headless==5.0.0.93 piq==0.8.0 torchmetrics==1.9.0 lightning-utilities==0.15.3"

if [ ! -x "$py" ]; then
  echo "setup: creating $venv" >&2
  python3 -m venv "$venv"
  "$py" -m pip install -q --upgrade pip
fi

have_torch=$("$py" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)
if [ "${have_torch%%+*}" != "$TORCH_VERSION" ]; then
  echo "setup: installing torch==$TORCH_VERSION from PyPI (about 5 GB with its CUDA libraries)" >&2
  "$py" -m pip install -q "torch==$TORCH_VERSION"
fi

if [ "$want_dev" = 1 ]; then
  have_pyiqa=$("$py" -c 'import importlib.metadata as m; print(m.version("pyiqa"))' 2>/dev/null || true)
  if [ "$have_pyiqa" != "$PYIQA_VERSION" ]; then
    echo "setup: installing pyiqa==$PYIQA_VERSION (reference implementation)" >&2
    # Pin torch so that pip never swaps the libtorch iqa is built against.
    "$py" -m pip install -q "pyiqa==$PYIQA_VERSION" "torch==$TORCH_VERSION"
  fi
  have_ray=$("$py" -c 'import importlib.metadata as m; print(m.version("ray"))' 2>/dev/null || true)
  if [ "$have_ray" != "$RAY_VERSION" ]; then
    echo "setup: installing ray[data]==$RAY_VERSION (examples/ray_score.py)" >&2
    "$py" -m pip install -q "ray[data]==$RAY_VERSION" "torch==$TORCH_VERSION"
  fi
fi

# apt-get install PACKAGE... as root, or through sudo where it asks for no password; fails otherwise.
apt_install() {
  local as=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null && sudo -n true 2>/dev/null || return 1
    as=(sudo -n)
  fi
  command -v apt-get >/dev/null || return 1
  "${as[@]}" apt-get update -qq &&
    "${as[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v nasm >/dev/null; then
  echo "setup: installing nasm (apt-get) for libjpeg-turbo's SIMD JPEG decoding" >&2
  apt_install nasm ||
    echo "setup: could not install nasm: JPEG decoding is built without SIMD (the same pixels, about 2x slower)" >&2
fi

if [ "$want_dev" = 1 ]; then
  missing=()
  for tool in cmake pkg-config valgrind; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]} (apt-get) for the install and memcheck tests" >&2
    apt_install "${missing[@]}" ||
      echo "setup: could not install ${missing[*]}: tests/install.rs, tests/reliability_memcheck.rs will fail" >&2
  fi
fi

if [ "$want_bench" = 1 ]; then
  peers="$root/.bench-peers"
  if [ "$(cat "$peers/.installed" 2>/dev/null)" != "$BENCH_PEERS" ]; then
    echo "setup: installing the benchmark's peers into $peers: $BENCH_PEERS" >&2
    rm -rf "$peers"
    # shellcheck disable=SC2086 # one word per requirement
    "$py" -m pip install -q --no-deps --target "$peers" $BENCH_PEERS
    printf '%s' "$BENCH_PEERS" > "$peers/.installed"
  fi
  if ! command -v ffmpeg >/dev/null; then
    echo "setup: installing ffmpeg (apt-get) for the benchmark's process comparison" >&2
    apt_install ffmpeg || echo "setup: could not install ffmpeg: the benchmark leaves its rows out" >&2
  fi
fi

torch_dir=$("$py" -c 'import importlib.util as u, os; print(os.path.dirname(u.find_spec("torch").origin))')
mkdir -p .cargo
config=".cargo/config.toml"
new_config=$(cat <<CFG
# Written by scripts/setup.sh for this machine; not committed.
[env]
LIBTORCH = "$torch_dir"
CFG
)
if [ ! -f "$config" ] || [ "$(cat "$config")" != "$new_config" ]; then
  printf '%s\n' "$new_config" > "$config"
  echo "setup: wrote $config (LIBTORCH=$torch_dir)" >&2
fi
