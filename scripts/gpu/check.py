#!/usr/bin/env python3
"""The CUDA run of iqa (issue 21), on the device tool's GPU machine: one command, results as files.

    bash scripts/gpu_check.sh                 # there: `run` with carry [".gpu"]; see scripts/gpu_check.sh
    bash scripts/gpu_check.sh --zoo all --zoo-variants 1 --budget 540    # there: every zoo metric (see below)
    bash scripts/gpu_check.sh --device cpu --metrics psnr,cnniqa --budget 150     # here, to try the script

Needs .gpu/ (`make gpu-bundle`: libiqa built against torch 2.11, the C contract test, reduced weights, pyiqa)
and a python3 with numpy and pillow (the orchestrator), plus torch, torchvision, timm, scipy, opencv, safetensors
(pyiqa and scripts/make_zoo_references.py; facexlib, which pyiqa's topiq_arch imports, is replaced by a stand-in
where missing). No torch is imported by this process or by the iqa worker: libiqa finds libtorch through
LD_LIBRARY_PATH (the machine's torch/lib) and loads libtorch_cuda.so itself (src/runtime.rs load_cuda_backend).

Sections, each writing into results.json as it ends (a failure is recorded and the run goes on):
  1. load probes: how libiqa finds libtorch and libtorch_cuda there (no LD_LIBRARY_PATH; `import torch` first;
     LD_LIBRARY_PATH = torch/lib, which the rest uses), and whether AUTO resolves to CUDA;
  2. the C contract test (tests/c/contract.c) with IQA_DEVICE=cuda and with IQA_DEVICE unset (AUTO);
  zoo (while 1 and 2 run): the model zoo's random checkpoints (scripts/make_zoo_references.py --checkpoints
     <work>/zoo --only FAMILY, a process per family, CPUs - 2 at a time, at most --zoo-time s) for the zoo metrics
     of the run (scripts/zoo_offline.py PYIQA_KWARGS): without --metrics, those of the families of --zoo
     (DEFAULT_ZOO: 10 metrics of 9 families, ~40 s; `--zoo all --zoo-variants 1`: all 35, 2.7 GB, ~45 s on 16
     cores, 3 min 40 s on one), less the variants that only swap weights (ZOO_VARIANTS). iqa finds them as
     IQA_WEIGHTS_DIR/zoo, pyiqa in its cache and torch.hub checkpoints folders (links to the same files, as
     make_zoo_references.install_for_pyiqa places them), so both score with the same random weights (the same
     whichever torch made them). A rerun with the same --work reuses the families already made;
  3. iqa, per metric (every metric libiqa lists, the zoo's as above): CUDA against CPU on the 5 calibration pairs
     and a 1920x1080 pair (I03 upscaled bicubically by PIL; skipped where the CPU would take minutes,
     SLOW_CPU_HD), with the tolerance of TOLERANCE (the zoo's: 1e-4); iqa_score_batch on CUDA against
     single scores; 8 Python threads scoring through one CUDA handle against the single-threaded scores; fp16 and
     bf16 against fp32 on CUDA where iqa_metric_precision says the metric honours them; seconds per image at
     512x384 and 1920x1080 (RGB8 host buffers, median after a warm-up) and images/s for a batch of 16 at 512x384;
  4. pyiqa 0.1.16 on the same GPU and images: the same timings (float32 tensors already on the GPU,
     torch.cuda.synchronize() around each call) and its scores of the I03 and 1080p pairs against iqa's (zoo
     metrics built with their PYIQA_KWARGS inside zoo_offline.no_pretrained(): nothing is downloaded);
  tf32: the deep metrics (zoo included) that missed the tolerance, again with TF32 off, if 40 s are left;
  5. cold start (spawn -> first score, benches/coldstart.c, AUTO) for a few metrics, if time is left.
Files written to --out (the device tool brings back at most 8): results.md, results.json, log.txt (from
gpu_check.sh), contract.txt, workers.txt (the workers' stderr).

Weights: .gpu/weights holds the shared backbones rounded to float16 (bundle.py); both iqa and pyiqa load the same
float32 widening of them, so scores differ from the shared weights' by ~1e-4 (deep metrics only) and equally for
both. Time limits: --budget seconds for everything (default 420: the 23 metrics outside the zoo and 10 of it),
split between the sections; a metric that stalls for --stall seconds is killed and the worker restarts with the
next one; the metrics not reached by the deadline are recorded as such. On the CPU (2 cores, here) one zoo metric
takes ~30-60 s in each of sections 3 and 4.
"""
import argparse
import ast
import ctypes
import hashlib
import importlib.util
import json
import os
import platform
import queue
import shutil
import statistics
import subprocess
import sys
import tarfile
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'scripts'))
from zoo_offline import PYIQA_KWARGS as ZOO_KWARGS, no_pretrained  # noqa: E402 (imports no torch)

CAL = ROOT / 'data' / 'calibration'
CAL_IMAGES = ['I03.bmp', 'I04.bmp', 'I06.bmp', 'I08.bmp', 'I19.bmp']
HD = (1920, 1080)
BATCH = 16
THREADS = 8
PYIQA_ALIASES = {'lpips-squeeze': ('lpips', {'net': 'squeeze'})}

# The model zoo (scripts/zoo_offline.py PYIQA_KWARGS): its random checkpoints are made here by
# scripts/make_zoo_references.py, one process per family (FAMILIES there), into <work>/zoo, which is
# <work>/weights/zoo for iqa (IQA_WEIGHTS_DIR's subfolders are searched) and linked into pyiqa's cache folders.
ZOO_SCRIPT = ROOT / 'scripts' / 'make_zoo_references.py'
# pi is NRQM + NIQE; the CLIP metrics share three families (RN50, ViT-L/14, ViT-B/32); other metrics: their own
# family, or the name before '-' / '_'.
ZOO_FAMILY = {'pi': 'nrqm', 'clipiqa+': 'clipiqa', 'clipiqa+_rn50_512': 'clipiqa', 'maclip': 'clipiqa',
              **{m: 'clipiqa' for m in ('qualiclip', 'qualiclip+', 'qualiclip+-clive', 'qualiclip+-flive',
                                        'qualiclip+-spaq')},
              'clipiqa+_vitL14_512': 'clip_vitl14', 'laion_aes': 'clip_vitl14', 'liqe_mix': 'liqe',
              'clipscore': 'liqe'}
# Metrics scored against a caption: iqa_score and pyiqa's metric(img) refuse them, so the check leaves them out
# (clipscore's network, CLIP ViT-B/32, is the one liqe runs).
CAPTIONED = {'clipscore'}
ZOO_CLASSICAL = {'niqe_matlab', 'brisque_matlab', 'nrqm', 'pi'}  # no network: left out of the TF32 diagnostic
# Metrics whose CPU score of the 1920x1080 pair takes minutes (nrqm: 221 s on the 2-core build machine, 4 s at
# 512x384): compared on CUDA and CPU at 512x384 only. Others are skipped there when their 512x384 CPU time, times
# 10.5, exceeds the metric's share of the time (at least 30 s).
SLOW_CPU_HD = {'nrqm', 'pi'}
# The families checked by default (--zoo): CFANet NR and FR (topiq_nr, topiq_fr), HyperNet, CNNIQA, ARNIQA, DBCNN,
# PaQ-2-PiQ, NIMA's Inception-ResNet-v2 and ST-LPIPS (stlpips, stlpips-vgg): 10 metrics beside the 23 others, their
# checkpoints made in ~40 s (a process per family; nima takes the longest) while the probes and the contract test
# run. The 25 others (--zoo all --zoo-variants 1, about twice the time, or --metrics): the variants below,
# topiq_nr-flive, topiq_iaa_res50, unique, metaiqa, nima-vgg16-ava, wadiqam_fr, wadiqam_nr, ckdn, deepdc, pieapp,
# niqe_matlab, brisque_matlab, nrqm, pi (pieapp, nrqm and pi are the slowest on the CPU side: SLOW_CPU_HD).
DEFAULT_ZOO = 'topiq_nr,topiq_fr,hyperiqa,cnniqa,arniqa,dbcnn,paq2piq,nima,stlpips'
# Variants that differ from a checked metric only in the weights of the same network (other training sets): left
# out of the default metric list (--zoo-variants 1 or --metrics brings them in).
ZOO_VARIANTS = {'topiq_nr-spaq', 'topiq_fr-pipal', 'nima-koniq', 'nima-spaq', 'qualiclip+-clive',
                'qualiclip+-flive', 'qualiclip+-spaq', 'musiq-paq2piq', 'musiq-spaq', 'maniqa-kadid', 'maniqa-pipal',
                'tres-flive',
                *(f'arniqa-{d}' for d in ('live', 'csiq', 'tid', 'kadid', 'clive', 'flive', 'spaq'))}
# Seconds per family on one core of the 2-core build machine (make_zoo_references.py's own timing, all families in
# 3 min 40 s with its imports): the longest are started first.
ZOO_COST = {'nrqm': 36.5, 'nima': 35.9, 'topiq_fr-pipal': 15.5, 'topiq_fr': 14.3, 'arniqa': 14.1,
            'topiq_iaa_res50': 13.1, 'topiq_nr': 13.0, 'unique': 12.7, 'topiq_nr-flive': 12.5, 'topiq_nr-spaq': 12.0,
            'dbcnn': 9.3, 'paq2piq': 8.7, 'hyperiqa': 3.6, 'ckdn': 3.0, 'metaiqa': 2.8, 'pieapp': 1.8,
            'nima-vgg16-ava': 1.6, 'stlpips': 1.6, 'deepdc': 1.5, 'brisque_matlab': 0.8, 'wadiqam': 0.2,
            'cnniqa': 0.0, 'niqe_matlab': 0.0, 'clipiqa': 25.0, 'clip_vitl14': 15.0, 'liqe': 10.0,
            'musiq': 1.6, 'maniqa': 9.1, 'tres': 10.0}

# CUDA-vs-CPU tolerance, relative. Metrics computed in float64 from the (rounded) input on: 1e-6, as the Rust
# tests' cuda_equals_cpu. Metrics with float32 stages (convolutions through cuDNN, float32 resizes, FFTs or filters
# as pyiqa has them): 1e-4, the first guess the issue allows; the measured maximum is reported either way.
FLOAT64 = {'psnr', 'psnry', 'ssim', 'ssimc', 'ms_ssim', 'cw_ssim', 'vsi', 'entropy'}
TOL_F64, TOL_F32 = 1e-6, 1e-4
STICKY_CUDA_ERRORS = ('CUDA error', 'device-side assert', 'cudaError', 'CUBLAS_STATUS', 'CUDNN_STATUS')


