"""pyiqa's API surface of the package: metadata, errors with status and message, in-place reads, threads."""
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import iqa
from conftest import CALIBRATION, ROOT, decoded

DIST, REF = str(CALIBRATION / "dist" / "I08.bmp"), str(CALIBRATION / "ref" / "I08.bmp")


def test_version_is_the_librarys_and_the_packages():
    assert iqa.__version__ == subprocess.run(
        ["grep", "-m1", "^version", str(ROOT / "Cargo.toml")], capture_output=True, text=True
    ).stdout.split('"')[1]


def test_import_loads_neither_torch_nor_numpy():
    code = "import sys, iqa; print('torch' in sys.modules, 'numpy' in sys.modules)"
    package_dir = str(Path(iqa.__file__).resolve().parent.parent)  # this checkout's python/, or site-packages
    out = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {package_dir!r}); {code}"],
                         capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_list_models_filters_like_pyiqa():
    names = iqa.list_models()
    assert names == sorted(names) and {"psnr", "ssim", "lpips", "niqe", "dists"} <= set(names)
    assert iqa.list_models("*ssim*") == ["cw_ssim", "ms_ssim", "ssim", "ssimc"]
    assert iqa.list_models(["lpips*", "psnr"], exclude_filters="*+") == [
        "lpips", "lpips-squeeze", "lpips-vgg", "psnr"]


def test_metadata_as_pyiqa_states_it():
    ssim = iqa.create_metric("ssim", device="cpu")
    assert (ssim.metric_name, ssim.metric_mode, ssim.lower_better, ssim.score_range) == ("ssim", "FR", False,
                                                                                       (0.0, 1.0))
    assert (ssim.device, ssim.precision) == ("cpu", "fp32")
    niqe = iqa.create_metric("niqe")
    assert (niqe.metric_mode, niqe.lower_better) == ("NR", True)
    lpips = iqa.create_metric("lpips", device=torch.device("cpu"), precision=torch.bfloat16)
    assert (lpips.lower_better, lpips.precision) == (True, "bf16")


