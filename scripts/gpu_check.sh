#!/usr/bin/env bash
# The CUDA run of issue 21 on the device tool's GPU machine (Python 3.12 + torch 2.11, no Rust, no network):
#   here:  make gpu-bundle            (libiqa against torch 2.11 + weights + pyiqa into .gpu/, prints the size)
#   there: run(command="bash scripts/gpu_check.sh", carry=[".gpu"], timeout_s=540)
# About 7.5 min (--budget 420 s, plus set-up): the 23 metrics outside the model zoo and 10 of the zoo's 35, whose
# random checkpoints check.py first makes there with scripts/make_zoo_references.py (~40 s, during the load probes
# and the contract test); `--zoo all --zoo-variants 1 --budget 540` (timeout_s=600) takes every zoo metric, with
# less time each. Results go to $OUT (the device tool's folder that comes back; ./out/gpu_check when unset):
# results.md, results.json, contract.txt, workers.txt and this run's log.txt. scripts/gpu/check.py says what is
# checked. Extra arguments go to check.py: here,
#   bash scripts/gpu_check.sh --device cpu --metrics psnr,cnniqa --budget 150
# tries the script on the CPU (IQA_CHECK_PYTHON: a python with torch 2.11, e.g. ../venv-torch211/bin/python).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$PWD/out/gpu_check}
mkdir -p "$out"
py=${IQA_CHECK_PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
{
  echo "gpu_check: $(date -u '+%F %T UTC') on $(hostname), $("$py" --version 2>&1) at $(command -v "$py")"
  nvidia-smi -L 2>&1 | head -4
  if [ ! -f .gpu/MANIFEST.json ]; then
    echo "gpu_check: .gpu/ is missing: run 'make gpu-bundle' here and carry .gpu"
    exit 2
  fi
  # libiqa travels xz-compressed (scripts/gpu/bundle.py); unpacked once, checked against the manifest, and
  # linked under its SONAME.
  if [ ! -f .gpu/lib/libiqa.so ]; then
    "$py" - <<'PY' || exit 2
import hashlib, json, lzma, pathlib
lib, want = pathlib.Path('.gpu/lib'), json.loads(pathlib.Path('.gpu/MANIFEST.json').read_text())['libiqa_so']
data = lzma.decompress((lib / 'libiqa.so.xz').read_bytes())
if hashlib.sha256(data).hexdigest() != want['sha256']:
    raise SystemExit('gpu_check: .gpu/lib/libiqa.so.xz does not unpack to the libiqa.so of MANIFEST.json')
(lib / 'libiqa.so').write_bytes(data)
print(f'gpu_check: unpacked .gpu/lib/libiqa.so ({len(data)} bytes)')
if want.get('soname') and not (lib / want['soname']).exists():
    (lib / want['soname']).symlink_to('libiqa.so')  # the name bin/contract asks for
PY
  fi
  # libiqa's RUNPATH names the build machine's torch venv; this machine's libtorch is found through
  # LD_LIBRARY_PATH, which check.py sets for its workers from this folder.
  torch_lib=$("$py" -c 'import importlib.util as u, os
print(os.path.join(os.path.dirname(u.find_spec("torch").origin), "lib"))')
  echo "gpu_check: torch/lib = $torch_lib"
  "$py" scripts/gpu/check.py --out "$out" --torch-lib "$torch_lib" "$@"
  rc=$?
  echo "gpu_check: check.py exit $rc; results.md follows"
  cat "$out/results.md" 2>/dev/null
} 2>&1 | tee "$out/log.txt"
