#!/usr/bin/env python3
"""Side-by-side benchmark of pyiqa 0.1.16 and iqa (libiqa.so) on the same images, same venv torch, same threads.

    .venv/bin/python scripts/benchmark.py [--metrics a,b,...] [--sizes 512x384,1920x1080] [--threads N]
        [--quick] [--max-seconds S] [--json out.json] [--markdown BENCHMARKS.md] [--precision-check]
    make bench        # = .venv/bin/python scripts/benchmark.py --markdown BENCHMARKS.md

Per metric (default: every metric iqa lists that pyiqa 0.1.16 also has; `lpips-squeeze` is pyiqa's
create_metric('lpips', net='squeeze')) it prints pyiqa, iqa and the ratio pyiqa/iqa of
  - cold start: wall time from spawning a fresh process until its first score is printed:
      pyiqa: `python -c "import pyiqa; m = pyiqa.create_metric(name, device='cpu'); m(dist, ref)"`,
      iqa:   benches/coldstart.c (compiled here with cc): dlopen libiqa.so + iqa_metric_create + iqa_score_files;
    on the 512×384 PNG pair, median of 3 (1 with --quick);
  - steady-state seconds per image at each size, from decoded buffers (pyiqa: preloaded 1×3×H×W float32 tensors
    in [0,1], pyiqa's own imread2tensor of the same file, metric(dist, ref) which runs under no_grad; iqa:
    iqa_score on RGB8 buffers through ctypes) and from files (pyiqa: metric(path, path); iqa: iqa_score_files);
    median of the timed runs after one warm-up, repeated until at least 3 runs and 2 s (--quick: 1 run, 0.3 s); a
    metric whose first run takes ≥ 10 s (--quick: 2 s) is reported from that run alone (marked `²`); iqa is also
    timed on interleaved float32 buffers (IQA_FORMAT_RGB_F32), the closest input to pyiqa's float tensors;
  - batch of 8 at 512×384 (the 5 calibration pairs, cycled): pyiqa metric(8×3×H×W, 8×3×H×W) against
    iqa_score_batch of 8 images, in images per second;
  - peak RSS (VmHWM) of a fresh process that creates the metric and scores one pair of files at the largest size
    (the cold-start program / script, on the 1920×1080 PNGs; for a metric slower than --max-seconds/2 there, the
    steady-state process's own VmHWM instead of one more run).
iqa only:
  - RSS added by a second handle of the same metric (VmRSS after the 2nd iqa_metric_create − after the 1st
    handle's first score; also after a score with the 2nd handle), with the model cache counts;
  - throughput of 1, 2 and 4 Python threads sharing one handle at 512×384 (ctypes releases the GIL in the call);
  - with --precision-check: IqaOptions.precision = BF16 against FP32: speed ratio (fp32 time / bf16 time at
    512×384 from buffers) and the largest |score change| over the 5 calibration pairs.
Machine floor: memory bandwidth (torch copy with N threads, numpy copy on one) and float32 matmul/conv GFLOP/s
(torch, N threads); per metric, the FLOPs pyiqa's formulation spends (torch.utils.flop_counter, convolutions and
matrix products only) give floor = max(FLOPs / best GFLOP/s, float32 input bytes / bandwidth), and iqa's time is
stated as a multiple of it.

Every measurement runs in its own fresh subprocess (one per implementation, metric and size for the steady-state
numbers), so RSS and cold starts are isolated and a crash only costs its cell. Children get the same thread count:
torch.set_num_threads(N) + OMP/MKL_NUM_THREADS=N for pyiqa, IQA_NUM_THREADS=N (+ the same OMP/MKL) for iqa;
IQA_DEVICE=cpu. A child whose resident set passes --mem-limit-gb or that runs past --timeout is killed and its
cell says so. --max-seconds S (default 60; --quick 5) bounds the time spent per cell: once a single run of one
implementation exceeds S seconds at a size, its larger sizes are skipped and printed as "> S s" (its ratio as a
bound); a larger size whose run the pixel count predicts at more than 4·S is not started ("est. T"); a file run
is skipped past S, the float32 buffers and FLOP count past S/4 a run, the batch past S/2 for the 8 images, the
thread-sharing test past S/2 for its 7 images (printed "not run (slow)").

pyiqa gets its pretrained files (LPIPS/DISTS lin layers and torchvision backbones, NIQE/BRISQUE parameters, the
ILNIQE template) from the shared weight folder under the official names in a temporary TORCH_HOME, built once by
scripts/pyiqa_env.py's setup_weights() and metric_kwargs(); no downloads. iqa reads IQA_WEIGHTS_DIR (default ../shared/weights) with IQA_OFFLINE=1.
Benchmarks print numbers; nothing here asserts a timing.
"""
import argparse
import contextlib
import ctypes
import datetime
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from zoo_offline import PYIQA_KWARGS, no_pretrained

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / 'scripts'
CAL = ROOT / 'data' / 'calibration'
CAL_IMAGES = ['I03.bmp', 'I04.bmp', 'I06.bmp', 'I08.bmp', 'I19.bmp']
MAIN_IMAGE = 'I03.bmp'
BATCH = 8
CONC_THREADS = (1, 2, 4)
# iqa names whose pyiqa counterpart is spelled differently: name -> (pyiqa name, create_metric kwargs)
PYIQA_ALIASES = {'lpips-squeeze': ('lpips', {'net': 'squeeze'})}
DEFAULT_SIZES = '512x384,1920x1080'
LOAD_AT_START = None  # os.getloadavg() when the run began

IQA_FORMAT_RGB8 = 0
IQA_FORMAT_RGB_F32 = 6
IQA_MODE_FR = 0
IQA_DEVICE_CPU = 1
IQA_PRECISION_FP32, IQA_PRECISION_BF16 = 0, 2


# ---------------------------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------------------------

def parse_size(text):
    w, h = text.lower().split('x')
    return int(w), int(h)


def size_key(size):
    return f'{size[0]}x{size[1]}'


def status_kb(key, pid='self'):
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def meminfo_kb(key):
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def fmt_time(s):
    if s is None:
        return '-'
    if isinstance(s, str):
        return s
    if s < 0.9995e-3:
        return f'{sig3(s * 1e6)} µs'
    if s < 0.9995:
        return f'{sig3(s * 1e3)} ms'
    return f'{sig3(s)} s'


def sig3(x):
    """Three significant digits without an exponent: 0.0123, 1.23, 12.3, 123, 1234."""
    if x == 0 or not math.isfinite(x):
        return f'{x:g}'
    decimals = max(0, 2 - math.floor(math.log10(abs(x))))
    return f'{x:.{decimals}f}'


def fmt_mb(kb):
    if kb is None:
        return '-'
    if isinstance(kb, str):
        return kb
    mb = kb / 1024
    return f'{mb / 1024:.2f} GB' if mb >= 1024 else f'{mb:.0f} MB'


def fmt_rate(x):
    if x is None:
        return '-'
    if isinstance(x, str):
        return x
    return f'{sig3(x)}/s'


def fmt_ratio(r):
    if r is None:
        return '-'
    if isinstance(r, str):
        return r
    return f'{sig3(r)}×'


def median(xs):
    return statistics.median(xs) if xs else None


# A cell is either a number, or a dict {'skipped': S} (> S seconds), {'error': msg}, or None (not measured).

def cell_value(c):
    return c if isinstance(c, (int, float)) else None


def cell_text(c, fmt):
    if c is None:
        return '-'
    if isinstance(c, dict):
        if 'skipped' in c:
            return c.get('label') or f'> {c["skipped"]:g} s'
        if 'error' in c:
            return 'error'
        return '-'
    return fmt(c)


def ratio(p, i, higher_is_faster=False):
    """pyiqa/iqa for times and sizes (how many times iqa is faster/smaller); iqa/pyiqa for rates."""
    pv, iv = cell_value(p), cell_value(i)
    if pv is not None and iv is not None and pv > 0 and iv > 0:
        return iv / pv if higher_is_faster else pv / iv
    # pyiqa skipped (> S s) but iqa measured: the ratio is a lower bound
    if not higher_is_faster and isinstance(p, dict) and 'skipped' in p and 'estimate' not in p and iv:
        return f'> {sig3(p["skipped"] / iv)}×'
    return None


