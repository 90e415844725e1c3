"""Prepared references (Metric.prepare_reference): every score equals the pair's to the bit, pyiqa's within the
parity tolerance, and every misuse is refused with the library's status and message."""
import threading

import numpy as np
import pytest
import torch

import iqa
from conftest import assert_matches, decoded, references

# I03's pair and four more distorted images of the same size: the ladder one reference is scored against.
REF = decoded("ref", "I03.bmp")
LADDER = [decoded("dist", "I03.bmp")] + [
    np.clip(REF.astype(np.int16) + np.random.default_rng(seed).integers(-s, s + 1, REF.shape), 0, 255).astype(np.uint8)
    for seed, s in enumerate((4, 12, 30, 60))]


@pytest.mark.parametrize("name", ["psnr", "ssim", "ms_ssim", "lpips", "lpips-vgg"])
def test_prepared_scores_equal_each_pair(name):
    metric = iqa.create_metric(name, device="cpu")
    pairs = [metric(d, REF) for d in LADDER]
    with metric.prepare_reference(REF) as prepared:
        assert [metric(d, ref=prepared) for d in LADDER] == pairs
        batch = metric(np.stack(LADDER), ref=prepared)
        assert batch.dtype == np.float64 and batch.shape == (len(LADDER),)
        assert batch.tolist() == pairs
        # Float32 planes (torch tensors) are other pixels than the uint8 ones: compared with their own pairs.
        tensors = torch.from_numpy(np.stack(LADDER)).permute(0, 3, 1, 2).float() / 255
        ref_tensor = torch.from_numpy(REF.copy()).permute(2, 0, 1).float() / 255
        with metric.prepare_reference(ref_tensor) as prepared_tensor:
            assert metric(tensors, ref=prepared_tensor).tolist() == [metric(t, ref_tensor).item() for t in tensors]
    row = next(r for r in references() if r.metric == name and r.image == "I03.bmp" and r.region == ("file",))
    assert_matches(row, pairs[0], "prepared reference")


def test_a_reference_serves_other_handles_and_threads():
    first, second = iqa.create_metric("lpips", device="cpu"), iqa.create_metric("lpips", device="cpu")
    prepared = first.prepare_reference(REF)
    want = [first(d, REF) for d in LADDER]
    got = {}

    def run(i):
        got[i] = [second(d, ref=prepared) for d in LADDER]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(scores == want for scores in got.values())
    assert "lpips" in repr(prepared) and "512x384" in repr(prepared)


def test_misuse_is_refused():
    psnr, ssim = iqa.create_metric("psnr", device="cpu"), iqa.create_metric("ssim", device="cpu")
    prepared = psnr.prepare_reference(REF)
    with pytest.raises(iqa.InvalidArgumentError, match="no-reference"):
        iqa.create_metric("niqe", device="cpu").prepare_reference(REF)
    with pytest.raises(iqa.InvalidArgumentError, match="prepared by"):
        ssim(LADDER[0], ref=prepared)
    with pytest.raises(iqa.ShapeMismatchError) as e:
        psnr(LADDER[0][:100, :100], ref=prepared)
    assert e.value.status == 5
    with pytest.raises(iqa.InvalidArgumentError, match="not a path"):
        psnr.prepare_reference("ref.png")
    with pytest.raises(iqa.InvalidArgumentError, match="not paths"):
        psnr("dist.png", ref=prepared)
    with pytest.raises(iqa.InvalidArgumentError, match="batch of 2"):
        psnr.prepare_reference(np.stack([REF, REF]))
    nan = REF.astype(np.float32) / 255
    nan[3, 4, 1] = np.nan
    with pytest.raises(iqa.InvalidArgumentError):
        psnr.prepare_reference(nan)
    prepared.close()
    prepared.close()  # twice is harmless
    with pytest.raises(iqa.InvalidArgumentError, match="closed"):
        psnr(LADDER[0], ref=prepared)
