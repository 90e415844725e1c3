#!/usr/bin/env python3
"""iqa against the other libraries users choose between, measured in one run, alternating call by call.

    .venv/bin/python scripts/bench_peers.py [--quick] [--sizes 512x384,1920x1080] [--threads N]
        [--markdown FILE] [--json FILE]
    make bench          # benchmark.py --peers runs this as its last section
    make bench-peers    # this alone, quick (a few minutes)

Peers (installed by `scripts/setup.sh --bench` into .bench-peers/, which the children put first on sys.path; never
by `make test`): OpenCV (opencv-contrib-python-headless: cv2.PSNR, cv2.quality), piq, torchmetrics, scikit-image,
and ffmpeg's psnr/ssim filters (apt) for one process per pair.

Sections, each printed with every peer's settings beside its numbers and the ratio peer time / iqa time (above 1:
iqa is faster):
  - from buffers, at each size: two fresh children per size, one loading only libiqa.so (ctypes, RGB8 buffers),
    one the peers; the parent asks them in turn for batches of calls (~50 ms each), iqa's and a peer's
    alternating so that a change in machine load hits both, median;
    OpenCV and scikit-image get HxWx3 uint8 arrays, piq and torchmetrics preloaded 1x3xHxW float32 tensors in
    [0,1] (their documented input), as pyiqa gets in benchmark.py; scores printed beside the times;
  - from files (PNG, BMP, JPEG quality 90): iqa_score_files against cv2.imread of both + the same peer call;
  - one process per pair: `iqa score psnr DIST REF` (the CLI) against `ffmpeg -i DIST -i REF -lavfi psnr -f
    null -` (and ssim), wall time from spawn to exit, alternating, median; beside them the floor of a process
    that only dlopens libtorch (benches/dlopen_floor.c) and one that dlopens libiqa.so and scores
    (benches/coldstart.c), and benches/startup_phases.c's time since process start after each phase (dlopen
    libtorch_cpu, dlopen libiqa, create, first score).
Every child gets N threads: IQA_NUM_THREADS, torch.set_num_threads, cv2.setNumThreads, OMP/MKL_NUM_THREADS
(scikit-image is single-threaded numpy; ffmpeg is given -threads N). Nothing here asserts a timing.

iqa and the peers run in separate processes: in one process, importing piq made iqa's libtorch-backed metrics
with 2 threads 10-30x slower, and the torch peers' spinning threads slowed psnr (BENCHMARKS.md run 4).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark as bm  # noqa: E402 - the helpers (timing, ctypes client, formatting) live there

ROOT = bm.ROOT
PEERS_DIR = ROOT / '.bench-peers'
FILE_FORMATS = ('png', 'bmp', 'jpg')


# ---------------------------------------------------------------------------------------------------------------
# the cells: (iqa metric, peer, settings, peer call) — built inside the child, where the libraries are imported
# ---------------------------------------------------------------------------------------------------------------

def peer_cells(d8, r8, dt, rt):
    """Every peer call on one pair: d8/r8 HxWx3 uint8 RGB, dt/rt 1x3xHxW float32 in [0,1]. Each entry:
    (iqa metric, peer, settings, callable returning the score). A library that fails to import is skipped."""
    cells = []
    try:
        import cv2
        cv2.setNumThreads(int(os.environ['OMP_NUM_THREADS']))
        cells.append(('psnr', 'OpenCV cv2.PSNR', 'uint8 RGB, all channels, peak 255; pyiqa\'s formula without its '
                      '1e-8', lambda: cv2.PSNR(r8, d8)))
        if hasattr(cv2, 'quality'):
            def cv_gmsd():
                g = cv2.quality.QualityGMSD_compute(cv2.cvtColor(r8, cv2.COLOR_RGB2GRAY),
                                                    cv2.cvtColor(d8, cv2.COLOR_RGB2GRAY))
                return g[0][0]
            cells.append(('gmsd', 'OpenCV quality.GMSD', 'cvtColor RGB2GRAY (BT.601, rounded) inside the timed '
                          'call, then QualityGMSD_compute; not pyiqa\'s luma or padding', cv_gmsd))
            cells.append(('ssimc', 'OpenCV quality.SSIM', 'uint8 RGB, Gaussian 11/1.5 per channel, mean of the 3 '
                          'channels; not pyiqa\'s (no rounding step, its own borders)',
                          lambda: float(sum(cv2.quality.QualitySSIM_compute(r8, d8)[0][:3]) / 3)))
    except ImportError:
        pass
    try:
        import piq
        cells += [
            ('psnr', 'piq psnr', 'float32 RGB tensors, data_range 1, MSE over all channels; pyiqa\'s formula',
             lambda: float(piq.psnr(dt, rt, data_range=1.0))),
            ('ssimc', 'piq ssim', 'float32 RGB, Gaussian 11/1.5, downsample=False, valid borders',
             lambda: float(piq.ssim(dt, rt, data_range=1.0, downsample=False))),
            ('ms_ssim', 'piq multi_scale_ssim', 'float32 RGB (iqa: luma, as pyiqa), Gaussian 11/1.5, 5 scales',
             lambda: float(piq.multi_scale_ssim(dt, rt, data_range=1.0))),
            ('gmsd', 'piq gmsd', 'float32 RGB → Y of YIQ, pyiqa\'s port source (same formula)',
             lambda: float(piq.gmsd(dt, rt, data_range=1.0))),
            ('vsi', 'piq vsi', 'float32 RGB, pyiqa\'s port source (same formula)',
             lambda: float(piq.vsi(dt, rt, data_range=1.0))),
            ('vif', 'piq vif_p', 'float32 RGB → luma, pixel-domain VIF: a different formulation (speed anchor)',
             lambda: float(piq.vif_p(dt, rt, data_range=1.0))),
            ('fsim', 'piq fsim', 'float32 RGB, chromatic FSIMc (pyiqa\'s default)',
             lambda: float(piq.fsim(dt, rt, data_range=1.0, chromatic=True))),
        ]
    except ImportError:
        pass
    try:
        from torchmetrics.functional.image import (multiscale_structural_similarity_index_measure as tm_msssim,
                                                   peak_signal_noise_ratio as tm_psnr,
                                                   structural_similarity_index_measure as tm_ssim)
        cells += [
            ('psnr', 'torchmetrics PSNR', 'float32 RGB tensors, data_range 1; pyiqa\'s formula without its 1e-8',
             lambda: float(tm_psnr(dt, rt, data_range=1.0))),
            ('ssimc', 'torchmetrics SSIM', 'float32 RGB, Gaussian 11/1.5, reflect-padded borders',
             lambda: float(tm_ssim(dt, rt, data_range=1.0))),
            ('ms_ssim', 'torchmetrics MS-SSIM', 'float32 RGB (iqa: luma, as pyiqa), Gaussian 11/1.5, 5 scales',
             lambda: float(tm_msssim(dt, rt, data_range=1.0))),
        ]
    except ImportError:
        pass
    try:
        from skimage.metrics import peak_signal_noise_ratio as sk_psnr, structural_similarity as sk_ssim
        cells += [
            ('psnr', 'scikit-image PSNR', 'uint8 RGB, data_range 255, single-threaded numpy; pyiqa\'s formula '
             'without its 1e-8', lambda: float(sk_psnr(r8, d8, data_range=255))),
            ('ssimc', 'scikit-image SSIM', 'uint8 RGB, gaussian_weights, sigma 1.5, population covariance, '
             'channel_axis=2, single-threaded', lambda: float(sk_ssim(r8, d8, data_range=255, channel_axis=2,
                                                                     gaussian_weights=True, sigma=1.5,
                                                                     use_sample_covariance=False))),
        ]
    except ImportError:
        pass
    return cells


def file_cells():
    """Decode + score from files: (iqa metric, peer, settings, callable(dist, ref))."""
    cells = []
    try:
        import cv2
        cells.append(('psnr', 'OpenCV imread + PSNR', 'cv2.imread of both (BGR, IMREAD_COLOR), cv2.PSNR',
                      lambda d, r: cv2.PSNR(cv2.imread(r), cv2.imread(d))))
    except ImportError:
        pass
    return cells


def serve(kind, spec):
    """A timing server, in a child of its own: 'iqa' loads only libiqa.so (ctypes, RGB8 buffers), 'peers' loads
    the peer libraries (and torch). It prints READY with the cells it can time, then answers each request line
    {"cell": id, "n": k} on stdin with one warm-up call and k timed ones: {"times": [...], "score": s}. Run in
    separate processes so that neither library's threads or runtimes slow the other (importing piq beside
    libiqa made iqa's 2-thread libtorch metrics 10-30x slower: BENCHMARKS.md run 4)."""
    import numpy as np
    from PIL import Image
    dist_path, ref_path = spec['images']
    files = spec.get('files', {})
    calls = {}
    if kind == 'iqa':
        iqa = bm.Iqa(spec['lib'])
        di, ri = iqa.image(dist_path), iqa.image(ref_path)
        for metric in spec['iqa_metrics']:
            h = iqa.create(metric)[0]
            calls[f'buffer:{metric}'] = lambda h=h: iqa.score(h, di, ri)
            for fmt, (dp, rp) in files.items():
                calls[f'file:{fmt}:{metric}'] = lambda h=h, dp=dp, rp=rp: iqa.score_files(h, dp, rp)
        cells = {}
    else:
        import torch
        torch.set_num_threads(spec['threads'])
        torch.set_grad_enabled(False)
        d8 = np.ascontiguousarray(np.asarray(Image.open(dist_path).convert('RGB'), dtype=np.uint8))
        r8 = np.ascontiguousarray(np.asarray(Image.open(ref_path).convert('RGB'), dtype=np.uint8))
        dt = torch.from_numpy(d8).permute(2, 0, 1).unsqueeze(0).float().div(255).contiguous()
        rt = torch.from_numpy(r8).permute(2, 0, 1).unsqueeze(0).float().div(255).contiguous()
        cells = {}
        for i, (metric, peer, settings, call) in enumerate(peer_cells(d8, r8, dt, rt)):
            if spec['metrics'] and metric not in spec['metrics']:
                continue
            calls[f'buffer:{i}'] = call
            cells[f'buffer:{i}'] = {'metric': metric, 'peer': peer, 'settings': settings}
        for fmt, (dp, rp) in files.items():
            for i, (metric, peer, settings, call) in enumerate(file_cells()):
                calls[f'file:{fmt}:{i}'] = lambda call=call, dp=dp, rp=rp: call(dp, rp)
                cells[f'file:{fmt}:{i}'] = {'metric': metric, 'peer': peer, 'settings': settings, 'format': fmt}
    print('READY ' + json.dumps(cells), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            call = calls[request['cell']]
            score = float(call())
            times = []
            for _ in range(request['n']):
                t = time.perf_counter()
                call()
                times.append(time.perf_counter() - t)
            print(json.dumps({'times': times, 'score': score}), flush=True)
        except Exception as e:  # noqa: BLE001 - one failing cell is reported, the others still run
            print(json.dumps({'error': f'{type(e).__name__}: {e}'[:300]}), flush=True)


class Server:
    """The parent's end of a `serve` child."""

    def __init__(self, kind, spec, env):
        self.p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), '--_serve', kind, json.dumps(spec)],
                                  env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        if not line.startswith('READY '):
            raise RuntimeError(f'{kind} server did not start (exit {self.p.poll()})')
        self.cells = json.loads(line[len('READY '):])

    def time(self, cell, n):
        self.p.stdin.write(json.dumps({'cell': cell, 'n': n}) + '\n')
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f'server exited (code {self.p.wait()})')
        return json.loads(line)

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def alternate(iqa, iqa_cell, peers, peer_cell, quick):
    """Median seconds of iqa's and the peer's call, timed in their own processes in alternating batches (a
    change in machine load hits both), as benchmark.timed_pair does within one process."""
    target, min_rounds, cap = (0.6, 2, 40) if quick else (4.0, 5, 200)
    first = [iqa.time(iqa_cell, 1), peers.time(peer_cell, 1)]
    for r in first:
        if 'error' in r:
            raise RuntimeError(r['error'])
    # Batches of about 50 ms, so that handing over between the processes costs nothing measurable.
    per_batch = [max(1, min(20, int(0.05 / max(r['times'][0], 1e-6)))) for r in first]
    ta, tb = [], []
    start = time.perf_counter()
    while len(ta) < cap and (len(ta) < min_rounds * per_batch[0] or time.perf_counter() - start < target):
        ta += iqa.time(iqa_cell, per_batch[0])['times']
        tb += peers.time(peer_cell, per_batch[1])['times']
    return (statistics.median(ta), len(ta), first[0]['score']), (statistics.median(tb), len(tb), first[1]['score'])


