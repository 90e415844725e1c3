"""Scores through every input kind of the package equal pyiqa 0.1.16's (tests/data/pyiqa_references.csv).

Default run (`make test`, `make python-test`): every metric, on a small crop of a calibration pair, through
every input kind; each metric's sizes pyiqa refuses give ShapeMismatchError; gray inputs on one metric.
IQA_PYTEST_FULL=1 (`make python-test-full`): every reference row, the calibration files through paths, numpy
and torch batches, crops through strided views, gray and tiles through arrays.
"""
import itertools

import numpy as np
import pytest
import torch
from PIL import Image

import iqa
from conftest import CALIBRATION, TEST_DATA, ZOO_METRICS, assert_matches, decoded, references, region_pixels

REFERENCES = references()
METRICS = [m for m in iqa.list_models() if m not in ZOO_METRICS]
_metrics = {}


def metric(name):
    if name not in _metrics:
        _metrics[name] = iqa.create_metric(name, device="cpu")
    return _metrics[name]


def is_fr(name):
    return metric(name).metric_mode == "FR"


# Input kinds: uint8 H x W x 3 (or H x W gray) pixels -> what the caller passes.
def as_tensor(a):
    t = torch.from_numpy(np.array(a))  # a writable copy
    t = t[..., None] if t.dim() == 2 else t
    return t.permute(2, 0, 1)[None]


KINDS = {
    "uint8": lambda a, tmp: a,
    "uint16": lambda a, tmp: a.astype(np.uint16) * 257,
    "float32": lambda a, tmp: a.astype(np.float32) / 255,
    "float64": lambda a, tmp: a / 255.0,
    "numpy-batch": lambda a, tmp: np.stack([a, a]),
    # Contiguous float32 N x 3 x H x W: read in place through IQA_FORMAT_RGB_F32_PLANAR.
    "tensor": lambda a, tmp: (as_tensor(a).float() / 255).contiguous(),
    # A channels-last view (what .permute gives): copied once to contiguous float32.
    "tensor-strided": lambda a, tmp: as_tensor(a).float() / 255,
    "tensor-3d": lambda a, tmp: (as_tensor(a)[0].float() / 255).contiguous(),
    "tensor-float64": lambda a, tmp: as_tensor(a).double() / 255,
    "path": lambda a, tmp: save_png(a, tmp),
    "path-list": lambda a, tmp: [save_png(a, tmp)] * 2,
}


_saved = itertools.count()


def save_png(a, tmp):
    path = tmp / f"{next(_saved)}.png"
    Image.fromarray(np.ascontiguousarray(a)).save(path)
    return str(path)


def score_as(kind, r, tmp):
    dist = KINDS[kind](region_pixels("dist", r), tmp)
    ref = KINDS[kind](region_pixels("ref", r), tmp) if is_fr(r.metric) else None
    return metric(r.metric)(dist, ref)


def check_result_type(kind, got):
    if kind.startswith("tensor"):
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
        assert got.shape == (1,), got.shape
    elif kind == "numpy-batch":
        assert isinstance(got, np.ndarray) and got.shape == (2,) and got.dtype == np.float64
    elif kind == "path-list":
        assert isinstance(got, list) and len(got) == 2 and all(isinstance(s, float) for s in got)
    else:
        assert isinstance(got, float), type(got)


def small_crop(name):
    """The smallest crop of I03, at least 16 pixels a side, that pyiqa scored for `name`: keeps the default
    run short (ilniqe takes seconds per full image), and is what each input kind changes (layout, format)."""
    rows = [r for r in REFERENCES if r.metric == name and r.image == "I03.bmp" and r.region[0] == "crop"
            and r.score == r.score and min(r.region[3:]) >= 16]
    return min(rows, key=lambda r: r.region[3] * r.region[4])


def test_every_metric_has_references():
    covered = {r.metric for r in REFERENCES}
    assert METRICS and set(METRICS) <= covered, sorted(set(METRICS) - covered)