def test_errors_carry_status_and_message():
    with pytest.raises(iqa.UnknownMetricError) as e:
        iqa.create_metric("no_such_metric")
    assert (e.value.status, e.value.status_name) == (2, "IQA_ERR_UNKNOWN_METRIC")
    assert "no_such_metric" in e.value.message and "psnr" in e.value.message
    assert isinstance(e.value, KeyError) and str(e.value).startswith("IQA_ERR_UNKNOWN_METRIC: unknown metric")

    ssim = iqa.create_metric("ssim")
    with pytest.raises(iqa.ImageIOError) as e:
        ssim("/nonexistent/dist.png", REF)
    assert e.value.status == 3 and "/nonexistent/dist.png" in e.value.message

    d, r = decoded("dist", "I08.bmp"), decoded("ref", "I08.bmp")
    with pytest.raises(iqa.ShapeMismatchError) as e:
        ssim(d, r[:-1])
    assert e.value.status == 5

    bad = d.astype(np.float32) / 255
    bad[3, 7, 1] = np.nan
    with pytest.raises(iqa.InvalidArgumentError) as e:
        ssim(bad, r)
    assert e.value.status == 1 and "NaN" in e.value.message
    with pytest.raises(iqa.InvalidArgumentError) as e:
        ssim(torch.full((1, 3, 32, 32), 1.5), torch.zeros(1, 3, 32, 32))
    assert e.value.status == 1

    with pytest.raises(iqa.InvalidArgumentError, match="full-reference"):
        ssim(d)
    with pytest.raises(iqa.InvalidArgumentError, match="no-reference"):
        iqa.create_metric("niqe")(d, r)
    with pytest.raises(iqa.ShapeMismatchError, match="2 target image"):
        ssim(np.stack([d, d]), np.stack([r]))
    with pytest.raises(iqa.InvalidArgumentError, match="unsupported input"):
        ssim([[1, 2]], r)
    with pytest.raises(iqa.InvalidArgumentError, match="int32"):
        ssim(d.astype(np.int32), r.astype(np.int32))
    with pytest.raises(iqa.InvalidArgumentError, match="float tensor"):
        ssim(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(iqa.InvalidArgumentError, match="device"):
        iqa.create_metric("ssim", device="tpu")
    with pytest.raises(iqa.InvalidArgumentError, match="precision"):
        iqa.create_metric("ssim", precision="int8")


def test_closed_metric_refuses_and_frees_its_handle():
    before = iqa.cache_stats()[1]
    with iqa.create_metric("psnr") as psnr:
        assert iqa.cache_stats()[1] == before + 1
        assert psnr(DIST, REF) > 0
    assert iqa.cache_stats()[1] == before
    with pytest.raises(iqa.InvalidArgumentError, match="closed"):
        psnr(DIST, REF)


def test_arrays_and_contiguous_float32_tensors_are_read_in_place():
    d = decoded("dist", "I08.bmp")
    crop = d[5:100, 7:200]
    assert np.shares_memory(iqa._Batch.of(crop).keep, d)  # strided rows: no copy
    t = torch.rand(2, 3, 40, 50)
    assert iqa._Batch.of(t).keep.data_ptr() == t.data_ptr()  # planar float32: no copy
    channels_last = t.contiguous(memory_format=torch.channels_last)
    assert iqa._Batch.of(channels_last).keep.data_ptr() != channels_last.data_ptr()  # copied to planar


def test_other_layouts_score_as_rgb8():
    ssim = iqa.create_metric("ssim")
    d, r = decoded("dist", "I08.bmp"), decoded("ref", "I08.bmp")
    base = ssim(d, r)
    alpha = np.full(d.shape[:2] + (1,), 200, np.uint8)
    assert ssim(np.concatenate([d, alpha], 2), np.concatenate([r, alpha], 2)) == base
    assert ssim(d.astype(np.float16) / 255, r.astype(np.float16) / 255) == pytest.approx(base, rel=1e-3)
    assert ssim(np.asfortranarray(d), r) == base  # copied to C order first


def test_tensor_scores_keep_batch_order_and_shape():
    lpips = iqa.create_metric("lpips", device="cpu")
    pairs = [(decoded("dist", n), decoded("ref", n)) for n in ("I03.bmp", "I04.bmp", "I08.bmp")]
    as_t = lambda a: torch.from_numpy(np.array(a)).permute(2, 0, 1).float() / 255  # noqa: E731
    dist, ref = torch.stack([as_t(d) for d, _ in pairs]), torch.stack([as_t(r) for _, r in pairs])
    scores = lpips(dist, ref)
    assert scores.shape == (3,) and scores.dtype == torch.float64
    singles = [lpips(d, r) for d, r in pairs]
    assert scores.tolist() == pytest.approx(singles, abs=1e-6)
    assert scores[0] != scores[1]


def test_threads_share_one_metric():
    ssim = iqa.create_metric("ssim")
    names = ["I03.bmp", "I04.bmp", "I06.bmp", "I08.bmp", "I19.bmp"]
    expected = {n: ssim(decoded("dist", n), decoded("ref", n)) for n in names}
    got, errors = {}, []

    def work(i):
        try:
            for k in range(6):
                n = names[(i + k) % len(names)]
                s = ssim(decoded("dist", n), decoded("ref", n))
                got.setdefault(n, set()).add(s)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert got == {n: {s} for n, s in expected.items()}


def test_close_waits_for_calls_in_flight():
    d, r = decoded("dist", "I03.bmp"), decoded("ref", "I03.bmp")
    expected = iqa.create_metric("ssim")(d, r)
    for _ in range(5):
        ssim = iqa.create_metric("ssim")
        outcome = []

        def score():
            try:
                outcome.append(ssim(d, r))
            except iqa.InvalidArgumentError as e:
                outcome.append(e.message)

        worker = threading.Thread(target=score)
        worker.start()
        ssim.close()
        worker.join()
        # Scored in full before the handle was freed, or refused: never a freed handle.
        assert outcome in ([expected], ["metric ssim is closed"])
