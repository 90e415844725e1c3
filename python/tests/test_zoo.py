"""A metric of pyiqa's model zoo through the package: `cnniqa` on its random checkpoint
(scripts/make_zoo_references.py, which needs pyiqa) gives pyiqa's scores (tests/data/zoo_references.csv)."""
import csv
import subprocess
import sys

import pytest

import iqa
from conftest import CALIBRATION, ROOT, TEST_DATA


def pyiqa_file_scores(metric):
    with open(TEST_DATA / "zoo_references.csv") as f:
        return {r["image"]: float(r["score"]) for r in csv.DictReader(f)
                if r["metric"] == metric and r["region"] == "file"}


def test_cnniqa_gives_pyiqas_scores(tmp_path, monkeypatch):
    pytest.importorskip("pyiqa", reason="the random checkpoint is made with pyiqa's network")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_zoo_references.py"), "--checkpoints",
                    str(tmp_path), "--only", "cnniqa"], check=True, capture_output=True)
    monkeypatch.setenv("IQA_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("IQA_OFFLINE", "1")
    assert "cnniqa" in iqa.list_models()
    with iqa.create_metric("cnniqa") as metric:
        assert (metric.metric_mode, metric.lower_better) == ("NR", False)
        for image, want in pyiqa_file_scores("cnniqa").items():
            got = float(metric(str(CALIBRATION / "dist" / image)))
            assert got == pytest.approx(want, rel=1e-4, abs=1e-6), image


def captions():
    with open(TEST_DATA / "zoo_captions.csv") as f:
        return {r["image"]: r["caption"] for r in csv.DictReader(f)}


def test_clipscore_scores_images_against_captions(tmp_path, monkeypatch):
    pytest.importorskip("pyiqa", reason="the random checkpoint is made with pyiqa's network")
    np = pytest.importorskip("numpy")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_zoo_references.py"), "--checkpoints",
                    str(tmp_path), "--only", "liqe"], check=True, capture_output=True)
    monkeypatch.setenv("IQA_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("IQA_OFFLINE", "1")
    want, text = pyiqa_file_scores("clipscore"), captions()
    images = sorted(want)
    paths = [str(CALIBRATION / "dist" / image) for image in images]
    with iqa.create_metric("clipscore") as metric:
        assert metric.takes_caption
        got = metric(paths, caption_list=[text[i] for i in images])
        assert got == pytest.approx([want[i] for i in images], rel=1e-4)
        assert metric(paths[0], caption_list=[text[images[0]]]) == pytest.approx(want[images[0]], rel=1e-4)
        from PIL import Image
        pixels = np.stack([np.asarray(Image.open(paths[0]).convert("RGB"))] * 2)
        batch = metric(pixels, caption_list=[text[images[0]], text[images[1]]])
        assert batch[0] == pytest.approx(want[images[0]], rel=1e-4)
        with pytest.raises(iqa.InvalidArgumentError, match="caption_list"):
            metric(paths[0])
        with pytest.raises(iqa.ShapeMismatchError):
            metric(paths, caption_list=["one caption"])
    with iqa.create_metric("niqe") as niqe:
        assert not niqe.takes_caption
        with pytest.raises(iqa.InvalidArgumentError, match="takes no caption"):
            niqe(paths[0], caption_list=["a caption"])
