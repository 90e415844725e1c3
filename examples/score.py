#!/usr/bin/env python3
"""score.py: compute one image quality metric with the `iqa` Python package (python/, over libiqa).

    python examples/score.py METRIC DIST [REF]

Uses the installed `iqa` (pip install of the wheel, `make python-wheel`), else this repository's python/ with
target/release/libiqa.so ($IQA_LIBRARY overrides the library). For full-reference metrics it also scores two
synthetic in-memory RGB8 images (numpy arrays, read in place by the library).
"""
import sys
from pathlib import Path

try:
    import iqa
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
    import iqa


def gradient_rgb8(width, height, phase):
    """An H x W x 3 uint8 image: horizontal red, vertical green and diagonal blue gradients."""
    import numpy as np

    y, x = np.mgrid[0:height, 0:width]
    return np.stack([(x * 4 + phase) % 256, (y * 5) % 256, ((x + y) * 2 + 3 * phase) % 256], axis=2).astype(np.uint8)


def main(argv):
    if len(argv) not in (3, 4):
        print(f"usage: {argv[0]} METRIC DIST [REF]", file=sys.stderr)
        return 2
    name, dist_path = argv[1], argv[2]
    ref_path = argv[3] if len(argv) == 4 else None
    print(f"iqa {iqa.__version__}")
    try:
        with iqa.create_metric(name) as metric:
            fr = metric.metric_mode == "FR"
            low, high = metric.score_range
            print(f"metric {metric.metric_name}: {'full-reference' if fr else 'no-reference'}, "
                  f"{'lower' if metric.lower_better else 'higher'} is better, range {low:g}..{high:g}")
            print(f"score {name} {metric(dist_path, ref_path):.6f}")
            if fr:
                try:
                    score = metric(gradient_rgb8(64, 48, 7), gradient_rgb8(64, 48, 0))
                    print(f"buffer {name} {score:.6f}")
                except iqa.ShapeMismatchError as e:  # e.g. ms_ssim needs larger images than 64x48
                    print(f"buffer {name} skipped: {e}")
    except iqa.IqaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
