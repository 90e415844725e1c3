#!/usr/bin/env bash
# Installs (or uninstalls) the built library as C and C++ projects take one; `make install` / `make uninstall`
# call it after `cargo build --release`. Settings come from the environment (the Makefile passes them):
#   PREFIX           where to install (default /usr/local); LIBDIR is PREFIX/lib, fixed, because bin/iqa and
#                    libiqa find a bundled libtorch relative to themselves (build.rs)
#   DESTDIR          staging root prepended to every path written (packaging); files still name PREFIX
#   LIBTORCH_BUNDLE  none: the library keeps finding the libtorch it was built against (the checkout's .venv)
#                    cpu:  copies libtorch's CPU libraries into PREFIX/lib/iqa (survives the checkout's removal)
#                    cuda: cpu plus libtorch's CUDA libraries and the NVIDIA libraries they need
#   STRIP            command that strips debug info from libiqa and bin/iqa (default `strip --strip-debug`;
#                    empty = install the build's line tables as well)
# Layout: lib/libiqa.so.<ABI> (+ libiqa.so symlink), include/iqa/iqa.h, include/iqa/iqa.hpp, lib/pkgconfig/iqa.pc,
# lib/cmake/iqa/iqaConfig.cmake + iqaConfigVersion.cmake (target iqa::iqa), bin/iqa, lib/iqa/ (the bundle).
set -euo pipefail
cd "$(dirname "$0")/.."

action=${1:-}
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
LIBTORCH_BUNDLE=${LIBTORCH_BUNDLE:-none}
STRIP=${STRIP-strip --strip-debug}
built=target/release

die() { echo "install: $*" >&2; exit 1; }