# ilniqe costs ~15 s per score whatever the image size (its fixed resize): in the default run it goes through
# one array and one tensor kind, through all of them with IQA_PYTEST_FULL=1.
SLOW_METRICS = {"ilniqe"}


def crop_cases():
    for name in METRICS:
        for kind in KINDS:
            full_only = name in SLOW_METRICS and kind not in ("uint8", "tensor")
            yield pytest.param(name, kind, marks=[pytest.mark.full] if full_only else [])


@pytest.mark.parametrize("name,kind", list(crop_cases()))
def test_small_crop_matches_pyiqa(name, kind, tmp_path):
    r = small_crop(name)
    got = score_as(kind, r, tmp_path)
    check_result_type(kind, got)
    assert_matches(r, got.tolist() if hasattr(got, "tolist") else got, kind)


@pytest.mark.parametrize("name", METRICS)
def test_sizes_pyiqa_refuses_are_shape_errors(name):
    refused = [r for r in REFERENCES if r.metric == name and r.region[0] == "crop" and r.score != r.score]
    if not refused:
        pytest.skip(f"pyiqa scores every reference size of {name}")
    r = min(refused, key=lambda r: r.region[3] * r.region[4])
    for kind in ("uint8", "tensor"):
        with pytest.raises(iqa.ShapeMismatchError) as e:
            score_as(kind, r, None)
        assert e.value.status == 5 and "at least" in e.value.message, e.value


@pytest.mark.parametrize("kind", ["uint8", "uint16", "float32", "tensor"])
def test_gray_matches_pyiqa(kind):
    # The gray path is the package's format mapping (GRAY8, GRAY_F32, replicated 16-bit, N x 1 x H x W), the
    # same for every metric; gmsd is the cheapest metric with gray references.
    r = next(r for r in REFERENCES if r.metric == "gmsd" and r.image == "I03.bmp" and r.region == ("gray",))
    got = score_as(kind, r, None)
    assert_matches(r, got.tolist() if hasattr(got, "tolist") else got, f"gray {kind}")


@pytest.mark.full
@pytest.mark.parametrize("r", REFERENCES, ids=str)
def test_every_reference_row(r, tmp_path):
    m = metric(r.metric)
    fr = is_fr(r.metric)
    if r.region == ("file",):
        got = m(str(CALIBRATION / "dist" / r.image), str(CALIBRATION / "ref" / r.image) if fr else None)
        assert_matches(r, got, "path")
        return
    if r.region[0] == "jpeg":
        got = m(str(TEST_DATA / r.region[1]), str(CALIBRATION / "ref" / r.image) if fr else None)
        assert_matches(r, got, "jpeg path")
        return
    kinds = ["uint8", "tensor-strided"] if r.region[0] in ("crop", "gray") else ["uint8"]
    for kind in kinds:
        if r.score != r.score:
            with pytest.raises(iqa.ShapeMismatchError):
                score_as(kind, r, tmp_path)
        else:
            got = score_as(kind, r, tmp_path)
            assert_matches(r, got.tolist() if hasattr(got, "tolist") else got, kind)


@pytest.mark.full
@pytest.mark.parametrize("kind", ["numpy-batch", "tensor"])
@pytest.mark.parametrize("name", METRICS)
def test_calibration_files_as_one_batch(name, kind):
    rows = [r for r in REFERENCES if r.metric == name and r.region == ("file",)]
    assert len(rows) == 5, rows
    dist = np.stack([decoded("dist", r.image) for r in rows])
    ref = np.stack([decoded("ref", r.image) for r in rows]) if is_fr(name) else None
    if kind == "tensor":
        dist = torch.from_numpy(dist).permute(0, 3, 1, 2).float().div(255).contiguous()
        ref = torch.from_numpy(ref).permute(0, 3, 1, 2).float().div(255).contiguous() if ref is not None else None
    got = metric(name)(dist, ref)
    assert len(got) == 5
    for r, s in zip(rows, got.tolist()):
        assert_matches(r, s, f"{kind} of 5")
