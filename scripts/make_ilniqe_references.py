#!/usr/bin/env python3
"""Reference scores of pyiqa 0.1.16's `ilniqe` for tests/nr_ilniqe.rs.

For each distorted calibration image (data/calibration/dist/I0x.bmp) it records
  - `file`: pyiqa scoring the file,
  - `crop X Y W H`: crops of the decoded image (odd sizes, a small one, the smallest size pyiqa accepts (3×3:
    its resize needs three samples per side) and one pixel below it in each direction; NaN where pyiqa raises,
    so that the test expects a shape error — it also raises on some 3×3 and 4×4 crops, whose every block has a
    NaN feature),
  - `gray`: the image converted by PIL `convert('L')`, back to RGB (R = G = B).
pyiqa downloads its template model (ILNIQE_templateModel.mat), which this machine cannot; the official file
sits in the shared weight folder (IQA_WEIGHTS_DIR, default ../shared/weights, `ilniqe/`) and is copied into a
temporary directory under the name pyiqa requests, then handed to pyiqa as its model path.
Run with the dev venv:  .venv/bin/python scripts/make_ilniqe_references.py [--reuse]
(--reuse keeps the rows already in the CSV and scores only the missing ones: pyiqa takes ~10 s a row, whatever
the image size, which is also why there is no 2×2 tile row: it would cost as much as the file and test nothing
more, every image being resized to 524×524 first.)
Writes tests/data/ilniqe_references.csv (metric,image,region,score).
"""
import csv
import os
import pathlib
import shutil
import sys
import tempfile

import numpy as np
import torch
from PIL import Image
import pyiqa
from pyiqa.utils.img_util import imread2tensor
from reference_csv import write_rows

ROOT = pathlib.Path(__file__).resolve().parent.parent
CAL = ROOT / 'data' / 'calibration'
OUT = ROOT / 'tests' / 'data' / 'ilniqe_references.csv'
WEIGHTS = pathlib.Path(os.environ.get('IQA_WEIGHTS_DIR', ROOT.parent / 'shared' / 'weights'))
IMAGES = ['I03.bmp', 'I04.bmp', 'I06.bmp', 'I08.bmp', 'I19.bmp']
# (x, y, w, h): odd sizes, a small one, the minimum size (3×3, found by trying pyiqa: 2 samples fail in its
# resize) and one pixel below it in each direction.
CROPS = [(7, 5, 301, 257), (33, 21, 37, 29), (11, 13, 3, 3), (11, 13, 2, 3), (11, 13, 3, 2)]


def score(metric, x):
    try:
        s = metric(x).item()
    except Exception as e:  # too small: recorded so that the test expects an error
        print(f'  {tuple(x.shape)}: {type(e).__name__}', file=sys.stderr)
        return float('nan')
    return s


def main():
    assert pyiqa.__version__ == '0.1.16', pyiqa.__version__
    old = {}
    if '--reuse' in sys.argv[1:] and OUT.exists():
        with OUT.open() as f:
            old = {(r['image'], r['region']): r for r in csv.DictReader(f) if r['metric'] == 'ilniqe'}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'ILNIQE_templateModel.mat')
        shutil.copyfile(WEIGHTS / 'ilniqe' / 'ILNIQE_templateModel.mat', path)
        metric = pyiqa.create_metric('ilniqe', device='cpu', pretrained_model_path=path)
        assert metric.metric_mode == 'NR'
        for img in IMAGES:
            dist = CAL / 'dist' / img

            def add(region, compute):
                if (img, region) in old:
                    rows.append(old[(img, region)])
                    return
                s = compute()
                if s != s and region.startswith(('file', 'tile', 'gray')):
                    raise RuntimeError(f'ilniqe {img} {region}: pyiqa failed')
                rows.append({'metric': 'ilniqe', 'image': img, 'region': region, 'score': repr(s)})

            add('file', lambda: metric(str(dist)).item())
            d = imread2tensor(str(dist), rgb=True).unsqueeze(0)
            for x, y, w, h in CROPS:
                add(f'crop {x} {y} {w} {h}', lambda: score(metric, d[..., y:y + h, x:x + w].contiguous()))
            gray = np.asarray(Image.open(dist).convert('L').convert('RGB'))
            g = torch.from_numpy(gray.copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)
            add('gray', lambda: score(metric, g))
            print(img, [r['score'] for r in rows if r['image'] == img], flush=True)
    write_rows(OUT, rows)


if __name__ == '__main__':
    main()
