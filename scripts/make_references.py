#!/usr/bin/env python3
"""Reference scores of pyiqa 0.1.16 (the behaviour iqa reproduces) for tests/parity.rs: one CSV,
tests/data/pyiqa_references.csv (metric,image,region,score; score = repr of the Python float), and the LPIPS
spatial map of the I03 files, tests/data/lpips_map_I03.csv.

Every metric is scored on the calibration pairs (data/calibration/{dist,ref}/I0x.bmp, decoded as pyiqa does)
in the regions its entry of METRICS lists:
  - `file`: pyiqa scoring the file paths (PIL decoding, RGB conversion);
  - `jpeg NAME`: tests/data/NAME (a JPEG PIL wrote from I19's distorted image, created when missing) against the
    reference BMP: pins JPEG decoding to PIL's, colour and gray;
  - `gray`: both files converted by PIL `convert('L')` and back to RGB (R = G = B), as pyiqa reads a gray file;
  - `tile 2 2`: both decoded tensors tiled 2×2 (1024×768);
  - `crop X Y W H`: the same crop of both decoded tensors: odd and small sizes, and sizes around the metric's
    minimum. A size pyiqa raises on is recorded as `nan` (the test then expects a shape error naming the
    minimum); a NaN score is recorded the same way, or skipped where the entry says so;
and vif also on a smooth synthetic pair (`smooth W H`, image `smooth`, rebuilt by the Rust test) where pyiqa's
float32 VIF is NaN, with pyiqa's VIF run in float64 (`smooth W H float64`), the value iqa gives there.
pyiqa's float32 reductions depend on its thread count; each entry fixes it.

Run with the dev venv:  .venv/bin/python scripts/make_references.py [--reuse] [metric ...]
(rows of metrics not named are kept; --reuse also keeps the named metrics' existing rows and scores only
missing ones).
"""
import csv
import math
import sys
import tempfile
import time

import pyiqa_env  # before torch and pyiqa: isolated caches, the shared weights
from pyiqa_env import ROOT, pyiqa, torch
from PIL import Image
import torchvision.transforms.functional as TF
from pyiqa.utils.img_util import imread2tensor
from reference_csv import write_rows

CAL = ROOT / 'data' / 'calibration'
OUT = ROOT / 'tests' / 'data' / 'pyiqa_references.csv'
MAP_OUT = ROOT / 'tests' / 'data' / 'lpips_map_I03.csv'
IMAGES = ['I03.bmp', 'I04.bmp', 'I06.bmp', 'I08.bmp', 'I19.bmp']

# Crops (x, y, w, h) shared by several families: odd sizes, a just-big-enough MS-SSIM size, a small one.
ODD = [(7, 5, 301, 257), (100, 50, 161, 163), (33, 21, 37, 29)]
NR_ODD = [(7, 5, 301, 257), (100, 50, 131, 97), (33, 21, 37, 29)]


def around(size, at=(50, 60)):
    """Crops of I03 at `at` of each (w, h) in `size`."""
    return [(at[0], at[1], w, h) for w, h in size]


def minimum(w, h):
    """The minimum size at (11, 13) and one pixel below it in each direction."""
    return [(11, 13, w, h), (11, 13, w - 1, h), (11, 13, w, h - 1)]


def entry(threads, regions, crops, edge=(), nan='refused', pyiqa_name=None, **kwargs):
    """A metric's configuration: torch threads; regions among file, jpeg, gray, tile; crops of every image;
    `edge`, crops of I03 only; what a NaN score means ('refused': recorded as nan, 'skip': no row);
    pyiqa's name and create_metric arguments where they differ from the row's."""
    return dict(threads=threads, regions=regions, crops=crops, edge=list(edge), nan=nan, pyiqa=pyiqa_name,
                kwargs=kwargs)


BASIC = ('file', 'jpeg')
FULL = ('file', 'gray', 'tile')
FREQUENCY_CROPS = [(7, 5, 301, 257), (100, 50, 131, 97), (33, 21, 64, 65), (40, 30, 63, 80), (11, 13, 7, 6),
                   (50, 60, 2, 3), (20, 9, 1, 40)]
