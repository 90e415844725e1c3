"""libiqa decodes JPEG files to PIL's pixels (what pyiqa scores), whatever the encoding: qualities, chroma
subsampling, progressive, gray, sizes that are not multiples of the MCU. PSNR of libiqa's decode of a JPEG
against PIL's decode of it (saved as PNG) is exactly 80 dB, the eps cap of pyiqa's formula, only for identical
pixels (one level off in one sample gives 79.99...)."""
import pytest
from PIL import Image

import iqa
from conftest import CALIBRATION

ENCODINGS = {
    "q30 4:2:0": dict(quality=30, subsampling=2),
    "q75 4:2:2": dict(quality=75, subsampling=1),
    "q95 4:4:4": dict(quality=95, subsampling=0),
    "progressive": dict(quality=80, progressive=True),
}
CROPS = {"whole": None, "odd 301x257": (3, 5, 304, 262), "odd 299x217": (1, 2, 300, 219)}


@pytest.mark.parametrize("image", ["I03.bmp", "I19.bmp"])
def test_jpeg_pixels_equal_pils(tmp_path, image):
    psnr = iqa.create_metric("psnr", device="cpu")
    source = Image.open(CALIBRATION / "ref" / image).convert("RGB")
    cases = [(f"{e} {c}", kw, source if box is None else source.crop(box))
             for e, kw in ENCODINGS.items() for c, box in CROPS.items()]
    cases.append(("gray q85", dict(quality=85), source.convert("L")))
    differ = []
    for name, kw, img in cases:
        jpg, png = tmp_path / "x.jpg", tmp_path / "x.png"
        img.save(jpg, **kw)
        Image.open(jpg).convert("RGB").save(png)
        score = psnr(str(jpg), str(png))
        if score != 80.0:
            differ.append(f"{name}: {score}")
    assert not differ, f"{image}: libiqa's JPEG decode differs from PIL's: {differ}"