def measure_size(spec, env, quick):
    """Every buffer and file cell at one size: iqa and the peers in two servers, alternating."""
    peers = Server('peers', spec, env)
    metrics = sorted({c['metric'] for c in peers.cells.values()})
    iqa = Server('iqa', dict(spec, iqa_metrics=metrics), env)
    out = {'buffer': [], 'file': []}
    try:
        for cell_id, cell in peers.cells.items():
            iqa_cell = cell_id.split(':')[0] + (f':{cell["format"]}' if 'format' in cell else '') + f':{cell["metric"]}'
            try:
                (ti, runs, si), (tp, _, sp) = alternate(iqa, iqa_cell, peers, cell_id, quick)
                cell.update(iqa=ti, peer_time=tp, runs=runs, iqa_score=si, peer_score=sp)
            except Exception as e:  # noqa: BLE001
                cell['error'] = f'{type(e).__name__}: {e}'[:300]
            out['file' if 'format' in cell else 'buffer'].append(cell)
    finally:
        iqa.close()
        peers.close()
    return out


# ---------------------------------------------------------------------------------------------------------------
# one process per pair
# ---------------------------------------------------------------------------------------------------------------

def wall(cmd, env):
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
    return time.perf_counter() - t, p


def process_cells(tmp, images, threads, quick, iqa_env):
    """Alternating wall times of whole processes on the 512x384 PNG pair."""
    dp, rp = images
    n = str(threads)
    cc = os.environ.get('CC', 'cc')
    floor_exe, cold_exe = tmp / 'dlopen_floor', tmp / 'coldstart'
    subprocess.run([cc, '-O2', '-o', str(floor_exe), str(ROOT / 'benches' / 'dlopen_floor.c'), '-ldl'], check=True)
    subprocess.run([cc, '-O2', '-o', str(cold_exe), str(ROOT / 'benches' / 'coldstart.c'), '-ldl'], check=True)
    import importlib.util
    torch_dir = Path(importlib.util.find_spec('torch').origin).parent / 'lib'
    lib = str(ROOT / 'target' / 'release' / 'libiqa.so')
    cmds = {
        'iqa score psnr (CLI)': [str(ROOT / 'target' / 'release' / 'iqa'), 'score', 'psnr', dp, rp],
        'coldstart.c psnr (dlopen libiqa + score)': [str(cold_exe), lib, 'psnr', dp, rp],
        'floor: dlopen libtorch_cpu.so only': [str(floor_exe), str(torch_dir / 'libtorch_cpu.so')],
    }
    if shutil.which('ffmpeg'):
        for f in ('psnr', 'ssim'):
            cmds[f'ffmpeg -lavfi {f}'] = ['ffmpeg', '-nostdin', '-loglevel', 'error', '-threads', n, '-i', dp,
                                          '-i', rp, '-lavfi', f, '-f', 'null', '-']
    phases_exe = tmp / 'startup_phases'
    subprocess.run([cc, '-O2', '-o', str(phases_exe), str(ROOT / 'benches' / 'startup_phases.c'), '-ldl'],
                   check=True)
    phases_cmd = [str(phases_exe), str(torch_dir / 'libtorch_cpu.so'), lib, 'psnr', dp, rp]
    runs = 3 if quick else 9
    times = {k: [] for k in cmds}
    phases = {}
    failures = {}
    for _ in range(runs):
        for k, cmd in cmds.items():
            t, p = wall(cmd, iqa_env)
            if p.returncode != 0:
                failures[k] = (p.stderr or p.stdout)[-300:]
            times[k].append(t)
        _, p = wall(phases_cmd, iqa_env)
        for line in p.stdout.splitlines():
            if line.endswith(' ms'):
                name, ms = line[:-3].rsplit(None, 1)
                phases.setdefault(name.strip(), []).append(float(ms) / 1e3)
    rows = [{'process': k, 'median': statistics.median(v), 'runs': len(v), 'error': failures.get(k)}
            for k, v in times.items()]
    # Milliseconds since process start at the end of each phase of startup_phases.c (psnr, the PNG pair).
    rows += [{'process': f'startup_phases.c: {name} done', 'median': statistics.median(v), 'runs': len(v),
              'error': None} for name, v in phases.items()]
    return rows


