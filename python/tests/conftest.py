"""Shared by the pytest suite of the `iqa` package.

The package under test is python/iqa of this repository (loading target/release/libiqa.so) unless
IQA_TEST_INSTALLED=1, which tests the `iqa` installed in the environment (the wheel, scripts/test_wheel.sh).
Reference scores are pyiqa 0.1.16's, read from tests/data/*references.csv: the files the Rust tests read.
"""
import csv
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
if os.environ.get("IQA_TEST_INSTALLED") != "1":
    sys.path.insert(0, str(ROOT / "python"))

CALIBRATION = ROOT / "data" / "calibration"
TEST_DATA = ROOT / "tests" / "data"

# Reference file -> (relative tolerance, absolute floor), as the Rust test reading that file asserts
# (tests/calibration.rs, fr_classical.rs, fr_frequency.rs, fr_mad.rs, nr_classical.rs, nr_ilniqe.rs, deep.rs).
TOLERANCES = {
    "references.csv": (1e-4, 0.0),
    "fr_references.csv": (1e-4, 0.0),
    "frequency_references.csv": (1e-4, 0.0),
    "mad_references.csv": (1e-4, 0.0),
    "nr_references.csv": (1e-4, 0.0),
    "ilniqe_references.csv": (1e-4, 0.0),
    "deep_references.csv": (0.0, 1e-5),
}
# Metric -> (relative, absolute floor) where the Rust test allows more, because pyiqa's own score moves between
# an AVX2 and an AVX-512 CPU (fr_classical.rs gmsd/vif, nr_classical.rs BRISQUE_*/NIQE_RELATIVE, nr_ilniqe.rs).
METRIC_TOLERANCES = {
    "gmsd": (1e-4, 1e-7),
    "vif": (1e-2, 0.0),
    "brisque": (1.5e-3, 6.5e-3),
    "niqe": (4.5e-4, 0.0),
    "ilniqe": (1e-3, 0.0),
}


@dataclass(frozen=True)
class Reference:
    csv: str
    metric: str
    image: str
    region: tuple  # ("file",), ("crop", x, y, w, h), ("tile", nx, ny), ("gray",), ("jpeg", name)
    score: float  # NaN where pyiqa refused the size

    @property
    def tolerance(self):
        relative, floor = METRIC_TOLERANCES.get(self.metric, TOLERANCES[self.csv])
        return max(relative * abs(self.score), floor)

    def __str__(self):
        return f"{self.metric}-{self.image}-{'_'.join(map(str, self.region))}"


def _region(text):
    words = text.split(" ")
    if words[0] in ("crop", "tile"):
        return (words[0], *map(int, words[1:]))
    return tuple(words)


def references():
    rows = []
    for name in TOLERANCES:
        with open(TEST_DATA / name, newline="") as f:
            for r in csv.DictReader(f):
                rows.append(Reference(name, r["metric"], r["image"], _region(r["region"]), float(r["score"])))
    return rows


_decoded = {}


def decoded(kind, image):
    """H x W x 3 uint8 pixels of a calibration image, as pyiqa reads it (PIL, RGB)."""
    key = (kind, image)
    if key not in _decoded:
        a = np.asarray(Image.open(CALIBRATION / kind / image).convert("RGB"))
        a.setflags(write=False)
        _decoded[key] = a
    return _decoded[key]


def pil_gray(rgb):
    """PIL's convert('L') of RGB8 pixels, as the Rust tests' pil_gray."""
    r, g, b = (rgb[..., c].astype(np.uint32) for c in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)


def region_pixels(kind, r):
    """The uint8 pixels a crop, tile or gray row scored (crops are views of the decoded image: strided)."""
    full = decoded(kind, r.image)
    if r.region[0] == "crop":
        _, x, y, w, h = r.region
        return full[y:y + h, x:x + w]
    if r.region[0] == "tile":
        _, nx, ny = r.region
        return np.tile(full, (ny, nx, 1))
    if r.region[0] == "gray":
        return pil_gray(full)
    raise ValueError(r.region)


def assert_matches(r, got, how):
    if isinstance(got, float):
        got = [got]
    for value in got:
        value = float(value)
        assert math.isfinite(value), f"{r} via {how}: {value}"
        assert abs(value - r.score) <= r.tolerance, (
            f"{r} via {how}: iqa {value} vs pyiqa {r.score} (error {abs(value - r.score):.3e}, "
            f"tolerance {r.tolerance:.3e})")


def pytest_configure(config):
    config.addinivalue_line("markers", "full: the whole reference matrix (IQA_PYTEST_FULL=1, make python-test-full)")
    config.addinivalue_line("markers", "ray: a local Ray cluster (IQA_PYTEST_RAY=1, make python-test-ray)")


# Opt-in parts, left out of `make test` for time: the whole reference matrix (tens of minutes) and Ray (a minute
# or two to start clusters and score 300 images twice).
OPT_IN = {"full": "IQA_PYTEST_FULL", "ray": "IQA_PYTEST_RAY"}


def pytest_collection_modifyitems(config, items):
    for marker, variable in OPT_IN.items():
        if os.environ.get(variable) == "1":
            continue
        skip = pytest.mark.skip(reason=f"runs with {variable}=1")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)