# ---------------------------------------------------------------------------------------------------------------
# running children
# ---------------------------------------------------------------------------------------------------------------

class Child:
    """Output of one child process: stdout lines with their arrival times, status, peak RSS seen by polling."""

    def __init__(self):
        self.lines = []  # (seconds since spawn, text)
        self.rc = None
        self.stderr = ''
        self.killed = None
        self.wall = None
        self.peak_rss_kb = 0

    def first(self, prefix):
        for t, line in self.lines:
            if line.startswith(prefix):
                return t, line[len(prefix):].strip()
        return None, None

    def values(self):
        out = {}
        for _, line in self.lines:
            parts = line.split(None, 1)
            if len(parts) == 2:
                out[parts[0]] = parts[1]
        return out

    def result(self):
        for _, line in reversed(self.lines):
            if line.startswith('RESULT '):
                return json.loads(line[7:])
        return None

    def error(self):
        if self.killed:
            return self.killed
        if self.rc != 0:
            tail = [l for l in self.stderr.strip().splitlines() if l.strip()][-3:]
            return f'exit {self.rc}: ' + ' | '.join(tail)[-400:]
        return None


def run_child(cmd, env, timeout, mem_limit_kb, cwd=ROOT):
    child = Child()
    with tempfile.TemporaryFile(mode='w+') as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=err, text=True,
                             start_new_session=True)
        done = threading.Event()

        def watchdog():
            while not done.wait(0.05):
                rss = status_kb('VmRSS', p.pid)
                if rss:
                    child.peak_rss_kb = max(child.peak_rss_kb, rss)
                    if rss > mem_limit_kb:
                        child.killed = f'killed: RSS {rss / 1048576:.1f} GB > limit {mem_limit_kb / 1048576:.1f} GB'
                        os.killpg(p.pid, signal.SIGKILL)
                        return
                if time.perf_counter() - t0 > timeout:
                    child.killed = f'killed: timeout {timeout:g} s'
                    os.killpg(p.pid, signal.SIGKILL)
                    return

        w = threading.Thread(target=watchdog, daemon=True)
        w.start()
        for line in p.stdout:
            child.lines.append((time.perf_counter() - t0, line.rstrip('\n')))
        child.rc = p.wait()
        child.wall = time.perf_counter() - t0
        done.set()
        w.join()
        err.seek(0)
        child.stderr = err.read()
    return child


class Env:
    """Everything the children share: paths, environment, limits."""

    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.threads = args.threads
        self.lib = str(Path(args.library).resolve())
        self.python = sys.executable
        self.mem_limit_kb = int(args.mem_limit_gb * 1048576)
        base = dict(os.environ)
        for k in ('IQA_PRECISION', 'IQA_DEVICE', 'IQA_NUM_THREADS', 'IQA_CACHE_SIZE', 'CUDA_VISIBLE_DEVICES'):
            base.pop(k, None)
        n = str(self.threads)
        base.update(OMP_NUM_THREADS=n, MKL_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n, PYTHONDONTWRITEBYTECODE='1',
                    CUDA_VISIBLE_DEVICES='')
        self.pyiqa_env = dict(base, TORCH_HOME=str(tmp / 'torch'), XDG_CACHE_HOME=str(tmp / 'xdg_cache'),
                              HF_HOME=str(tmp / 'hf'), HF_HUB_OFFLINE='1', MPLCONFIGDIR=str(tmp / 'mpl'))
        self.pyiqa_env.pop('TORCH_HUB', None)
        # iqa's weights: the zoo's random checkpoints (written by setup_pyiqa) beside the shared folder (a link:
        # IQA_WEIGHTS_DIR's immediate subfolders are searched too).
        self.iqa_weights = tmp / 'iqa_weights'
        self.iqa_weights.mkdir()
        (self.iqa_weights / 'shared').symlink_to(Path(args.weights_dir).resolve())
        self.iqa_env = dict(base, IQA_NUM_THREADS=n, IQA_DEVICE='cpu', IQA_OFFLINE='1',
                            IQA_WEIGHTS_DIR=str(self.iqa_weights), IQA_CACHE_DIR=str(tmp / 'iqa_cache'))
        self.coldstart = None
        self.images = {}  # size key -> (dist png, ref png)
        self.batch_images = []  # (dist, ref) paths at 512x384

    def worker(self, spec, timeout=None):
        env = self.pyiqa_env if spec['kind'] in ('pyiqa', 'floors') else self.iqa_env
        spec = dict(spec, threads=self.threads, lib=self.lib, quick=self.args.quick,
                    max_seconds=self.args.max_seconds)
        return run_child([self.python, str(Path(__file__).resolve()), '--_worker', json.dumps(spec)], env,
                         timeout or self.args.timeout, self.mem_limit_kb)


# ---------------------------------------------------------------------------------------------------------------
# set-up: images, pyiqa weights, the C cold-start program, machine description, floors
# ---------------------------------------------------------------------------------------------------------------

def make_images(env, sizes):
    from PIL import Image
    d = Image.open(CAL / 'dist' / MAIN_IMAGE).convert('RGB')
    r = Image.open(CAL / 'ref' / MAIN_IMAGE).convert('RGB')
    for size in sizes:
        paths = []
        for tag, im in (('dist', d), ('ref', r)):
            out = env.tmp / f'{tag}_{size_key(size)}.png'
            (im if im.size == size else im.resize(size, Image.BICUBIC)).save(out)
            paths.append(str(out))
        env.images[size_key(size)] = tuple(paths)
    for i in range(BATCH):
        name = CAL_IMAGES[i % len(CAL_IMAGES)]
        env.batch_images.append((str(CAL / 'dist' / name), str(CAL / 'ref' / name)))


SETUP_PYIQA = r'''
import json, os, pathlib, shutil, sys
sys.path.insert(0, sys.argv[1])
import pyiqa_env as deep   # redirects TORCH_HOME & co. to its own temporary directory, imports pyiqa
from pyiqa_env import metric_kwargs
import pyiqa, torch
import pyiqa.utils.download_util as dl
from pyiqa.archs import niqe_arch, brisque_arch
deep.setup_weights()                  # LPIPS/DISTS zoo files + torchvision backbones under the official names
import make_zoo_references as zoo     # the built-in zoo metrics' random checkpoints, for pyiqa and iqa alike
zoo.install_for_pyiqa(zoo.write_checkpoints(pathlib.Path(sys.argv[3])))
zoo = pathlib.Path(dl.DEFAULT_CACHE_DIR)
for name, url in (('niqe', niqe_arch.default_model_urls['url']), ('brisque', brisque_arch.default_model_urls['url']),
                  ('ilniqe', niqe_arch.default_model_urls['ilniqe'])):
    path = metric_kwargs(name, str(zoo))['pretrained_model_path']
    assert os.path.basename(path) == deep.url_name(url), (path, url)
dest = pathlib.Path(sys.argv[2])
shutil.move(str(deep.TMP / 'torch'), str(dest))  # keep it past deep's atexit clean-up
print('PYIQA ' + json.dumps({'version': pyiqa.__version__, 'torch': torch.__version__,
                             'models': sorted(pyiqa.list_models())}))
'''


def setup_pyiqa(env):
    e = dict(env.pyiqa_env, IQA_WEIGHTS_DIR=env.args.weights_dir)
    c = run_child([env.python, '-c', SETUP_PYIQA, str(SCRIPTS), str(env.tmp / 'torch'), str(env.iqa_weights)], e,
                  900, 1 << 40)
    _, info = c.first('PYIQA ')
    if c.error() or info is None:
        sys.exit(f'pyiqa weight set-up failed: {c.error()}\n{c.stderr[-2000:]}')
    return json.loads(info)


