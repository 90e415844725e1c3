#!/usr/bin/env python3
"""Reference values for tests/video.rs: video clips converted and scored without iqa.

Run with the dev venv (from the repository root; about a minute on 2 cores):

    .venv/bin/python scripts/make_yuv_references.py

For every frame format (I420, NV12, I422, I444 and their 10-bit variants yuv420p10le, P010, yuv422p10le,
yuv444p10le) x matrix (BT.601, BT.709, BT.2020) x range (limited, full), with the chroma sitings taken in turn,
a distorted and a reference clip of FRAMES frames of WIDTH x HEIGHT are made from integer formulas (`clip_planes`
below; tests/video.rs makes the same bytes with the same arithmetic and writes them as Y4M for the planar
formats, whose header states the range and, for 8-bit 4:2:0, the siting, except where a case leaves them to
the reader's default, and as raw .yuv for the semi-planar ones).

Every frame is converted to RGB by this file's own numpy implementation of the formulas documented in
src/image/yuv.rs (float64): range normalisation, bilinear chroma upsampling at the stated siting with edge
samples repeated, the non-constant-luminance matrix, clamping to [0, 1]. The float RGB pairs are scored with
pyiqa 0.1.16 on float32 tensors (psnr, ssim, lpips): that is what "the metric's score on that RGB image" means.
No PNGs: a PNG holds 8-bit levels (PIL reads 16-bit RGB PNGs as 8 bits), so it would round away what the
conversion keeps (and every 10-bit frame's extra precision); pyiqa on the rounded image differs from the
unrounded one by more than the 1e-4 tolerance.

LPIPS weights come from the shared weights folder through scripts/pyiqa_env.py (offline, isolated caches, the
same set-up as make_references.py); the result is checked on the I03 calibration pair against
tests/data/pyiqa_references.csv.

Writes tests/data/yuv_references.csv (metric,image,region,score): `image` names the case
(`FORMAT MATRIX RANGE SITING CONTAINER` then `range` and/or `siting` where the Y4M header states them),
`region` is `frame N` for psnr, ssim and lpips of frame N, and `frame N R|G|B` for the numpy RGB's checksums of
that channel of the distorted (`dist_*`) and reference (`ref_*`) frame: `*_mean` (mean over the pixels) and
`*_weighted` (mean of value x ((31x + 17y) mod 7 - 3), which moves when a value moves anywhere).
"""
import math
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import pyiqa_env  # noqa: E402  (before torch and pyiqa: isolated caches, the shared weights)
from pyiqa_env import ROOT, pyiqa, torch  # noqa: E402
from reference_csv import write_rows  # noqa: E402

OUT = ROOT / 'tests' / 'data' / 'yuv_references.csv'
WIDTH, HEIGHT, FRAMES = 64, 48, 3

torch.set_num_threads(2)

# name: (horizontal, vertical chroma subsampling factor, bits, semi-planar)
FORMATS = {
    'yuv420p': (2, 2, 8, False),
    'nv12': (2, 2, 8, True),
    'yuv422p': (2, 1, 8, False),
    'yuv444p': (1, 1, 8, False),
    'yuv420p10le': (2, 2, 10, False),
    'p010le': (2, 2, 10, True),
    'yuv422p10le': (2, 1, 10, False),
    'yuv444p10le': (1, 1, 10, False),
}
MATRICES = {'bt601': (0.299, 0.114), 'bt709': (0.2126, 0.0722), 'bt2020': (0.2627, 0.0593)}
RANGES = ['limited', 'full']
SITINGS = ['left', 'center', 'topleft']


def normalise(values, bits, rng, chroma):
    values = values.astype(np.float64)
    unit = 2.0 ** (bits - 8)
    if rng == 'limited':
        return (values - 128 * unit) / (224 * unit) if chroma else (values - 16 * unit) / (219 * unit)
    top = 2.0 ** bits - 1
    return (values - 2.0 ** (bits - 1)) / top if chroma else values / top


def upsample_axis(plane, axis, out_len, factor, offset):
    """Bilinear along one axis: output sample x reads u = (x - offset) / factor, edges repeated."""
    u = (np.arange(out_len, dtype=np.float64) - offset) / factor
    i = np.floor(u)
    t = u - i
    n = plane.shape[axis]
    i0 = np.clip(i.astype(np.int64), 0, n - 1)
    i1 = np.clip(i.astype(np.int64) + 1, 0, n - 1)
    a, b = np.take(plane, i0, axis=axis), np.take(plane, i1, axis=axis)
    shape = [1, 1]
    shape[axis] = out_len
    t = t.reshape(shape)
    return (1 - t) * a + t * b


def to_rgb(y, u, v, fmt, matrix, rng, siting):
    fx, fy, bits, _ = FORMATS[fmt]
    luma = normalise(y, bits, rng, False)
    # Sample 0 of a chroma line sits at luma position 0 (co-sited) or (factor - 1) / 2 (centred).
    ox = 0.0 if siting in ('left', 'topleft') else (fx - 1) / 2
    oy = 0.0 if siting == 'topleft' else (fy - 1) / 2
    chroma = []
    for plane in (u, v):
        c = normalise(plane, bits, rng, True)
        c = upsample_axis(c, 0, y.shape[0], fy, oy)
        c = upsample_axis(c, 1, y.shape[1], fx, ox)
        chroma.append(c)
    pb, pr = chroma
    kr, kb = MATRICES[matrix]
    kg = 1 - kr - kb
    r = luma + 2 * (1 - kr) * pr
    g = luma - 2 * kb * (1 - kb) / kg * pb - 2 * kr * (1 - kr) / kg * pr
    b = luma + 2 * (1 - kb) * pb
    return np.clip(np.stack([r, g, b], axis=-1), 0.0, 1.0)


