"""Video scoring speed: frames per second at 1920x1080 I420 through `iqa video`, beside ffmpeg's psnr and ssim
filters on the same Y4M pair and pyiqa on the same frames extracted as PNG. `make bench-video`.

The clip: FRAMES frames of ffmpeg's testsrc2 (moving, textured) as the reference, the same encoded with x264 at
CRF 35 and decoded as the distorted video, both yuv420p Y4M, made once in target/bench_video/.

Rates are per frame after start-up: each command is timed on the whole clip and on its first frame alone
(median of RUNS, alternating between tools), and the rate is (frames - 1) / (T_clip - T_first), so process
start-up, model loading and file opening do not count against any tool. pyiqa is timed in one process (a metric
created once, then PNG pairs scored one by one, file reading included, as pyiqa's own command does).
ffmpeg's ssim is its own formula (on Y, U, V planes, 8x8 blocks): a speed anchor only; its psnr is over Y, U, V
samples, iqa's and pyiqa's over RGB. Nothing here asserts a timing.
"""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORK = ROOT / 'target' / 'bench_video'
IQA = ROOT / 'target' / 'release' / 'iqa'


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def make_clip(frames, size):
    WORK.mkdir(parents=True, exist_ok=True)
    ref, dist = WORK / f'ref_{frames}.y4m', WORK / f'dist_{frames}.y4m'
    if not (ref.exists() and dist.exists()):
        src = f'testsrc2=size={size}:rate=25'
        run(['ffmpeg', '-y', '-loglevel', 'error', '-f', 'lavfi', '-i', src, '-frames:v', str(frames),
             '-pix_fmt', 'yuv420p', '-strict', '-1', str(ref)])
        mp4 = WORK / 'dist.mp4'
        run(['ffmpeg', '-y', '-loglevel', 'error', '-i', str(ref), '-c:v', 'libx264', '-crf', '35',
             '-preset', 'veryfast', str(mp4)])
        run(['ffmpeg', '-y', '-loglevel', 'error', '-i', str(mp4), '-pix_fmt', 'yuv420p', '-strict', '-1',
             str(dist)])
    firsts = []
    for p in (dist, ref):
        one = WORK / f'{p.stem}_first.y4m'
        if not one.exists():
            run(['ffmpeg', '-y', '-loglevel', 'error', '-i', str(p), '-frames:v', '1', '-strict', '-1', str(one)])
        firsts.append(one)
    return (dist, ref), tuple(firsts)


def pngs(video, frames):
    out = WORK / f'{video.stem}_png'
    if not out.exists() or len(list(out.glob('*.png'))) != frames:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        run(['ffmpeg', '-y', '-loglevel', 'error', '-i', str(video), '-pix_fmt', 'rgb24', str(out / '%04d.png')])
    return sorted(out.glob('*.png'))


def timed(cmd, env):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    return time.perf_counter() - t


PYIQA_CHILD = r'''
import sys, json, time, torch
sys.path.insert(0, {scripts!r})
import pyiqa_env
pyiqa_env.setup_weights()
import pyiqa
torch.set_num_threads({threads})
name, dist, ref = {name!r}, {dist!r}, {ref!r}
metric = pyiqa.create_metric(name, device='cpu', **pyiqa_env.metric_kwargs(name, pyiqa_env.TMP / 'kw'))
with torch.no_grad():
    metric(dist[0], ref[0])
    times = []
    for d, r in zip(dist, ref):
        t = time.perf_counter()
        metric(d, r)
        times.append(time.perf_counter() - t)
print(json.dumps(times))
'''


def pyiqa_rate(name, dist, ref, threads):
    code = PYIQA_CHILD.format(scripts=str(ROOT / 'scripts'), threads=threads, name=name,
                              dist=[str(p) for p in dist], ref=[str(p) for p in ref])
    out = run([str(ROOT / '.venv' / 'bin' / 'python'), '-c', code]).stdout.strip().splitlines()[-1]
    return 1.0 / statistics.median(json.loads(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--frames', type=int, default=25)
    ap.add_argument('--size', default='1920x1080')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--metrics', default='psnr,ssim,lpips')
    ap.add_argument('--pyiqa-frames', type=int, default=8, help='frames pyiqa scores (it is the slowest)')
    ap.add_argument('--markdown', help='also write the table here')
    args = ap.parse_args()
    if not IQA.exists() or not shutil.which('ffmpeg'):
        sys.exit('needs target/release/iqa (cargo build --release) and ffmpeg')
    (dist, ref), (dist1, ref1) = make_clip(args.frames, args.size)
    env = dict(os.environ, IQA_NUM_THREADS=str(args.threads))
    env.setdefault('IQA_WEIGHTS_DIR', str(ROOT.parent / 'shared' / 'weights'))
    metrics = args.metrics.split(',')
    n = str(args.threads)

    def iqa_cmd(m, d, r):
        return [str(IQA), 'video', '-q', '-m', m, '--dist', str(d), '--ref', str(r), '--json', os.devnull]

    def ffmpeg_cmd(f, d, r):
        return ['ffmpeg', '-nostdin', '-loglevel', 'error', '-threads', n, '-filter_threads', n, '-i', str(d),
                '-i', str(r), '-lavfi', f'[0:v][1:v]{f}', '-f', 'null', '-']

    tools = {f'iqa video -m {m}': (iqa_cmd, m) for m in metrics}
    for f in ('psnr', 'ssim'):
        tools[f'ffmpeg -lavfi {f}'] = (ffmpeg_cmd, f)
    clip, first = {k: [] for k in tools}, {k: [] for k in tools}
    for _ in range(args.runs):
        for k, (make, m) in tools.items():
            clip[k].append(timed(make(m, dist, ref), env))
            first[k].append(timed(make(m, dist1, ref1), env))
    rates = {}
    for k in tools:
        tc, t1 = statistics.median(clip[k]), statistics.median(first[k])
        rates[k] = (args.frames - 1) / max(tc - t1, 1e-9)
    pd, pr = pngs(dist, args.frames)[:args.pyiqa_frames], pngs(ref, args.frames)[:args.pyiqa_frames]
    for m in metrics:
        rates[f'pyiqa {m} (PNG frames)'] = pyiqa_rate(m, pd, pr, args.threads)
    cpu = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo') if line.startswith('model name')),
               '?')
    lines = [f'Video, {args.size} I420, {args.frames} frames (testsrc2, x264 CRF 35), {args.threads} threads, '
             f'{os.cpu_count()} cores ({cpu}), load {os.getloadavg()[0]:.2f}; per-frame rate after start-up.', '',
             '| tool | frames/s | ms/frame |', '| --- | ---: | ---: |']
    for k, r in rates.items():
        lines.append(f'| {k} | {r:.2f} | {1e3 / r:.1f} |')
    for m in ('psnr', 'ssim'):
        a, b = f'iqa video -m {m}', f'ffmpeg -lavfi {m}'
        if a in rates:
            lines.append(f'\n{m}: iqa / ffmpeg speed {rates[a] / rates[b]:.2f}x')
    text = '\n'.join(lines)
    print(text)
    if args.markdown:
        pathlib.Path(args.markdown).write_text(text + '\n')


if __name__ == '__main__':
    main()