def tolerance(name):
    return TOL_F64 if name in FLOAT64 else TOL_F32


def zoo_families():
    """The keys of FAMILIES in make_zoo_references.py, in order (read from the source: importing it loads torch)."""
    for node in ast.parse(ZOO_SCRIPT.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == 'FAMILIES' for t in node.targets):
            return [k.value for k in node.value.keys]
    raise RuntimeError(f'{ZOO_SCRIPT}: no FAMILIES')


def zoo_family(name, families):
    """The family whose checkpoints zoo metric `name` needs; None for a metric outside the zoo."""
    if name not in ZOO_KWARGS:
        return None
    for f in (ZOO_FAMILY.get(name), name, name.split('-')[0], name.split('_')[0]):
        if f in families:
            return f
    raise RuntimeError(f'{name}: no family in {ZOO_SCRIPT.name}')


IQA_OK = 0
DEVICE_AUTO, DEVICE_CPU, DEVICE_CUDA = 0, 1, 2
DEVICE_NAMES = {DEVICE_AUTO: 'auto', DEVICE_CPU: 'cpu', DEVICE_CUDA: 'cuda'}
FP32, FP16, BF16 = 0, 1, 2
PRECISION_NAMES = {FP32: 'fp32', FP16: 'fp16', BF16: 'bf16'}
MODE_FR = 0
FORMAT_RGB8 = 0


def now():
    return time.perf_counter()


def st_load(path):
    """A .safetensors file as numpy arrays (safetensors.numpy where installed, else read here)."""
    try:
        from safetensors.numpy import load_file
        return load_file(str(path))
    except ImportError:
        import numpy as np
        raw = Path(path).read_bytes()
        n = int.from_bytes(raw[:8], 'little')
        header = json.loads(raw[8:8 + n])
        kinds = {'F16': np.float16, 'F32': np.float32, 'F64': np.float64, 'I64': np.int64}
        return {k: np.frombuffer(raw[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]],
                                 dtype=kinds[v['dtype']]).reshape(v['shape']).copy()
                for k, v in header.items() if k != '__metadata__'}


def st_save(tensors, path):
    try:
        from safetensors.numpy import save_file
        save_file(tensors, str(path))
    except ImportError:
        import numpy as np
        names = {np.dtype(np.float16): 'F16', np.dtype(np.float32): 'F32', np.dtype(np.float64): 'F64'}
        header, blobs, offset = {}, [], 0
        for k, v in tensors.items():
            b = np.ascontiguousarray(v).tobytes()
            header[k] = {'dtype': names[v.dtype], 'shape': list(v.shape), 'data_offsets': [offset, offset + len(b)]}
            blobs.append(b)
            offset += len(b)
        h = json.dumps(header).encode()
        h += b' ' * (-len(h) % 8)
        Path(path).write_bytes(len(h).to_bytes(8, 'little') + h + b''.join(blobs))


def rel_err(a, b):
    if a is None or b is None:
        return None
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(b), 1e-12)


def say(text):
    print(f'[{time.strftime("%H:%M:%S")}] {text}', flush=True)


# ---------------------------------------------------------------------------------------------------------------
# libiqa through ctypes (examples/score.py is the commented client)
# ---------------------------------------------------------------------------------------------------------------

class Options(ctypes.Structure):
    _fields_ = [('struct_size', ctypes.c_uint32), ('device', ctypes.c_int), ('device_index', ctypes.c_int32),
                ('precision', ctypes.c_int)]


class Info(ctypes.Structure):
    _fields_ = [('name', ctypes.c_char_p), ('mode', ctypes.c_int), ('lower_better', ctypes.c_bool),
                ('score_min', ctypes.c_double), ('score_max', ctypes.c_double)]


class Image(ctypes.Structure):
    _fields_ = [('data', ctypes.c_void_p), ('width', ctypes.c_uint32), ('height', ctypes.c_uint32),
                ('stride', ctypes.c_size_t), ('format', ctypes.c_int)]


class IqaError(Exception):
    pass


class Iqa:
    def __init__(self, path):
        lib = ctypes.CDLL(str(path))
        H = ctypes.c_void_p
        sig = {
            'iqa_version': ([], ctypes.c_char_p),
            'iqa_last_error': ([], ctypes.c_char_p),
            'iqa_metric_count': ([], ctypes.c_size_t),
            'iqa_metric_name': ([ctypes.c_size_t], ctypes.c_char_p),
            'iqa_options_default': ([ctypes.POINTER(Options)], None),
            'iqa_metric_create': ([ctypes.c_char_p, ctypes.POINTER(Options), ctypes.POINTER(H)], ctypes.c_int),
            'iqa_metric_free': ([H], None),
            'iqa_metric_info': ([H, ctypes.POINTER(Info)], ctypes.c_int),
            'iqa_metric_device': ([H, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int32)], ctypes.c_int),
            'iqa_metric_precision': ([H, ctypes.POINTER(ctypes.c_int)], ctypes.c_int),
            'iqa_score': ([H, ctypes.POINTER(Image), ctypes.POINTER(Image), ctypes.POINTER(ctypes.c_double)],
                          ctypes.c_int),
            'iqa_score_batch': ([H, ctypes.POINTER(Image), ctypes.POINTER(Image), ctypes.c_size_t,
                                 ctypes.POINTER(ctypes.c_double)], ctypes.c_int),
        }
        for name, (args, res) in sig.items():
            f = getattr(lib, name)
            f.argtypes, f.restype = args, res
        # Prepared references (additive in ABI 1): absent from a library built before them.
        self.has_references = hasattr(lib, 'iqa_reference_create')
        if self.has_references:
            refs = {
                'iqa_reference_create': ([H, ctypes.POINTER(Image), ctypes.POINTER(H)], ctypes.c_int),
                'iqa_reference_free': ([H], None),
                'iqa_score_with_reference': ([H, H, ctypes.POINTER(Image), ctypes.POINTER(ctypes.c_double)],
                                             ctypes.c_int),
                'iqa_score_batch_with_reference': ([H, H, ctypes.POINTER(Image), ctypes.c_size_t,
                                                    ctypes.POINTER(ctypes.c_double)], ctypes.c_int),
            }
            for name, (args, res) in refs.items():
                f = getattr(lib, name)
                f.argtypes, f.restype = args, res
        self.lib = lib

    def check(self, status, what):
        if status != IQA_OK:
            raise IqaError(f'{what}: status {status}: {self.lib.iqa_last_error().decode(errors="replace")}')

    def names(self):
        return [self.lib.iqa_metric_name(i).decode() for i in range(self.lib.iqa_metric_count())]

    def create(self, name, device, precision=FP32):
        o = Options()
        self.lib.iqa_options_default(ctypes.byref(o))
        o.device, o.device_index, o.precision = device, 0, precision
        h = ctypes.c_void_p()
        self.check(self.lib.iqa_metric_create(name.encode(), ctypes.byref(o), ctypes.byref(h)),
                   f'create {name} {DEVICE_NAMES[device]} {PRECISION_NAMES[precision]}')
        return h

    def free(self, h):
        if h:
            self.lib.iqa_metric_free(h)

    def is_fr(self, h):
        info = Info()
        self.check(self.lib.iqa_metric_info(h, ctypes.byref(info)), 'info')
        return info.mode == MODE_FR

    def device(self, h):
        kind, index = ctypes.c_int(-1), ctypes.c_int32(-1)
        self.check(self.lib.iqa_metric_device(h, ctypes.byref(kind), ctypes.byref(index)), 'device')
        return f'{DEVICE_NAMES.get(kind.value, kind.value)}' + (f':{index.value}' if kind.value == DEVICE_CUDA else '')

    def precision(self, h):
        p = ctypes.c_int(-1)
        self.check(self.lib.iqa_metric_precision(h, ctypes.byref(p)), 'precision')
        return PRECISION_NAMES.get(p.value, p.value)

    def score(self, h, d, r):
        s = ctypes.c_double()
        self.check(self.lib.iqa_score(h, ctypes.byref(d), ctypes.byref(r) if r is not None else None,
                                      ctypes.byref(s)), 'score')
        return s.value

    def prepared_scores(self, h, r, ds):
        """Scores of `ds` against the prepared reference of image `r`: the first alone
        (iqa_score_with_reference), then all in one iqa_score_batch_with_reference."""
        ref = ctypes.c_void_p()
        self.check(self.lib.iqa_reference_create(h, ctypes.byref(r), ctypes.byref(ref)), 'reference create')
        try:
            one = ctypes.c_double()
            self.check(self.lib.iqa_score_with_reference(h, ref, ctypes.byref(ds[0]), ctypes.byref(one)),
                       'score with reference')
            n = len(ds)
            out = (ctypes.c_double * n)()
            self.check(self.lib.iqa_score_batch_with_reference(h, ref, (Image * n)(*ds), n, out),
                       f'batch of {n} with reference')
            return [one.value] + list(out)
        finally:
            self.lib.iqa_reference_free(ref)

    def score_batch(self, h, ds, rs):
        n = len(ds)
        out = (ctypes.c_double * n)()
        da = (Image * n)(*ds)
        ra = (Image * n)(*rs) if rs is not None else None
        self.check(self.lib.iqa_score_batch(h, da, ra, n, out), f'batch of {n}')
        return list(out)


class Pixels:
    """An RGB8 image held by numpy, and the IqaImage pointing at it (valid while this object lives)."""

    def __init__(self, path):
        import numpy as np
        from PIL import Image as PilImage
        self.array = np.ascontiguousarray(np.asarray(PilImage.open(path).convert('RGB'), dtype=np.uint8))
        h, w, _ = self.array.shape
        self.image = Image(self.array.ctypes.data, w, h, 0, FORMAT_RGB8)


# ---------------------------------------------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------------------------------------------

def timed(fn, cap_s, min_runs=3, min_total=0.3, max_runs=20, warm=True):
    """Median seconds of fn() after one warm-up; a call slower than cap_s/4 is timed once (`runs` 1)."""
    if warm:
        t = now()
        fn()
        first = now() - t
        if first > cap_s / 4:
            return {'median': first, 'runs': 1, 'note': 'one run (slow)'}
    times = []
    start = now()
    while len(times) < max_runs and (len(times) < min_runs or now() - start < min_total) and now() - start < cap_s:
        t = now()
        fn()
        times.append(now() - t)
    return {'median': statistics.median(times), 'min': min(times), 'runs': len(times)}


def error_text(e):
    return f'{type(e).__name__}: {e}'[:600]