case "$PREFIX" in /*) ;; *) die "PREFIX must be an absolute path, not '$PREFIX'" ;; esac
PREFIX=${PREFIX%/}
root="$DESTDIR$PREFIX"
header=include/iqa.h
define() { sed -n "s/^#define $1 \(.*\)$/\1/p" "$header" | tr -d '"'; }
abi=$(define IQA_ABI_VERSION)
version=$(define IQA_VERSION_STRING)
[ -n "$abi" ] && [ -n "$version" ] || die "$header lacks IQA_ABI_VERSION or IQA_VERSION_STRING"
soname="libiqa.so.$abi"

uninstall() {
  rm -f "$root/bin/iqa" "$root/lib/pkgconfig/iqa.pc" "$root/include/iqa/iqa.h" "$root/include/iqa/iqa.hpp" \
    "$root/lib/cmake/iqa/iqaConfig.cmake" "$root/lib/cmake/iqa/iqaConfigVersion.cmake" "$root/lib/$soname"
  # libiqa.so is the development link of whichever ABI was installed last: only ours is removed.
  if [ "$(readlink "$root/lib/libiqa.so" 2>/dev/null)" = "$soname" ]; then rm -f "$root/lib/libiqa.so"; fi
  rm -rf "$root/lib/iqa"
  rmdir "$root/include/iqa" "$root/lib/cmake/iqa" 2>/dev/null || true
}

case "$action" in
  uninstall) uninstall; echo "uninstalled iqa $version from $root"; exit 0 ;;
  install) ;;
  *) die "usage: scripts/install.sh install|uninstall" ;;
esac
case "$LIBTORCH_BUNDLE" in none | cpu | cuda) ;; *) die "LIBTORCH_BUNDLE must be none, cpu or cuda" ;; esac

lib="$built/libiqa.so"
[ -f "$lib" ] && [ -f "$built/iqa" ] || die "$lib or $built/iqa is missing: run \`make build\` first"
dynamic() { readelf -d "$1" | sed -n "s/.*($2).*\[\(.*\)\]$/\1/p"; }
[ "$(dynamic "$lib" SONAME)" = "$soname" ] ||
  die "$lib has soname '$(dynamic "$lib" SONAME)', $header says ABI $abi: rebuild (make build)"
# The libtorch the library was built against: the RUNPATH entry that is not $ORIGIN-relative (build.rs).
torch_lib=$(dynamic "$lib" RUNPATH | tr : '\n' | grep -v '^\$ORIGIN' | head -n1)
[ -f "$torch_lib/libtorch_cpu.so" ] || die "no libtorch_cpu.so in '$torch_lib' (RUNPATH of $lib)"

# Cuts FILE's RUNPATH to its leading $ORIGIN entry, in place.
keep_origin_runpath() {
  local runpath
  runpath=$(dynamic "$1" RUNPATH)
  scripts/set_runpath.sh "$1" "${runpath%%:*}"
}

uninstall # a previous install's bundle must not outlive a choice of none (the $ORIGIN path comes first)
install -d "$root/bin" "$root/include/iqa" "$root/lib/pkgconfig" "$root/lib/cmake/iqa"
install -m 755 "$lib" "$root/lib/$soname"
install -m 755 "$built/iqa" "$root/bin/iqa"
if [ -n "$STRIP" ]; then $STRIP "$root/lib/$soname" "$root/bin/iqa"; fi
ln -sfn "$soname" "$root/lib/libiqa.so"
install -m 644 "$header" "$root/include/iqa/iqa.h"
install -m 644 include/iqa/iqa.hpp "$root/include/iqa/iqa.hpp"

IFS=. read -r major minor _ <<<"$version"
substitute() {
  sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@VERSION@|$version|g" -e "s|@VERSION_MAJOR@|$major|g" \
    -e "s|@VERSION_MINOR@|$minor|g" -e "s|@ABI@|$abi|g" -e "s|@SONAME@|$soname|g" "$1" >"$2"
  chmod 644 "$2"
}
substitute pkgconfig/iqa.pc.in "$root/lib/pkgconfig/iqa.pc"
substitute cmake/iqaConfig.cmake.in "$root/lib/cmake/iqa/iqaConfig.cmake"
substitute cmake/iqaConfigVersion.cmake.in "$root/lib/cmake/iqa/iqaConfigVersion.cmake"

# The bundle mirrors the wheel's layout under lib/iqa (torch/lib, nvidia/<package>/lib) so that libtorch's own
# RPATH ($ORIGIN/../../nvidia/<package>/lib) keeps resolving without patching any file.
if [ "$LIBTORCH_BUNDLE" != none ]; then
  site=$(realpath "$torch_lib/../..")
  bundle="$root/lib/iqa"
  copy() { # copy FILE...: each file under $site to the same place under $bundle
    local f rel
    for f in "$@"; do
      f=$(realpath "$f")
      rel=${f#"$site"/}
      [ "$rel" != "$f" ] || die "$f is not under $site"
      install -D -m 644 "$f" "$bundle/$rel"
    done
  }
  closure() { # the libraries under $site that FILE... load, as the dynamic linker resolves them
    env -u LD_LIBRARY_PATH ldd "$@" | awk '/=> \//{print $3}' | xargs -r realpath | sort -u | grep "^$site/" || true
  }
  mapfile -t cpu < <(closure "$lib")
  copy "${cpu[@]}"
  if [ "$LIBTORCH_BUNDLE" = cuda ]; then
    [ -f "$torch_lib/libtorch_cuda.so" ] || die "this libtorch ($torch_lib) has no libtorch_cuda.so"
    # libtorch_cuda (dlopened by libiqa where a driver is) and what libtorch loads lazily next to it.
    mapfile -t extra < <(find "$torch_lib" -maxdepth 1 -name '*.so*' \( -name 'libtorch_cuda*' -o -name 'libc10_cuda*' \
      -o -name 'libtorch_nvshmem*' -o -name 'libcaffe2_nvrtc*' \))
    copy "${extra[@]}"
    # NVIDIA packages in full: cuDNN, NVRTC and others dlopen sibling libraries of their own directory.
    mapfile -t gpu < <(closure "${extra[@]}")
    for dir in $(printf '%s\n' "${gpu[@]}" | grep "^$site/nvidia/" | xargs -r -n1 dirname | sort -u); do
      mapfile -t all < <(find "$dir" -maxdepth 1 -name '*.so*')
      copy "${all[@]}"
    done
  fi
  # A bundled install must not look into the checkout at all: its RUNPATH keeps only the $ORIGIN entry.
  # The absolute entry (into the build's .venv) would be searched for every library not in the bundle
  # (libstdc++, libm, ...) before the system's, and for libtorch_cuda in a CPU bundle.
  keep_origin_runpath "$root/lib/$soname"
  keep_origin_runpath "$root/bin/iqa"
  licences=$(find "$site" -maxdepth 1 -name 'torch-*.dist-info' | head -n1)
  [ -z "$licences" ] || cp -r "$licences/licenses" "$bundle/torch/LICENSES"
fi

size=$(du -shL "$root/lib/$soname" | cut -f1)
echo "installed iqa $version ($soname, $size) into $root (libtorch: ${LIBTORCH_BUNDLE/none/$torch_lib})"
if [ "$LIBTORCH_BUNDLE" != none ]; then echo "libtorch bundle ($LIBTORCH_BUNDLE): $(du -sh "$root/lib/iqa" | cut -f1)"; fi
