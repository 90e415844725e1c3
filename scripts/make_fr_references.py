#!/usr/bin/env python3
"""Reference scores from pyiqa 0.1.16 for the classical full-reference metrics (gmsd, vif, nlpd).

For each metric and each calibration pair (data/calibration/{dist,ref}/I0x.bmp) it records
  - `file`: pyiqa scoring the two files (PIL decoding, RGB conversion);
  - `gray`: both files converted by PIL `convert('L')` and scored as gray images (pyiqa's loader turns them
    back into RGB with R = G = B);
  - `tile 2 2`: both decoded tensors tiled [[img, img], [img, img]] (cat along W, then H; 1024x768);
  - `crop X Y W H`: the same crop of both decoded images: odd sizes, a small size, and for I03 the sizes
    around each metric's minimum (pyiqa's failures are recorded as NaN: iqa must refuse those sizes);
and, for vif, in tests/data/fr_nan_references.csv (same columns), a synthetic smooth gray pair (`smooth_pair`,
rebuilt by the Rust test, image `smooth`) on which pyiqa's float32 VIF is NaN (`smooth W H`), and pyiqa's VIF
run in float64 (`smooth W H float64`), the value iqa gives there (see src/metrics/vif.rs).
Run with the dev venv:  .venv/bin/python scripts/make_fr_references.py [metric ...]
Writes tests/data/fr_references.csv (metric,image,region,score); rows of metrics not named are kept.
"""
import csv
import math
import pathlib
import sys
import time

import torch
import torchvision.transforms.functional as TF
from PIL import Image
import pyiqa
from pyiqa.utils.img_util import imread2tensor
from reference_csv import write_rows

ROOT = pathlib.Path(__file__).resolve().parent.parent
CAL = ROOT / 'data' / 'calibration'
OUT = ROOT / 'tests' / 'data' / 'fr_references.csv'
NAN_OUT = ROOT / 'tests' / 'data' / 'fr_nan_references.csv'
IMAGES = ['I03.bmp', 'I04.bmp', 'I06.bmp', 'I08.bmp', 'I19.bmp']
DEFAULT_METRICS = ['gmsd', 'vif', 'nlpd']
# (x, y, w, h) for every pair: odd sizes and a small one.
CROPS = [(7, 5, 301, 257), (100, 50, 161, 163), (33, 21, 37, 29)]
# Extra crops of I03 around each metric's minimum size (w, h), found by trying pyiqa on small crops.
EDGE_SIZES = {
    'gmsd': [(4, 4), (2, 4), (4, 2), (5, 7), (3, 3), (2, 3), (2, 2), (1, 1)],
    'vif': [(33, 33), (35, 41), (32, 33), (33, 32), (32, 32)],
    'nlpd': [(1, 1), (1, 5), (5, 1), (2, 3), (7, 9)],
}


def tile(t):
    row = torch.cat([t, t], dim=-1)
    return torch.cat([row, row], dim=-2)


def gray(path):
    return TF.to_tensor(Image.open(path).convert('L').convert('RGB')).unsqueeze(0)


def smooth_pair(w, h):
    """(dist, ref) gray images as RGB tensors: smooth sinusoids rounded to integers (as the Rust test builds them)."""
    y = torch.arange(h, dtype=torch.float64).view(-1, 1)
    x = torch.arange(w, dtype=torch.float64).view(1, -1)
    common = torch.sin(x / 37) * torch.cos(y / 53)
    slope = 40 * torch.sin((x + y) / 91)
    out = []
    for base, amp in [(120.0, 50.0), (127.5, 60.0)]:
        v = torch.floor(base + amp * common + slope + 0.5).clamp(0, 255) / 255.0
        out.append(v.float().expand(1, 3, h, w).contiguous())
    return out


def vif_float64(d, r):
    """pyiqa's VIF with its filters and all arithmetic in float64 (pyiqa casts its filters to float32)."""
    import torch.nn.functional as F
    from pyiqa.archs import vif_arch

    def corr(image, filt, step=1, channels=1):
        f = torch.from_numpy(filt).to(image.dtype)[None, None]
        p = (f.shape[2] - 1) // 2
        return F.conv2d(F.pad(image, (p, p, p, p), 'reflect'), f, stride=step)

    def corr_win(self, image, filt, step=1, channels=1, start=(0, 0), end=(0, 0)):
        return corr(image, filt)[:, :, start[0]:end[0]:step, start[1]:end[1]:step]

    saved = vif_arch.corrDn, vif_arch.VIF.corrDn_win
    vif_arch.corrDn, vif_arch.VIF.corrDn_win = corr, corr_win
    try:
        return vif_arch.VIF()(d.double(), r.double()).item()
    finally:
        vif_arch.corrDn, vif_arch.VIF.corrDn_win = saved


SMOOTH = (480, 270)


def score(metric, a, b):
    try:
        s = metric(a, b).item()
    except Exception as e:  # too small for this metric: recorded so that the test expects an error
        print(f'  nan: {type(e).__name__}: {str(e).splitlines()[0][:160]}', file=sys.stderr)
        return float('nan')
    if math.isnan(s):
        print(f'  pyiqa gave NaN for {tuple(a.shape)}', file=sys.stderr)
    return s


def main():
    assert pyiqa.__version__ == '0.1.16', pyiqa.__version__
    torch.set_num_threads(2)
    metrics = sys.argv[1:] or DEFAULT_METRICS
    rows = []
    if OUT.exists():
        with OUT.open() as f:
            rows = [r for r in csv.DictReader(f) if r['metric'] not in metrics]
    for name in metrics:
        t0 = time.time()
        metric = pyiqa.create_metric(name, device='cpu')
        new = []
        for img in IMAGES:
            dist, ref = CAL / 'dist' / img, CAL / 'ref' / img
            new.append((img, 'file', metric(str(dist), str(ref)).item()))
            new.append((img, 'gray', score(metric, gray(dist), gray(ref))))
            d = imread2tensor(str(dist), rgb=True).unsqueeze(0)
            r = imread2tensor(str(ref), rgb=True).unsqueeze(0)
            new.append((img, 'tile 2 2', score(metric, tile(d).contiguous(), tile(r).contiguous())))
            crops = list(CROPS)
            if img == 'I03.bmp':
                crops += [(50, 60, w, h) for w, h in EDGE_SIZES.get(name, [])]
            for x, y, w, h in crops:
                dc = d[..., y:y + h, x:x + w].contiguous()
                rc = r[..., y:y + h, x:x + w].contiguous()
                new.append((img, f'crop {x} {y} {w} {h}', score(metric, dc, rc)))
        if name == 'vif':
            w, h = SMOOTH
            sd, sr = smooth_pair(w, h)
            nan_rows = [
                {'metric': name, 'image': 'smooth', 'region': f'smooth {w} {h}', 'score': repr(score(metric, sd, sr))},
                {'metric': name, 'image': 'smooth', 'region': f'smooth {w} {h} float64', 'score': repr(vif_float64(sd, sr))},
            ]
            write_rows(NAN_OUT, nan_rows)
        rows += [{'metric': name, 'image': i, 'region': g, 'score': repr(s)} for i, g, s in new]
        print(name, f'{time.time() - t0:.1f}s', [s for _, g, s in new if g == 'file'])
    write_rows(OUT, rows)


if __name__ == '__main__':
    main()