def emit(kind, payload):
    print(f'{kind} ' + json.dumps(payload), flush=True)


# ---------------------------------------------------------------------------------------------------------------
# worker: iqa (a fresh process over libiqa; never imports torch)
# ---------------------------------------------------------------------------------------------------------------

def worker_iqa(spec):
    dut = DEVICE_CUDA if spec['device'] == 'cuda' else DEVICE_CPU
    load = {}
    if spec.get('preload_torch') or spec.get('tf32_off'):
        # Python's torch imported first loads libtorch (and libtorch_cuda) for libiqa, which then shares them
        import torch
        load['preloaded_torch'] = torch.__version__
    if spec.get('tf32_off'):
        # Diagnostic: libtorch's process-wide flags, set through Python's torch (cuDNN may use TF32 for float32
        # convolutions by default).
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        load['tf32'] = {'cudnn': torch.backends.cudnn.allow_tf32, 'matmul': torch.backends.cuda.matmul.allow_tf32}
    t = now()
    iqa = Iqa(spec['lib'])
    load.update(dlopen_s=now() - t, version=iqa.lib.iqa_version().decode())
    try:
        t = now()
        h = iqa.create('psnr', DEVICE_AUTO)
        load['auto_device'] = iqa.device(h)
        load['auto_create_s'] = now() - t
        iqa.free(h)
    except IqaError as e:
        load['auto_error'] = str(e)
    try:
        h = iqa.create('psnr', DEVICE_CUDA)
        load['cuda_create'] = 'ok'
        iqa.free(h)
    except IqaError as e:
        load['cuda_create'] = str(e)
    with open('/proc/self/maps') as f:
        load['libtorch_cuda_mapped'] = 'libtorch_cuda.so' in f.read()
    load['metrics'] = iqa.names()
    emit('LOAD', load)

    cal = [(name, Pixels(CAL / 'dist' / name), Pixels(CAL / 'ref' / name)) for name in CAL_IMAGES]
    hd = ('1920x1080', Pixels(spec['hd'][0]), Pixels(spec['hd'][1]))
    for name in spec['metrics']:
        left = spec['deadline'] - time.time()
        allowance = max(3.0, left / max(1, len(spec['metrics']) - spec['metrics'].index(name)))
        res = {'metric': name}
        try:
            iqa_metric(iqa, name, dut, cal, hd, res, now() + allowance, allowance, spec.get('only_equal'))
        except Exception as e:  # noqa: BLE001 - recorded; the next metric runs
            res['error'] = error_text(e)
            res['traceback'] = traceback.format_exc()[-1500:]
        emit('RESULT', res)


def iqa_metric(iqa, name, dut, cal, hd, res, end, allowance, only_equal=False):
    t0 = now()
    handles = []

    def create(device, precision=FP32):
        h = iqa.create(name, device, precision)
        handles.append(h)
        return h

    try:
        t = now()
        g = create(dut)
        res['create_s'] = now() - t
        res['device'] = iqa.device(g)
        try:
            a = iqa.create(name, DEVICE_AUTO)
            res['auto_device'] = iqa.device(a)
            iqa.free(a)
        except IqaError as e:
            res['auto_device'] = str(e)
        fr = iqa.is_fr(g)
        res['fr'] = fr
        c = create(DEVICE_CPU)

        def ref(p):
            return p[2].image if fr else None

        # 1. device against CPU: 5 calibration pairs + 1080p; the first device call is its warm-up
        pairs = []
        for p in cal + [hd]:
            row = {'pair': p[0]}
            cpu_s = [r['cpu_s'] for r in pairs if 'cpu_s' in r]
            if p is hd and (name in SLOW_CPU_HD or (cpu_s and 10.5 * statistics.median(cpu_s) > max(30.0, allowance))):
                # the CPU score of ~10.5 times the pixels would take most of the metric's time (or more)
                row['skipped'] = ('1080p skipped: the CPU takes minutes (SLOW_CPU_HD)' if name in SLOW_CPU_HD else
                                  f'1080p skipped: the CPU takes {statistics.median(cpu_s):.3g} s at 512x384')
                pairs.append(row)
                continue
            try:
                t = now()
                row['cpu'] = iqa.score(c, p[1].image, ref(p))
                row['cpu_s'] = now() - t
                t = now()
                row['dev'] = iqa.score(g, p[1].image, ref(p))
                row['dev_s'] = now() - t
                row['rel'] = rel_err(row['dev'], row['cpu'])
            except IqaError as e:
                row['error'] = str(e)
            pairs.append(row)
        iqa.free(c)
        handles.remove(c)
        tol = tolerance(name)
        done = [r for r in pairs if 'skipped' not in r]
        rels = [r['rel'] for r in done if r.get('rel') is not None]
        res['equal'] = {
            'pairs': pairs, 'tol': tol,
            'max_rel_cal': max((r['rel'] for r in pairs[:-1] if r.get('rel') is not None), default=None),
            'max_rel_hd': pairs[-1].get('rel'),
            'pass': len(rels) == len(done) and max(rels) <= tol,
        }
        if only_equal:
            return
        single = {r['pair']: r['dev'] for r in pairs if 'dev' in r}
        t_cal = statistics.median([r['dev_s'] for r in pairs[1:-1] if 'dev_s' in r] or [1.0])

        # 2. batch of the 5 calibration pairs against single scores (same device)
        try:
            got = iqa.score_batch(g, [p[1].image for p in cal], [p[2].image for p in cal] if fr else None)
            rel = [rel_err(b, single.get(p[0])) for b, p in zip(got, cal)]
            res['batch_equal'] = {'max_rel': max((x for x in rel if x is not None), default=None),
                                  'bitwise': all(b == single.get(p[0]) for b, p in zip(got, cal))}
        except IqaError as e:
            res['batch_equal'] = {'error': str(e)}

        # 2b. a prepared reference (FR): the first calibration pair's distorted image alone and three times in a
        #     batch, and the 1080p pair, against the same pairs' scores on the device
        if fr and iqa.has_references:
            try:
                rows = []
                for p in (cal[0], hd):
                    if p[0] in single:
                        got = iqa.prepared_scores(g, p[2].image, [p[1].image] * (3 if p is cal[0] else 1))
                        rows += [(g_, single[p[0]]) for g_ in got]
                res['prepared_equal'] = {'scores': len(rows), 'bitwise': all(a == b for a, b in rows),
                                         'max_rel': max((rel_err(a, b) for a, b in rows), default=None)}
            except IqaError as e:
                res['prepared_equal'] = {'error': str(e)}

        # 3. 8 threads through the one handle, each scoring the calibration pairs in turn (as many scores per
        #    thread as fit in a quarter of the metric's time, at least one, at most 3 rounds of the 5 pairs)
        per_thread = int(min(3 * len(cal), min(10.0, allowance / 4) / max(t_cal * THREADS, 1e-6)))
        if per_thread < 1 and t_cal * THREADS < max(2.0, end - now()) / 2:
            per_thread = 1
        if any(p[0] not in single for p in cal):
            res['threads'] = {'skipped': 'calibration scores missing'}
        elif per_thread < 1:
            res['threads'] = {'skipped': f'one score takes {t_cal:.3g} s'}
        else:
            res['threads'] = threads_check(iqa, g, cal, fr, single, per_thread)

        # 4. reduced precision on the device
        prec = {}
        for p in (FP16, BF16):
            pname = PRECISION_NAMES[p]
            try:
                h = create(dut, p)
                runs = iqa.precision(h)
                if runs != pname:
                    prec[pname] = {'runs': runs}
                    continue
                rows = []
                for q in [q for q in cal + [hd] if q[0] in single]:
                    s = iqa.score(h, q[1].image, ref(q))
                    rows.append({'pair': q[0], 'score': s, 'abs': abs(s - single[q[0]]),
                                 'rel': rel_err(s, single[q[0]])})
                prec[pname] = {'runs': runs, 'pairs': rows, 'max_abs': max(r['abs'] for r in rows),
                               'max_rel': max(r['rel'] for r in rows)}
                if now() < end and single.get('1920x1080') is not None:
                    prec[pname]['hd_s'] = timed(lambda: iqa.score(h, hd[1].image, ref(hd)), 2.0)
                iqa.free(h)
                handles.remove(h)
            except (IqaError, KeyError) as e:
                prec[pname] = {'error': str(e)}
        res['precision'] = prec

        # 5. timings: per image at 512x384 (I03) and 1920x1080, batch of 16 at 512x384
        cap = max(1.0, min(4.0, (end - now()) / 4))
        i03 = cal[0]
        res['time_512'] = timed(lambda: iqa.score(g, i03[1].image, ref(i03)), cap)
        if single.get('1920x1080') is not None:
            res['time_hd'] = timed(lambda: iqa.score(g, hd[1].image, ref(hd)), cap)
        ds = [cal[i % len(cal)][1].image for i in range(BATCH)]
        rs = [cal[i % len(cal)][2].image for i in range(BATCH)] if fr else None
        if res['time_512']['median'] * BATCH > max(cap, 2.0) * 2:
            res['batch16'] = {'skipped': f'{BATCH} x {res["time_512"]["median"]:.3g} s'}
        else:
            t = timed(lambda: iqa.score_batch(g, ds, rs), cap, min_runs=2, min_total=0.2)
            res['batch16'] = dict(t, images_per_s=BATCH / t['median'])
    finally:
        for h in handles:
            iqa.free(h)
        res['seconds'] = now() - t0


def threads_check(iqa, h, cal, fr, single, per_thread):
    barrier = threading.Barrier(THREADS + 1)
    results, errors = [], []
    lock = threading.Lock()

    def run(k):
        barrier.wait()
        try:
            for i in range(per_thread):
                p = cal[(i + k) % len(cal)]
                s = iqa.score(h, p[1].image, p[2].image if fr else None)
                with lock:
                    results.append((p[0], s))
        except IqaError as e:
            errors.append(str(e))

    ths = [threading.Thread(target=run, args=(k,)) for k in range(THREADS)]
    for th in ths:
        th.start()
    barrier.wait()
    t = now()
    for th in ths:
        th.join()
    wall = now() - t
    rel = [rel_err(s, single[name]) for name, s in results]
    return {'threads': THREADS, 'scores': len(results), 'errors': errors[:3],
            'bitwise_equal': sum(s == single[name] for name, s in results),
            'max_rel': max(rel, default=None), 'wall_s': wall, 'scores_per_s': len(results) / wall}


# ---------------------------------------------------------------------------------------------------------------
# worker: pyiqa (imports torch; its weights are laid out in TORCH_HOME first)
# ---------------------------------------------------------------------------------------------------------------

