"""examples/ray_score.py on a local Ray cluster of 2 worker processes: every score equals single-process iqa's.

Generated images (seeded): 300 distorted/reference pairs of a few sizes and one undecodable file, scored with
two full-reference metrics and one no-reference metric. Output read back with pyarrow (Parquet) and as CSV.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import iqa
from conftest import ROOT

pytestmark = pytest.mark.ray

METRICS = ["psnr", "ssim", "niqe"]
IMAGES = 300


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray")
    rng = np.random.default_rng(18)
    sizes = [(96, 128), (120, 96), (144, 160)]
    for i in range(IMAGES):
        h, w = sizes[i % len(sizes)]
        y, x = np.mgrid[0:h, 0:w]
        ref = np.stack([(x * (3 + i % 5)) % 256, (y * 2 + i) % 256, ((x + y) * (i % 7 + 1)) % 256], axis=2)
        dist = np.clip(ref + rng.normal(0, 4 + i % 20, ref.shape), 0, 255)
        sub = f"part{i % 3}"  # nested folders: paths relative to the roots pair them
        for kind, pixels in (("dist", dist), ("ref", ref)):
            (root / kind / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels.astype(np.uint8)).save(root / kind / sub / f"{i:04d}.png")
    (root / "dist" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    (root / "ref" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    return root


def run_script(source, ref, output, count, workers):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "python"), env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "ray_score.py"), str(source), "--ref", str(ref),
         "--metrics", ",".join(METRICS), "--output", str(output), "--workers", str(workers)],
        capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, f"{out.stdout}\n{out.stderr}"
    assert f"scored {count} images" in out.stdout, out.stdout
    return out.stdout


def check(table, pairs, broken=None):
    """Every row's scores equal those of this process scoring the same pair; `broken` has NaN and errors."""
    rows = {p: i for i, p in enumerate(table.column("path").to_pylist())}
    assert len(rows) == table.num_rows == len(pairs) + (broken is not None)
    columns = {n: table.column(n).to_pylist() for n in METRICS}
    errors = table.column("error").to_pylist()
    if broken is not None:
        assert all(np.isnan(columns[n][rows[broken]]) for n in METRICS)
        assert errors[rows[broken]].count("IQA_ERR_DECODE") == len(METRICS), errors[rows[broken]]
    metrics = {name: iqa.create_metric(name, device="cpu") for name in METRICS}
    for path, ref in pairs:
        i = rows[path]
        assert errors[i] == "", (path, errors[i])
        for name, m in metrics.items():
            want = m(path, ref) if m.metric_mode == "FR" else m(path)
            # Same library, same files: the same bits, whatever the worker's thread count.
            assert columns[name][i] == want, (path, name, columns[name][i], want)


def test_folder_on_two_workers_to_parquet_equals_single_process(images, tmp_path):
    output = tmp_path / "scores.parquet"
    print(run_script(images / "dist", images / "ref", output, IMAGES + 1, workers=2))
    dists = sorted(p for p in (images / "dist").rglob("*.png") if p.name != "broken.png")
    pairs = [(str(p), str(images / "ref" / p.relative_to(images / "dist"))) for p in dists]
    assert len(pairs) == IMAGES
    import pyarrow.parquet  # with Ray Data (scripts/setup.sh --dev), as ray: only where these tests run

    check(pyarrow.parquet.read_table(output), pairs, broken=str(images / "dist" / "broken.png"))


def test_path_list_on_one_worker_to_csv(images, tmp_path):
    # A list of paths in one folder, paired by file name with --ref.
    dists = sorted((images / "dist" / "part0").glob("*.png"))[:30]
    listing = tmp_path / "images.txt"
    listing.write_text("".join(f"{p}\n" for p in dists))
    output = tmp_path / "scores.csv"
    run_script(listing, images / "ref" / "part0", output, len(dists), workers=1)
    import pyarrow as pa
    import pyarrow.csv

    parts = sorted(output.glob("*.csv"))
    assert parts, list(output.iterdir())
    options = pyarrow.csv.ConvertOptions(strings_can_be_null=False, column_types={"error": pa.string()})
    table = pa.concat_tables([pyarrow.csv.read_csv(p, convert_options=options) for p in parts])
    check(table, [(str(p), str(images / "ref" / "part0" / p.name)) for p in dists])