def build_coldstart(env):
    exe = env.tmp / 'coldstart'
    cc = os.environ.get('CC', 'cc')
    subprocess.run([cc, '-O2', '-Wall', '-o', str(exe), str(ROOT / 'benches' / 'coldstart.c'), '-ldl'], check=True)
    env.coldstart = str(exe)


def iqa_metric_names(lib_path):
    lib = ctypes.CDLL(lib_path)
    lib.iqa_metric_count.restype = ctypes.c_size_t
    lib.iqa_metric_name.argtypes, lib.iqa_metric_name.restype = [ctypes.c_size_t], ctypes.c_char_p
    lib.iqa_version.restype = ctypes.c_char_p
    names = [lib.iqa_metric_name(i).decode() for i in range(lib.iqa_metric_count())]
    return names, lib.iqa_version().decode()


def machine_description(env, pyiqa_info, iqa_version):
    fields = {}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if ':' in line:
                    k, v = (x.strip() for x in line.split(':', 1))
                    fields.setdefault(k, v)
    except OSError:
        pass
    flags = fields.get('flags', '')
    cpu = fields.get('model name')
    if cpu:
        extra = [f'family {fields["cpu family"]} model {fields["model"]}' if 'cpu family' in fields else None,
                 f'{float(fields["cpu MHz"]):.0f} MHz' if 'cpu MHz' in fields else None,
                 f'{fields["cache size"]} cache' if 'cache size' in fields else None,
                 'virtual machine' if ' hypervisor ' in f' {flags} ' else None]
        cpu += ' (' + ', '.join(x for x in extra if x) + ')'
    simd = [f for f in ('avx2', 'fma', 'avx512f', 'avx512_bf16', 'amx_bf16') if f' {f} ' in f' {flags} ']
    mem_kb = meminfo_kb('MemTotal')
    try:
        cc = subprocess.run([os.environ.get('CC', 'cc'), '--version'], capture_output=True, text=True,
                            check=False).stdout
        cc = cc.splitlines()[0]
    except (OSError, IndexError):
        cc = '?'
    load = LOAD_AT_START
    return {
        'cpu': cpu or platform.processor() or '?', 'simd': simd, 'logical_cpus': os.cpu_count(),
        'affinity_cpus': len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else None,
        'ram_gb': round(mem_kb / 1048576, 1) if mem_kb else None, 'kernel': platform.release(),
        'python': platform.python_version(), 'torch': pyiqa_info['torch'], 'pyiqa': pyiqa_info['version'],
        'iqa': iqa_version, 'cc': cc, 'threads': env.threads,
        'date': datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
        'loadavg_at_start': [round(x, 2) for x in load] if load else None,
    }


# ---------------------------------------------------------------------------------------------------------------
# workers (run as `benchmark.py --_worker SPEC` in fresh processes)
# ---------------------------------------------------------------------------------------------------------------

def timed(fn, quick, max_seconds=float('inf')):
    """Median seconds of fn() after one warm-up (not counted: first calls carry lazy set-up). A first run slower
    than `slow` (10 s; --quick 2 s) or than max_seconds is the only one (`first_only`: it includes that set-up)."""
    target, min_runs, cap, slow = (0.3, 1, 20, 2.0) if quick else (2.0, 3, 100, 10.0)
    t = time.perf_counter()
    fn()
    warm = time.perf_counter() - t
    if warm >= min(slow, max_seconds):
        return {'median': warm, 'runs': 1, 'single': True, 'first_only': True, 'warmup': warm}
    times = []
    start = time.perf_counter()
    while len(times) < cap and (len(times) < min_runs or time.perf_counter() - start < target):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return {'median': statistics.median(times), 'min': min(times), 'runs': len(times), 'single': len(times) == 1,
            'warmup': warm, 'times': times if len(times) <= 10 else None}


def timed_pair(fa, fb, quick):
    """Like timed() for two functions, alternating their runs so that a change in machine load hits both."""
    target, min_runs, cap, slow = (0.6, 2, 40, 2.0) if quick else (4.0, 5, 200, 10.0)
    t = time.perf_counter()
    fa()
    fb()
    if time.perf_counter() - t > slow:
        min_runs = 1
    ta, tb = [], []
    start = time.perf_counter()
    while len(ta) < cap and (len(ta) < min_runs or time.perf_counter() - start < target):
        for f, ts in ((fa, ta), (fb, tb)):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
    return ({'median': statistics.median(ta), 'min': min(ta), 'runs': len(ta)},
            {'median': statistics.median(tb), 'min': min(tb), 'runs': len(tb)})


def emit(result):
    print('RESULT ' + json.dumps(result), flush=True)


def worker_pyiqa(spec):
    import torch
    import pyiqa
    from pyiqa.utils.img_util import imread2tensor
    torch.set_num_threads(spec['threads'])
    name, kwargs = spec['pyiqa_name'], spec['pyiqa_kwargs']
    with no_pretrained() if name in PYIQA_KWARGS else contextlib.nullcontext():
        m = pyiqa.create_metric(name, device='cpu', **kwargs)
    fr = m.metric_mode == 'FR'
    res = {'fr': fr, 'threads': torch.get_num_threads()}
    dist_path, ref_path = spec['images']
    d = imread2tensor(dist_path, rgb=True).unsqueeze(0)
    r = imread2tensor(ref_path, rgb=True).unsqueeze(0)

    def call(a, b):
        return (m(a, b) if fr else m(a)).detach()

    t = timed(lambda: call(d, r), spec['quick'], spec['max_seconds'])
    res['buffer'] = t
    res['score'] = float(call(d, r).flatten()[0])
    if t['median'] > spec['max_seconds']:
        res['file'] = {'skipped': spec['max_seconds']}
    else:
        res['file'] = timed(lambda: call(dist_path, ref_path), spec['quick'], spec['max_seconds'])
    if spec.get('flops') and t['median'] <= spec['max_seconds'] / 4:
        try:
            from torch.utils.flop_counter import FlopCounterMode
            with FlopCounterMode(display=False) as fc:
                call(d, r)
            res['flops'] = fc.get_total_flops()
        except Exception as e:  # noqa: BLE001 - a counting failure only loses the floor
            res['flops_error'] = f'{type(e).__name__}: {e}'[:200]
    if spec.get('batch'):
        if t['median'] * BATCH > spec['max_seconds'] / 2:
            res['batch'] = {'skipped': spec['max_seconds'] / 2 / BATCH, 'label': 'not run (slow)'}
        else:
            ds = torch.cat([imread2tensor(p, rgb=True).unsqueeze(0) for p, _ in spec['batch']])
            rs = torch.cat([imread2tensor(p, rgb=True).unsqueeze(0) for _, p in spec['batch']])
            try:
                out = call(ds, rs)
                if out.numel() != BATCH:
                    raise RuntimeError(f'{out.numel()} scores for a batch of {BATCH}')
                res['batch'] = timed(lambda: call(ds, rs), spec['quick'])
            except Exception as e:  # noqa: BLE001 - some pyiqa metrics take one image at a time
                res['batch'] = {'error': f'{type(e).__name__}: {e}'[:200]}
    res['vmhwm_kb'] = status_kb('VmHWM')
    emit(res)


