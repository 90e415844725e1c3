#!/usr/bin/env python3
"""How far iqa's YUV -> RGB conversion is from ffmpeg's (the table in README.md, "Video frames").

Usage (from the repository root, ffmpeg on PATH: `apt-get install ffmpeg`; not part of the tests):

    cargo build --release --example yuv_to_rgb
    .venv/bin/python scripts/ffmpeg_yuv_compare.py [--markdown] [--siting topleft] [--formats yuv420p,nv12]

For each calibration reference image (data/calibration/ref/*.bmp, 512x384) and every frame format (yuv420p,
nv12, yuv422p, yuv444p, yuv420p10le, p010le, yuv422p10le, yuv444p10le) x matrix (BT.601, BT.709, BT.2020) x
range (limited, full):
  1. ffmpeg makes the YUV frame from the image (its scale filter, the same matrix, range and siting);
  2. ffmpeg converts the frame back to RGB (rgb24 for 8-bit frames, rgb48le for 10-bit ones) with
     flags accurate_rnd+full_chroma_int+bitexact (its default scaler, bicubic, for the chroma), and once more
     with +bilinear added (iqa's chroma interpolation); the chroma siting is given (left for 4:2:0 and 4:2:2);
  3. iqa converts the frame (examples/yuv_to_rgb) to float RGB, rounded here to the nearest level of the same
     depth (x 255 or x 65535);
and the two are compared: the fraction of samples (R, G, B values) that differ, and the largest difference in
levels of that depth (for 16-bit output also in 8-bit levels, /257).
"""
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
IMAGES = sorted((ROOT / 'data' / 'calibration' / 'ref').glob('*.bmp'))
TOOL = ROOT / 'target' / 'release' / 'examples' / 'yuv_to_rgb'
W, H = 512, 384
FORMATS = ['yuv420p', 'nv12', 'yuv422p', 'yuv444p', 'yuv420p10le', 'p010le', 'yuv422p10le', 'yuv444p10le']
MATRICES = ['bt601', 'bt709', 'bt2020']
RANGES = {'limited': 'tv', 'full': 'pc'}
# Chroma position in ffmpeg's units (luma samples x 256) of iqa's sitings. left (the default): co-sited horizontally,
# centred between the two rows of a 4:2:0 pair.
CHROMA_POS = {'left': {'420': (0, 128), '422': (0, 0), '444': (0, 0)},
              # co-sited both ways: the one 4:2:0 siting whose vertical position swscale's yuv->rgb path honours
              # (its output is the same for every in_v_chr_pos from 1 to 256)
              'topleft': {'420': (0, 0), '422': (0, 0), '444': (0, 0)}}
SITING = sys.argv[sys.argv.index('--siting') + 1] if '--siting' in sys.argv else 'left'
if '--formats' in sys.argv:
    FORMATS = sys.argv[sys.argv.index('--formats') + 1].split(',')
FLAGS = 'accurate_rnd+full_chroma_int+bitexact'


def subsampling(fmt):
    return '444' if '444' in fmt else '422' if '422' in fmt else '420'


def ffmpeg(*args):
    subprocess.run(['ffmpeg', '-v', 'error', '-y', *map(str, args)], check=True)


def compare(image, fmt, matrix, rng, tmp):
    h_pos, v_pos = CHROMA_POS[SITING][subsampling(fmt)]
    yuv, ours = tmp / 'frame.yuv', tmp / 'iqa.f32'
    scale = f'in_h_chr_pos={h_pos}:in_v_chr_pos={v_pos}'
    ffmpeg('-i', image, '-vf', f'scale=out_color_matrix={matrix}:out_range={RANGES[rng]}:out_h_chr_pos={h_pos}:'
           f'out_v_chr_pos={v_pos}:flags={FLAGS},format={fmt}', '-f', 'rawvideo', yuv)
    deep = '10' in fmt
    rgb_fmt, top = ('rgb48le', 65535) if deep else ('rgb24', 255)
    results = []
    for extra in ('', '+bilinear'):
        out = tmp / 'ffmpeg.rgb'
        ffmpeg('-f', 'rawvideo', '-pix_fmt', fmt, '-s', f'{W}x{H}', '-i', yuv, '-vf',
               f'scale=in_color_matrix={matrix}:in_range={RANGES[rng]}:{scale}:flags={FLAGS}{extra},format={rgb_fmt}',
               '-f', 'rawvideo', out)
        theirs = np.fromfile(out, dtype='<u2' if deep else np.uint8).astype(np.int64)
        results.append(theirs)
    siting = SITING
    subprocess.run([TOOL, yuv, ours, '--size', f'{W}x{H}', '--pixfmt', fmt, '--matrix', matrix, '--range', rng,
                    '--siting', siting], check=True, stderr=subprocess.DEVNULL)
    mine = np.rint(np.fromfile(ours, dtype='<f4').astype(np.float64) * top).astype(np.int64)
    return [np.abs(mine - theirs) for theirs in results], top


def main():
    markdown = '--markdown' in sys.argv
    if not TOOL.exists():
        sys.exit(f'{TOOL} is missing: cargo build --release --example yuv_to_rgb')
    rows = []
    with tempfile.TemporaryDirectory(prefix='iqa_ffmpeg_compare_') as tmp:
        tmp = pathlib.Path(tmp)
        for fmt in FORMATS:
            for matrix in MATRICES:
                for rng in RANGES:
                    diffs = [[], []]
                    for image in IMAGES:
                        per_flag, top = compare(image, fmt, matrix, rng, tmp)
                        for k in range(2):
                            diffs[k].append(per_flag[k])
                    stats = []
                    for k in range(2):
                        d = np.concatenate(diffs[k])
                        stats.append((np.mean(d != 0), int(d.max())))
                    rows.append((fmt, matrix, rng, top, stats))
                    # Away from the bottom edge: the last two rows of a 4:2:0 frame read the last chroma row,
                    # where ffmpeg's vertical interpolation does not repeat the edge sample as iqa's does.
                    inner = np.concatenate([d.reshape(H, W, 3)[:H - 2] for d in diffs[1]])
                    print(f'{fmt} {matrix} {rng}: bicubic {stats[0][0]:.4%} max {stats[0][1]}, '
                          f'bilinear {stats[1][0]:.4%} max {stats[1][1]}; bilinear without the last two rows '
                          f'{np.mean(inner != 0):.4%} max {int(inner.max())}', file=sys.stderr)
    if markdown:
        print('| format | matrix | range | ffmpeg default (bicubic chroma): samples differing | max levels '
              '| ffmpeg +bilinear: samples differing | max levels |')
        print('| --- | --- | --- | ---: | ---: | ---: | ---: |')
        for fmt, matrix, rng, top, stats in rows:
            cells = []
            for share, worst in stats:
                levels = f'{worst}' if top == 255 else f'{worst} ({worst / 257:.2f} in 8-bit)'
                cells += [f'{share:.2%}', levels]
            print(f'| {fmt} | {matrix} | {rng} | ' + ' | '.join(cells) + ' |')


main()