def url_name(url):
    return url.split('?')[0].rstrip('/').rsplit('/', 1)[-1]


def setup_pyiqa_weights(weights):
    """pyiqa's zoo files and torchvision's checkpoints from `weights` (check.py's float32 folder), under the names
    they are downloaded as (as scripts/pyiqa_env.py does); downloads raise."""
    import numpy as np
    import scipy.io
    import torch
    import torch.hub
    from torchvision import models as tvm
    import pyiqa.utils.download_util as dl
    from pyiqa.archs import dists_arch, lpips_arch, niqe_arch, brisque_arch

    def no_download(url, dst, *a, **k):
        raise RuntimeError(f'download attempted (weights not where expected): {url} -> {dst}')

    torch.hub.download_url_to_file = no_download
    dl.download_url_to_file = no_download
    zoo = Path(dl.DEFAULT_CACHE_DIR)
    ckpt = Path(torch.hub.get_dir()) / 'checkpoints'
    marker = zoo / '.iqa_done'
    used = {}
    if marker.exists():
        return json.loads(marker.read_text())
    zoo.mkdir(parents=True, exist_ok=True)
    ckpt.mkdir(parents=True, exist_ok=True)
    for v in ('0.0', '0.1'):
        for n in ('alex', 'vgg', 'squeeze'):
            dest = url_name(lpips_arch.default_model_urls[f'{v}_{n}'])
            shutil.copyfile(weights / 'lpips' / f'lpips_v{v}_{n}_lin.pth', zoo / dest)
            used[dest] = f'lpips/lpips_v{v}_{n}_lin.pth (byte-identical)'
    dest = url_name(dists_arch.default_model_urls['url'])
    shutil.copyfile(weights / 'dists' / 'dists_alpha_beta.pt', zoo / dest)
    used[dest] = 'dists/dists_alpha_beta.pt (byte-identical)'
    p = st_load(weights / 'niqe' / 'niqe_pris_params.safetensors')
    dest = url_name(niqe_arch.default_model_urls['url'])
    scipy.io.savemat(zoo / dest, {'mu_prisparam': p['mu_pris_param'], 'cov_prisparam': p['cov_pris_param']})
    used[dest] = 'niqe_pris_params.safetensors (same values)'
    p = st_load(weights / 'brisque' / 'brisque_live_svm.safetensors')
    dest = url_name(brisque_arch.default_model_urls['url'])
    torch.save((torch.from_numpy(p['sv_coef']), torch.from_numpy(p['sv'])), zoo / dest)
    used[dest] = 'brisque_live_svm.safetensors (same values)'
    p = st_load(weights / 'ilniqe' / 'ILNIQE_templateModel.safetensors')
    cell = np.empty((1, 4), dtype=object)
    cell[0, 0], cell[0, 1] = p['mu_pris_param'][None, :], p['cov_pris_param']
    cell[0, 2], cell[0, 3] = p['mean_of_sample_data'][:, None], p['principle_vectors']
    dest = url_name(niqe_arch.default_model_urls['ilniqe'])
    scipy.io.savemat(zoo / dest, {'templateModel': cell})
    used[dest] = 'ILNIQE_templateModel.safetensors (same values)'
    backbones = {
        'alexnet': (tvm.alexnet, tvm.AlexNet_Weights.IMAGENET1K_V1, 'alexnet_features_torchvision'),
        'vgg16': (tvm.vgg16, tvm.VGG16_Weights.IMAGENET1K_V1, 'vgg16_features_torchvision'),
        'squeezenet1_1': (tvm.squeezenet1_1, tvm.SqueezeNet1_1_Weights.IMAGENET1K_V1,
                          'squeezenet1_1_torchvision_fp16rounded'),
    }
    for key, (ctor, w, fname) in backbones.items():
        sd = st_load(weights / 'backbones' / f'{fname}.safetensors')
        sd = {k: torch.from_numpy(v.copy()) for k, v in sd.items()}
        with torch.device('meta'):
            ref = ctor(num_classes=len(w.meta['categories'])).state_dict()
        out = {}
        for k, t in ref.items():
            if k in sd:
                out[k] = sd[k]
            elif k.startswith('classifier.'):
                out[k] = torch.zeros((), dtype=t.dtype).expand(t.shape)  # unused by LPIPS/DISTS
            else:
                raise RuntimeError(f'{fname}: no {k}')
        torch.save(out, ckpt / url_name(w.url))
        used[url_name(w.url)] = f'{fname} (fp16-rounded, as float32; zero classifier)'
    marker.write_text(json.dumps(used))
    return used


def install_zoo_for_pyiqa(zoo):
    """The zoo's random checkpoints where pyiqa's loaders look, as make_zoo_references.install_for_pyiqa puts
    them (pyiqa's cache folder and torch.hub's checkpoints folder), as links: the same files iqa reads."""
    import torch.hub
    import pyiqa.utils.download_util as dl
    files = sorted(p for p in zoo.iterdir() if p.is_file() and not p.name.startswith('.') and p.suffix != '.tmp')
    for d in (Path(dl.DEFAULT_CACHE_DIR), Path(torch.hub.get_dir()) / 'checkpoints'):
        d.mkdir(parents=True, exist_ok=True)
        for src in files:
            dest = d / src.name
            if dest.is_symlink() or dest.exists():
                dest.unlink()
            dest.symlink_to(src.resolve())
    return len(files)


def create_pyiqa(pyiqa, name, device):
    """pyiqa's metric for iqa's `name`; the zoo's inside no_pretrained() with their options (scripts/zoo_offline.py),
    so that nothing is downloaded and their own checkpoint (the random one) replaces every tensor."""
    if name in ZOO_KWARGS:
        with no_pretrained():
            return pyiqa.create_metric(name, device=device, **ZOO_KWARGS[name])
    pname, kwargs = PYIQA_ALIASES.get(name, (name, {}))
    return pyiqa.create_metric(pname, device=device, **kwargs)


def worker_pyiqa(spec):
    import numpy as np
    import torch
    from PIL import Image as PilImage
    t = now()
    import pyiqa
    info = {'import_s': now() - t, 'pyiqa': pyiqa.__version__, 'torch': torch.__version__,
            'torch_cuda': torch.version.cuda, 'cudnn': torch.backends.cudnn.version(),
            'cuda_available': torch.cuda.is_available()}
    if torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(0)
    info['weights'] = setup_pyiqa_weights(Path(spec['weights']))
    if spec.get('zoo'):
        info['zoo_files'] = install_zoo_for_pyiqa(Path(spec['zoo']))
    emit('LOAD', info)
    device = torch.device(spec['device'])

    def tensor(path):
        a = np.asarray(PilImage.open(path).convert('RGB'), dtype=np.float32) / 255.0
        return torch.from_numpy(a.copy()).permute(2, 0, 1).unsqueeze(0).to(device)

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize()

    cal = [(n, tensor(CAL / 'dist' / n), tensor(CAL / 'ref' / n)) for n in CAL_IMAGES]
    hd = ('1920x1080', tensor(spec['hd'][0]), tensor(spec['hd'][1]))
    bd = torch.cat([cal[i % len(cal)][1] for i in range(BATCH)])
    br = torch.cat([cal[i % len(cal)][2] for i in range(BATCH)])
    for name in spec['metrics']:
        left = spec['deadline'] - time.time()
        allowance = max(3.0, left / max(1, len(spec['metrics']) - spec['metrics'].index(name)))
        end = now() + allowance
        res = {'metric': name}
        t0 = now()
        try:
            t = now()
            m = create_pyiqa(pyiqa, name, device)
            res['create_s'] = now() - t
            fr = m.metric_mode == 'FR'

            def call(d, r):
                with torch.no_grad():
                    out = m(d, r) if fr else m(d)
                sync()
                return out

            scores = res['scores'] = {}
            t = now()
            scores['I03.bmp'] = float(call(cal[0][1], cal[0][2]).flatten()[0])
            res['first_s_512'] = now() - t
            cap = max(1.0, min(4.0, (end - now()) / 4))
            res['time_512'] = timed(lambda: call(cal[0][1], cal[0][2]), cap)
            # 1080p has ~10.5 times the pixels: skipped where that would take most of the metric's time
            if res['time_512']['median'] * 10.5 < max(end - now(), 4.0) / 2:
                t = now()
                scores['1920x1080'] = float(call(hd[1], hd[2]).flatten()[0])
                res['first_s_hd'] = now() - t
                res['time_hd'] = timed(lambda: call(hd[1], hd[2]), cap)
            else:
                res['time_hd'] = {'skipped': f'512x384 takes {res["time_512"]["median"]:.3g} s'}
            if res['time_512']['median'] * BATCH > max(cap, 2.0) * 2:
                res['batch16'] = {'skipped': f'{BATCH} x {res["time_512"]["median"]:.3g} s'}
            else:
                try:
                    out = call(bd, br)
                    if out.numel() != BATCH:
                        raise RuntimeError(f'{out.numel()} scores for a batch of {BATCH}')
                    t = timed(lambda: call(bd, br), cap, min_runs=2, min_total=0.2)
                    res['batch16'] = dict(t, images_per_s=BATCH / t['median'])
                except Exception as e:  # noqa: BLE001 - some pyiqa metrics take one image at a time
                    res['batch16'] = {'error': error_text(e)}
            m = call = None  # frees the model before the next metric
            if device.type == 'cuda':
                res['max_memory_gb'] = torch.cuda.max_memory_allocated() / 2**30
                torch.cuda.reset_peak_memory_stats()
                torch.cuda.empty_cache()
        except Exception as e:  # noqa: BLE001 - recorded; the next metric runs
            res['error'] = error_text(e)
            res['traceback'] = traceback.format_exc()[-1500:]
        res['seconds'] = now() - t0
        emit('RESULT', res)


# ---------------------------------------------------------------------------------------------------------------
# worker: probe (how libiqa finds libtorch / libtorch_cuda)
# ---------------------------------------------------------------------------------------------------------------

def worker_probe(spec):
    out = {}
    if spec.get('import_torch'):
        t = now()
        import torch
        out['import_torch_s'] = now() - t
        out['torch_cuda_available'] = torch.cuda.is_available()
    try:
        iqa = Iqa(spec['lib'])
    except OSError as e:
        out['load'] = str(e)
        emit('RESULT', out)
        return
    out['load'] = 'ok'
    try:
        h = iqa.create('psnr', DEVICE_AUTO)
        out['auto_device'] = iqa.device(h)
        iqa.free(h)
    except IqaError as e:
        out['auto_error'] = str(e)
    with open('/proc/self/maps') as f:
        maps = f.read()
    out['libtorch_cuda_mapped'] = 'libtorch_cuda.so' in maps
    paths = sorted({line.split()[-1] for line in maps.splitlines() if 'libtorch_cpu.so' in line})
    out['libtorch_cpu_from'] = paths
    emit('RESULT', out)


