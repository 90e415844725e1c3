#!/usr/bin/env bash
# Writes NEW over FILE's RUNPATH in place, for scripts/install.sh (a bundled install keeps only the $ORIGIN entry)
# and scripts/build_wheel.sh (the wheel's $ORIGIN/../torch/lib). NEW must be no longer than the RUNPATH: the
# string is overwritten and NUL-padded, which needs no tool beyond python3 (patchelf would rewrite the file).
# Checked afterwards: the symbol names, NEEDED entries and soname read the same, so no other dynamic string
# shared those bytes, and the RUNPATH reads NEW.
# Usage: scripts/set_runpath.sh FILE NEW
set -euo pipefail
file=$1 new=$2
die() { echo "set_runpath: $file: $*" >&2; exit 1; }
dynamic() { readelf -d "$1" | sed -n "s/.*($2).*\[\(.*\)\]$/\1/p"; }
old=$(dynamic "$file" RUNPATH)
before=$(nm -D "$file"; dynamic "$file" NEEDED; dynamic "$file" SONAME)
python3 - "$file" "$old" "$new" <<'PY'
import sys
path, old, new = sys.argv[1], sys.argv[2].encode() + b"\0", sys.argv[3].encode()
data = bytearray(open(path, "rb").read())
if data.count(old) != 1 or len(new) >= len(old):
    sys.exit(f"{path}: RUNPATH {old!r} found {data.count(old)} times (want once, longer than {new!r})")
at = data.find(old)
data[at:at + len(old)] = new.ljust(len(old), b"\0")
open(path, "wb").write(data)
PY
after=$(nm -D "$file"; dynamic "$file" NEEDED; dynamic "$file" SONAME)
[ "$before" = "$after" ] && [ "$(dynamic "$file" RUNPATH)" = "$new" ] ||
  die "setting its RUNPATH to $new changed other dynamic entries"