def mix(keys):
    """splitmix64's finaliser on uint64 keys (wrapping arithmetic)."""
    z = keys * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def noise(case, stream, plane, shape, amplitude):
    """Integers in [-amplitude, amplitude], a hash of (case, stream, plane, y, x)."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.uint64)
    keys = (np.uint64(((case * 64 + stream) * 4 + plane) << 32)) + (yy << np.uint64(16)) + xx
    return (mix(keys) % np.uint64(2 * amplitude + 1)).astype(np.int64) - amplitude


def tri(t, period):
    """A triangle wave of non-negative integers: 0 .. period / 2."""
    return np.abs(t % period - period // 2)


def clip_planes(case, fmt):
    """The reference frame's planes and the distorted clip's (FRAMES of them), integers only: smooth patterns
    over the whole code range (a little beyond the nominal limited range and outside the RGB gamut, so that
    clamping is exercised) plus hash noise; the distorted frames add noise and a brightness step per frame."""
    fx, fy, bits, _ = FORMATS[fmt]
    top = 2 ** bits - 1
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.int64)
    luma = (tri(2 * xx + 3 * yy, 40) + tri(xx + 2 * (HEIGHT - yy), 28)) * (top + top // 8) // 34 - top // 16
    luma = luma + noise(case, 0, 0, luma.shape, top // 16)
    ch, cw = HEIGHT // fy, WIDTH // fx
    cy, cx = np.mgrid[0:ch, 0:cw].astype(np.int64)
    planes = [luma]
    for p in (1, 2):
        c = tri(3 * cx + cy * p + 7 * p, 24) * top // 14 + top // 2 - 6 * top // 14
        planes.append(c + noise(case, 0, p, c.shape, top // 20))
    ref = [np.clip(q, 0, top) for q in planes]
    dist = [[np.clip(q + noise(case, 1 + f, p, q.shape, top // 12) + (f + 1) * top // 100, 0, top)
             for p, q in enumerate(ref)] for f in range(FRAMES)]
    return ref, dist


def checksums(rgb):
    """(mean, weighted mean) of each channel of a height x width x 3 image, float64."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    weight = ((31 * xx + 17 * yy) % 7 - 3).astype(np.float64)
    return [(float(rgb[..., c].mean()), float((rgb[..., c] * weight).mean())) for c in range(3)]


def lpips_metric():
    feats = pyiqa_env.setup_weights()
    metric = pyiqa.create_metric('lpips', device='cpu')
    pyiqa_env.verify('lpips', metric, feats)
    # The weights are the ones iqa's own references were made with.
    from pyiqa.utils.img_util import imread2tensor
    cal = ROOT / 'data' / 'calibration'
    got = metric(imread2tensor(str(cal / 'dist' / 'I03.bmp'))[None], imread2tensor(str(cal / 'ref' / 'I03.bmp'))[None])
    rows = (ROOT / 'tests/data/pyiqa_references.csv').read_text().splitlines()
    want = next(float(line.split(',')[3]) for line in rows
                if line.startswith('lpips,I03.bmp,file,'))
    if abs(got.item() - want) > 1e-6:
        sys.exit(f'lpips weights check failed: {got.item()} vs {want}')
    return metric


def main():
    assert pyiqa.__version__ == '0.1.16', pyiqa.__version__
    metrics = {'psnr': pyiqa.create_metric('psnr', device='cpu'), 'ssim': pyiqa.create_metric('ssim', device='cpu'),
               'lpips': lpips_metric()}
    rows = []
    index = 0
    for fmt, (fx, fy, bits, semi) in FORMATS.items():
        for matrix in MATRICES:
            for rng in RANGES:
                siting = SITINGS[index % 3] if fx > 1 else 'left'
                container = 'yuv' if semi else 'y4m'
                in_header = []
                if container == 'y4m' and (rng == 'full' or index % 2 == 0):
                    in_header.append('range')
                if container == 'y4m' and fmt == 'yuv420p':
                    in_header.append('siting')
                case = ' '.join([fmt, matrix, rng, siting, container] + in_header)
                ref, dist = clip_planes(index, fmt)
                index += 1
                for f in range(FRAMES):
                    rgb = {side: to_rgb(*planes, fmt, matrix, rng, siting)
                           for side, planes in (('dist', dist[f]), ('ref', ref))}
                    tensor = {k: torch.from_numpy(v.astype(np.float32)).permute(2, 0, 1)[None] for k, v in rgb.items()}
                    with torch.no_grad():
                        for m, metric in metrics.items():
                            score = metric(tensor['dist'], tensor['ref']).item()
                            assert math.isfinite(score), (case, f, m, score)
                            rows.append({'metric': m, 'image': case, 'region': f'frame {f}', 'score': repr(score)})
                    for side, image in rgb.items():
                        for c, (mean, weighted) in zip('RGB', checksums(image)):
                            for kind, value in (('mean', mean), ('weighted', weighted)):
                                rows.append({'metric': f'{side}_{kind}', 'image': case, 'region': f'frame {f} {c}',
                                             'score': repr(value)})
    write_rows(OUT, rows)
    print(f'{index} cases, {index * FRAMES} frame pairs')


main()