def peak_cells(tmp, images, iqa_env):
    """iqa's peak RSS (VmHWM) in a fresh process scoring one pair of files (benches/coldstart.c), for psnr (the
    process floor: libtorch, the decoded pair) and the SSIM family, whose target is a peak."""
    dp, rp = images
    cold_exe = tmp / 'coldstart_peaks'
    cc = os.environ.get('CC', 'cc')
    subprocess.run([cc, '-O2', '-o', str(cold_exe), str(ROOT / 'benches' / 'coldstart.c'), '-ldl'], check=True)
    lib = str(ROOT / 'target' / 'release' / 'libiqa.so')
    peaks = {}
    for metric in ('psnr',) + SSIM_FAMILY:
        _, p = wall([str(cold_exe), lib, metric, dp, rp], iqa_env)
        kb = next((int(line.split()[1]) for line in p.stdout.splitlines() if line.startswith('vmhwm_kb')), None)
        peaks[metric] = kb if p.returncode == 0 else None
    return peaks


# ---------------------------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------------------------

def make_file_variants(tmp, images):
    """The PNG pair again as BMP and JPEG (quality 90, the distorted image re-encoded as it is)."""
    from PIL import Image
    out = {'png': images}
    for fmt in ('bmp', 'jpg'):
        pair = []
        for p in images:
            q = str(Path(p).with_suffix('.' + fmt))
            Image.open(p).convert('RGB').save(q, quality=90) if fmt == 'jpg' else Image.open(p).save(q)
            pair.append(q)
        out[fmt] = tuple(pair)
    return out


