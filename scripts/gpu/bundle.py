#!/usr/bin/env python3
"""Assembles .gpu/, what scripts/gpu_check.sh needs on the GPU machine besides the repository (`make gpu-bundle`
builds libiqa against torch 2.11 first, then runs this with that venv's python, which has numpy and safetensors).

    python scripts/gpu/bundle.py --lib target/torch211/release/libiqa.so --weights ../shared/weights --out .gpu

Contents (the device tool carries at most 64 MiB with the working tree, so weights are reduced, see below):
  lib/libiqa.so.xz       the torch-2.11 build, debug info stripped, xz-compressed (15.2 -> 4.9 MB; uncompressed
                         it left no room: 64.5 MiB in all); scripts/gpu_check.sh unpacks it to lib/libiqa.so
  bin/contract           tests/c/contract.c, compiled as tests/c_clients.rs does, RUNPATH $ORIGIN/../lib
  bin/coldstart          benches/coldstart.c (dlopen + create + score files, prints the score)
  weights/backbones/*_fp16.safetensors
                         the torchvision AlexNet, VGG16 and SqueezeNet1.1 feature weights of the shared folder with
                         every value rounded to float16 (round to nearest even) and stored as F16: 36.8 MB instead of
                         73.7 MB. check.py widens them back to float32 files under the shared names, so that iqa
                         (IQA_WEIGHTS_DIR) and pyiqa (torchvision checkpoints) load identical float32 values. Scores
                         with them differ from the original weights' by ~1e-4 (PROVENANCE.md: the SqueezeNet copy
                         was already fp16-rounded); CUDA-vs-CPU comparisons and timings do not depend on the values.
  weights/{lpips,dists,niqe,brisque,ilniqe}/...
                         unchanged copies: the LPIPS lin .pth and DISTS alpha/beta .pt (byte-identical to pyiqa's),
                         the NIQE, BRISQUE and IL-NIQE .safetensors (pyiqa's .mat/.pth are rebuilt from them there),
                         and NIQE's .npz, from which scripts/make_zoo_references.py makes the model zoo's random
                         checkpoints there (IQA_WEIGHTS_DIR; they are too large to carry: 2.7 GB for all families)
  pyiqa/pyiqa-0.1.16.tar.gz
                         the pyiqa/ package of PyPI's pyiqa-0.1.16-py3-none-any.whl (pip download --no-deps), without
                         the wheel's docs, test images and calibration copies (7.8 MB wheel -> ~0.5 MB); its imports
                         for the metrics checked are all installed on that machine (KINDS.md), so nothing else is
                         carried, but facexlib, which topiq_arch imports for topiq_nr-face only: check.py writes a
                         stand-in there
  pyiqa/clip-deps.tar.gz OpenAI's `clip` package with ftfy and wcwidth (pyiqa's CLIP metrics need them; not
                         installed there), ~2 MB
  MANIFEST.json          versions, commit, sizes and sha256 of everything above, the build's repository root

Prints the size of everything that travels (tracked + untracked-not-ignored files of the repository, plus .gpu)
against the 64 MiB limit.
"""
import argparse
import ctypes
import datetime
import hashlib
import io
import lzma
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

