"""The `iqa score` command against pyiqa's own `pyiqa` command on the same folders, whole processes, same threads.

    .venv/bin/python scripts/bench_cli.py [--pairs 200] [--threads 2] [--metrics psnr,ssim,lpips] [--no-warmup]

Makes N pairs of 512x384 PNG images (shifted and flipped crops of the five calibration pairs) in a temporary folder,
and a torch hub laid out as pyiqa leaves it (pyiqa's LPIPS file, torchvision's AlexNet checkpoint made from the
shared folder's feature tensors, since neither can be downloaded here), then runs, each once after one warm-up run
(unless --no-warmup):

    pyiqa psnr ssim lpips -t DIST -r REF              (torch on THREADS threads: OMP/MKL_NUM_THREADS)
    iqa score -m psnr,ssim,lpips DIST REF --threads THREADS --csv out.csv

Both read the same hub (TORCH_HOME). Measured per process: wall time, CPU time (user + system, from wait4) and CPU
use (CPU time / wall time, 2.0 = both cores busy); and the per-metric means of both, which must agree. Prints a
markdown table with the machine and its load average (other jobs share this machine: run it when `uptime` is low).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CALIBRATION = ROOT / "data" / "calibration"
IMAGES = ["I03.bmp", "I04.bmp", "I06.bmp", "I08.bmp", "I19.bmp"]


def shared_weights():
    default = os.environ.get("IQA_WEIGHTS_DIR") or ROOT.parent / "shared" / "weights"
    return Path(default)


def make_pairs(out, count):
    """count pairs of 512x384 images: each calibration pair rolled by a different offset, every other one
    mirrored (same transform on both images of a pair)."""
    (out / "dist").mkdir(parents=True)
    (out / "ref").mkdir(parents=True)
    sources = [(np.asarray(Image.open(CALIBRATION / "dist" / n).convert("RGB")),
                np.asarray(Image.open(CALIBRATION / "ref" / n).convert("RGB"))) for n in IMAGES]
    for i in range(count):
        d, r = sources[i % len(sources)]
        shift = (7 * i) % 97
        dx, rx = np.roll(d, shift, axis=1), np.roll(r, shift, axis=1)
        if (i // len(sources)) % 2:
            dx, rx = dx[:, ::-1], rx[:, ::-1]
        Image.fromarray(np.ascontiguousarray(dx)).save(out / "dist" / f"{i:04d}.png")
        Image.fromarray(np.ascontiguousarray(rx)).save(out / "ref" / f"{i:04d}.png")


def make_hub(torch_home, shared):
    """pyiqa's LPIPS v0.1 alex file and torchvision's AlexNet checkpoint (features from the shared copy, the
    classifier as zeros stored as one broadcast element: pyiqa's LPIPS uses .features only)."""
    import torch
    from safetensors.torch import load_file
    from torchvision import models as tvm

    pyiqa_dir = torch_home / "hub" / "pyiqa"
    checkpoints = torch_home / "hub" / "checkpoints"
    pyiqa_dir.mkdir(parents=True)
    checkpoints.mkdir(parents=True)
    shutil.copyfile(shared / "lpips" / "lpips_v0.1_alex_lin.pth", pyiqa_dir / "LPIPS_v0.1_alex-df73285e.pth")
    features = load_file(str(shared / "backbones" / "alexnet_features_torchvision.safetensors"))
    with torch.device("meta"):
        wanted = tvm.alexnet().state_dict()
    state = {k: features[k].contiguous() if k in features else torch.zeros((), dtype=t.dtype).expand(t.shape)
             for k, t in wanted.items()}
    torch.save(state, checkpoints / "alexnet-owt-7be5be79.pth")


def timed(cmd, env):
    """Wall seconds, CPU seconds (user + system of the finished child, from its resource usage) and output."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout, proc.stderr


def pyiqa_means(text):
    means = {}
    for metric, value in re.findall(r"'(\w+)': \{'mean': (?:np\.float64\()?([-0-9.e]+)", text):
        means[metric] = float(value)
    return means


def iqa_means(csv_path):
    scores = {}
    for line in csv_path.read_text().splitlines()[1:]:
        dist, ref, metric, score, error = line.split(",", 4)
        if error:
            sys.exit(f"iqa error row: {line}")
        scores.setdefault(metric, []).append(float(score))
    return {m: sum(v) / len(v) for m, v in scores.items()}, {m: len(v) for m, v in scores.items()}


def machine():
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{model}, {os.cpu_count()} cores"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--metrics", default="psnr,ssim,lpips")
    parser.add_argument("--no-warmup", action="store_true",
                        help="skip the warm-up run of each command (the images were just written: in the page cache)")
    args = parser.parse_args()
    metrics = args.metrics.split(",")
    iqa_bin = ROOT / "target" / "release" / "iqa"
    pyiqa_bin = ROOT / ".venv" / "bin" / "pyiqa"
    if not iqa_bin.exists():
        sys.exit(f"{iqa_bin} is missing: cargo build --release --bin iqa")

    tmp = Path(tempfile.mkdtemp(prefix="iqa_bench_cli_"))
    try:
        make_pairs(tmp / "pairs", args.pairs)
        make_hub(tmp / "torch", shared_weights())
        env = dict(os.environ)
        for k in ("IQA_WEIGHTS_DIR", "IQA_NUM_THREADS", "IQA_PRESET", "IQA_PRECISION", "XDG_CACHE_HOME"):
            env.pop(k, None)
        threads = str(args.threads)
        env.update(TORCH_HOME=str(tmp / "torch"), HF_HUB_OFFLINE="1", IQA_OFFLINE="1", IQA_CACHE_DIR=str(tmp / "cache"),
                   OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        dist, ref = str(tmp / "pairs" / "dist"), str(tmp / "pairs" / "ref")
        csv = tmp / "iqa.csv"
        pyiqa_cmd = [str(pyiqa_bin), *metrics, "-t", dist, "-r", ref]
        iqa_cmd = [str(iqa_bin), "score", "-m", ",".join(metrics), dist, ref, "--threads", threads, "--csv", str(csv),
                   "--quiet"]
        load_before = os.getloadavg()
        if not args.no_warmup:
            timed(iqa_cmd, env)  # warm-up: file caches, first-run costs
            timed(pyiqa_cmd, env)
        iqa_wall, iqa_cpu, _, _ = timed(iqa_cmd, env)
        py_wall, py_cpu, py_out, _ = timed(pyiqa_cmd, env)
        load_after = os.getloadavg()

        ours, counts = iqa_means(csv)
        theirs = pyiqa_means(py_out)
        print(f"machine: {machine()}; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
        print(f"{args.pairs} pairs of 512x384 PNG, metrics {', '.join(metrics)}, {args.threads} threads each\n")
        print("| command | wall s | CPU s | CPU use (cores) | s per pair |")
        print("|---|---|---|---|---|")
        for name, wall, cpu in [("pyiqa " + " ".join(metrics) + " -t DIST -r REF", py_wall, py_cpu),
                                ("iqa score -m " + ",".join(metrics) + " DIST REF", iqa_wall, iqa_cpu)]:
            print(f"| `{name}` | {wall:.2f} | {cpu:.2f} | {cpu / wall:.2f} | {wall / args.pairs:.4f} |")
        print(f"\niqa is {py_wall / iqa_wall:.1f}x faster (wall), using {iqa_cpu / py_cpu:.2f}x pyiqa's CPU time\n")
        print("| metric | pyiqa mean | iqa mean | scored by iqa |")
        print("|---|---|---|---|")
        for m in metrics:
            print(f"| {m} | {theirs.get(m, float('nan')):.6f} | {ours.get(m, float('nan')):.6f} | {counts.get(m, 0)} |")
        for m in metrics:
            if m not in theirs or abs(theirs[m] - ours[m]) > 1e-4 * max(1.0, abs(theirs[m])):
                sys.exit(f"means differ for {m}: pyiqa {theirs.get(m)} iqa {ours.get(m)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
