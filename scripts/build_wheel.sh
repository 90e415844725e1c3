#!/usr/bin/env bash
# Builds the `iqa` Python wheel (python/) carrying target/release/libiqa.so, into target/wheels:
#   1. stages python/ in target/python-wheel (the source tree keeps no copy of the library, so that tests run
#      from python/ load the build in target/release);
#   2. the staged libiqa.so: line tables stripped, RUNPATH cut to $ORIGIN/../torch/lib, the lib/ of the `torch`
#      package that pip installs beside `iqa` in site-packages (the build machine's paths do not travel);
#   3. checks that pyproject.toml pins the torch and version this build used (scripts/setup.sh, Cargo.toml);
#   4. `pip wheel` with setuptools (from PyPI, build isolation): a py3-none-linux_x86_64 wheel.
# Usage: scripts/build_wheel.sh (after `cargo build --release --lib`); prints the wheel's path.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
py="$root/.venv/bin/python"
die() { echo "build_wheel: $*" >&2; exit 1; }

lib=target/release/libiqa.so
[ -f "$lib" ] || die "no $lib: run cargo build --release --lib first"

field() { sed -n "s/^$1 = \"\(.*\)\"/\1/p" "$2" | head -n1; }
version=$(field version Cargo.toml)
[ "$(field version python/pyproject.toml)" = "$version" ] ||
  die "python/pyproject.toml version $(field version python/pyproject.toml) != Cargo.toml $version"
torch_version=$(sed -n 's/^TORCH_VERSION=//p' scripts/setup.sh)
grep -q "^dependencies = \[\"torch==$torch_version\"\]" python/pyproject.toml ||
  die "python/pyproject.toml must depend on torch==$torch_version (scripts/setup.sh TORCH_VERSION)"

stage=target/python-wheel
rm -rf "$stage" && mkdir -p "$stage"
cp python/pyproject.toml "$stage/"
mkdir "$stage/iqa" && cp python/iqa/*.py "$stage/iqa/"
cp "$lib" "$stage/iqa/libiqa.so"
strip --strip-debug "$stage/iqa/libiqa.so"

# In place (the new RUNPATH is shorter than the old one, $ORIGIN/iqa/torch/lib:<abs>); nothing else changes.
scripts/set_runpath.sh "$stage/iqa/libiqa.so" '$ORIGIN/../torch/lib'

mkdir -p target/wheels
rm -f target/wheels/iqa-"$version"-*.whl
"$py" -m pip wheel -q --no-deps -w target/wheels "$stage" >&2
wheel=$(ls target/wheels/iqa-"$version"-py3-none-linux_x86_64.whl 2>/dev/null) ||
  die "pip wheel made $(ls target/wheels) instead of iqa-$version-py3-none-linux_x86_64.whl"
rm -rf "$stage/build" "$stage"/*.egg-info
echo "$root/$wheel"
