#!/usr/bin/env python3
"""Video clips for tests/video.rs, made, converted and scored without iqa.

Usage: yuv_reference.py OUT_DIR WEIGHTS_DIR

For every frame format (I420, NV12, I422, I444 and their 10-bit variants yuv420p10le, P010, yuv422p10le,
yuv444p10le) x matrix (BT.601, BT.709, BT.2020) x range (limited, full), with the chroma sitings taken in turn,
writes a distorted and a reference clip of FRAMES frames of WIDTH x HEIGHT: Y4M for the planar formats (their
header states the range and, for 8-bit 4:2:0, the siting, except where the case leaves them to the reader's
default), raw .yuv for the semi-planar ones (Y4M holds planar formats only).

Every frame is converted to RGB by this file's own numpy implementation of the formulas documented in
src/image/yuv.rs (float64): range normalisation, bilinear chroma upsampling at the stated siting with edge
samples repeated, the non-constant-luminance matrix, clamping to [0, 1]. The RGB is written as little-endian
float32 (CLIP.rgb: frames x height x width x 3) and the float pairs are scored with pyiqa 0.1.16 on float32
tensors (psnr, ssim, lpips), which is what "the metric's score on that RGB image" means: no 8-bit rounding
(a PNG would round 10-bit frames to 8 bits).

LPIPS weights come from WEIGHTS_DIR (no network): the AlexNet features are saved as the torchvision checkpoint
pyiqa asks for in a temporary TORCH_HOME, the linear layers are passed as pretrained_model_path; the result is
checked on the I03 calibration pair against tests/data/deep_references.csv.

Writes OUT_DIR/cases.csv: case,container,format,matrix,range,siting,range_in_header,siting_in_header,frame,
psnr,ssim,lpips (one row per frame; the clips are OUT_DIR/CASE_{dist,ref}.{y4m,yuv} and .rgb).
"""
import atexit
import math
import os
import pathlib
import shutil
import sys
import tempfile

import numpy as np

OUT = pathlib.Path(sys.argv[1])
WEIGHTS = pathlib.Path(sys.argv[2])
ROOT = pathlib.Path(__file__).resolve().parents[2]
WIDTH, HEIGHT, FRAMES = 64, 48, 3

TMP = pathlib.Path(tempfile.mkdtemp(prefix='iqa_yuv_reference_'))
atexit.register(shutil.rmtree, TMP, ignore_errors=True)
os.environ['TORCH_HOME'] = str(TMP / 'torch')
os.environ['XDG_CACHE_HOME'] = str(TMP / 'cache')

import torch  # noqa: E402
import torch.hub  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from torchvision import models as tvm  # noqa: E402

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
Y4M_COLORSPACE = {'yuv420p': None, 'yuv422p': '422', 'yuv444p': '444', 'yuv420p10le': '420p10',
                  'yuv422p10le': '422p10', 'yuv444p10le': '444p10'}
Y4M_SITING = {'left': '420mpeg2', 'center': '420jpeg', 'topleft': '420paldv'}


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


def reference_planes(rng_gen, fmt, rng):
    """Smooth content over the whole code range (a little beyond the nominal limited range and outside the RGB
    gamut, so that clamping is exercised) plus texture."""
    fx, fy, bits, _ = FORMATS[fmt]
    top = 2 ** bits - 1
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    base = 0.5 + 0.42 * np.sin(xx / 7.0 + yy / 11.0) * np.cos(yy / 5.0 - xx / 13.0)
    luma = base * top + rng_gen.normal(0, 0.04 * top, (HEIGHT, WIDTH))
    ch, cw = HEIGHT // fy, WIDTH // fx
    cy, cx = np.mgrid[0:ch, 0:cw].astype(np.float64)
    u = (0.5 + 0.2 * np.sin(cx / 3.0 + cy / 4.0)) * top + rng_gen.normal(0, 0.03 * top, (ch, cw))
    v = (0.5 + 0.2 * np.cos(cx / 5.0 - cy / 2.0)) * top + rng_gen.normal(0, 0.03 * top, (ch, cw))
    return [np.clip(np.rint(p), 0, top).astype(np.int64) for p in (luma, u, v)]


def distort(rng_gen, planes, fmt, frame):
    top = 2 ** FORMATS[fmt][2] - 1
    out = []
    for p in planes:
        noisy = p + rng_gen.normal(0, 0.05 * top, p.shape) + (frame + 1) * 0.01 * top
        out.append(np.clip(np.rint(noisy), 0, top).astype(np.int64))
    return out


def frame_bytes(planes, fmt):
    _, _, bits, semi = FORMATS[fmt]
    dtype = np.uint8 if bits == 8 else np.dtype('<u2')
    y, u, v = planes
    if semi:
        shift = 16 - bits if bits > 8 else 0
        uv = np.stack([u, v], axis=-1).reshape(u.shape[0], -1)
        return (y << shift).astype(dtype).tobytes() + (uv << shift).astype(dtype).tobytes()
    return b''.join(p.astype(dtype).tobytes() for p in planes)