class Iqa:
    """The few ctypes declarations the benchmark needs (see examples/score.py for a commented client)."""

    def __init__(self, path):
        class Options(ctypes.Structure):
            _fields_ = [('struct_size', ctypes.c_uint32), ('device', ctypes.c_int),
                        ('device_index', ctypes.c_int32), ('precision', ctypes.c_int)]

        class Image(ctypes.Structure):
            _fields_ = [('data', ctypes.c_void_p), ('width', ctypes.c_uint32), ('height', ctypes.c_uint32),
                        ('stride', ctypes.c_size_t), ('format', ctypes.c_int)]

        class Info(ctypes.Structure):
            _fields_ = [('name', ctypes.c_char_p), ('mode', ctypes.c_int), ('lower_better', ctypes.c_bool),
                        ('score_min', ctypes.c_double), ('score_max', ctypes.c_double)]

        self.Options, self.Image, self.Info = Options, Image, Info
        lib = self.lib = ctypes.CDLL(path)
        P, D = ctypes.c_void_p, ctypes.POINTER(ctypes.c_double)
        lib.iqa_last_error.restype = ctypes.c_char_p
        lib.iqa_options_default.argtypes, lib.iqa_options_default.restype = [ctypes.POINTER(Options)], None
        lib.iqa_metric_create.argtypes = [ctypes.c_char_p, ctypes.POINTER(Options), ctypes.POINTER(P)]
        lib.iqa_metric_info.argtypes = [P, ctypes.POINTER(Info)]
        lib.iqa_metric_free.argtypes, lib.iqa_metric_free.restype = [P], None
        lib.iqa_score.argtypes = [P, ctypes.POINTER(Image), ctypes.POINTER(Image), D]
        lib.iqa_score_batch.argtypes = [P, ctypes.POINTER(Image), ctypes.POINTER(Image), ctypes.c_size_t, D]
        lib.iqa_score_files.argtypes = [P, ctypes.c_char_p, ctypes.c_char_p, D]

    def check(self, status, what):
        if status != 0:
            raise RuntimeError(f'{what}: status {status}: {self.lib.iqa_last_error().decode(errors="replace")}')

    def create(self, name, precision=IQA_PRECISION_FP32):
        opts = self.Options()
        self.lib.iqa_options_default(ctypes.byref(opts))
        opts.device, opts.precision = IQA_DEVICE_CPU, precision
        h = ctypes.c_void_p()
        self.check(self.lib.iqa_metric_create(name.encode(), ctypes.byref(opts), ctypes.byref(h)), 'create')
        info = self.Info()
        self.check(self.lib.iqa_metric_info(h, ctypes.byref(info)), 'info')
        return h, info.mode == IQA_MODE_FR

    def image(self, path):
        import numpy as np
        from PIL import Image
        a = np.ascontiguousarray(np.asarray(Image.open(path).convert('RGB'), dtype=np.uint8))
        img = self.Image(a.ctypes.data, a.shape[1], a.shape[0], 0, IQA_FORMAT_RGB8)
        img._keep = a  # the buffer lives as long as the descriptor
        return img

    def image_f32(self, path):
        """Interleaved float32 RGB in [0,1] (IQA_FORMAT_RGB_F32): the closest iqa input to pyiqa's float tensors."""
        import numpy as np
        from PIL import Image
        a = np.ascontiguousarray(np.asarray(Image.open(path).convert('RGB'), dtype=np.float32) / 255)
        img = self.Image(a.ctypes.data, a.shape[1], a.shape[0], 0, IQA_FORMAT_RGB_F32)
        img._keep = a
        return img

    def score(self, h, d, r):
        s = ctypes.c_double()
        self.check(self.lib.iqa_score(h, ctypes.byref(d), ctypes.byref(r) if r is not None else None,
                                      ctypes.byref(s)), 'iqa_score')
        return s.value

    def score_files(self, h, d, r):
        s = ctypes.c_double()
        self.check(self.lib.iqa_score_files(h, d.encode(), r.encode() if r else None, ctypes.byref(s)),
                   'iqa_score_files')
        return s.value


def worker_iqa(spec):
    iqa = Iqa(spec['lib'])
    h, fr = iqa.create(spec['metric'])
    res = {'fr': fr}
    dist_path, ref_path = spec['images']
    d = iqa.image(dist_path)
    r = iqa.image(ref_path) if fr else None
    t = timed(lambda: iqa.score(h, d, r), spec['quick'], spec['max_seconds'])
    res['buffer'] = t
    res['score'] = iqa.score(h, d, r)
    rp = ref_path if fr else None
    if t['median'] <= spec['max_seconds'] / 4:
        df = iqa.image_f32(dist_path)
        rf = iqa.image_f32(ref_path) if fr else None
        res['buffer_f32'] = timed(lambda: iqa.score(h, df, rf), spec['quick'])
        res['score_f32'] = iqa.score(h, df, rf)
    if t['median'] > spec['max_seconds']:
        res['file'] = {'skipped': spec['max_seconds']}
    else:
        res['file'] = timed(lambda: iqa.score_files(h, dist_path, rp), spec['quick'], spec['max_seconds'])
    if spec.get('batch'):
        if t['median'] * BATCH > spec['max_seconds'] / 2:
            res['batch'] = {'skipped': spec['max_seconds'] / 2 / BATCH, 'label': 'not run (slow)'}
        else:
            # the ctypes arrays copy the descriptors; dimgs/rimgs keep the pixel buffers alive
            dimgs = [iqa.image(p) for p, _ in spec['batch']]
            rimgs = [iqa.image(p) for _, p in spec['batch']] if fr else []
            ds = (iqa.Image * BATCH)(*dimgs)
            rs = (iqa.Image * BATCH)(*rimgs) if fr else None
            out = (ctypes.c_double * BATCH)()
            res['batch'] = timed(lambda: iqa.check(iqa.lib.iqa_score_batch(h, ds, rs, BATCH, out), 'batch'),
                                 spec['quick'])
            res['batch_scores'] = list(out)
    if spec.get('concurrency'):
        if t['median'] * sum(CONC_THREADS) > spec['max_seconds'] / 2:
            res['concurrency'] = {'skipped': spec['max_seconds'] / 2 / sum(CONC_THREADS), 'label': 'not run (slow)'}
        else:
            target = 0.3 if spec['quick'] else 1.5
            per_thread = max(1, min(200, round(target / max(t['median'], 1e-6))))
            conc = {}
            for n in CONC_THREADS:
                barrier = threading.Barrier(n + 1)
                errors = []

                def run(barrier=barrier, errors=errors):
                    barrier.wait()
                    try:
                        for _ in range(per_thread):
                            iqa.score(h, d, r)
                    except Exception as e:  # noqa: BLE001
                        errors.append(str(e))

                ths = [threading.Thread(target=run) for _ in range(n)]
                for th in ths:
                    th.start()
                barrier.wait()
                t0 = time.perf_counter()
                for th in ths:
                    th.join()
                wall = time.perf_counter() - t0
                conc[str(n)] = {'error': errors[0]} if errors else n * per_thread / wall
            res['concurrency'] = conc
            res['concurrency_per_thread'] = per_thread
    iqa.lib.iqa_metric_free(h)
    res['vmhwm_kb'] = status_kb('VmHWM')
    emit(res)


def worker_precision(spec):
    iqa = Iqa(spec['lib'])
    h32, fr = iqa.create(spec['metric'], IQA_PRECISION_FP32)
    h16, _ = iqa.create(spec['metric'], IQA_PRECISION_BF16)
    dist_path, ref_path = spec['images']
    d = iqa.image(dist_path)
    r = iqa.image(ref_path) if fr else None
    res = {'fr': fr}
    res['fp32'], res['bf16'] = timed_pair(lambda: iqa.score(h32, d, r), lambda: iqa.score(h16, d, r),
                                          spec['quick'])
    diffs = []
    for dp, rp in spec['pairs']:
        a, b = iqa.image(dp), iqa.image(rp) if fr else None
        s32, s16 = iqa.score(h32, a, b), iqa.score(h16, a, b)
        diffs.append({'fp32': s32, 'bf16': s16, 'abs': abs(s16 - s32),
                      'rel': abs(s16 - s32) / abs(s32) if s32 else None})
    res['pairs'] = diffs
    res['max_abs'] = max(x['abs'] for x in diffs)
    res['max_rel'] = max((x['rel'] for x in diffs if x['rel'] is not None), default=None)
    res['speedup'] = res['fp32']['median'] / res['bf16']['median']
    emit(res)


