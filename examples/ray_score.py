#!/usr/bin/env python3
"""ray_score.py: score a folder of images (or a list of paths/URIs) with iqa on a Ray cluster (Ray Data).

    python examples/ray_score.py DIST [--ref REF_DIR] --metrics psnr,ssim,niqe --output OUT.parquet|OUT.csv
        [--address auto] [--workers 2] [--cpus-per-worker 1] [--gpus-per-worker 0] [--batch-size 16]

DIST is a folder (searched recursively for .png/.jpg/.jpeg/.bmp/.tif/.tiff/.webp), an image, or a text file
listing one path or URI (s3://, gs://, ...: anything pyarrow reads) per line. With --ref, full-reference
metrics score each image against the file of the same relative path under REF_DIR (local or shared
folders); no-reference metrics ignore it. One row per image: `path`, one column per metric (NaN where that
metric failed on that image) and `error` (the messages, "" when every metric scored).

Each worker is an actor of `Scorer` (map_batches over an ActorPoolStrategy of --workers): it creates its
metrics once, then scores every batch it is given; models are never shipped with the data. Paths are
decoded by libiqa in the worker; URIs are read by Ray Data (read_binary_files) and decoded with Pillow.
Without --address Ray starts a local cluster; `--address auto` joins the one `ray start --head` runs here.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


class Scorer:
    """One per worker: the metrics, created once. Called with batches {"path": [...], "ref": [...]} (files) or
    {"path": [...], "bytes": [...]} (URIs read by Ray Data)."""

    def __init__(self, metrics, device, threads):
        if threads:
            os.environ.setdefault("IQA_NUM_THREADS", str(threads))  # before libiqa reads its settings
        import iqa

        self.iqa = iqa
        self.metrics = {name: iqa.create_metric(name, device=device) for name in metrics}

    def __call__(self, batch):
        paths = batch["path"]
        refs = batch.get("ref")
        scores = {name: np.full(len(paths), np.nan) for name in self.metrics}
        errors = [[] for _ in paths]
        for i, path in enumerate(paths):
            dist = self._image(batch, i)
            for name, metric in self.metrics.items():
                ref = refs[i] if metric.metric_mode == "FR" and refs is not None and refs[i] else None
                try:
                    if metric.metric_mode == "FR" and ref is None:
                        raise self.iqa.InvalidArgumentError(1, "no reference image (--ref)")
                    scores[name][i] = metric(dist, ref)
                except self.iqa.IqaError as e:
                    errors[i].append(f"{name}: {e}")
        out = {"path": np.asarray(paths, dtype=object)}
        out.update(scores)
        out["error"] = np.asarray(["; ".join(e) for e in errors], dtype=object)
        return out

    @staticmethod
    def _image(batch, i):
        if "bytes" not in batch:
            return str(batch["path"][i])
        import io

        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(batch["bytes"][i])).convert("RGB"))


def list_inputs(source):
    """(paths, is_uri) from a folder, an image or a list file."""
    p = Path(source)
    if p.is_dir():
        return sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES), False
    if p.suffix.lower() in IMAGE_SUFFIXES:
        return [str(p)], False
    entries = [line.strip() for line in p.read_text().splitlines() if line.strip()]
    return entries, any("://" in e for e in entries)


def build_dataset(ray, paths, is_uri, dist_root, ref_root):
    if is_uri:
        return ray.data.read_binary_files(paths, include_paths=True)
    rows = []
    for path in paths:
        row = {"path": path, "ref": ""}
        if ref_root is not None:
            rel = os.path.relpath(path, dist_root) if dist_root else os.path.basename(path)
            row["ref"] = str(Path(ref_root) / rel)
        rows.append(row)
    return ray.data.from_items(rows)


def worker_env():
    """What a worker needs to import this `iqa` and find its weights: the driver's settings, forwarded (on a
    multi-node cluster the same paths must exist on every node, or the wheel be installed there)."""
    import iqa

    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(Path(iqa.__file__).resolve().parent.parent),
                                                        os.environ.get("PYTHONPATH")]))}
    for name in ("IQA_LIBRARY", "IQA_WEIGHTS_DIR", "IQA_PRESET", "IQA_PRECISION", "IQA_DEVICE"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dist", help="folder, image, or text file of paths/URIs")
    ap.add_argument("--ref", help="folder of reference images (same relative paths) for full-reference metrics")
    ap.add_argument("--metrics", required=True, help="comma-separated pyiqa names")
    ap.add_argument("--output", required=True, help="OUT.parquet or OUT.csv (a directory of part files)")
    ap.add_argument("--address", help="Ray cluster to join (`auto`, or ray://HOST:10001); default: start one")
    ap.add_argument("--workers", type=int, default=2, help="scoring actors (default 2)")
    ap.add_argument("--cpus-per-worker", type=float, default=1, help="CPUs reserved per actor; also its threads")
    ap.add_argument("--gpus-per-worker", type=float, default=0, help="GPUs per actor (metrics then run on CUDA)")
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args(argv)

    try:
        import iqa  # noqa: F401  (installed: the wheel)
    except ImportError:  # this repository's python/ and its build
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
    import ray

    metrics = [m for m in args.metrics.split(",") if m]
    paths, is_uri = list_inputs(args.dist)
    if not paths:
        raise SystemExit(f"no images in {args.dist}")
    if is_uri and args.ref:
        raise SystemExit("--ref works with local or shared folders, not with URI lists")
    dist_root = args.dist if Path(args.dist).is_dir() else None

    start = time.perf_counter()
    if args.address:
        ray.init(address=args.address, runtime_env={"env_vars": worker_env()})
    else:
        ray.init(num_cpus=max(1, int(args.workers * args.cpus_per_worker)),
                 num_gpus=int(args.workers * args.gpus_per_worker) or None,
                 runtime_env={"env_vars": worker_env()}, include_dashboard=False)
    started = time.perf_counter()
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    device = "cuda" if args.gpus_per_worker > 0 else "cpu"
    ds = build_dataset(ray, paths, is_uri, dist_root, args.ref)
    scored = ds.map_batches(
        Scorer,
        fn_constructor_args=(metrics, device, int(args.cpus_per_worker) if device == "cpu" else 0),
        batch_size=args.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=args.workers),
        num_cpus=args.cpus_per_worker,
        num_gpus=args.gpus_per_worker or None,
    )
    if args.output.endswith(".csv"):
        scored.write_csv(args.output)
    else:
        scored.write_parquet(args.output)
    scoring = time.perf_counter() - started
    ray.shutdown()
    print(f"scored {len(paths)} images with {','.join(metrics)} on {args.workers} worker(s): Ray start "
          f"{started - start:.1f} s, scoring and writing {scoring:.1f} s ({len(paths) / scoring:.1f} images/s) "
          f"-> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