def child_env(base_env, threads):
    env = dict(base_env)
    peers = str(PEERS_DIR)
    env['PYTHONPATH'] = peers + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    n = str(threads)
    env.update(OMP_NUM_THREADS=n, MKL_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n, IQA_NUM_THREADS=n)
    return env


def measure(tmp, sizes, threads, quick, lib, iqa_env, metrics=None, say=print, large_metrics=None):
    """Runs every section; returns the results dict (see tables()). `large_metrics`: the only metrics measured at
    the sizes after the first (None: the same as at the first)."""
    env = child_env(iqa_env, threads)
    res = {'sizes': [], 'process': None, 'peers_dir': str(PEERS_DIR), 'versions': peer_versions(env)}
    images = {}
    from PIL import Image
    d = Image.open(bm.CAL / 'dist' / bm.MAIN_IMAGE).convert('RGB')
    r = Image.open(bm.CAL / 'ref' / bm.MAIN_IMAGE).convert('RGB')
    for size in sizes:
        pair = []
        for tag, im in (('dist', d), ('ref', r)):
            p = tmp / f'peer_{tag}_{bm.size_key(size)}.png'
            if not p.exists():
                (im if im.size == size else im.resize(size, Image.BICUBIC)).save(p)
            pair.append(str(p))
        images[bm.size_key(size)] = tuple(pair)
    for i, size in enumerate(sizes):
        key = bm.size_key(size)
        say(f'peers at {key} ...')
        spec = {'kind': 'peers', 'images': images[key], 'threads': threads, 'lib': lib, 'quick': quick,
                'metrics': metrics if i == 0 or large_metrics is None else large_metrics,
                'files': make_file_variants(tmp, images[key])}
        try:
            out = measure_size(spec, env, quick)
        except Exception as e:  # noqa: BLE001 - the other sizes and the process section still run
            say(f'  failed: {e}')
            out = {'buffer': [], 'file': [], 'error': str(e)}
        out['size'] = key
        res['sizes'].append(out)
    say('processes (one per pair) ...')
    res['process'] = process_cells(tmp, images[bm.size_key(sizes[0])], threads, quick, env)
    largest = bm.size_key(sizes[-1])
    say(f'peak RSS at {largest} ...')
    res['peaks'] = {'size': largest, 'kb': peak_cells(tmp, images[largest], env)}
    return res


