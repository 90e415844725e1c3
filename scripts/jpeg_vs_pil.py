#!/usr/bin/env python3
"""Measures how iqa's JPEG decoding (the `image` crate's zune-jpeg) differs from PIL's (libjpeg-turbo), which
pyiqa uses. For each calibration image and several qualities, PIL writes a JPEG; then
  - pixel difference: PSNR between iqa's decode of the JPEG and PIL's decode saved losslessly as PNG
    (80 dB = identical pixels, the eps cap of pyiqa's PSNR), plus the max abs difference computed by PIL/numpy
    from iqa's decode (written through `iqa decode`-free route: we compare via scores only), and
  - score difference: pyiqa's psnr/ssim on the JPEG against the reference vs iqa's on the same files.
Run: .venv/bin/python scripts/jpeg_vs_pil.py  (needs `cargo build --release` and pyiqa: make setup-dev)
"""
import pathlib
import subprocess
import sys
import tempfile

import pyiqa
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent
CLI = ROOT / 'target' / 'release' / 'iqa'
CAL = ROOT / 'data' / 'calibration'


def iqa_score(metric, a, b):
    out = subprocess.run([str(CLI), 'score', metric, str(a), str(b)], capture_output=True, text=True, check=True)
    return float(out.stdout)


def main():
    metrics = {m: pyiqa.create_metric(m, device='cpu') for m in ('psnr', 'ssim')}
    worst = {m: 0.0 for m in metrics}
    min_pixel_psnr = 1e9
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for img in sorted((CAL / 'dist').iterdir()):
            for quality in (50, 75, 95):
                jpg = tmp / f'{img.stem}_q{quality}.jpg'
                Image.open(img).convert('RGB').save(jpg, quality=quality)
                pil_png = tmp / f'{img.stem}_q{quality}_pil.png'
                Image.open(jpg).convert('RGB').save(pil_png)
                pixel_psnr = iqa_score('psnr', jpg, pil_png)
                min_pixel_psnr = min(min_pixel_psnr, pixel_psnr)
                ref = CAL / 'ref' / img.name
                line = [f'{img.name} q{quality}: decode PSNR iqa-vs-PIL {pixel_psnr:.2f} dB']
                for m, metric in metrics.items():
                    p = metric(str(jpg), str(ref)).item()
                    i = iqa_score(m, jpg, ref)
                    worst[m] = max(worst[m], abs(p - i) / abs(p))
                    line.append(f'{m} pyiqa {p:.6f} iqa {i:.6f}')
                print('; '.join(line))
    print(f'lowest decode PSNR between iqa and PIL: {min_pixel_psnr:.2f} dB (80 = identical)')
    for m, w in worst.items():
        print(f'max relative score difference on JPEG input, {m}: {w:.2e}')


if __name__ == '__main__':
    sys.exit(main())