# ---------------------------------------------------------------------------------------------------------------
# orchestrator
# ---------------------------------------------------------------------------------------------------------------

class Run:
    def __init__(self, args):
        self.args = args
        self.t0 = time.time()
        self.deadline = self.t0 + args.budget
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(args.work)
        self.bundle = Path(args.bundle).resolve()
        self.zoo = self.work / 'zoo'
        self.stubs = self.work / 'stubs'
        self.zoo_thread, self.zoo_results, self.zoo_dropped = None, None, {}
        self.results = {'started': time.strftime('%Y-%m-%d %H:%M:%S %Z'), 'args': vars(args), 'sections': {}}
        self.stderr = open(self.out / 'workers.txt', 'w')

    def left(self):
        return self.deadline - time.time()

    def save(self):
        self.results['elapsed_s'] = time.time() - self.t0
        tmp = self.out / 'results.json.tmp'
        tmp.write_text(json.dumps(self.results, indent=1, default=str))
        tmp.replace(self.out / 'results.json')
        (self.out / 'results.md').write_text(markdown(self.results))

    def base_env(self):
        env = dict(os.environ)
        # LD_LIBRARY_PATH stays as the machine sets it: it may be how the driver's libcuda.so.1 is found
        for k in ('IQA_DEVICE', 'IQA_PRECISION', 'IQA_NUM_THREADS', 'IQA_PRESET', 'IQA_CUDA', 'IQA_CACHE_SIZE',
                  'CUDA_VISIBLE_DEVICES', 'PYTHONPATH'):
            env.pop(k, None)
        env.update(PYTHONUNBUFFERED='1', PYTHONDONTWRITEBYTECODE='1', IQA_OFFLINE='1',
                   IQA_WEIGHTS_DIR=str(self.work / 'weights'), IQA_CACHE_DIR=str(self.work / 'iqa_cache'))
        return env

    def iqa_env(self):
        env = self.base_env()
        env['LD_LIBRARY_PATH'] = ':'.join(x for x in (str(self.bundle / 'lib'), self.args.torch_lib,
                                                       os.environ.get('LD_LIBRARY_PATH')) if x)
        return env

    def pyiqa_env(self):
        env = self.base_env()
        # the stand-in facexlib (prepare) after the machine's packages: there only where facexlib is missing
        path = [str(self.work / 'site')] + [str(self.stubs)] * (self.stubs / 'facexlib').is_dir()
        env.update(PYTHONPATH=':'.join(path), TORCH_HOME=str(self.work / 'torch_home'),
                   XDG_CACHE_HOME=str(self.work / 'xdg'), HF_HOME=str(self.work / 'hf'), HF_HUB_OFFLINE='1',
                   MPLCONFIGDIR=str(self.work / 'mpl'))
        env.pop('TORCH_HUB', None)
        return env

    # -- set-up ---------------------------------------------------------------------------------------------

    def prepare(self):
        import numpy as np
        from PIL import Image as PilImage
        manifest = json.loads((self.bundle / 'MANIFEST.json').read_text())
        self.results['bundle'] = {k: manifest[k] for k in ('built', 'commit', 'torch', 'pyiqa_wheel', 'metrics')}
        self.work.mkdir(parents=True, exist_ok=True)
        w = self.work / 'weights'
        if w.exists():
            shutil.rmtree(w)
        shutil.copytree(self.bundle / 'weights', w)
        for f in sorted((w / 'backbones').glob('*_fp16.safetensors')):
            t = st_load(f)
            st_save({k: v.astype(np.float32) for k, v in t.items()},
                    f.with_name(f.name.replace('_fp16.safetensors', '.safetensors')))
            f.unlink()
        # make_zoo_references.py reads NIQE's LIVE model from IQA_WEIGHTS_DIR as .npz (niqe_matlab's model is moved
        # from it, pi's NIQE half is it); a bundle made before it carried the .npz: the same values, from the
        # .safetensors
        npz = w / 'niqe' / 'niqe_pris_params.npz'
        if not npz.exists():
            t = st_load(w / 'niqe' / 'niqe_pris_params.safetensors')
            np.savez(npz, mu_pris_param=t['mu_pris_param'].reshape(1, -1), cov_pris_param=t['cov_pris_param'],
                     gaussian_window=t['gaussian_window'])
        # the zoo's random checkpoints: kept outside weights/ (a rerun on the same machine makes only what is
        # missing, see make_zoo), seen by iqa as the subfolder weights/zoo
        self.zoo.mkdir(exist_ok=True)
        if (w / 'zoo').exists():
            shutil.rmtree(w / 'zoo')
        (w / 'zoo').symlink_to(self.zoo)
        # pyiqa's topiq_arch imports facexlib's FaceRestoreHelper when it is imported (for topiq_nr-face, which is
        # not checked): a stand-in package where facexlib is not installed
        if self.stubs.exists():
            shutil.rmtree(self.stubs)
        if importlib.util.find_spec('facexlib') is None:
            helper = self.stubs / 'facexlib' / 'utils' / 'face_restoration_helper.py'
            helper.parent.mkdir(parents=True)
            (self.stubs / 'facexlib' / '__init__.py').write_text('# a stand-in written by scripts/gpu/check.py\n')
            (helper.parent / '__init__.py').write_text('')
            helper.write_text('class FaceRestoreHelper:\n    def __init__(self, *args, **kwargs):\n'
                              "        raise RuntimeError('facexlib is not installed (check.py stand-in)')\n")
            self.results['facexlib'] = 'stand-in (not installed)'
        site = self.work / 'site'
        if site.exists():
            shutil.rmtree(site)
        site.mkdir()
        # pyiqa, and OpenAI's clip package with ftfy and wcwidth (bundle.py's clip-deps.tar.gz)
        for tarball in sorted((self.bundle / 'pyiqa').glob('*.tar.gz')):
            with tarfile.open(tarball) as tar:
                tar.extractall(site, filter='data')
        d = PilImage.open(CAL / 'dist' / 'I03.bmp').convert('RGB')
        r = PilImage.open(CAL / 'ref' / 'I03.bmp').convert('RGB')
        self.hd = [str(self.work / 'dist_1920x1080.png'), str(self.work / 'ref_1920x1080.png')]
        d.resize(HD, PilImage.BICUBIC).save(self.hd[0])
        r.resize(HD, PilImage.BICUBIC).save(self.hd[1])

    def machine(self):
        m = {'python': platform.python_version(), 'cpus': os.cpu_count(), 'kernel': platform.release()}
        try:
            with open('/proc/cpuinfo') as f:
                m['cpu'] = next((l.split(':', 1)[1].strip() for l in f if l.startswith('model name')), '?')
        except OSError:
            pass
        try:
            q = subprocess.run(['nvidia-smi', '--query-gpu=name,driver_version,memory.total,clocks.max.sm',
                                '--format=csv,noheader'], capture_output=True, text=True, timeout=30)
            m['nvidia_smi'] = (q.stdout or q.stderr).strip()
        except (OSError, subprocess.TimeoutExpired) as e:
            m['nvidia_smi'] = error_text(e)
        m['torch_lib'] = self.args.torch_lib
        m['LD_LIBRARY_PATH'] = os.environ.get('LD_LIBRARY_PATH')
        self.results['machine'] = m

    # -- workers ---------------------------------------------------------------------------------------------

    def spawn(self, kind, spec, env):
        worker = kind.split('_')[0]  # iqa_tf32_off runs the iqa worker
        cmd = [sys.executable, str(Path(__file__).resolve()), '--worker', worker, json.dumps(spec)]
        self.stderr.write(f'\n===== {kind} {" ".join(spec.get("metrics", [])[:3])}... =====\n')
        self.stderr.flush()
        p = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
                             start_new_session=True)
        lines = queue.Queue()

        def pump():
            for line in p.stdout:
                lines.put(line.rstrip('\n'))
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        return p, lines

    def kill(self, p):
        try:
            os.killpg(p.pid, 9)
        except OSError:
            pass
        p.wait()

    def run_metrics(self, kind, metrics, deadline, env, extra):
        """Runs a worker over `metrics`; a metric whose worker dies or stalls is recorded, the rest go on."""
        results, load, todo = {}, None, list(metrics)
        while todo:
            if time.time() > deadline - 2:
                for m in todo:
                    results[m] = {'metric': m, 'error': 'not run: time budget spent'}
                break
            spec = dict(extra, metrics=todo, deadline=deadline, device=self.args.device, hd=self.hd)
            p, lines = self.spawn(kind, spec, env)
            current, last = todo[0], time.time()
            while True:
                timeout = min(self.args.stall - (time.time() - last), deadline + 5 - time.time())
                try:
                    line = lines.get(timeout=max(0.1, timeout))
                except queue.Empty:
                    why = 'stalled' if time.time() - last >= self.args.stall else 'time budget spent'
                    self.kill(p)
                    results[current] = {'metric': current, 'error': f'killed: {why} after {time.time() - last:.0f} s'}
                    say(f'{kind} {current}: killed ({why})')
                    todo = todo[todo.index(current) + 1:]
                    break
                if line is None:
                    rc = p.wait()
                    if load is None:
                        say(f'{kind} worker exited with {rc} before loading (see workers.txt); section abandoned')
                        for m in todo:
                            results[m] = {'metric': m, 'error': f'worker exited with {rc} before loading'}
                        todo = []
                        break
                    if current in todo:
                        results[current] = {'metric': current, 'error': f'worker exited with {rc} (see workers.txt)'}
                        say(f'{kind} {current}: worker exited with {rc}')
                        todo = todo[todo.index(current) + 1:]
                    break
                if line.startswith('LOAD '):
                    load = load or json.loads(line[5:])
                    say(f'{kind} worker: {line[5:][:300]}')
                    last = time.time()
                elif line.startswith('RESULT '):
                    r = json.loads(line[7:])
                    results[r['metric']] = r
                    say(f'{kind} {r["metric"]}: {summary_line(kind, r)}')
                    todo = todo[todo.index(r['metric']) + 1:]
                    current = todo[0] if todo else None
                    last = time.time()
                    self.results['sections'].setdefault(kind, {})['metrics'] = results
                    self.save()
                    # a sticky CUDA error (illegal access, device-side assert) poisons the process's context:
                    # the next metrics get a fresh worker
                    if todo and any(k in line for k in STICKY_CUDA_ERRORS):
                        say(f'{kind} {r["metric"]}: CUDA error, restarting the worker')
                        self.kill(p)
                        break
                else:
                    self.stderr.write(line + '\n')
        return load, results

    def probe(self, label, env, import_torch=False):
        spec = {'lib': str(self.bundle / 'lib' / 'libiqa.so'), 'import_torch': import_torch}
        cmd = [sys.executable, str(Path(__file__).resolve()), '--worker', 'probe', json.dumps(spec)]
        try:
            q = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=45)
            res = next((json.loads(l[7:]) for l in q.stdout.splitlines() if l.startswith('RESULT ')), None)
            return res or {'error': f'exit {q.returncode}: {q.stderr[-500:]}'}
        except subprocess.TimeoutExpired:
            return {"error": "timed out after 45 s"}

    # -- sections --------------------------------------------------------------------------------------------

    def section_probes(self):
        base = self.base_env()
        with_torch = dict(self.pyiqa_env())
        probes = {
            'plain (LD_LIBRARY_PATH as the machine sets it)': self.probe('plain', base),
            'plain, import torch first': self.probe('torch', with_torch, import_torch=True),
            'LD_LIBRARY_PATH=<bundle lib>:<torch/lib>:...': self.probe('ld', self.iqa_env()),
            'LD_LIBRARY_PATH=<bundle lib>:<torch/lib>:..., IQA_CUDA=0': self.probe('off', dict(self.iqa_env(),
                                                                                                  IQA_CUDA='0')),
        }
        self.results['sections']['probes'] = probes
        for k, v in probes.items():
            say(f'probe [{k}]: {json.dumps(v)[:400]}')

    def section_contract(self):
        exe = self.bundle / 'bin' / 'contract'
        text, res = [], {}
        for label, extra in (('IQA_DEVICE=cuda', {'IQA_DEVICE': 'cuda'}), ('IQA_DEVICE unset (AUTO)', {})):
            if self.args.device == 'cpu' and extra:
                extra = {'IQA_DEVICE': 'cpu'}
                label = 'IQA_DEVICE=cpu'
            env = dict(self.iqa_env(), **extra)
            t = now()
            try:
                q = subprocess.run([str(exe), str(CAL)], env=env, cwd=ROOT, capture_output=True, text=True,
                                   timeout=max(30, min(150, self.left() / 3)))
                out, rc = q.stdout + ('\n--- stderr ---\n' + q.stderr if q.stderr.strip() else ''), q.returncode
            except subprocess.TimeoutExpired as e:
                out, rc = e.stdout or '', 'timeout'
                out = out.decode(errors='replace') if isinstance(out, bytes) else out
            lines = out.splitlines()
            last = next((l for l in reversed(lines) if ' passed, ' in l), None)
            res[label] = {'rc': rc, 'summary': last, 'seconds': now() - t,
                          'failed': [l for l in lines if l.startswith('FAIL')][:40]}
            text.append(f'===== contract {label}: rc {rc}, {last}\n{out}')
            say(f'contract [{label}]: rc {rc}, {last}')
        (self.out / 'contract.txt').write_text('\n'.join(text))
        self.results['sections']['contract'] = res

    def zoo_plan(self, metrics):
        """The metrics to check and the zoo families they need: without --metrics, libiqa's list less the zoo
        metrics of families not in --zoo and (unless --zoo-variants) the variants of ZOO_VARIANTS."""
        families = zoo_families()
        metrics = [m for m in metrics if m not in CAPTIONED]
        if not self.args.metrics:
            chosen = {'all': set(families), 'none': set()}.get(self.args.zoo, set(self.args.zoo.split(',')))
            metrics = [m for m in metrics if m not in ZOO_KWARGS or (
                zoo_family(m, families) in chosen and (self.args.zoo_variants or m not in ZOO_VARIANTS))]
        need = {zoo_family(m, families) for m in metrics if m in ZOO_KWARGS}
        return metrics, [f for f in families if f in need]

    def zoo_start(self, families):
        """Section zoo, in a thread while the probes and the contract test run: see make_zoo."""
        if not families:
            return
        deadline = time.time() + min(self.args.zoo_time, max(10.0, self.left() / 2))

        def body():
            try:
                self.zoo_results = self.make_zoo(families, deadline)
            except Exception as e:  # noqa: BLE001 - recorded; the zoo metrics are then left out
                self.zoo_results = {'error': error_text(e), 'traceback': traceback.format_exc()[-2000:],
                                    'families': {}}

        self.zoo_thread = threading.Thread(target=body, daemon=True)
        self.zoo_thread.start()

    def make_zoo(self, families, deadline):
        """The random checkpoints of `families` (scripts/make_zoo_references.py --checkpoints <work>/zoo --only F),
        one process per family (its networks are built with one thread), --zoo-jobs at a time, the slowest first;
        killed at `deadline`. A family made is stamped with the script's sha256 (<work>/zoo/.made/F), so that a
        rerun on the same machine makes only what is missing. Runs in a thread: touches nothing of self.results."""
        jobs = self.args.zoo_jobs or max(1, (os.cpu_count() or 2) - 2)
        res = {'dir': str(self.zoo), 'jobs': jobs, 'families': {}}
        stamp = hashlib.sha256(ZOO_SCRIPT.read_bytes()).hexdigest()
        made = self.zoo / '.made'
        made.mkdir(parents=True, exist_ok=True)
        logs = self.work / 'zoo_logs'
        logs.mkdir(exist_ok=True)
        todo = []
        for f in families:
            if (made / f).is_file() and (made / f).read_text() == stamp:
                res['families'][f] = {'rc': 0, 'reused': True}
            else:
                (made / f).unlink(missing_ok=True)
                todo.append(f)
        todo.sort(key=lambda f: -ZOO_COST.get(f, 30))
        # IQA_WEIGHTS_DIR (base_env: <work>/weights) is where make_zoo_references.py (pyiqa_env.SHARED) finds NIQE
        env = dict(self.pyiqa_env(), OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
        running, t_start = {}, time.time()
        while todo or running:
            while todo and len(running) < jobs and time.time() < deadline:
                f = todo.pop(0)
                with open(logs / f'{f}.txt', 'w') as log:
                    p = subprocess.Popen([sys.executable, str(ZOO_SCRIPT), '--checkpoints', str(self.zoo),
                                          '--only', f], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
                running[f] = (p, time.time())
            if not running:
                break
            time.sleep(0.1)
            for f, (p, t0) in list(running.items()):
                rc = p.poll()
                if rc is None and time.time() > deadline:
                    self.kill(p)
                    rc = 'killed (--zoo-time spent)'
                if rc is None:
                    continue
                del running[f]
                log = (logs / f'{f}.txt').read_text(errors='replace')
                r = res['families'][f] = {'rc': rc, 's': time.time() - t0}
                own = [line for line in log.splitlines() if line.startswith(f'{f}: ') and line.endswith(' s')]
                if own:
                    r['make_s'] = float(own[-1].split()[-2])  # the script's own timing, without its imports
                if rc == 0:
                    (made / f).write_text(stamp)
                else:
                    r['log'] = log[-1500:]
        for f in todo:
            res['families'][f] = {'rc': 'not started (--zoo-time spent)'}
        res['seconds'] = time.time() - t_start
        files = [p for p in self.zoo.iterdir() if p.is_file()]
        res['files'], res['size_gb'] = len(files), sum(p.stat().st_size for p in files) / 1e9
        return res

    def zoo_finish(self, metrics):
        """Waits for section zoo; the metrics whose checkpoints were not made are taken off the list and recorded
        as errors of both sections."""
        if self.zoo_thread is None:
            return metrics
        try:
            return self.zoo_collect(metrics)
        except Exception as e:  # noqa: BLE001 - the run goes on with the metrics as they are
            say(f'section zoo failed: {error_text(e)}')
            self.results.setdefault('section_errors', {})['zoo'] = traceback.format_exc()[-2000:]
            return metrics

    def zoo_collect(self, metrics):
        self.zoo_thread.join()
        res = self.results['sections']['zoo'] = self.zoo_results
        for f, r in res['families'].items():
            log = self.work / 'zoo_logs' / f'{f}.txt'
            if log.exists() and not r.get('reused'):
                self.stderr.write(f'\n===== zoo {f}: rc {res["families"][f]["rc"]} =====\n{log.read_text()}')
        self.stderr.flush()
        families = zoo_families()
        ok = {f for f, r in res['families'].items() if r.get('rc') == 0}
        failed = [m for m in metrics if m in ZOO_KWARGS and zoo_family(m, families) not in ok]
        for m in failed:
            f = zoo_family(m, families)
            why = f'not run: the zoo checkpoints of family {f} were not made ({res["families"].get(f, res)})'
            self.zoo_dropped[m] = {'metric': m, 'error': why[:300]}
        say(f'zoo: {len(ok)}/{len(res["families"])} families in {res.get("seconds", 0):.0f} s with '
            f'{res.get("jobs")} jobs ({res.get("files")} files, {res.get("size_gb", 0):.2f} GB)'
            + (f'; not made: {sorted(set(res["families"]) - ok)}' if len(ok) < len(res['families']) else ''))
        return [m for m in metrics if m not in failed]

    def section_iqa(self, metrics, deadline):
        spec = {'lib': str(self.bundle / 'lib' / 'libiqa.so')}
        load, results = self.run_metrics('iqa', metrics, deadline, self.iqa_env(), spec)
        results.update(self.zoo_dropped)
        self.results['sections']['iqa'] = {'load': load, 'metrics': results}
        if self.args.device == 'cuda' and (load or {}).get('cuda_create') != 'ok':
            # libiqa did not get CUDA by itself: the same again with Python's torch loaded first, so that the
            # rest of the run still measures CUDA (the probes and this section's load line say what failed)
            say(f'iqa: no CUDA through LD_LIBRARY_PATH ({(load or {}).get("cuda_create")}); again with torch '
                'imported first')
            self.results['sections']['iqa_without_preload'] = self.results['sections']['iqa']
            load, results = self.run_metrics('iqa', metrics, deadline, dict(self.iqa_env(), PYTHONPATH=''),
                                             dict(spec, preload_torch=True))
            results.update(self.zoo_dropped)
            self.results['sections']['iqa'] = {'load': load, 'metrics': results, 'preloaded_torch': True}

    def section_pyiqa(self, metrics, deadline):
        load, results = self.run_metrics('pyiqa', metrics, deadline, self.pyiqa_env(),
                                         {'weights': str(self.work / 'weights'), 'zoo': str(self.zoo)})
        results.update(self.zoo_dropped)
        self.results['sections']['pyiqa'] = {'load': load, 'metrics': results}

    def section_tf32(self):
        """The deep metrics that missed their tolerance, again with TF32 off (see worker_iqa)."""
        im = self.results['sections'].get('iqa', {}).get('metrics', {})
        metrics = [n for n, r in im.items() if (n.startswith(('lpips', 'dists')) or n in ZOO_KWARGS)
                   and n not in ZOO_CLASSICAL and 'equal' in r and not r['equal']['pass']]
        if not metrics or self.args.device != 'cuda':
            return
        env = dict(self.iqa_env(), PYTHONPATH='')
        _, results = self.run_metrics('iqa_tf32_off', metrics, self.deadline - 20, env,
                                      {'lib': str(self.bundle / 'lib' / 'libiqa.so'), 'tf32_off': True,
                                       'only_equal': True})
        self.results['sections']['iqa_tf32_off'] = {'metrics': results}

    def section_coldstart(self, metrics):
        exe = self.bundle / 'bin' / 'coldstart'
        res = {}
        for m in metrics:
            runs = []
            for _ in range(2):
                if self.left() < 10:
                    break
                args = [str(exe), str(self.bundle / 'lib' / 'libiqa.so'), m, str(CAL / 'dist' / 'I03.bmp'),
                        str(CAL / 'ref' / 'I03.bmp')]
                t = now()
                try:
                    q = subprocess.run(args, env=self.iqa_env(), capture_output=True, text=True,
                                       timeout=max(5, self.left() - 5))
                    line = next((l for l in q.stdout.splitlines() if l.startswith('score')), None)
                    runs.append({'s': now() - t, 'line': line, 'rc': q.returncode, 'stderr': q.stderr[-300:]})
                except subprocess.TimeoutExpired:
                    runs.append({'error': 'timeout'})
            res[m] = runs
            say(f'coldstart {m}: {[round(r.get("s", -1), 3) for r in runs]}')
        self.results['sections']['coldstart'] = res

    def guard(self, name, fn, *args):
        """Runs one section; an exception is recorded and the run goes on with the next."""
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - a broken section must not cost the others
            say(f'section {name} failed: {error_text(e)}')
            self.results.setdefault('section_errors', {})[name] = traceback.format_exc()[-2000:]
        self.save()

    def metric_names(self):
        """--metrics, else what this libiqa lists, else the list the build recorded (libiqa does not load)."""
        if self.args.metrics:
            return self.args.metrics.split(',')
        code = ('import sys; sys.path.insert(0, sys.argv[1]); import check; '
                'print(",".join(check.Iqa(sys.argv[2]).names()))')
        try:
            q = subprocess.run([sys.executable, '-c', code, str(Path(__file__).resolve().parent),
                                str(self.bundle / 'lib' / 'libiqa.so')], env=self.iqa_env(), capture_output=True,
                               text=True, timeout=60)
            names, why = [m for m in q.stdout.strip().split(',') if m], q.stderr[-1000:]
        except subprocess.TimeoutExpired:
            names, why = [], 'timed out'
        if not names:
            say(f'cannot list metrics here ({why[-300:]}); using the build\'s list')
            self.results['list_error'] = why
            names = self.results.get('bundle', {}).get('metrics') or []
        return names

    def main(self):
        say(f'gpu_check: budget {self.args.budget} s, device under test {self.args.device}, bundle {self.bundle}')
        self.machine()
        self.prepare()
        self.save()
        say(f'machine: {json.dumps(self.results["machine"])}')
        metrics, families = self.zoo_plan(self.metric_names())
        self.results['metrics'] = metrics
        self.guard('zoo', self.zoo_start, families)
        self.guard('probes', self.section_probes)
        self.guard('contract', self.section_contract)
        metrics = self.zoo_finish(metrics)
        self.save()
        rest = max(30.0, self.left() - 15)
        self.guard('iqa', self.section_iqa, metrics, time.time() + rest * self.args.iqa_share)
        tf32 = 40 * (self.args.tf32_diagnostic and self.args.device == 'cuda')
        self.guard('pyiqa', self.section_pyiqa, metrics, self.deadline - 15 - tf32)
        if self.args.tf32_diagnostic and self.left() > 35:
            self.guard('tf32', self.section_tf32)
        if self.left() > 20:
            self.guard('coldstart', self.section_coldstart, ['psnr', 'lpips', 'dists'])
        say(f'done in {time.time() - self.t0:.0f} s; results in {self.out}')
        return 0


def summary_line(kind, r):
    if 'error' in r and len(r) <= 3:
        return 'ERROR ' + r['error'][:300]
    bits = []
    if 'error' in r:
        bits.append('ERROR ' + r['error'][:200])
    e = r.get('equal')
    if e:
        bits.append(f'cuda-vs-cpu max rel {fmt_g(e["max_rel_cal"])} cal, {fmt_g(e["max_rel_hd"])} 1080p '
                    f'(tol {e["tol"]:g}: {"ok" if e["pass"] else "FAIL"})')
    th = r.get('threads')
    if th and 'bitwise_equal' in th:
        bits.append(f'threads {th["bitwise_equal"]}/{th["scores"]} bitwise, max rel {fmt_g(th["max_rel"])}')
    for k in ('time_512', 'time_hd'):
        if k in r:
            bits.append(f'{k} {fmt_s(r[k].get("median"))}')
    if isinstance(r.get('batch16'), dict) and 'images_per_s' in r['batch16']:
        bits.append(f'batch16 {r["batch16"]["images_per_s"]:.1f}/s')
    bits.append(f'{r.get("seconds", 0):.1f} s')
    return '; '.join(bits)


# ---------------------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------------------

def fmt_s(s):
    if s is None:
        return '-'
    if s < 1e-3:
        return f'{s * 1e6:.3g} µs'
    if s < 1:
        return f'{s * 1e3:.3g} ms'
    return f'{s:.3g} s'


def fmt_g(x):
    return '-' if x is None else f'{x:.2e}' if x else '0'


def cell_time(r, key):
    c = (r or {}).get(key)
    if not isinstance(c, dict):
        return '-', None
    if 'median' in c:
        return fmt_s(c['median']) + ('¹' if c.get('runs') == 1 else ''), c['median']
    return ('skipped' if 'skipped' in c else 'error'), None


def ratio(a, b):
    return f'{a / b:.3g}×' if a and b else '-'


def markdown(res):
    s = res['sections']
    m = res.get('machine', {})
    b = res.get('bundle', {})
    py = s.get('pyiqa', {}).get('load') or {}
    iq = s.get('iqa', {}).get('load') or {}
    L = ['# iqa on CUDA (scripts/gpu_check.sh)', '',
         f'- Machine: {m.get("nvidia_smi", "?")}; {m.get("cpu", "?")}, {m.get("cpus")} CPUs; '
         f'Python {m.get("python")}; torch {py.get("torch", "?")} (CUDA {py.get("torch_cuda", "?")}, '
         f'cuDNN {py.get("cudnn", "?")}); pyiqa {py.get("pyiqa", "?")}',
         f'- iqa {iq.get("version", "?")} at {b.get("commit", "?")}, built against torch {b.get("torch", "?")} '
         f'({b.get("built", "?")}); device under test: {res["args"].get("device")}',
         f'- Run started {res.get("started")}, {res.get("elapsed_s", 0):.0f} s',
         '- Weights: the shared backbones rounded to float16 and widened back to float32 (bundle.py), loaded by '
         'both iqa and pyiqa; other weight files as shared. Deep-metric scores therefore differ from the shared '
         "weights' by ~1e-4; comparisons and timings are unaffected.", '']
    L += ['## Loading', '', f'The machine\'s LD_LIBRARY_PATH: `{m.get("LD_LIBRARY_PATH")}`; its torch/lib: '
          f'`{m.get("torch_lib")}`; libiqa\'s RUNPATH: the build machine\'s torch venv.', '',
          '| how | libiqa loads | AUTO → | libtorch_cuda mapped | libtorch_cpu from |', '|---|---|---|---|---|']
    for k, v in s.get('probes', {}).items():
        L.append(f'| {k} | {v.get("load", v.get("error", "?"))[:160]} | '
                 f'{v.get("auto_device", v.get("auto_error", "-"))} | {v.get("libtorch_cuda_mapped", "-")} | '
                 f'{", ".join(v.get("libtorch_cpu_from", [])) or "-"} |')
    if iq:
        L.append('')
        auto = iq.get('auto_device', iq.get('auto_error'))
        L.append(f'iqa worker (LD_LIBRARY_PATH, no torch import): AUTO → {auto}, first AUTO create '
                 f'{fmt_s(iq.get("auto_create_s"))}, explicit CUDA create: {iq.get("cuda_create")}')
    L += ['', '## C contract test (tests/c/contract.c)', '']
    for k, v in s.get('contract', {}).items():
        L.append(f'- {k}: rc {v["rc"]}, {v["summary"]} ({v["seconds"]:.1f} s)')
        for f in v['failed'][:15]:
            L.append(f'  - `{f}`')
        if len(v['failed']) > 15:
            L.append(f'  - ... (contract.txt has all {len(v["failed"])})')
    z = s.get('zoo')
    if z:
        fams = z.get('families', {})
        ok = [f for f, r in fams.items() if r.get('rc') == 0]
        L += ['', '## Model zoo: random checkpoints (scripts/make_zoo_references.py)', '',
              f'{len(ok)} of {len(fams)} families ready in {z.get("seconds", 0):.0f} s, {z.get("jobs")} processes '
              f'at a time ({z.get("files")} files, {z.get("size_gb", 0):.2f} GB in `{z.get("dir")}`). iqa reads them '
              'as IQA_WEIGHTS_DIR/zoo, pyiqa from its cache and torch.hub checkpoints folders (links to the same '
              'files), so both score with the same random weights: the scores mean nothing but their agreement. '
              + (f'facexlib: {res["facexlib"]}.' if res.get('facexlib') else ''), '']
        if z.get('error'):
            L.append(f'ERROR: `{z["error"]}`')
        L += ['| family | result | seconds (the script\'s own, with imports) |', '|---|---|---|']
        for f, r in fams.items():
            verdict = 'reused' if r.get('reused') else 'made' if r.get('rc') == 0 else f'**{r.get("rc")}**'
            L.append(f'| {f} | {verdict} | {r.get("make_s", "-")}, {r.get("s", 0):.1f} |')
    im = s.get('iqa', {}).get('metrics', {})
    pm = s.get('pyiqa', {}).get('metrics', {})
    names = res.get('metrics', list(im))
    L += ['', '## CUDA against CPU (iqa)', '',
          'Relative difference |cuda − cpu| / |cpu| over the 5 calibration pairs and the 1920×1080 pair (I03 '
          'upscaled); tolerance: 1e-6 for the float64 metrics, 1e-4 for those with float32 stages. Batch: '
          'iqa_score_batch of the 5 pairs on CUDA against single scores. Threads: 8 Python threads on one CUDA '
          'handle, each scoring the calibration pairs, against the single-threaded scores. Prepared: a reference '
          'prepared on CUDA (iqa_reference_create) scoring the first pair alone and three times in a batch, and '
          'the 1080p pair, against those pairs\' CUDA scores.', '',
          '| metric | AUTO → | tol | max rel (cal) | max rel (1080p) | result | batch = single '
          '| 8 threads: bitwise equal, max rel | prepared = pair | errors |',
          '|---|---|---|---|---|---|---|---|---|---|']
    for n in names:
        r = im.get(n, {})
        e = r.get('equal', {})
        be = r.get('batch_equal', {})
        th = r.get('threads', {})
        pe = r.get('prepared_equal', {})
        errs = [r.get('error')] + [p.get('error') or p.get('skipped') for p in e.get('pairs', [])]
        errs += [be.get('error'), pe.get('error')]
        errs = '; '.join(x[:150] for x in errs if x)
        if 'scores' in th:
            thr = f'{th["bitwise_equal"]}/{th["scores"]}, {fmt_g(th["max_rel"])}'
            thr += f', errors {th["errors"]}' if th.get('errors') else ''
        else:
            thr = th.get('skipped', '-')
        bes = ('bitwise' if be.get('bitwise') else fmt_g(be.get('max_rel'))) if 'error' not in be and be else '-'
        pes = (('bitwise' if pe.get('bitwise') else fmt_g(pe.get('max_rel'))) + f' ({pe.get("scores")})'
               if 'error' not in pe and pe else '-')
        verdict = ('ok' if e.get('pass') else '**FAIL**') if e else '-'
        L.append(f'| {n} | {r.get("auto_device", "-")[:80]} | {e.get("tol", tolerance(n)):g} | '
                 f'{fmt_g(e.get("max_rel_cal"))} | '
                 f'{fmt_g(e.get("max_rel_hd"))} | {verdict} | {bes} | {thr} | {pes} | {errs or ""} |')
    tf = s.get('iqa_tf32_off', {}).get('metrics', {})
    if tf:
        L += ['', 'Deep metrics that missed the tolerance, again with TF32 off (torch.backends.cudnn.allow_tf32 = '
              'False in the same process, which shares libtorch with libiqa):', '',
              '| metric | max rel (cal) | max rel (1080p) | result |', '|---|---|---|---|']
        for n, r in tf.items():
            e = r.get('equal', {})
            verdict = ('ok' if e.get('pass') else '**FAIL**') if e else r.get('error', '-')[:200]
            L.append(f'| {n} | {fmt_g(e.get("max_rel_cal"))} | {fmt_g(e.get("max_rel_hd"))} | {verdict} |')
    L += ['', '## Reduced precision on CUDA (iqa)', '',
          'Metrics whose handle reports fp16/bf16 in iqa_metric_precision; largest |score − fp32 score| over the 6 '
          'pairs, and seconds per 1920×1080 image.', '',
          '| metric | fp16 max abs | fp16 max rel | bf16 max abs | bf16 max rel | 1080p fp32 | fp16 | bf16 |',
          '|---|---|---|---|---|---|---|---|']
    for n in names:
        p = im.get(n, {}).get('precision', {})
        if not any('max_abs' in v for v in p.values() if isinstance(v, dict)):
            continue
        f16, b16 = p.get('fp16', {}), p.get('bf16', {})
        L.append(f'| {n} | {fmt_g(f16.get("max_abs"))} | {fmt_g(f16.get("max_rel"))} | {fmt_g(b16.get("max_abs"))} | '
                 f'{fmt_g(b16.get("max_rel"))} | {cell_time(im[n], "time_hd")[0]} | {cell_time(f16, "hd_s")[0]} | '
                 f'{cell_time(b16, "hd_s")[0]} |')
    others = [n for n in names if n in im and not any('max_abs' in v for v in im[n].get('precision', {}).values()
                                                      if isinstance(v, dict))]
    L.append('')
    L.append('Run in fp32 whatever was asked: ' + ', '.join(others))
    L += ['', '## Speed on the GPU: iqa against pyiqa 0.1.16', '',
          'Seconds per image (median after a warm-up; ¹ one run) and images/s for a batch of 16 at 512×384 (the '
          'calibration pairs cycled). pyiqa: float32 tensors already on the GPU, torch.cuda.synchronize() after each '
          'call; iqa: RGB8 host buffers through ctypes (upload and conversion included). Ratio pyiqa/iqa for times, '
          'iqa/pyiqa for throughput (> 1: iqa faster). Score Δ: |iqa − pyiqa| / |pyiqa| on CUDA for I03 and '
          '1920×1080 (same weights). iqa CPU 1080p: the one CPU score of the comparison above, on all cores.', '',
          '| metric | 512×384 pyiqa | iqa | ratio | 1920×1080 pyiqa | iqa | ratio | batch 16 pyiqa | iqa | ratio '
          '| score Δ I03, 1080p | iqa CPU 1080p |',
          '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for n in names:
        a, q = pm.get(n, {}), im.get(n, {})
        cells = []
        for key in ('time_512', 'time_hd'):
            (ta, va), (tq, vq) = cell_time(a, key), cell_time(q, key)
            cells += [ta, tq, ratio(va, vq)]
        ba, bq = a.get('batch16', {}), q.get('batch16', {})
        ra, rq = ba.get('images_per_s'), bq.get('images_per_s')
        cells += [f'{ra:.3g}/s' if ra else ('error' if 'error' in ba else 'skipped' if 'skipped' in ba else '-'),
                  f'{rq:.3g}/s' if rq else ('error' if 'error' in bq else 'skipped' if 'skipped' in bq else '-'),
                  ratio(rq, ra)]
        sc = a.get('scores', {})
        dev = {p['pair']: p.get('dev') for p in q.get('equal', {}).get('pairs', [])}
        deltas = [rel_err(dev.get(k), sc.get(k)) for k in ('I03.bmp', '1920x1080')]
        cells.append(', '.join(fmt_g(d) for d in deltas))
        cells.append(fmt_s(q.get('equal', {}).get('pairs', [{}])[-1].get('cpu_s')))
        L.append(f'| {n} | ' + ' | '.join(cells) + ' |')
    errs = [(n, 'pyiqa', pm[n]['error']) for n in names if n in pm and 'error' in pm[n]]
    errs += [(n, 'pyiqa batch', pm[n]['batch16']['error']) for n in names
             if isinstance(pm.get(n, {}).get('batch16'), dict) and 'error' in pm[n]['batch16']]
    errs += [(n, 'iqa', im[n]['error']) for n in names if n in im and 'error' in im[n]]
    if errs:
        L += ['', '### Errors', '']
        L += [f'- {n} ({who}): `{e[:400]}`' for n, who, e in errs]
    if py.get('weights'):
        L += ['', '### pyiqa weight files', '']
        L += [f'- {k}: {v}' for k, v in py['weights'].items()]
        if py.get('zoo_files') is not None:
            L.append(f'- the model zoo: {py["zoo_files"]} random checkpoints, linked from {s["zoo"].get("dir")}')
    cs = s.get('coldstart')
    if cs:
        L += ['', '## Cold start with AUTO (spawn → first score of I03, benches/coldstart.c)', '']
        for k, runs in cs.items():
            L.append(f'- {k}: ' + ', '.join(fmt_s(r.get('s')) + ('' if r.get('rc') == 0 else f' (rc {r.get("rc")}'
                                                                   f' {r.get("stderr", "")[-100:]})') for r in runs))
    return '\n'.join(L) + '\n'


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == '--worker':
        kind, spec = sys.argv[2], json.loads(sys.argv[3])
        {'iqa': worker_iqa, 'pyiqa': worker_pyiqa, 'probe': worker_probe}[kind](spec)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--bundle', default=str(ROOT / '.gpu'))
    ap.add_argument('--out', required=True)
    ap.add_argument('--work', default='/tmp/iqa_gpu_check')
    ap.add_argument('--torch-lib', required=True, help="the torch/lib folder of this machine's python")
    ap.add_argument('--device', default='cuda', choices=['cuda', 'cpu'], help='device under test (cpu: try it here)')
    ap.add_argument('--metrics', default='',
                    help='comma-separated (default: every metric libiqa lists, of the zoo\'s those of --zoo)')
    ap.add_argument('--budget', type=float, default=420, help='seconds for the whole run')
    ap.add_argument('--iqa-share', type=float, default=0.55, help='share of the metric time for the iqa section')
    ap.add_argument('--stall', type=float, default=90, help='seconds without progress before a worker is killed')
    ap.add_argument('--tf32-diagnostic', type=int, default=1, choices=[0, 1],
                    help='rerun the deep metrics that miss their tolerance with TF32 off (40 s are kept for it)')
    ap.add_argument('--zoo', default=DEFAULT_ZOO,
                    help='without --metrics: the model-zoo families (FAMILIES of scripts/make_zoo_references.py) '
                         'whose random checkpoints are made and whose metrics are checked, comma-separated, or '
                         f'"all" or "none" (default {DEFAULT_ZOO}); with --metrics, the families those need')
    ap.add_argument('--zoo-variants', type=int, default=0, choices=[0, 1],
                    help='without --metrics: also the variants that only swap the weights of a checked network '
                         '(arniqa-*, topiq_nr-spaq, topiq_fr-pipal, nima-koniq, nima-spaq)')
    ap.add_argument('--zoo-jobs', type=int, default=0, help='processes making checkpoints (default: CPUs - 2)')
    ap.add_argument('--zoo-time', type=float, default=120,
                    help='seconds at most for making the checkpoints (and at most half the budget); the families '
                         'not made by then are left out')
    args = ap.parse_args()
    if args.zoo not in ('all', 'none') and not set(args.zoo.split(',')) <= set(zoo_families()):
        ap.error(f'--zoo: unknown families {sorted(set(args.zoo.split(",")) - set(zoo_families()))}; '
                 f'known: {",".join(zoo_families())}')
    return Run(args).main()


if __name__ == '__main__':
    sys.exit(main())