def peer_versions(env):
    code = ('import json, importlib.metadata as m\nv = {}\n'
            'for p in ("opencv-contrib-python-headless", "piq", "torchmetrics", "scikit-image", "torch"):\n'
            '    try: v[p] = m.version(p)\n    except m.PackageNotFoundError: v[p] = None\nprint(json.dumps(v))')
    p = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, check=False)
    try:
        v = json.loads(p.stdout)
    except ValueError:
        v = {}
    if shutil.which('ffmpeg'):
        line = subprocess.run(['ffmpeg', '-version'], capture_output=True, text=True, check=False).stdout
        v['ffmpeg'] = line.split('\n')[0].split(' ')[2] if line else None
    return v


def tables(res):
    out = []
    rows = []
    for s in res['sizes']:
        for c in s['buffer']:
            rows.append(cell_row(s['size'], c))
    out.append(('From buffers (peer time / iqa time: above 1, iqa is faster)',
                ['metric', 'size', 'iqa', 'peer', 'peer time', 'peer / iqa', 'iqa score', 'peer score',
                 'peer settings'], rows))
    rows = []
    for s in res['sizes']:
        for c in s['file']:
            rows.append(cell_row(f'{s["size"]} {c["format"].upper()}', c))
    out.append(('From files (decode both + score)',
                ['metric', 'size, format', 'iqa', 'peer', 'peer time', 'peer / iqa', 'iqa score', 'peer score',
                 'peer settings'], rows))
    if res.get('process'):
        rows = [[p['process'], bm.fmt_time(p['median']), str(p['runs']), 'failed: ' + p['error'] if p['error']
                 else ''] for p in res['process']]
        out.append(('One process per pair (512x384 PNG, spawn to exit, median)', ['process', 'wall', 'runs', ''],
                    rows))
    return out


