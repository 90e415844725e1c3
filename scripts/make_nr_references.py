#!/usr/bin/env python3
"""Reference scores of pyiqa 0.1.16's classical no-reference metrics (niqe, brisque, piqe) for tests/nr_classical.rs.

For each metric and each distorted calibration image (data/calibration/dist/I0x.bmp) it records
  - `file`: pyiqa scoring the file,
  - `crop X Y W H`: a crop of the decoded image (odd sizes, a small one, the metric's minimum size and one
    pixel below it; NaN where pyiqa fails, so that the test expects a shape error; no row where pyiqa returns
    NaN, which BRISQUE does on some images of up to about 16×16),
  - `tile 2 2`: the decoded image tiled 2×2 (1024×768),
  - `gray`: the image converted by PIL `convert('L')`, back to RGB (R = G = B).
pyiqa downloads its parameter files, which this machine cannot; they are rebuilt here, with the same values,
from the shared weight folder (IQA_WEIGHTS_DIR, default ../shared/weights): the NIQE `.mat` from
`niqe/niqe_pris_params.npz`, the BRISQUE `(sv_coef, sv)` file from `brisque/brisque_live_svm.safetensors`.
pyiqa runs on one CPU thread: its float32 sums over large images depend on the thread count, and BRISQUE's
score amplifies their last bits (up to 5e-3); iqa reproduces the single-threaded summation order.
Run with the dev venv:  .venv/bin/python scripts/make_nr_references.py [metric ...]
Writes tests/data/nr_references.csv (metric,image,region,score).
"""
import csv
import os
import pathlib
import sys
import tempfile

import numpy as np
import scipy.io
import torch
from PIL import Image
import pyiqa
from pyiqa.utils.img_util import imread2tensor
from reference_csv import write_rows

ROOT = pathlib.Path(__file__).resolve().parent.parent
CAL = ROOT / 'data' / 'calibration'
OUT = ROOT / 'tests' / 'data' / 'nr_references.csv'
WEIGHTS = pathlib.Path(os.environ.get('IQA_WEIGHTS_DIR', ROOT.parent / 'shared' / 'weights'))
IMAGES = ['I03.bmp', 'I04.bmp', 'I06.bmp', 'I08.bmp', 'I19.bmp']
# (x, y, w, h): odd sizes and a small one, common to all metrics.
CROPS = [(7, 5, 301, 257), (100, 50, 131, 97), (33, 21, 37, 29)]
# Minimum size (h, w) found by trying pyiqa; the crops at it and one pixel below it in each direction.
MIN_SIZE = {'niqe': (96, 96), 'brisque': (7, 7), 'piqe': (8, 8)}
DEFAULT_METRICS = ['niqe', 'brisque', 'piqe']


def metric_kwargs(name, tmp):
    if name == 'niqe':
        p = np.load(WEIGHTS / 'niqe' / 'niqe_pris_params.npz')
        path = os.path.join(tmp, 'niqe_modelparameters.mat')
        scipy.io.savemat(path, {'mu_prisparam': p['mu_pris_param'], 'cov_prisparam': p['cov_pris_param']})
        return {'pretrained_model_path': path}
    if name == 'brisque':
        from safetensors.numpy import load_file
        p = load_file(str(WEIGHTS / 'brisque' / 'brisque_live_svm.safetensors'))
        path = os.path.join(tmp, 'brisque_svm_weights.pth')
        torch.save((torch.from_numpy(p['sv_coef']), torch.from_numpy(p['sv'])), path)
        return {'pretrained_model_path': path}
    return {}


def crops_for(name):
    crops = list(CROPS)
    h, w = MIN_SIZE.get(name, (None, None))
    if h is not None:
        crops += [(11, 13, w, h), (11, 13, w - 1, h), (11, 13, w, h - 1)]
    return crops


def score(metric, x):
    try:
        s = metric(x).item()
    except Exception as e:  # too small for this metric: recorded so that the test expects an error
        print(f'  {tuple(x.shape)}: {type(e).__name__}', file=sys.stderr)
        return float('nan')
    if s != s:
        print(f'  {tuple(x.shape)}: pyiqa returns NaN, not recorded', file=sys.stderr)
        return None
    return s


def main():
    assert pyiqa.__version__ == '0.1.16', pyiqa.__version__
    # One thread: pyiqa's float32 reductions over large images (BRISQUE) depend on how many threads split them,
    # and its single-threaded result is the reproducible one.
    torch.set_num_threads(1)
    metrics = sys.argv[1:] or DEFAULT_METRICS
    rows = []
    if OUT.exists():  # keep rows of metrics not regenerated now
        with OUT.open() as f:
            rows = [r for r in csv.DictReader(f) if r['metric'] not in metrics]
    with tempfile.TemporaryDirectory() as tmp:
        for name in metrics:
            metric = pyiqa.create_metric(name, device='cpu', **metric_kwargs(name, tmp))
            assert metric.metric_mode == 'NR'
            for img in IMAGES:
                dist = CAL / 'dist' / img

                def add(region, s):
                    if (s is None or s != s) and region.startswith(('file', 'tile', 'gray')):
                        raise RuntimeError(f'{name} {img} {region}: pyiqa failed')
                    if s is None:
                        return
                    rows.append({'metric': name, 'image': img, 'region': region, 'score': repr(s)})

                add('file', metric(str(dist)).item())
                d = imread2tensor(str(dist), rgb=True).unsqueeze(0)
                for x, y, w, h in crops_for(name):
                    add(f'crop {x} {y} {w} {h}', score(metric, d[..., y:y + h, x:x + w].contiguous()))
                add('tile 2 2', score(metric, d.repeat(1, 1, 2, 2).contiguous()))
                gray = np.asarray(Image.open(dist).convert('L').convert('RGB'))
                g = torch.from_numpy(gray.copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)
                add('gray', score(metric, g))
            print(name, [r['score'] for r in rows if r['metric'] == name and r['region'] == 'file'])
    write_rows(OUT, rows)


if __name__ == '__main__':
    main()