def worker_floors(spec):
    import numpy as np
    import torch
    torch.set_num_threads(spec['threads'])
    res = {'threads': torch.get_num_threads()}
    reps = 3 if spec['quick'] else 7

    def best(fn):
        fn()
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return min(ts)

    n = 64 * 1024 * 1024  # 256 MB of float32 per buffer: far beyond any cache
    a = torch.rand(n)
    b = torch.empty(n)
    res['copy_torch_gbs'] = 2 * 4 * n / best(lambda: b.copy_(a)) / 1e9
    an, bn = a.numpy(), b.numpy()
    res['copy_numpy_gbs'] = 2 * 4 * n / best(lambda: np.copyto(bn, an)) / 1e9
    res['read_torch_gbs'] = 4 * n / best(lambda: a.sum()) / 1e9
    a = b = an = bn = None  # free 1 GB before the compute measurements
    k = 2048
    x, y = torch.rand(k, k), torch.rand(k, k)
    res['matmul_gflops'] = 2 * k ** 3 / best(lambda: x @ y) / 1e9
    # a VGG-like layer: 128 -> 128 channels, 3x3, 96x128 pixels
    inp, w = torch.rand(1, 128, 96, 128), torch.rand(128, 128, 3, 3)
    flops = 2 * 128 * 128 * 9 * 96 * 128
    with torch.no_grad():
        res['conv_gflops'] = flops / best(lambda: torch.nn.functional.conv2d(inp, w, padding=1)) / 1e9
    res['bandwidth_gbs'] = max(res['copy_torch_gbs'], res['copy_numpy_gbs'], res['read_torch_gbs'])
    res['best_gflops'] = max(res['matmul_gflops'], res['conv_gflops'])
    emit(res)


def run_worker(spec):
    kind = spec['kind']
    {'pyiqa': worker_pyiqa, 'iqa': worker_iqa, 'precision': worker_precision, 'floors': worker_floors}[kind](spec)


# ---------------------------------------------------------------------------------------------------------------
# per-metric measurements (parent side)
# ---------------------------------------------------------------------------------------------------------------

PYIQA_COLD = r'''
import sys, json, contextlib
name, kwargs, dist, ref, threads = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
sys.path.insert(0, sys.argv[6])
import pyiqa
import torch
import zoo_offline
torch.set_num_threads(threads)
with zoo_offline.no_pretrained() if name in zoo_offline.PYIQA_KWARGS else contextlib.nullcontext():
    m = pyiqa.create_metric(name, device='cpu', **kwargs)
s = m(dist, ref) if m.metric_mode == 'FR' else m(dist)
print('score %.9g' % float(s.flatten()[0]), flush=True)
for key in ('VmHWM', 'VmRSS'):
    for line in open('/proc/self/status'):
        if line.startswith(key + ':'):
            print(key.lower() + '_kb ' + line.split()[1])
'''


def cold_child(env, impl, metric, size, handles=False):
    dist, ref = env.images[size]
    if impl == 'iqa':
        cmd = [env.coldstart, env.lib, metric, dist, ref] + (['handles'] if handles else [])
        return run_child(cmd, env.iqa_env, env.args.timeout, env.mem_limit_kb)
    name, kwargs = pyiqa_name(metric)
    cmd = [env.python, '-c', PYIQA_COLD, name, json.dumps(kwargs), dist, ref, str(env.threads), str(SCRIPTS)]
    return run_child(cmd, env.pyiqa_env, env.args.timeout, env.mem_limit_kb)


def pyiqa_name(metric):
    if metric in PYIQA_KWARGS:
        return metric, PYIQA_KWARGS[metric]
    return PYIQA_ALIASES.get(metric, (metric, {}))


def measure_cold(env, impl, metric, size):
    runs, errors, scores, hwm = [], [], [], []
    for _ in range(1 if env.args.quick else 3):
        c = cold_child(env, impl, metric, size)
        t, score = c.first('score ')
        if c.error() or t is None:
            errors.append(c.error() or 'no score printed')
            break
        runs.append(t)
        scores.append(float(score))
        v = c.values()
        if 'vmhwm_kb' in v:
            hwm.append(int(v['vmhwm_kb']))
    out = {'runs': runs, 'median': median(runs), 'score': scores[0] if scores else None,
           'vmhwm_kb': max(hwm) if hwm else None}
    if errors:
        out['error'] = errors[0]
    return out


def measure_peak(env, impl, metric, size):
    c = cold_child(env, impl, metric, size)
    v = c.values()
    if c.error() or 'vmhwm_kb' not in v:
        return {'error': c.error() or 'no VmHWM printed', 'size': size, 'polled_peak_kb': c.peak_rss_kb}
    return {'vmhwm_kb': int(v['vmhwm_kb']), 'size': size, 'score': float(v['score']), 'wall': c.wall}


def measure_handles(env, metric, size):
    c = cold_child(env, 'iqa', metric, size, handles=True)
    v = c.values()
    if c.error() or 'rss_handle2_created_kb' not in v:
        return {'error': c.error() or 'no output'}
    r1, r2, r3 = (int(v[k]) for k in ('rss_handle1_kb', 'rss_handle2_created_kb', 'rss_handle2_scored_kb'))
    return {'second_create_kb': r2 - r1, 'second_score_kb': r3 - r1, 'rss_handle1_kb': r1,
            'models_alive': int(v['models_alive']), 'handles_alive': int(v['handles_alive'])}


def measure_metric(env, metric, sizes, floors):
    a = env.args
    res = {'metric': metric, 'pyiqa_name': pyiqa_name(metric), 'cold': {}, 'steady': {}, 'peak': {}}
    small = size_key(sizes[0])
    say(f'\n== {metric} ==')
    for impl in ('pyiqa', 'iqa'):
        res['cold'][impl] = c = measure_cold(env, impl, metric, small)
        say(f'  cold start {impl:5s} {fmt_time(c["median"])}' + (f'  ERROR {c["error"]}' if 'error' in c else '')
            + (f'  (score {c["score"]:.6g})' if c['score'] is not None else ''))
    skipped = {'pyiqa': None, 'iqa': None}
    largest_run = {'pyiqa': None, 'iqa': None}
    last = {'pyiqa': None, 'iqa': None}  # (seconds, pixels) of the previous size
    for size in sizes:
        key = size_key(size)
        res['steady'][key] = cell = {}
        first = key == small
        for impl in ('pyiqa', 'iqa'):
            if skipped[impl]:
                cell[impl] = {'skipped': a.max_seconds}
                continue
            if last[impl]:
                # not started when the pixel count predicts a run far beyond --max-seconds (mad at 1080p)
                est = last[impl][0] * size[0] * size[1] / last[impl][1]
                if est > 4 * a.max_seconds:
                    cell[impl] = {'skipped': a.max_seconds, 'label': f'est. {fmt_time(est)}', 'estimate': est}
                    skipped[impl] = True
                    say(f'  {key} {impl:5s} not run: about {fmt_time(est)} a run, from the smaller size')
                    continue
            spec = {'kind': impl, 'metric': metric, 'images': env.images[key], 'batch': env.batch_images
                    if first else None, 'concurrency': first and impl == 'iqa', 'flops': impl == 'pyiqa'}
            if impl == 'pyiqa':
                spec['pyiqa_name'], spec['pyiqa_kwargs'] = pyiqa_name(metric)
            c = env.worker(spec)
            r = c.result()
            if r is None:
                cell[impl] = {'error': c.error() or 'no result'}
                say(f'  {key} {impl:5s} ERROR {cell[impl]["error"]}')
                skipped[impl] = True  # a crash or OOM at one size will not improve at a larger one
                continue
            cell[impl] = r
            largest_run[impl] = key
            last[impl] = (r['buffer']['median'], size[0] * size[1])
            if r['buffer']['median'] > a.max_seconds:
                skipped[impl] = True
            line = f'  {key} {impl:5s} buffer {fmt_time(r["buffer"]["median"])}{run_mark(r["buffer"])}'
            if 'buffer_f32' in r:
                line += f'  f32 buffer {fmt_time(r["buffer_f32"]["median"])}'
            line += f'  file {cell_text(sec(r.get("file")), fmt_time)}{run_mark(r.get("file"))}'
            if first:
                line += f'  batch {cell_text(rate(r.get("batch")), fmt_rate)}'
            line += f'  score {r["score"]:.6g}'
            say(line)
        if first and isinstance(cell.get('iqa'), dict) and 'concurrency' in cell['iqa']:
            conc = cell['iqa']['concurrency']
            if isinstance(conc, dict) and 'skipped' not in conc:
                say('  iqa threads sharing one handle: ' + ', '.join(
                    f'{n}: {cell_text(conc[n], fmt_rate)}' for n in conc))
    for impl in ('pyiqa', 'iqa'):
        key = largest_run[impl]
        if key:
            r = res['steady'][key][impl]
            if r['buffer']['median'] > a.max_seconds / 2 and r.get('vmhwm_kb'):
                # too slow to score once more: the steady-state process's own peak (it also held the decoded pair)
                res['peak'][impl] = p = {'vmhwm_kb': r['vmhwm_kb'], 'size': key, 'source': 'steady-state process'}
            else:
                res['peak'][impl] = p = measure_peak(env, impl, metric, key)
            say(f'  peak RSS {impl:5s} {fmt_mb(p.get("vmhwm_kb"))} (scoring one {key} pair'
                + (', steady-state process' if 'source' in p else '') + ')'
                + (f'  ERROR {p["error"]}' if 'error' in p else ''))
    res['handles'] = hd = measure_handles(env, metric, small)
    if 'error' in hd:
        say(f'  second handle ERROR {hd["error"]}')
    else:
        say(f'  second iqa handle: +{hd["second_create_kb"] / 1024:.1f} MB created, '
            f'+{hd["second_score_kb"] / 1024:.1f} MB after scoring (models alive {hd["models_alive"]})')
    if a.precision_check:
        spec = {'kind': 'precision', 'metric': metric, 'images': env.images[small],
                'pairs': [(str(CAL / 'dist' / n), str(CAL / 'ref' / n)) for n in CAL_IMAGES]}
        c = env.worker(spec)
        res['precision'] = p = c.result() or {'error': c.error() or 'no result'}
        if 'error' in p:
            say(f'  bf16 ERROR {p["error"]}')
        else:
            say(f'  bf16 vs fp32: speed ×{p["speedup"]:.3g}, max |Δscore| {p["max_abs"]:.3g}')
    res['floor'] = floor_of(res, sizes, floors)
    return res


