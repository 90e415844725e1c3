#!/usr/bin/env bash
# The wheel of `make python-wheel` in a fresh venv (no system site-packages): `pip install` of it alone (torch
# comes from PyPI as its dependency), then the pytest suite (python/tests) against the installed package, with
# no IQA_LIBRARY and no path into this checkout. Prints the install time and where libtorch was loaded from.
# IQA_WHEEL_FIND_LINKS=DIR: also look for wheels (e.g. a downloaded torch wheel) in DIR. VENV=DIR (default
# target/wheel-venv) is recreated.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
wheel="$root/target/wheels/iqa-$version-py3-none-linux_x86_64.whl"
[ -f "$wheel" ] || { echo "test_wheel: no $wheel (make python-wheel)" >&2; exit 1; }
venv=${VENV:-$root/target/wheel-venv}
rm -rf "$venv"
python3 -m venv "$venv"
find_links=()
[ -n "${IQA_WHEEL_FIND_LINKS:-}" ] && find_links=(--find-links "$IQA_WHEEL_FIND_LINKS")
start=$(date +%s)
"$venv/bin/pip" install -q "${find_links[@]}" "$wheel"
echo "test_wheel: pip install of the wheel and its dependencies: $(( $(date +%s) - start )) s" >&2
"$venv/bin/pip" install -q pytest numpy pillow
cd /tmp # nothing of the checkout on sys.path
unset IQA_LIBRARY
"$venv/bin/python" - "$venv" <<'PY'
import sys, iqa
venv = sys.argv[1]
assert iqa.__file__.startswith(venv), iqa.__file__
m = iqa.create_metric("psnr")
torch_libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if "libtorch_cpu.so" in l})
assert len(torch_libs) == 1 and torch_libs[0].startswith(venv), torch_libs
print(f"test_wheel: iqa {iqa.__version__} from {iqa.__file__}, libtorch from {torch_libs[0]}", file=sys.stderr)
PY
IQA_TEST_INSTALLED=1 PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -m pytest -q -p no:cacheprovider \
  "$root/python/tests"