def cell_row(where, c):
    if 'error' in c:
        return [c['metric'], where, 'error', c['peer'], '-', '-', '-', '-', c['error']]
    return [c['metric'], where, bm.fmt_time(c['iqa']), c['peer'], bm.fmt_time(c['peer_time']),
            bm.fmt_ratio(c['peer_time'] / c['iqa']), f'{c["iqa_score"]:.6g}', f'{c["peer_score"]:.6g}',
            c['settings']]


def machine_line(threads):
    cpu = '?'
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return (f'{cpu}, {os.cpu_count()} logical CPUs, {threads} threads each, '
            f'{time.strftime("%Y-%m-%d %H:%M %Z")}')


# Issue 20's targets for a peer time: iqa at least as fast as the fastest peer, except where the issue names
# its own bound (psnr and gmsd: within 1.2x of OpenCV; vsi and vif: at least piq's speed).
OWN_TARGETS = {'psnr': ('OpenCV', 1 / 1.2, 'within 1.2× of OpenCV'),
               'gmsd': ('OpenCV', 1 / 1.2, 'within 1.2× of OpenCV'),
               'vsi': ('piq', 1.0, "at least piq's speed"),
               'vif': ('piq', 1.0, "at least piq's speed")}
SSIM_FAMILY = ('ssim', 'ssimc', 'ms_ssim')
PEAK_TARGET_MB = 200


