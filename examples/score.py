#!/usr/bin/env python3
"""score.py: compute one image quality metric with libiqa through ctypes (standard library only).

    python3 examples/score.py METRIC DIST [REF]

The library is loaded from $IQA_LIBRARY, else from target/release/libiqa.so in this repository.
For full-reference metrics it also scores two synthetic in-memory RGB8 images with iqa_score.
"""
import ctypes
import os
import sys
from pathlib import Path

IQA_ABI_VERSION = 1  # the ABI this script was written against (include/iqa.h)

IQA_OK = 0
IQA_DEVICE_AUTO, IQA_DEVICE_CPU, IQA_DEVICE_CUDA = 0, 1, 2
IQA_MODE_FR, IQA_MODE_NR = 0, 1
IQA_FORMAT_RGB8 = 0
IQA_ERR_SHAPE_MISMATCH = 5

c_enum = ctypes.c_int  # C enums are int-sized on every ABI libiqa supports


class IqaOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("device", c_enum),
        ("device_index", ctypes.c_int32),
        ("precision", c_enum),
    ]


class IqaMetricInfo(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("mode", c_enum),
        ("lower_better", ctypes.c_bool),
        ("score_min", ctypes.c_double),
        ("score_max", ctypes.c_double),
    ]


class IqaImage(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("width", ctypes.c_uint32),
        ("height", ctypes.c_uint32),
        ("stride", ctypes.c_size_t),
        ("format", c_enum),
    ]


class IqaMetric(ctypes.Structure):
    """Opaque handle: only ever used through a pointer."""


IqaMetricPtr = ctypes.POINTER(IqaMetric)


def load_library():
    path = os.environ.get("IQA_LIBRARY") or str(
        Path(__file__).resolve().parent.parent / "target" / "release" / "libiqa.so"
    )
    lib = ctypes.CDLL(path)
    lib.iqa_abi_version.argtypes, lib.iqa_abi_version.restype = [], ctypes.c_uint32
    lib.iqa_version.argtypes, lib.iqa_version.restype = [], ctypes.c_char_p
    lib.iqa_last_error.argtypes, lib.iqa_last_error.restype = [], ctypes.c_char_p
    lib.iqa_options_default.argtypes, lib.iqa_options_default.restype = [ctypes.POINTER(IqaOptions)], None
    lib.iqa_metric_create.argtypes = [ctypes.c_char_p, ctypes.POINTER(IqaOptions), ctypes.POINTER(IqaMetricPtr)]
    lib.iqa_metric_create.restype = c_enum
    lib.iqa_metric_free.argtypes, lib.iqa_metric_free.restype = [IqaMetricPtr], None
    lib.iqa_metric_info.argtypes = [IqaMetricPtr, ctypes.POINTER(IqaMetricInfo)]
    lib.iqa_metric_info.restype = c_enum
    lib.iqa_score.argtypes = [
        IqaMetricPtr, ctypes.POINTER(IqaImage), ctypes.POINTER(IqaImage), ctypes.POINTER(ctypes.c_double)
    ]
    lib.iqa_score.restype = c_enum
    lib.iqa_score_files.argtypes = [IqaMetricPtr, ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_double)]
    lib.iqa_score_files.restype = c_enum
    return lib


class IqaError(Exception):
    def __init__(self, status, message):
        super().__init__(f"{status}: {message}")
        self.status = status


def check(lib, status):
    if status != IQA_OK:
        raise IqaError(status, lib.iqa_last_error().decode("utf-8", "replace"))


def gradient_rgb8(width, height, phase):
    """A tightly packed RGB8 image: horizontal red, vertical green and diagonal blue gradients."""
    return bytes(
        channel
        for y in range(height)
        for x in range(width)
        for channel in ((x * 4 + phase) % 256, (y * 5) % 256, ((x + y) * 2 + 3 * phase) % 256)
    )


def main(argv):
    if len(argv) not in (3, 4):
        print(f"usage: {argv[0]} METRIC DIST [REF]", file=sys.stderr)
        return 2
    name, dist_path = argv[1], argv[2]
    ref_path = argv[3] if len(argv) == 4 else None

    lib = load_library()
    print(f"libiqa {lib.iqa_version().decode()} (ABI {lib.iqa_abi_version()}, script ABI {IQA_ABI_VERSION})")
    if lib.iqa_abi_version() != IQA_ABI_VERSION:
        print(f"error: libiqa ABI {lib.iqa_abi_version()} does not match {IQA_ABI_VERSION}", file=sys.stderr)
        return 1

    options = IqaOptions()
    lib.iqa_options_default(ctypes.byref(options))
    metric = IqaMetricPtr()
    try:
        check(lib, lib.iqa_metric_create(name.encode(), ctypes.byref(options), ctypes.byref(metric)))
        info = IqaMetricInfo()
        check(lib, lib.iqa_metric_info(metric, ctypes.byref(info)))
        fr = info.mode == IQA_MODE_FR
        print(f"metric {info.name.decode()}: {'full-reference' if fr else 'no-reference'}, "
              f"{'lower' if info.lower_better else 'higher'} is better, range {info.score_min:g}..{info.score_max:g}")

        score = ctypes.c_double()
        check(lib, lib.iqa_score_files(
            metric, os.fsencode(dist_path), os.fsencode(ref_path) if ref_path else None, ctypes.byref(score)))
        print(f"score {name} {score.value:.6f}")

        if fr:
            # Raw pixels from memory: the buffers only need to live for the duration of the call.
            width, height = 64, 48
            dist_pixels, ref_pixels = gradient_rgb8(width, height, 7), gradient_rgb8(width, height, 0)
            dist_buf = ctypes.create_string_buffer(dist_pixels, len(dist_pixels))
            ref_buf = ctypes.create_string_buffer(ref_pixels, len(ref_pixels))
            dist = IqaImage(ctypes.cast(dist_buf, ctypes.c_void_p), width, height, 0, IQA_FORMAT_RGB8)
            ref = IqaImage(ctypes.cast(ref_buf, ctypes.c_void_p), width, height, 0, IQA_FORMAT_RGB8)
            try:
                check(lib, lib.iqa_score(metric, ctypes.byref(dist), ctypes.byref(ref), ctypes.byref(score)))
                print(f"buffer {name} {score.value:.6f}")
            except IqaError as e:
                if e.status != IQA_ERR_SHAPE_MISMATCH:  # e.g. ms_ssim needs larger images than 64x48
                    raise
                print(f"buffer {name} skipped: {e}")
    except IqaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        lib.iqa_metric_free(metric)  # NULL (never created) is a no-op
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
