#!/usr/bin/env python3
"""Reference scores from pyiqa 0.1.16 for the frequency-domain metrics (cw_ssim, fsim, vsi), for
tests/fr_frequency.rs.

For each metric and calibration pair (data/calibration/{dist,ref}/I0x.bmp) it records
  - `file`: pyiqa scoring the two files;
  - `crop X Y W H`: the same crop of both decoded images (odd sizes, a small one, one below the minimum size,
    which pyiqa refuses: recorded as nan so that the test expects a shape error);
  - `tile 2 2`: both images tiled 2×2 (1024×768, which changes the internal downsampling factor of fsim/vsi);
  - `gray`: both files converted by PIL `convert('L')`, scored as pyiqa scores a gray file (replicated to RGB).
Run with the dev venv:  .venv/bin/python scripts/make_frequency_references.py [metric ...]
Writes tests/data/frequency_references.csv (metric,image,region,score), keeping rows of other metrics.
"""
import csv
import pathlib
import sys

import torch
import torchvision.transforms.functional as TF
from PIL import Image
import pyiqa
from pyiqa.utils.img_util import imread2tensor
from reference_csv import write_rows

ROOT = pathlib.Path(__file__).resolve().parent.parent
CAL = ROOT / 'data' / 'calibration'
OUT = ROOT / 'tests' / 'data' / 'frequency_references.csv'
IMAGES = ['I03.bmp', 'I04.bmp', 'I06.bmp', 'I08.bmp', 'I19.bmp']
# (x, y, w, h): odd sizes, the smallest cw_ssim accepts (64), one just below, tiny ones (fsim needs 2×2: one
# pixel wide, pyiqa's fsim gives nan, recorded as a refusal; vsi scores even that).
CROPS = [(7, 5, 301, 257), (100, 50, 131, 97), (33, 21, 64, 65), (40, 30, 63, 80), (11, 13, 7, 6), (50, 60, 2, 3),
         (20, 9, 1, 40)]
DEFAULT_METRICS = ['cw_ssim', 'fsim', 'vsi']


def score(metric, d, r):
    try:
        return metric(d, r).item()
    except Exception as e:  # too small for this metric: recorded so that the test expects an error
        print(f'{metric.metric_name} {tuple(d.shape)}: {type(e).__name__}: {e}', file=sys.stderr)
        return float('nan')


def main():
    assert pyiqa.__version__ == '0.1.16', pyiqa.__version__
    torch.set_num_threads(4)
    metrics = sys.argv[1:] or DEFAULT_METRICS
    rows = []
    if OUT.exists():
        with OUT.open() as f:
            rows = [r for r in csv.DictReader(f) if r['metric'] not in metrics]
    for name in metrics:
        metric = pyiqa.create_metric(name, device='cpu')
        for img in IMAGES:
            dist, ref = CAL / 'dist' / img, CAL / 'ref' / img
            rows.append({'metric': name, 'image': img, 'region': 'file',
                         'score': repr(metric(str(dist), str(ref)).item())})
            d = imread2tensor(str(dist), rgb=True).unsqueeze(0)
            r = imread2tensor(str(ref), rgb=True).unsqueeze(0)
            for x, y, w, h in CROPS:
                s = score(metric, d[..., y:y + h, x:x + w].contiguous(), r[..., y:y + h, x:x + w].contiguous())
                rows.append({'metric': name, 'image': img, 'region': f'crop {x} {y} {w} {h}', 'score': repr(s)})
            s = score(metric, d.repeat(1, 1, 2, 2), r.repeat(1, 1, 2, 2))
            rows.append({'metric': name, 'image': img, 'region': 'tile 2 2', 'score': repr(s)})
            # A gray file as pyiqa reads it: PIL converts L to RGB by replicating the channel.
            dg = TF.to_tensor(Image.open(dist).convert('L').convert('RGB')).unsqueeze(0)
            rg = TF.to_tensor(Image.open(ref).convert('L').convert('RGB')).unsqueeze(0)
            rows.append({'metric': name, 'image': img, 'region': 'gray', 'score': repr(score(metric, dg, rg))})
        print(name, [r['score'] for r in rows if r['metric'] == name and r['region'] == 'file'])
    write_rows(OUT, rows)


if __name__ == '__main__':
    main()