def sec(c):
    """A timing cell -> seconds (or the skip/error dict)."""
    if isinstance(c, dict) and 'median' in c:
        return c['median']
    return c


def rate(c):
    """A batch timing cell -> images per second."""
    if isinstance(c, dict) and 'median' in c:
        return BATCH / c['median']
    return c


def floor_of(res, sizes, floors):
    """Machine floor per size: max(FLOPs / best GFLOP/s, float32 input bytes / bandwidth)."""
    if not floors:
        return {}
    out = {}
    small = size_key(sizes[0])
    p_small = res['steady'].get(small, {}).get('pyiqa')
    i_small = res['steady'].get(small, {}).get('iqa')
    fr = (p_small or {}).get('fr', (i_small or {}).get('fr', True)) if isinstance(p_small, dict) else True
    flops_small = p_small.get('flops') if isinstance(p_small, dict) else None
    for size in sizes:
        key = size_key(size)
        cell = res['steady'].get(key, {})
        p = cell.get('pyiqa')
        flops = p.get('flops') if isinstance(p, dict) else None
        estimated = False
        if flops is None and flops_small is not None:  # conv/matmul FLOPs grow with the pixel count
            flops = flops_small * (size[0] * size[1]) / (sizes[0][0] * sizes[0][1])
            estimated = True
        nbytes = (2 if fr else 1) * 3 * size[0] * size[1] * 4
        t_bytes = nbytes / (floors['bandwidth_gbs'] * 1e9)
        t_flops = flops / (floors['best_gflops'] * 1e9) if flops else 0.0
        f = {'flops': flops, 'flops_estimated': estimated, 'bytes': nbytes, 'floor_s': max(t_bytes, t_flops),
             'bound': 'compute' if t_flops > t_bytes else 'memory'}
        iq = sec((cell.get('iqa') or {}).get('buffer')) if isinstance(cell.get('iqa'), dict) else None
        f['iqa_over_floor'] = iq / f['floor_s'] if isinstance(iq, (int, float)) else None
        out[key] = f
    return out


# ---------------------------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------------------------

def run_mark(t):
    if not isinstance(t, dict) or 'median' not in t:
        return ''
    return '²' if t.get('first_only') else '¹' if t.get('single') else ''


def tables(results, sizes, precision):
    """(title, header, rows) of every table, shared by the console and the Markdown output."""
    out = []
    rows = []
    for r in results:
        pc, ic = r['cold']['pyiqa'], r['cold']['iqa']
        pcv = {'error': 1} if 'error' in pc else pc['median']
        icv = {'error': 1} if 'error' in ic else ic['median']
        pp, ip = r['peak'].get('pyiqa', {}), r['peak'].get('iqa', {})
        pk = pp.get('vmhwm_kb', {'error': 1} if 'error' in pp else None)
        ik = ip.get('vmhwm_kb', {'error': 1} if 'error' in ip else None)
        psize = pp.get('size') or ip.get('size') or ''
        if 'source' in pp or 'source' in ip:
            psize += ' ³'
        rows.append([r['metric'], cell_text(pcv, fmt_time), cell_text(icv, fmt_time), fmt_ratio(ratio(pcv, icv)),
                     cell_text(pk, fmt_mb), cell_text(ik, fmt_mb), fmt_ratio(ratio(pk, ik)), psize])
    out.append(('Cold start (fresh process → first score, 512×384 files) and peak RSS (one pair at the size shown; '
                '³ = VmHWM of the steady-state process, for a metric too slow to run once more)',
                ['metric', 'cold pyiqa', 'cold iqa', 'pyiqa/iqa', 'peak RSS pyiqa', 'peak RSS iqa', 'pyiqa/iqa',
                 'peak at'], rows))
    for size in sizes:
        key = size_key(size)
        rows = []
        for r in results:
            cell = r['steady'].get(key, {})
            row = [r['metric']]
            p, i = cell.get('pyiqa'), cell.get('iqa')
            for src, isrc in (('buffer', 'buffer'), ('buffer', 'buffer_f32'), ('file', 'file')):
                pv = sec(p.get(src)) if isinstance(p, dict) and src in p else p
                iv = sec(i.get(isrc)) if isinstance(i, dict) and 'buffer' in i else i
                mark_p = run_mark(p.get(src) if isinstance(p, dict) else None)
                mark_i = run_mark(i.get(isrc) if isinstance(i, dict) else None)
                if isrc != 'buffer_f32':
                    row.append(cell_text(pv, fmt_time) + mark_p)
                row += [cell_text(iv, fmt_time) + mark_i, fmt_ratio(ratio(pv, iv))]
            rows.append(row)
        out.append((f'Steady state, seconds per image at {size[0]}×{size[1]} (median; ¹ = single timed run, ² = first run only, '
                    f'slow enough to need no warm-up; buffers: '
                    f'pyiqa float tensors, iqa RGB8 and interleaved float32)',
                    ['metric', 'buffers pyiqa', 'buffers iqa RGB8', 'pyiqa/iqa', 'buffers iqa f32', 'pyiqa/iqa f32',
                     'files pyiqa', 'files iqa', 'pyiqa/iqa'], rows))
    small = size_key(sizes[0])
    rows = []
    for r in results:
        cell = r['steady'].get(small, {})
        p, i = cell.get('pyiqa'), cell.get('iqa')
        pb = rate(p.get('batch')) if isinstance(p, dict) and 'buffer' in p else None
        ib = rate(i.get('batch')) if isinstance(i, dict) and 'buffer' in i else None
        row = [r['metric'], cell_text(pb, fmt_rate), cell_text(ib, fmt_rate), fmt_ratio(ratio(pb, ib, True))]
        conc = i.get('concurrency') if isinstance(i, dict) else None
        for n in CONC_THREADS:
            v = conc.get(str(n)) if isinstance(conc, dict) and 'skipped' not in conc else conc
            row.append(cell_text(v, fmt_rate))
        rows.append(row)
    out.append((f'Throughput at {sizes[0][0]}×{sizes[0][1]}, images per second: batch of {BATCH} (iqa/pyiqa = '
                f'how many times iqa is faster), and 1/2/4 threads sharing one iqa handle',
                ['metric', f'batch {BATCH} pyiqa', f'batch {BATCH} iqa', 'iqa/pyiqa', 'iqa 1 thread',
                 'iqa 2 threads', 'iqa 4 threads'], rows))
    rows = []
    for r in results:
        hd = r['handles']
        row = [r['metric'], 'error' if 'error' in hd else f'{hd["second_create_kb"] / 1024:+.1f} MB',
               'error' if 'error' in hd else f'{hd["second_score_kb"] / 1024:+.1f} MB']
        for size in sizes:
            f = r['floor'].get(size_key(size))
            if not f:
                row += ['-', '-']
                continue
            if f['flops'] is None:
                flops = 'FLOPs not counted'
            else:
                flops = f'{sig3(f["flops"] / 1e9)} GFLOP{" (est.)" if f["flops_estimated"] else ""}'
            row += [f'{fmt_time(f["floor_s"])} ({f["bound"]}; {flops})', fmt_ratio(f['iqa_over_floor'])]
        if precision:
            p = r.get('precision') or {}
            row += ['error' if 'error' in p else fmt_ratio(p['speedup']) if p else '-',
                    'error' if 'error' in p else f'{p["max_abs"]:.3g}' if p else '-']
        rows.append(row)
    header = ['metric', '2nd handle RSS', '2nd handle RSS after score']
    for size in sizes:
        header += [f'floor {size[0]}×{size[1]}', 'iqa / floor']
    if precision:
        header += ['bf16 speed-up (fp32 t / bf16 t)', 'bf16 max abs score change (5 pairs)']
    out.append(('iqa only: second handle of the same metric, distance from the machine floor, bf16', header, rows))
    return out


