"""Shared by the pytest suite of the `iqa` package.

The package under test is python/iqa of this repository (loading target/release/libiqa.so) unless
IQA_TEST_INSTALLED=1, which tests the `iqa` installed in the environment (the wheel, scripts/test_wheel.sh).
Reference scores are pyiqa 0.1.16's, read from tests/data/pyiqa_references.csv, and the tolerances from
tests/parity.rs: what the Rust tests read and assert.
"""
import csv
import math
import os
import re
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

REFERENCES_CSV = TEST_DATA / "pyiqa_references.csv"
# The built-in metrics of pyiqa's model zoo (tests/data/zoo_references.csv: random checkpoints, not in the shared
# weights folder): test_zoo.py scores one of them; the reference matrix leaves them out, as tests/parity.rs does.
with open(TEST_DATA / "zoo_references.csv", newline="") as _f:
    ZOO_METRICS = frozenset(r["metric"] for r in csv.DictReader(_f))
PARITY_RS = ROOT / "tests" / "parity.rs"


def parity_tolerances():
    """metric -> (relative, absolute floor) of tests/parity.rs's PARITY table, read from that file so that the
    Rust and Python suites assert the same bounds: `row(...)`/`deep(...)` defaults, overridden by
    `Parity { relative: .., floor: .., ..row(..) }`."""
    text = PARITY_RS.read_text()
    consts = {m[0]: float(m[1]) for m in re.findall(r"const (\w+): f64 = ([0-9.e+-]+);", text)}

    def value(word):
        return consts[word] if word in consts else float(word)

    defaults = {}
    for fn in ("row", "deep"):
        body = re.search(rf"const fn {fn}\(.*?\n}}", text, re.S).group(0)
        defaults[fn] = tuple(value(re.search(rf"\b{k}: ([\w.+-]+)", body).group(1)) for k in ("relative", "floor"))
    table = re.search(r"parity_table! \{(.*?)\n\}", text, re.S).group(1)
    tolerances = {}
    for entry in re.split(r"\n\s*\w+ => ", table)[1:]:
        call = re.search(r"\b(row|deep)\(\"([^\"]+)\"", entry)
        relative, floor = defaults[call.group(1)]
        overrides = {k: value(v) for k, v in re.findall(r"\b(relative|floor): ([\w.+-]+)", entry)}
        tolerances[call.group(2)] = (overrides.get("relative", relative), overrides.get("floor", floor))
    return tolerances


TOLERANCES = parity_tolerances()


@dataclass(frozen=True)
class Reference:
    metric: str
    image: str
    region: tuple  # ("file",), ("crop", x, y, w, h), ("tile", nx, ny), ("gray",), ("jpeg", name)
    score: float  # NaN where pyiqa refused the size

    @property
    def tolerance(self):
        relative, floor = TOLERANCES[self.metric]
        return max(relative * abs(self.score), floor)

    def __str__(self):
        return f"{self.metric}-{self.image}-{'_'.join(map(str, self.region))}"


def _region(text):
    words = text.split(" ")
    if words[0] in ("crop", "tile"):
        return (words[0], *map(int, words[1:]))
    return tuple(words)


def references():
    """Every row but the synthetic smooth pair's (scored by its own Rust test, tests/parity.rs)."""
    with open(REFERENCES_CSV, newline="") as f:
        return [Reference(r["metric"], r["image"], _region(r["region"]), float(r["score"]))
                for r in csv.DictReader(f) if not r["region"].startswith("smooth")]


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