DEEP = dict(threads=2, regions=('file', 'tile'), crops=ODD + [(0, 0, 16, 16)])
METRICS = {
    'psnr': entry(2, BASIC, ODD),
    'psnry': entry(2, BASIC, ODD),
    'ssim': entry(2, BASIC, ODD),
    'ssimc': entry(2, BASIC, ODD),
    'ms_ssim': entry(2, BASIC, ODD),
    'entropy': entry(2, BASIC, ODD),
    'gmsd': entry(2, FULL, ODD, around([(4, 4), (2, 4), (4, 2), (5, 7), (3, 3), (2, 3), (2, 2), (1, 1)])),
    'vif': entry(2, FULL, ODD, around([(33, 33), (35, 41), (32, 33), (33, 32), (32, 32)])),
    'nlpd': entry(2, FULL, ODD, around([(1, 1), (1, 5), (5, 1), (2, 3), (7, 9)])),
    'mad': entry(2, FULL, ODD, around([(16, 16), (17, 19), (15, 16), (16, 15), (15, 15)])),
    'cw_ssim': entry(4, FULL, FREQUENCY_CROPS),
    'fsim': entry(4, FULL, FREQUENCY_CROPS),
    'vsi': entry(4, FULL, FREQUENCY_CROPS),
    # One thread: BRISQUE's score amplifies the last bits of float32 sums split over threads (up to 5e-3).
    'niqe': entry(1, FULL, NR_ODD + minimum(96, 96), nan='skip'),
    'brisque': entry(1, FULL, NR_ODD + minimum(7, 7), nan='skip'),
    'piqe': entry(1, FULL, NR_ODD + minimum(8, 8), nan='skip'),
    # No tile: every image is resized to 524×524 first, so a tile tests nothing more (at ~10 s a row).
    'ilniqe': entry(2, ('file', 'gray'), [(7, 5, 301, 257), (33, 21, 37, 29)] + minimum(3, 3)),
    'lpips': entry(**DEEP),
    'lpips-vgg': entry(**DEEP),
    'lpips+': entry(**DEEP),
    'lpips-vgg+': entry(**DEEP),
    'lpips-squeeze': entry(**DEEP, pyiqa_name='lpips', net='squeeze'),
    'dists': entry(**DEEP),
}
JPEGS = [('I19_q75.jpg', 'RGB', 75), ('I19_gray_q90.jpg', 'L', 90)]
SMOOTH = (480, 270)
MAP_PIXELS = [(0, 0), (10, 20), (100, 200), (383, 511), (200, 37)]


def tile(t):
    row = torch.cat([t, t], dim=-1)
    return torch.cat([row, row], dim=-2).contiguous()


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


# pyiqa raised: too small for this metric, recorded so that the test expects a shape error (the object, not
# its value, tells it from a NaN score).
REFUSED = float('nan')


def score(metric, *inputs):
    try:
        return metric(*inputs).item()
    except Exception as e:
        print(f'  refused: {type(e).__name__}: {str(e).splitlines()[0][:160]}', file=sys.stderr)
        return REFUSED