def targets_section(res):
    """The performance issue's targets with this run's figures: per metric and size from buffers the fastest
    peer (and the peer the issue names), per file format OpenCV, the SSIM family's peak RSS at the largest size
    (beside psnr's, the process floor), and the process start against ffmpeg."""
    def verdict(ok):
        return 'met' if ok else '**not met**'

    rows = []
    for s in res['sizes']:
        by_metric = {}
        for c in s['buffer']:
            if 'error' not in c:
                by_metric.setdefault(c['metric'], []).append(c)
        for metric, cells in by_metric.items():
            fastest = min(cells, key=lambda c: c['peer_time'])
            ratio = fastest['peer_time'] / fastest['iqa']
            named = OWN_TARGETS.get(metric)
            if named:
                cell = next((c for c in cells if c['peer'].startswith(named[0])), None)
                if cell is not None:
                    r = cell['peer_time'] / cell['iqa']
                    rows.append([f'{metric} {s["size"]}, buffers', named[2], cell['peer'],
                                 f'{bm.fmt_time(cell["iqa"])} vs {bm.fmt_time(cell["peer_time"])}',
                                 bm.fmt_ratio(r), verdict(r >= named[1])])
                    if cell is fastest:
                        continue
            rows.append([f'{metric} {s["size"]}, buffers', 'at least the fastest peer\'s speed', fastest['peer'],
                         f'{bm.fmt_time(fastest["iqa"])} vs {bm.fmt_time(fastest["peer_time"])}', bm.fmt_ratio(ratio),
                         verdict(ratio >= 1)])
    for s in res['sizes']:
        for c in s['file']:
            if 'error' in c:
                continue
            ratio = c['peer_time'] / c['iqa']
            rows.append([f'{c["metric"]} {s["size"]} {c["format"].upper()}, files', 'decode + score no slower than '
                         'OpenCV', c['peer'], f'{bm.fmt_time(c["iqa"])} vs {bm.fmt_time(c["peer_time"])}',
                         bm.fmt_ratio(ratio), verdict(ratio >= 1)])
    peaks = res.get('peaks') or {}
    floor = (peaks.get('kb') or {}).get('psnr')
    for metric in SSIM_FAMILY:
        kb = (peaks.get('kb') or {}).get(metric)
        if kb:
            rows.append([f'{metric} {peaks["size"]}, peak RSS', f'under {PEAK_TARGET_MB} MB', '-',
                         f'{bm.fmt_mb(kb)} (psnr, the process floor: {bm.fmt_mb(floor)})', '-',
                         verdict(kb / 1024 < PEAK_TARGET_MB)])
    process = {p['process']: p['median'] for p in res.get('process') or [] if not p.get('error')}
    cli, floor = process.get('iqa score psnr (CLI)'), process.get('floor: dlopen libtorch_cpu.so only')
    ffmpeg = process.get('ffmpeg -lavfi psnr')
    if cli and floor and ffmpeg:
        rows.append(['one process per pair, psnr', "cut iqa's own start-up; report the floor", 'ffmpeg -lavfi psnr',
                     f'{bm.fmt_time(cli)} (floor {bm.fmt_time(floor)}) vs {bm.fmt_time(ffmpeg)}',
                     bm.fmt_ratio(ffmpeg / cli), f'iqa is {bm.fmt_time(cli - floor)} above the floor'])
    lines = ['## Against the performance issue\'s targets', '',
             'Every figure from this run: the tables below, and the peak RSS (VmHWM) of a fresh process scoring one '
             'pair of files at the largest size (benches/coldstart.c). Ratio: peer time / iqa time (above 1: iqa '
             'faster).', '',
             '| what | target | peer | iqa vs peer | ratio | result |', '|---|---|---|---|---|---|']
    lines += ['| ' + ' | '.join(str(x) for x in r) + ' |' for r in rows]
    return '\n'.join(lines) + '\n'


