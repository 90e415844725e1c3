#!/usr/bin/env python3
"""The `iqa` Python package against pyiqa 0.1.16, measured in the same run on the same images and threads.

    .venv/bin/python scripts/benchmark_python.py [--metrics psnr,ssim,lpips,dists] [--repeat 5] [--markdown F]
    make python-bench

Each measurement is a fresh process (`--child`), so that start-up and peak memory are each library's own:
  - cold: `import` + create_metric + the first score of a calibration pair from files, and each part of it;
  - steady: median seconds per image after that, from files and from a 1x3x384x512 float32 torch tensor;
  - peak RSS of the process (ru_maxrss) after all of it;
  - threads: images/s of one metric object scored from 1 and from 2 Python threads, each library limited to
    one intra-op thread (IQA_NUM_THREADS=1, torch.set_num_threads(1)), so that the speed-up is the threads'.
Ratios are pyiqa/iqa: > 1 means iqa is faster or smaller. Needs `make build` (target/release/libiqa.so) and
scripts/setup.sh --dev (pyiqa).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAL = ROOT / "data" / "calibration"
PAIR = (str(CAL / "dist" / "I03.bmp"), str(CAL / "ref" / "I03.bmp"))
THREAD_IMAGES = ["I03.bmp", "I04.bmp", "I06.bmp", "I08.bmp", "I19.bmp"] * 2


def child_cold(lib, name, repeat):
    """Runs in a fresh process: prints one JSON object."""
    t0 = time.perf_counter()
    if lib == "iqa":
        sys.path.insert(0, str(ROOT / "python"))
        import iqa as module
    else:
        import pyiqa as module
    t1 = time.perf_counter()
    metric = module.create_metric(name, device="cpu")
    t2 = time.perf_counter()
    fr = metric.metric_mode == "FR"
    args = PAIR if fr else PAIR[:1]
    first = float(metric(*args))
    t3 = time.perf_counter()
    files = []
    for _ in range(repeat):
        s = time.perf_counter()
        metric(*args)
        files.append(time.perf_counter() - s)
    import numpy as np
    import torch
    from PIL import Image

    def tensor(path):
        return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)[None].float().div(255)

    targs = [tensor(p).contiguous() for p in args]
    tensors = []
    with torch.no_grad():
        for _ in range(repeat):
            s = time.perf_counter()
            metric(*targs)
            tensors.append(time.perf_counter() - s)
    print(json.dumps({
        "import": t1 - t0, "create": t2 - t1, "first": t3 - t2, "cold": t3 - t0, "score": first,
        "files": statistics.median(files), "tensor": statistics.median(tensors),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def child_threads(lib, name, threads):
    import numpy as np
    import torch
    from PIL import Image

    if lib == "iqa":
        sys.path.insert(0, str(ROOT / "python"))
        import iqa

        metric = iqa.create_metric(name, device="cpu")
    else:
        import pyiqa

        torch.set_num_threads(1)
        metric = pyiqa.create_metric(name, device="cpu")

    def load(kind, image):
        return torch.from_numpy(np.array(Image.open(CAL / kind / image).convert("RGB"))).permute(2, 0, 1)[None] \
            .float().div(255).contiguous()

    pairs = [(load("dist", i), load("ref", i)) for i in THREAD_IMAGES]
    with torch.no_grad():
        metric(*pairs[0])  # warm-up: first-call allocations and lazy initialisation

        def work(part):
            with torch.no_grad():
                for d, r in part:
                    metric(d, r)

        start = time.perf_counter()
        workers = [threading.Thread(target=work, args=(pairs[k::threads],)) for k in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - start
    print(json.dumps({"images_per_s": len(pairs) / elapsed}))


def child_weights(cache, _name, _n):
    """pyiqa's weights from the shared folder, no downloads: scripts/pyiqa_env.py's setup_weights() fills its
    temporary TORCH_HOME and caches, copied here to `cache` for the pyiqa children."""
    import shutil

    sys.path.insert(0, str(ROOT / "scripts"))
    import pyiqa_env as deep

    deep.setup_weights()
    for sub in ("torch", "xdg_cache"):
        if (deep.TMP / sub).exists():
            shutil.copytree(deep.TMP / sub, Path(cache) / sub, dirs_exist_ok=True)
    print("{}")


PYIQA_ENV = {}


def run_child(*args, env=None):
    env = {**os.environ, **PYIQA_ENV, **(env or {})}
    out = subprocess.run([sys.executable, __file__, "--child", *map(str, args)], capture_output=True, text=True,
                         env=env)
    if out.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def ratio(p, i):
    return f"{p / i:.1f}×" if i > 0 else "-"


def main():
    ap = argparse.ArgumentParser()
    # Metrics pyiqa creates without parameter files (niqe & co. need scripts/pyiqa_env.py's metric_kwargs).
    ap.add_argument("--metrics", default="psnr,ssim,lpips,dists")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--thread-metric", default="ssim")
    ap.add_argument("--markdown", help="also write the tables to this file")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, lib, name, n = args.child
        {"cold": child_cold, "threads": child_threads, "weights": child_weights}[kind](lib, name, int(n))
        return

    import shutil
    import tempfile

    cache = Path(tempfile.mkdtemp(prefix="iqa_bench_python_"))
    run_child("weights", str(cache), "-", 0)
    PYIQA_ENV.update(TORCH_HOME=str(cache / "torch"), XDG_CACHE_HOME=str(cache / "xdg_cache"), HF_HUB_OFFLINE="1")

    lines = [
        f"`scripts/benchmark_python.py --metrics {args.metrics} --repeat {args.repeat}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, CPU, fp32; "
        "ratios pyiqa/iqa (> 1: iqa faster or smaller).",
        "",
        "| metric | cold start iqa (import + create + first) | pyiqa | ratio | s/image files iqa | pyiqa | ratio "
        "| s/image tensor iqa | pyiqa | ratio | peak RSS iqa | pyiqa | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in args.metrics.split(","):
        i = run_child("cold", "iqa", name, args.repeat)
        p = run_child("cold", "pyiqa", name, args.repeat)
        assert abs(i["score"] - p["score"]) <= 1e-4 * abs(p["score"]) + 1e-5, (name, i["score"], p["score"])
        lines.append(
            f"| {name} | {i['cold']:.3f} s ({i['import']:.3f} + {i['create']:.3f} + {i['first']:.3f}) "
            f"| {p['cold']:.2f} s ({p['import']:.2f} + {p['create']:.2f} + {p['first']:.2f}) "
            f"| {ratio(p['cold'], i['cold'])} "
            f"| {i['files']:.4f} | {p['files']:.4f} | {ratio(p['files'], i['files'])} "
            f"| {i['tensor']:.4f} | {p['tensor']:.4f} | {ratio(p['tensor'], i['tensor'])} "
            f"| {i['rss_mb']:.0f} MB | {p['rss_mb']:.0f} MB | {ratio(p['rss_mb'], i['rss_mb'])} |")
        print(lines[-1], flush=True)
    name = args.thread_metric
    lines += ["", f"Threads sharing one `{name}` metric object, {len(THREAD_IMAGES)} 512×384 tensor pairs, one "
              "intra-op thread per library:", "",
              "| library | 1 thread (images/s) | 2 threads (images/s) | speed-up |", "|---|---|---|---|"]
    for lib in ("iqa", "pyiqa"):
        env = {"IQA_NUM_THREADS": "1"} if lib == "iqa" else {}
        one = run_child("threads", lib, name, 1, env=env)["images_per_s"]
        two = run_child("threads", lib, name, 2, env=env)["images_per_s"]
        lines.append(f"| {lib} | {one:.2f} | {two:.2f} | {two / one:.2f}× |")
        print(lines[-1], flush=True)
    shutil.rmtree(cache, ignore_errors=True)
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.markdown:
        Path(args.markdown).write_text(text)


if __name__ == "__main__":
    main()
