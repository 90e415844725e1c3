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