def metric_rows(name, conf, metric, feats, old):
    """(image, region, score) rows of one metric; rows in `old` ((image, region) → score) are reused."""
    fr = metric.metric_mode == 'FR'
    rows = []

    def add(img, region, compute):
        s = old[(img, region)] if (img, region) in old else compute()
        if math.isnan(s) and region.split(' ')[0] in ('file', 'gray', 'tile', 'jpeg'):
            raise RuntimeError(f'{name} {img} {region}: pyiqa failed')
        if math.isnan(s) and s is not REFUSED and conf['nan'] == 'skip' and (img, region) not in old:
            print(f'  {name} {img} {region}: pyiqa returns NaN, not recorded', file=sys.stderr)
            return
        rows.append((img, region, s))

    for img in IMAGES:
        dist, ref = CAL / 'dist' / img, CAL / 'ref' / img
        pair = (lambda d, r: (d, r)) if fr else (lambda d, r: (d,))
        add(img, 'file', lambda: score(metric, *pair(str(dist), str(ref))))
        if 'jpeg' in conf['regions'] and img == 'I19.bmp':
            for jpg, mode, quality in JPEGS:
                path = OUT.parent / jpg
                if not path.exists():
                    Image.open(dist).convert(mode).save(path, quality=quality)
                add(img, f'jpeg {jpg}', lambda: score(metric, *pair(str(path), str(ref))))
        if 'gray' in conf['regions']:
            add(img, 'gray', lambda: score(metric, *pair(gray(dist), gray(ref))))
        d = imread2tensor(str(dist), rgb=True).unsqueeze(0)
        r = imread2tensor(str(ref), rgb=True).unsqueeze(0)
        if 'tile' in conf['regions']:
            add(img, 'tile 2 2', lambda: score(metric, *pair(tile(d), tile(r))))
        for x, y, w, h in conf['crops'] + (conf['edge'] if img == 'I03.bmp' else []):
            def crop(t):
                return t[..., y:y + h, x:x + w].contiguous()
            add(img, f'crop {x} {y} {w} {h}', lambda: score(metric, *pair(crop(d), crop(r))))
    if name == 'vif':
        w, h = SMOOTH
        sd, sr = smooth_pair(w, h)
        add('smooth', f'smooth {w} {h}', lambda: score(metric, sd, sr))
        add('smooth', f'smooth {w} {h} float64', lambda: vif_float64(sd, sr))
    return rows


def lpips_map(feats):
    """pyiqa's LPIPS (alex, v0.1) spatial map of the I03 files: shape, mean, max, min, a few pixels, the score."""
    dist, ref = CAL / 'dist' / 'I03.bmp', CAL / 'ref' / 'I03.bmp'
    spatial = pyiqa.create_metric('lpips', device='cpu', spatial=True)
    pyiqa_env.verify('lpips(spatial)', spatial, feats)
    m = spatial(str(dist), str(ref))
    s = pyiqa.create_metric('lpips', device='cpu')(str(dist), str(ref)).item()
    mean = m.mean().item()
    lines = ['shape,' + ','.join(str(n) for n in m.shape),
             f'mean,{mean!r}', f'max,{m.max().item()!r}', f'min,{m.min().item()!r}']
    lines += [f'px,{y},{x},{m[0, 0, y, x].item()!r}' for y, x in MAP_PIXELS]
    lines += [f'score,{s!r}', f'mean_equals_score,{mean == s}']
    MAP_OUT.write_text('\n'.join(lines) + '\n')
    print(f'wrote {MAP_OUT}')


def main():
    assert pyiqa.__version__ == '0.1.16', pyiqa.__version__
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    reuse = '--reuse' in sys.argv[1:]
    names = args or list(METRICS)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        sys.exit(f'unknown metrics {unknown}; known: {list(METRICS)}')
    existing = []
    if OUT.exists():
        with OUT.open() as f:
            existing = list(csv.DictReader(f))
    rows = [r for r in existing if r['metric'] not in names]
    feats = pyiqa_env.setup_weights() if any(n.startswith(('lpips', 'dists')) for n in names) else {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            t0 = time.time()
            conf = METRICS[name]
            torch.set_num_threads(conf['threads'])
            kwargs = dict(conf['kwargs'], **pyiqa_env.metric_kwargs(name, tmp))
            metric = pyiqa.create_metric(conf['pyiqa'] or name, device='cpu', **kwargs)
            if name.startswith(('lpips', 'dists')):
                pyiqa_env.verify(name, metric, feats)
            old = {(r['image'], r['region']): float(r['score']) for r in existing if r['metric'] == name} \
                if reuse else {}
            new = metric_rows(name, conf, metric, feats, old)
            rows += [{'metric': name, 'image': i, 'region': g, 'score': repr(s)} for i, g, s in new]
            print(f'{name}: {len(new)} rows, {time.time() - t0:.1f} s', [s for _, g, s in new if g == 'file'])
    if 'lpips' in names:
        torch.set_num_threads(METRICS['lpips']['threads'])
        lpips_map(feats)
    order = {name: i for i, name in enumerate(METRICS)}
    rows.sort(key=lambda r: order.get(r['metric'], len(order)))  # stable: each metric's rows keep their order
    write_rows(OUT, rows)


if __name__ == '__main__':
    main()