def y4m_header(fmt, rng, siting, range_in_header, siting_in_header):
    colorspace = Y4M_SITING[siting] if siting_in_header else Y4M_COLORSPACE[fmt]
    tags = [f'W{WIDTH}', f'H{HEIGHT}', 'F25:1', 'Ip', 'A1:1']
    if colorspace:
        tags.append('C' + colorspace)
    if range_in_header:
        tags.append('XCOLORRANGE=' + rng.upper())
    return ('YUV4MPEG2 ' + ' '.join(tags) + '\n').encode()


def lpips_metric():
    import pyiqa
    import pyiqa.utils.download_util as download_util

    def no_download(url, *args, **kwargs):
        raise RuntimeError(f'download attempted: {url}')

    torch.hub.download_url_to_file = no_download
    download_util.download_url_to_file = no_download
    weights = tvm.AlexNet_Weights.IMAGENET1K_V1
    features = load_file(str(WEIGHTS / 'backbones' / 'alexnet_features_torchvision.safetensors'))
    with torch.device('meta'):
        full = tvm.alexnet().state_dict()
    checkpoint = {k: features[k] if k in features else torch.zeros(t.shape) for k, t in full.items()}
    hub = pathlib.Path(torch.hub.get_dir()) / 'checkpoints'
    hub.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, hub / weights.url.rsplit('/', 1)[-1])
    lin = WEIGHTS / 'lpips' / 'lpips_v0.1_alex_lin.pth'
    metric = pyiqa.create_metric('lpips', device='cpu', pretrained_model_path=str(lin))
    # The weights are the ones iqa's own references were made with.
    from pyiqa.utils.img_util import imread2tensor
    cal = ROOT / 'data' / 'calibration'
    got = metric(imread2tensor(str(cal / 'dist' / 'I03.bmp'))[None], imread2tensor(str(cal / 'ref' / 'I03.bmp'))[None])
    want = next(float(line.split(',')[3]) for line in (ROOT / 'tests/data/deep_references.csv').read_text().splitlines()
                if line.startswith('lpips,I03.bmp,file,'))
    if abs(got.item() - want) > 1e-6:
        sys.exit(f'lpips weights check failed: {got.item()} vs {want}')
    return metric


def main():
    import pyiqa
    OUT.mkdir(parents=True, exist_ok=True)
    metrics = {'psnr': pyiqa.create_metric('psnr', device='cpu'), 'ssim': pyiqa.create_metric('ssim', device='cpu'),
               'lpips': lpips_metric()}
    rows = ['case,container,format,matrix,range,siting,range_in_header,siting_in_header,frame,psnr,ssim,lpips']
    index = 0
    for fmt, (fx, fy, bits, semi) in FORMATS.items():
        for matrix in MATRICES:
            for rng in RANGES:
                siting = SITINGS[index % 3] if fx > 1 else 'left'
                container = 'yuv' if semi else 'y4m'
                range_in_header = container == 'y4m' and (rng == 'full' or index % 2 == 0)
                siting_in_header = container == 'y4m' and fmt == 'yuv420p'
                case = f'{fmt}_{matrix}_{rng}_{siting}'
                gen = np.random.default_rng(1000 + index)
                index += 1
                ref = reference_planes(gen, fmt, rng)
                clips = {'dist': [distort(gen, ref, fmt, f) for f in range(FRAMES)], 'ref': [ref] * FRAMES}
                rgb = {}
                for side, frames in clips.items():
                    data = b''
                    if container == 'y4m':
                        data += y4m_header(fmt, rng, siting, range_in_header, siting_in_header)
                    for planes in frames:
                        data += (b'FRAME\n' if container == 'y4m' else b'') + frame_bytes(planes, fmt)
                    (OUT / f'{case}_{side}.{container}').write_bytes(data)
                    rgb[side] = [to_rgb(*planes, fmt, matrix, rng, siting) for planes in frames]
                    np.stack(rgb[side]).astype('<f4').tofile(OUT / f'{case}_{side}.rgb')
                for f in range(FRAMES):
                    tensor = {k: torch.from_numpy(v[f].astype(np.float32)).permute(2, 0, 1)[None]
                              for k, v in rgb.items()}
                    with torch.no_grad():
                        scores = [metrics[m](tensor['dist'], tensor['ref']).item() for m in ('psnr', 'ssim', 'lpips')]
                    assert all(math.isfinite(s) for s in scores), (case, f, scores)
                    rows.append(','.join([case, container, fmt, matrix, rng, siting, str(int(range_in_header)),
                                          str(int(siting_in_header)), str(f)] + [repr(s) for s in scores]))
    (OUT / 'cases.csv').write_text('\n'.join(rows) + '\n')
    print(f'{index} cases, {index * FRAMES} frame pairs written to {OUT}')


main()