def print_table(title, header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print(f'\n{title}')
    print('  '.join(h.ljust(w) for h, w in zip(header, widths)))
    print('  '.join('-' * w for w in widths))
    for row in rows:
        print('  '.join(str(x).ljust(w) for x, w in zip(row, widths)))


def prepared_reference(env):
    """examples/prepared_reference's Markdown table (8 distorted images per reference, pair by pair beside a
    prepared reference), run with the benchmark's threads; None when its binary was not built, failed or ran past
    three times --timeout."""
    exe = ROOT / 'target' / 'release' / 'examples' / 'prepared_reference'
    if not exe.exists():
        say(f'{exe} not built (cargo build --release --example prepared_reference): its section is left out')
        return None
    try:
        # It times 7 metrics at 2 sizes, 8 images by 8 calls each (the deep ones at 1920x1080 take most of its
        # 15 to 25 minutes), so it gets three child timeouts.
        run = subprocess.run([str(exe)], env=env.iqa_env, capture_output=True, text=True,
                             timeout=3 * env.args.timeout)
    except subprocess.TimeoutExpired:
        # Losing the rest of a run of an hour to this last section is worse than leaving it out.
        say(f'prepared_reference ran past 3 × --timeout ({3 * env.args.timeout:g} s): its section is left out')
        return None
    if run.returncode != 0:
        say(f'prepared_reference failed ({run.returncode}): {run.stderr.strip()[-500:]}')
        return None
    return run.stdout.strip()


def prepared_section(table, when='in the same run'):
    return '\n'.join([
        '## One reference, many distorted images (prepared references)', '',
        f'`examples/prepared_reference` {when}: eight distorted images (noise of growing strength) against one '
        'reference (I03; at 1920×1080 the same image tiled), pair by pair with `Metric::score` beside '
        '`prepare_reference` once plus `score_with_reference` for the eight (preparing included). Deep metrics '
        'save the reference\'s backbone pass: 16 passes become 10 for 8 images, so 1.6× is the bound at equal cost '
        'per pass (above it at 1920×1080, where the reference pass costs more than an image pair\'s share). ssim '
        'and ssimc keep the reference\'s two filtered statistics, so each image filters three of the five (a '
        'bound of 5/3 on the filtering, less the per-pixel work that stays). mad keeps the reference\'s detection '
        'maps and its statistics under the 20 log-Gabor filters, so each image transforms and filters only itself '
        '(16 image passes become 9 for 8 images: 1.78× at equal cost per pass). psnr keeps only a copy of the '
        'reference\'s pixels, which preparing costs and its cheap score does not win back; on the command line '
        'it saves the reference\'s decoding.', '', table, ''])


def markdown(path, machine, floors, results, sizes, args, elapsed, peers=None, prepared=None):
    m = machine
    lines = ['# Benchmarks: iqa against pyiqa 0.1.16' + (' and the other libraries' if peers else ''), '',
             f'Produced by `{" ".join(["scripts/benchmark.py"] + sys.argv[1:])}` on {m["date"]} in '
             f'{elapsed / 60:.0f} min (`make bench` runs it): every figure in this file is from that one run, '
             'on the machine below; earlier runs are in the file\'s history.', '']
    if peers:
        import bench_peers
        lines += [bench_peers.markdown_section(peers), '']
    if prepared:
        lines += [prepared_section(prepared)]
    lines += [
             '## Machine', '',
             f'- CPU: {m["cpu"]}, {m["logical_cpus"]} logical CPUs ({m["affinity_cpus"]} usable), '
             f'SIMD: {", ".join(m["simd"]) or "?"}',
             f'- RAM: {m["ram_gb"]} GB; Linux {m["kernel"]}; load average at start {m["loadavg_at_start"]}',
             f'- Python {m["python"]}, torch {m["torch"]} (CPU), pyiqa {m["pyiqa"]}, iqa {m["iqa"]}, {m["cc"]}',
             f'- Threads: {m["threads"]} for both (pyiqa: torch.set_num_threads + OMP/MKL_NUM_THREADS; '
             f'iqa: IQA_NUM_THREADS)', '',
             '## Method', '',
             'Images: the I03 pair of data/calibration (512×384) as PNG, and its bicubic upscale to 1920×1080 '
             '(PNG). No-reference metrics score the distorted image only. Every measurement runs in a fresh '
             'process. Cold start: spawn → first score printed (pyiqa: `import pyiqa`, `create_metric`, score the '
             'files; iqa: benches/coldstart.c, dlopen + `iqa_metric_create` + `iqa_score_files`), median of '
             f'{1 if args.quick else 3}. Steady state: median after one warm-up (buffers: pyiqa preloaded float '
             'tensors, iqa RGB8 buffers through ctypes; files: both decode the PNG each time). Peak RSS: VmHWM of '
             'a fresh process that creates the metric and scores one pair. Ratios are pyiqa/iqa for times and '
             'memory (how many times iqa is faster or smaller). `> S s`: a single run took longer than '
             f'--max-seconds ({args.max_seconds:g} s), so that size and the larger ones were skipped.', '']
    if floors:
        lines += ['## Machine floor', '',
                  f'- Memory bandwidth: {floors["copy_torch_gbs"]:.1f} GB/s (torch copy, {floors["threads"]} '
                  f'threads, read+write counted), {floors["copy_numpy_gbs"]:.1f} GB/s (numpy copy, 1 thread), '
                  f'{floors["read_torch_gbs"]:.1f} GB/s (torch sum, read only)',
                  f'- float32 matmul 2048³: {floors["matmul_gflops"]:.1f} GFLOP/s; 3×3 conv 128→128 at 96×128: '
                  f'{floors["conv_gflops"]:.1f} GFLOP/s ({floors["threads"]} threads)',
                  '- Per metric: floor = max(FLOPs of pyiqa\'s formulation (convolutions and matrix products '
                  'counted by torch.utils.flop_counter on pyiqa\'s forward) / best GFLOP/s, float32 input bytes / '
                  'best bandwidth). A metric whose work is neither (FFT, sorting, element-wise chains) shows the '
                  'memory floor, which it cannot reach; "(est.)" = FLOPs scaled from the smaller size.', '']
    for title, header, rows in tables(results, sizes, args.precision_check):
        lines += [f'## {title}', '', '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
        lines += ['| ' + ' | '.join(str(x) for x in row) + ' |' for row in rows]
        lines.append('')
    errors = [(r['metric'], where, msg) for r in results for where, msg in collect_errors(r)]
    if errors:
        lines += ['## Errors', ''] + [f'- {m_} ({w}): {msg}' for m_, w, msg in errors] + ['']
    Path(path).write_text('\n'.join(lines))


def collect_errors(r):
    out = []
    for impl, c in r['cold'].items():
        if 'error' in c:
            out.append((f'cold {impl}', c['error']))
    for key, cell in r['steady'].items():
        for impl, v in cell.items():
            if isinstance(v, dict) and 'error' in v:
                out.append((f'{key} {impl}', v['error']))
            elif isinstance(v, dict) and isinstance(v.get('batch'), dict) and 'error' in v['batch']:
                out.append((f'batch {impl}', v['batch']['error']))
    for impl, p in r['peak'].items():
        if 'error' in p:
            out.append((f'peak {impl}', p['error']))
    if 'error' in r['handles']:
        out.append(('second handle', r['handles']['error']))
    if isinstance(r.get('precision'), dict) and 'error' in r['precision']:
        out.append(('bf16', r['precision']['error']))
    return out


def say(text):
    print(text, flush=True)


# ---------------------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--metrics', help='comma-separated iqa names (default: every iqa metric pyiqa also has)')
    ap.add_argument('--sizes', default=DEFAULT_SIZES, help=f'WxH list, smallest first (default {DEFAULT_SIZES})')
    ap.add_argument('--threads', type=int, default=os.cpu_count(), help='threads for both (default: all CPUs)')
    ap.add_argument('--quick', action='store_true', help='fewer repetitions: a smoke test, not numbers to quote')
    ap.add_argument('--max-seconds', type=float, default=None,
                    help='skip the larger sizes of an implementation once one run exceeds this (default 60; '
                         '--quick 5)')
    ap.add_argument('--timeout', type=float, default=900, help='kill any child after this many seconds')
    ap.add_argument('--mem-limit-gb', type=float, default=None,
                    help='kill a child whose RSS passes this (default: 80%% of MemAvailable at start)')
    ap.add_argument('--json', help='write every measurement to this file')
    ap.add_argument('--markdown', help='write a BENCHMARKS.md (machine, method, tables, floors) to this file')
    ap.add_argument('--precision-check', action='store_true', help='iqa bf16 against fp32: speed and score change')
    ap.add_argument('--peers', action='store_true',
                    help='then iqa against OpenCV, piq, torchmetrics, scikit-image, ffmpeg (scripts/bench_peers.py)')
    ap.add_argument('--prepared', action='store_true',
                    help='then examples/prepared_reference (one reference, eight distorted images), if built')
    ap.add_argument('--no-floors', action='store_true', help='skip the bandwidth / GFLOP/s measurements')
    ap.add_argument('--library', default=os.environ.get('IQA_LIBRARY', str(ROOT / 'target' / 'release' / 'libiqa.so')))
    ap.add_argument('--weights-dir', default=os.environ.get('IQA_WEIGHTS_DIR') or str(ROOT.parent / 'shared' / 'weights'))
    ap.add_argument('--keep-tmp', action='store_true', help='keep the temporary directory (images, TORCH_HOME)')
    ap.add_argument('--_worker', help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._worker:
        run_worker(json.loads(args._worker))
        return
    if args.max_seconds is None:
        args.max_seconds = 5.0 if args.quick else 60.0
    if args.mem_limit_gb is None:
        args.mem_limit_gb = 0.8 * (meminfo_kb('MemAvailable') or 8 << 20) / 1048576
    if not Path(args.library).exists():
        sys.exit(f'{args.library} not found: build it first (cargo build --release)')
    sizes = [parse_size(s) for s in args.sizes.split(',')]
    t_start = time.time()
    global LOAD_AT_START
    LOAD_AT_START = os.getloadavg()

    tmp = Path(tempfile.mkdtemp(prefix='iqa_bench_'))
    try:
        env = Env(args, tmp)
        say(f'temporary directory {tmp}; threads {args.threads}; child memory limit {args.mem_limit_gb:.1f} GB')
        make_images(env, sizes)
        build_coldstart(env)
        say('setting up pyiqa weights ...')
        pyiqa_info = setup_pyiqa(env)
        iqa_names, iqa_version = iqa_metric_names(env.lib)
        available = [n for n in iqa_names if n in pyiqa_info['models'] or n in PYIQA_ALIASES]
        if args.metrics:
            metrics = [m.strip() for m in args.metrics.split(',') if m.strip()]
            unknown = [m for m in metrics if m not in available]
            if unknown:
                sys.exit(f'not in both iqa and pyiqa: {unknown}; available: {available}')
        else:
            metrics = available
        machine = machine_description(env, pyiqa_info, iqa_version)
        load = machine['loadavg_at_start']
        if load and load[0] > 0.5:
            say(f'WARNING: load average {load[0]:.2f} before starting: other processes share the CPUs and the '
                f'timings will be noisy (OpenMP threads wait for descheduled peers). Run on a quiet machine.')
        say(f'machine: {machine["cpu"]}, {machine["logical_cpus"]} CPUs, {machine["ram_gb"]} GB; torch '
            f'{machine["torch"]}, pyiqa {machine["pyiqa"]}, iqa {machine["iqa"]}; metrics: {", ".join(metrics)}')
        floors = None
        if not args.no_floors:
            c = env.worker({'kind': 'floors'})
            floors = c.result()
            if floors:
                say(f'floor: bandwidth {floors["bandwidth_gbs"]:.1f} GB/s (copy torch {floors["copy_torch_gbs"]:.1f},'
                    f' numpy {floors["copy_numpy_gbs"]:.1f}, read {floors["read_torch_gbs"]:.1f}); matmul '
                    f'{floors["matmul_gflops"]:.1f} GFLOP/s, conv {floors["conv_gflops"]:.1f} GFLOP/s')
            else:
                say(f'floor measurement failed: {c.error()}')
        results = []
        for metric in metrics:
            t0 = time.time()
            results.append(measure_metric(env, metric, sizes, floors))
            results[-1]['elapsed_s'] = time.time() - t0
            say(f'  ({results[-1]["elapsed_s"]:.0f} s)')
        peers = None
        if args.peers:
            import bench_peers
            peers = bench_peers.measure(tmp, sizes, args.threads, args.quick, env.lib, env.iqa_env, say=say)
        prepared = prepared_reference(env) if args.prepared else None
        if prepared:
            print('\n' + prepared)
        elapsed = time.time() - t_start
        for title, header, rows in tables(results, sizes, args.precision_check):
            print_table(title, header, rows)
        if peers:
            for title, header, rows in bench_peers.tables(peers):
                print_table(title, header, rows)
        say(f'\ntotal {elapsed / 60:.1f} min')
        if args.json:
            Path(args.json).write_text(json.dumps({'machine': machine, 'floors': floors, 'args': vars(args),
                                                   'sizes': [size_key(s) for s in sizes], 'results': results,
                                                   'peers': peers, 'prepared_reference': prepared},
                                                  indent=1))
            say(f'wrote {args.json}')
        if args.markdown:
            markdown(args.markdown, machine, floors, results, sizes, args, elapsed, peers, prepared)
            say(f'wrote {args.markdown}')
    finally:
        if args.keep_tmp:
            say(f'kept {tmp}')
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