ROOT = Path(__file__).resolve().parents[2]
PYIQA_VERSION = '0.1.16'
LIMIT = 64 << 20
BACKBONES = ['alexnet_features_torchvision', 'vgg16_features_torchvision', 'squeezenet1_1_torchvision_fp16rounded']
# Carried unchanged (relative to the weights folder).
SMALL_FILES = [
    *(f'lpips/lpips_v{v}_{n}_lin.pth' for v in ('0.0', '0.1') for n in ('alex', 'vgg', 'squeeze')),
    'dists/dists_alpha_beta.pt',
    'niqe/niqe_pris_params.safetensors',
    'niqe/niqe_pris_params.npz',  # what scripts/make_zoo_references.py reads (pyiqa_env.SHARED)
    'brisque/brisque_live_svm.safetensors',
    'ilniqe/ILNIQE_templateModel.safetensors',
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def run(cmd, **kw):
    print('+ ' + ' '.join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def pyiqa_wheel(cache):
    """PyPI's pyiqa wheel (pip checks its hash against the index), downloaded once into `cache`."""
    name = f'pyiqa-{PYIQA_VERSION}-py3-none-any.whl'
    wheel = cache / name
    if not wheel.exists():
        cache.mkdir(parents=True, exist_ok=True)
        run([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '--only-binary=:all:', '-d', cache,
             f'pyiqa=={PYIQA_VERSION}'])
    return wheel


# pyiqa's CLIP metrics import OpenAI's `clip` package (its tokenizer), which imports ftfy, which imports wcwidth:
# pure Python (wcwidth's abi3 wheel) and not installed on the GPU machines (KINDS.md), so they travel too.
CLIP_DEPS = ['openai-clip==1.0.1', 'ftfy==6.3.1', 'wcwidth==0.9.5']


def clip_deps(cache, dest):
    """The packages of CLIP_DEPS (PyPI's files, pip-checked, downloaded once into `cache`) as one deterministic
    tar.gz of their import folders (`clip/`, `ftfy/`, `wcwidth/`), extracted by check.py beside pyiqa."""
    cache.mkdir(parents=True, exist_ok=True)
    for req in CLIP_DEPS:
        name = req.split('==')[0]
        if not any(p.name.lower().replace('_', '-').startswith(name) for p in cache.iterdir()):
            run([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '-d', cache, req])
    members = {}
    for path in sorted(cache.iterdir()):
        if path.name.startswith('openai-clip') and path.name.endswith('.tar.gz'):
            with tarfile.open(path) as t:
                for m in t.getmembers():
                    parts = m.name.split('/')
                    if m.isfile() and len(parts) > 2 and parts[1] == 'clip':
                        members['/'.join(parts[1:])] = t.extractfile(m).read()
        elif path.name.startswith(('ftfy-', 'wcwidth-')) and path.suffix == '.whl':
            with zipfile.ZipFile(path) as z:
                for info in z.infolist():
                    top = info.filename.split('/')[0]
                    if not info.is_dir() and top in ('ftfy', 'wcwidth'):
                        members[info.filename] = z.read(info)
    if not {m.split('/')[0] for m in members} >= {'clip', 'ftfy', 'wcwidth'}:
        sys.exit(f'{cache}: expected clip, ftfy and wcwidth, found {sorted({m.split("/")[0] for m in members})}')
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w:gz', compresslevel=9) as tar:
        for name in sorted(members):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode = len(members[name]), 0, 0o644
            tar.addfile(ti, io.BytesIO(members[name]))
    dest.write_bytes(buf.getvalue())


def slim_pyiqa(wheel, dest):
    """The wheel's pyiqa/ package as a deterministic tar.gz (sorted, fixed times and owners)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(wheel) as z, tarfile.open(fileobj=buf, mode='w:gz', compresslevel=9) as tar:
        for info in sorted(z.infolist(), key=lambda i: i.filename):
            if not info.filename.startswith('pyiqa/') or info.is_dir():
                continue
            data = z.read(info)
            ti = tarfile.TarInfo(info.filename)
            ti.size, ti.mtime, ti.mode = len(data), 0, 0o644
            tar.addfile(ti, io.BytesIO(data))
    dest.write_bytes(buf.getvalue())


def to_fp16(src, dest):
    tensors = load_file(str(src))
    for k, v in tensors.items():
        if v.dtype != np.float32:
            sys.exit(f'{src}: {k} is {v.dtype}, expected float32')
        if np.abs(v).max(initial=0) >= 65504:
            sys.exit(f'{src}: {k} exceeds the float16 range')
    save_file({k: v.astype(np.float16) for k, v in tensors.items()}, str(dest))
    return sum(v.size for v in tensors.values())


def travelling_files():
    """What the device tool sends: tracked and untracked-not-ignored files (`git ls-files -co --exclude-standard`)."""
    out = subprocess.run(['git', 'ls-files', '-z', '-co', '--exclude-standard'], cwd=ROOT, check=True,
                         capture_output=True).stdout
    return [ROOT / p for p in out.decode().split('\0') if p]


def size_of(paths):
    return sum(p.stat().st_size for p in paths if p.is_file() and not p.is_symlink())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--lib', required=True, help='libiqa.so built against torch 2.11')
    ap.add_argument('--weights', required=True, help='the shared weights folder (../shared/weights)')
    ap.add_argument('--out', default=str(ROOT / '.gpu'))
    ap.add_argument('--torch-version', required=True, help='the torch version libiqa was built against')
    ap.add_argument('--wheel-cache', default=str(ROOT / 'target' / 'torch211' / 'wheels'))
    args = ap.parse_args()
    lib, weights, out = Path(args.lib), Path(args.weights), Path(args.out)
    if not (weights / 'backbones').is_dir():
        sys.exit(f'{weights} is not the shared weights folder (no backbones/): set IQA_WEIGHTS_DIR')

    if out.exists():
        shutil.rmtree(out)
    for d in ('lib', 'bin', 'weights/backbones', 'pyiqa'):
        (out / d).mkdir(parents=True)

    run(['strip', '--strip-debug', '-o', out / 'lib' / 'libiqa.so', lib])
    cc = os.environ.get('CC', 'cc')
    # The flags of tests/c_clients.rs; RUNPATH to the bundle's lib, libtorch comes from LD_LIBRARY_PATH there.
    run([cc, '-std=c99', '-Wall', '-Wextra', '-Werror', '-pthread', f'-I{ROOT / "include"}',
         ROOT / 'tests' / 'c' / 'contract.c', '-o', out / 'bin' / 'contract', f'-L{out / "lib"}', '-liqa',
         '-Wl,-rpath,$ORIGIN/../lib'])
    run([cc, '-O2', '-Wall', '-o', out / 'bin' / 'coldstart', ROOT / 'benches' / 'coldstart.c', '-ldl'])

    converted = {}
    for name in BACKBONES:
        src = weights / 'backbones' / f'{name}.safetensors'
        dest = out / 'weights' / 'backbones' / f'{name}_fp16.safetensors'
        converted[dest.name] = {'from': src.name, 'values': to_fp16(src, dest), 'source_sha256': sha256(src)}
    for rel in SMALL_FILES:
        (out / 'weights' / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(weights / rel, out / 'weights' / rel)

    wheel = pyiqa_wheel(Path(args.wheel_cache))
    slim_pyiqa(wheel, out / 'pyiqa' / f'pyiqa-{PYIQA_VERSION}.tar.gz')
    clip_deps(Path(args.wheel_cache) / 'clip-deps', out / 'pyiqa' / 'clip-deps.tar.gz')

    commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip())
    # the metric list, in case libiqa cannot be loaded there (check.py still runs pyiqa then)
    lib = ctypes.CDLL(str(out / 'lib' / 'libiqa.so'))
    lib.iqa_metric_name.argtypes, lib.iqa_metric_name.restype = [ctypes.c_size_t], ctypes.c_char_p
    lib.iqa_metric_count.restype = ctypes.c_size_t
    metrics = [lib.iqa_metric_name(i).decode() for i in range(lib.iqa_metric_count())]
    so = out / 'lib' / 'libiqa.so'
    # The name programs linked against it ask for (bin/contract: libiqa.so.1); gpu_check.sh links it there, as
    # the device tool carries no links.
    dynamic = subprocess.run(['objdump', '-p', str(so)], check=True, capture_output=True, text=True).stdout
    soname = next((line.split()[-1] for line in dynamic.splitlines() if line.split()[:1] == ['SONAME']), None)
    unpacked = {'size': so.stat().st_size, 'sha256': sha256(so), 'soname': soname}
    with lzma.open(so.with_name('libiqa.so.xz'), 'wb', preset=6) as packed:
        packed.write(so.read_bytes())
    so.unlink()
    files = sorted(p for p in out.rglob('*') if p.is_file())
    manifest = {
        'built': datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
        'commit': commit + (' (with uncommitted changes)' if dirty else ''),
        'torch': args.torch_version,
        'build_root': str(ROOT),
        'pyiqa_wheel': {'name': wheel.name, 'sha256': sha256(wheel), 'size': wheel.stat().st_size},
        'metrics': metrics,
        'libiqa_so': unpacked,
        'backbones_fp16': converted,
        'files': {str(p.relative_to(out)): {'size': p.stat().st_size, 'sha256': sha256(p)} for p in files},
    }
    (out / 'MANIFEST.json').write_text(json.dumps(manifest, indent=1) + '\n')

    bundle = size_of(out.rglob('*'))
    tree = size_of(travelling_files())
    total = bundle + tree
    print(f'\n{out}: {bundle / 1e6:.1f} MB; repository files that travel: {tree / 1e6:.1f} MB; '
          f'total {total / 2**20:.1f} MiB of the 64 MiB limit ({(LIMIT - total) / 2**20:.1f} MiB spare)')
    for p in files:
        print(f'  {p.stat().st_size / 1e6:8.2f} MB  {p.relative_to(out)}')
    if total > LIMIT:
        sys.exit('over the 64 MiB the device tool carries')


if __name__ == '__main__':
    main()
