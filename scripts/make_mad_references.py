#!/usr/bin/env python3
"""Reference scores from pyiqa 0.1.16 for `mad` (most apparent distortion, pyiqa's default config).

For each calibration pair (data/calibration/{dist,ref}/I0x.bmp) it records
  - `file`: pyiqa scoring the two files (PIL decoding, RGB conversion);
  - `gray`: both files converted by PIL `convert('L')` (pyiqa's loader turns them back into RGB, R = G = B);
  - `tile 2 2`: both decoded tensors tiled [[img, img], [img, img]] (1024x768);
  - `crop X Y W H`: the same crop of both decoded images: odd sizes and a small one, and for I03 the sizes
    around pyiqa's minimum, 16x16 (its 16x16 patches stride 4 need one whole patch; pyiqa's failures below
    that are recorded as NaN: iqa must refuse those sizes).
Run with the dev venv:  .venv/bin/python scripts/make_mad_references.py
Writes tests/data/mad_references.csv (metric,image,region,score).
"""
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
OUT = ROOT / 'tests' / 'data' / 'mad_references.csv'
IMAGES = ['I03.bmp', 'I04.bmp', 'I06.bmp', 'I08.bmp', 'I19.bmp']
# (x, y, w, h) for every pair: odd sizes and a small one.
CROPS = [(7, 5, 301, 257), (100, 50, 161, 163), (33, 21, 37, 29)]
# Crops of I03 (w, h) around the minimum: 16x16 is the smallest pyiqa scores.
EDGE_SIZES = [(16, 16), (17, 19), (15, 16), (16, 15), (15, 15)]


def tile(t):
    row = torch.cat([t, t], dim=-1)
    return torch.cat([row, row], dim=-2)


def gray(path):
    return TF.to_tensor(Image.open(path).convert('L').convert('RGB')).unsqueeze(0)


def score(metric, a, b):
    try:
        s = metric(a, b).item()
    except Exception as e:  # too small: recorded so that the test expects an error
        print(f'  nan: {type(e).__name__}: {str(e).splitlines()[0][:160]}', file=sys.stderr)
        return float('nan')
    if math.isnan(s):
        print(f'  pyiqa gave NaN for {tuple(a.shape)}', file=sys.stderr)
    return s


def main():
    assert pyiqa.__version__ == '0.1.16', pyiqa.__version__
    torch.set_num_threads(2)
    t0 = time.time()
    metric = pyiqa.create_metric('mad', device='cpu')
    rows = []
    for img in IMAGES:
        dist, ref = CAL / 'dist' / img, CAL / 'ref' / img
        rows.append((img, 'file', metric(str(dist), str(ref)).item()))
        rows.append((img, 'gray', score(metric, gray(dist), gray(ref))))
        d = imread2tensor(str(dist), rgb=True).unsqueeze(0)
        r = imread2tensor(str(ref), rgb=True).unsqueeze(0)
        rows.append((img, 'tile 2 2', score(metric, tile(d).contiguous(), tile(r).contiguous())))
        crops = list(CROPS)
        if img == 'I03.bmp':
            crops += [(50, 60, w, h) for w, h in EDGE_SIZES]
        for x, y, w, h in crops:
            dc = d[..., y:y + h, x:x + w].contiguous()
            rc = r[..., y:y + h, x:x + w].contiguous()
            rows.append((img, f'crop {x} {y} {w} {h}', score(metric, dc, rc)))
        print(img, f'{time.time() - t0:.1f}s', rows[-1])
    write_rows(OUT, [{'metric': 'mad', 'image': i, 'region': g, 'score': repr(s)} for i, g, s in rows])


if __name__ == '__main__':
    main()
