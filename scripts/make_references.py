#!/usr/bin/env python3
"""Reference scores from pyiqa 0.1.16 (the behaviour iqa reproduces), at full precision, for the test suite.

For each metric and each calibration pair (data/calibration/{dist,ref}/I0x.bmp) it records
  - `file`: pyiqa scoring the two files (PIL decoding, RGB conversion), and
  - `jpeg NAME`: pyiqa scoring tests/data/NAME (a JPEG that PIL wrote from the distorted image, created here
    when missing) against the reference BMP: pins the JPEG decoding to PIL's, colour and grayscale;
  - `crop X Y W H`: pyiqa scoring the same crop of both decoded images (odd and small sizes; the Rust tests
    build the crop from the full buffer with a stride, which exercises strided input too).
Run with the dev venv:  .venv/bin/python scripts/make_references.py [metric ...]
Writes tests/data/references.csv (metric,image,region,score).
"""
import csv
import pathlib
import sys

import torch
from PIL import Image
import pyiqa
from pyiqa.utils.img_util import imread2tensor
from reference_csv import write_rows

ROOT = pathlib.Path(__file__).resolve().parent.parent
CAL = ROOT / 'data' / 'calibration'
OUT = ROOT / 'tests' / 'data' / 'references.csv'
IMAGES = ['I03.bmp', 'I04.bmp', 'I06.bmp', 'I08.bmp', 'I19.bmp']
# (x, y, w, h): odd sizes, a just-big-enough MS-SSIM size, a small one.
CROPS = [(7, 5, 301, 257), (100, 50, 161, 163), (33, 21, 37, 29)]
# (file name, PIL mode, quality): JPEGs of I19's distorted image.
JPEGS = [('I19_q75.jpg', 'RGB', 75), ('I19_gray_q90.jpg', 'L', 90)]
DEFAULT_METRICS = ['psnr', 'psnry', 'ssim', 'ssimc', 'ms_ssim', 'entropy']


def main():
    assert pyiqa.__version__ == '0.1.16', pyiqa.__version__
    torch.set_num_threads(2)
    metrics = sys.argv[1:] or DEFAULT_METRICS
    rows = []
    if OUT.exists():  # keep rows of metrics not regenerated now
        with OUT.open() as f:
            rows = [r for r in csv.DictReader(f) if r['metric'] not in metrics]
    for name in metrics:
        metric = pyiqa.create_metric(name, device='cpu')
        for img in IMAGES:
            dist, ref = CAL / 'dist' / img, CAL / 'ref' / img
            args = [str(dist)] + ([str(ref)] if metric.metric_mode == 'FR' else [])
            score = metric(*args).item()
            rows.append({'metric': name, 'image': img, 'region': 'file', 'score': repr(score)})
            if img == 'I19.bmp':
                for jpg, mode, quality in JPEGS:
                    path = OUT.parent / jpg
                    if not path.exists():
                        Image.open(dist).convert(mode).save(path, quality=quality)
                    args = [str(path)] + ([str(ref)] if metric.metric_mode == 'FR' else [])
                    s = metric(*args).item()
                    rows.append({'metric': name, 'image': img, 'region': f'jpeg {jpg}', 'score': repr(s)})
            d = imread2tensor(str(dist), rgb=True).unsqueeze(0)
            r = imread2tensor(str(ref), rgb=True).unsqueeze(0)
            for x, y, w, h in CROPS:
                dc = d[..., y:y + h, x:x + w].contiguous()
                rc = r[..., y:y + h, x:x + w].contiguous()
                try:
                    s = (metric(dc, rc) if metric.metric_mode == 'FR' else metric(dc)).item()
                except Exception as e:  # too small for this metric: recorded so that the test expects an error
                    s = float('nan')
                    print(f'{name} {img} crop {w}x{h}: {type(e).__name__}', file=sys.stderr)
                rows.append({'metric': name, 'image': img, 'region': f'crop {x} {y} {w} {h}', 'score': repr(s)})
        print(name, [r['score'] for r in rows if r['metric'] == name and r['region'] == 'file'])
    write_rows(OUT, rows)


if __name__ == '__main__':
    main()