def markdown_section(res):
    lines = [targets_section(res), '## Against other libraries (OpenCV, piq, torchmetrics, scikit-image, ffmpeg)', '']
    if res.get('machine'):
        la, lb = res.get('loadavg_at_start'), res.get('loadavg_at_end')
        lines += [f'Machine: {res["machine"]}; load average (1, 5, 15 min) at start ' +
                  ' '.join(f'{x:.2f}' for x in la) + ', at end ' + ' '.join(f'{x:.2f}' for x in lb) + '.', '']
    lines += [
             'Measured by scripts/bench_peers.py in the same run, iqa and each peer in processes of their own, '
             'alternating batches of calls (see its docstring). Versions: ' +
             ', '.join(f'{k} {v}' for k, v in res['versions'].items() if v) + '.', '']
    for title, header, rows in tables(res):
        lines += [f'### {title}', '', '| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
        lines += ['| ' + ' | '.join(str(x).replace('|', '\\|') for x in r) + ' |' for r in rows]
        lines.append('')
    return '\n'.join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--sizes', default=bm.DEFAULT_SIZES)
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--quick', action='store_true', help='fewer repetitions (a few minutes in all)')
    ap.add_argument('--metrics', help='comma-separated iqa metrics to compare (default: all with a peer)')
    ap.add_argument('--large-metrics', help='only these metrics at the sizes after the first (default: the same; '
                    '--quick: psnr,gmsd,ssimc, the memory-bound ones)')
    ap.add_argument('--library', default=str(ROOT / 'target' / 'release' / 'libiqa.so'))
    ap.add_argument('--weights-dir',
                    default=os.environ.get('IQA_WEIGHTS_DIR') or str(ROOT.parent / 'shared' / 'weights'))
    ap.add_argument('--markdown', help='write the section as Markdown to this file')
    ap.add_argument('--json', help='write every measurement to this file')
    ap.add_argument('--_serve', nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._serve:
        serve(args._serve[0], json.loads(args._serve[1]))
        return
    if not PEERS_DIR.exists():
        print(f'{PEERS_DIR} missing: run scripts/setup.sh --bench first', file=sys.stderr)
    sizes = [bm.parse_size(s) for s in args.sizes.split(',')]
    load = os.getloadavg()
    bm.say(f'load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; threads {args.threads}')
    tmp = Path(tempfile.mkdtemp(prefix='iqa_peers_'))
    try:
        iqa_env = dict(os.environ, IQA_DEVICE='cpu', IQA_OFFLINE='1', IQA_WEIGHTS_DIR=args.weights_dir,
                       IQA_CACHE_DIR=str(tmp / 'iqa_cache'), CUDA_VISIBLE_DEVICES='', PYTHONDONTWRITEBYTECODE='1')
        metrics = [m.strip() for m in args.metrics.split(',')] if args.metrics else None
        large = args.large_metrics or ('psnr,gmsd,ssimc' if args.quick else None)
        large = [m.strip() for m in large.split(',')] if large else None
        res = measure(tmp, sizes, args.threads, args.quick, str(Path(args.library).resolve()), iqa_env, metrics,
                      say=bm.say, large_metrics=large)
        res['machine'] = machine_line(args.threads)
        res['loadavg_at_start'] = load
        res['loadavg_at_end'] = os.getloadavg()
        for title, header, rows in tables(res):
            bm.print_table(title, header, rows)
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=1))
        if args.markdown:
            Path(args.markdown).write_text(markdown_section(res) + '\n')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
