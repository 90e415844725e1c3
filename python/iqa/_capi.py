"""ctypes declarations of include/iqa.h (ABI 1) and the loading of libiqa.so.

ctypes.CDLL releases the GIL around every foreign call, so scoring threads run in parallel.
"""
import ctypes
import os
from pathlib import Path

ABI_VERSION = 1  # IQA_ABI_VERSION of the header these declarations follow

c_enum = ctypes.c_int  # C enums are int-sized on every ABI libiqa supports

DEVICE_AUTO, DEVICE_CPU, DEVICE_CUDA = 0, 1, 2
PRECISION_FP32, PRECISION_FP16, PRECISION_BF16 = 0, 1, 2
MODE_FR, MODE_NR = 0, 1

# IqaPixelFormat
FORMAT_RGB8 = 0
FORMAT_RGBA8 = 1
FORMAT_GRAY8 = 4
FORMAT_RGB16 = 5
FORMAT_RGB_F32 = 6
FORMAT_RGB_F16 = 7
FORMAT_GRAY_F32 = 8
FORMAT_RGB_F32_PLANAR = 9

STATUS_NAMES = {
    0: "IQA_OK",
    1: "IQA_ERR_INVALID_ARGUMENT",
    2: "IQA_ERR_UNKNOWN_METRIC",
    3: "IQA_ERR_IO",
    4: "IQA_ERR_DECODE",
    5: "IQA_ERR_SHAPE_MISMATCH",
    6: "IQA_ERR_WEIGHTS",
    7: "IQA_ERR_DEVICE",
    8: "IQA_ERR_RUNTIME",
    9: "IQA_ERR_PANIC",
}


class Options(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("device", c_enum),
        ("device_index", ctypes.c_int32),
        ("precision", c_enum),
    ]


class MetricInfo(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("mode", c_enum),
        ("lower_better", ctypes.c_bool),
        ("score_min", ctypes.c_double),
        ("score_max", ctypes.c_double),
    ]


class Image(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("width", ctypes.c_uint32),
        ("height", ctypes.c_uint32),
        ("stride", ctypes.c_size_t),
        ("format", c_enum),
    ]


class CacheStats(ctypes.Structure):
    _fields_ = [("models_alive", ctypes.c_size_t), ("handles_alive", ctypes.c_size_t)]


class _Metric(ctypes.Structure):
    """Opaque handle: only ever used through a pointer."""


MetricPtr = ctypes.POINTER(_Metric)


class _Reference(ctypes.Structure):
    """Opaque prepared reference: only ever used through a pointer."""


ReferencePtr = ctypes.POINTER(_Reference)

_SIGNATURES = {
    "iqa_abi_version": ([], ctypes.c_uint32),
    "iqa_version": ([], ctypes.c_char_p),
    "iqa_last_error": ([], ctypes.c_char_p),
    "iqa_options_default": ([ctypes.POINTER(Options)], None),
    "iqa_set_preset": ([ctypes.c_char_p], c_enum),
    "iqa_metric_count": ([], ctypes.c_size_t),
    "iqa_metric_name": ([ctypes.c_size_t], ctypes.c_char_p),
    "iqa_metric_create": ([ctypes.c_char_p, ctypes.POINTER(Options), ctypes.POINTER(MetricPtr)], c_enum),
    "iqa_metric_free": ([MetricPtr], None),
    "iqa_metric_info": ([MetricPtr, ctypes.POINTER(MetricInfo)], c_enum),
    "iqa_metric_device": ([MetricPtr, ctypes.POINTER(c_enum), ctypes.POINTER(ctypes.c_int32)], c_enum),
    "iqa_metric_precision": ([MetricPtr, ctypes.POINTER(c_enum)], c_enum),
    "iqa_score": ([MetricPtr, ctypes.POINTER(Image), ctypes.POINTER(Image), ctypes.POINTER(ctypes.c_double)], c_enum),
    "iqa_score_batch": (
        [MetricPtr, ctypes.POINTER(Image), ctypes.POINTER(Image), ctypes.c_size_t, ctypes.POINTER(ctypes.c_double)],
        c_enum,
    ),
    "iqa_score_files": ([MetricPtr, ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_double)], c_enum),
    "iqa_cache_stats": ([ctypes.POINTER(CacheStats)], c_enum),
}

# Added within ABI 1: bound where the library has them (a libiqa from before them still loads).
_OPTIONAL_SIGNATURES = {
    "iqa_reference_create": ([MetricPtr, ctypes.POINTER(Image), ctypes.POINTER(ReferencePtr)], c_enum),
    "iqa_reference_free": ([ReferencePtr], None),
    "iqa_score_with_reference": (
        [MetricPtr, ReferencePtr, ctypes.POINTER(Image), ctypes.POINTER(ctypes.c_double)], c_enum),
    "iqa_score_batch_with_reference": (
        [MetricPtr, ReferencePtr, ctypes.POINTER(Image), ctypes.c_size_t, ctypes.POINTER(ctypes.c_double)], c_enum),
    "iqa_metric_takes_caption": ([MetricPtr, ctypes.POINTER(ctypes.c_bool)], c_enum),
    "iqa_score_captioned": (
        [MetricPtr, ctypes.POINTER(Image), ctypes.c_char_p, ctypes.POINTER(ctypes.c_double)], c_enum),
    "iqa_score_batch_captioned": (
        [MetricPtr, ctypes.POINTER(Image), ctypes.POINTER(ctypes.c_char_p), ctypes.c_size_t,
         ctypes.POINTER(ctypes.c_double)], c_enum),
    "iqa_score_files_captioned": (
        [MetricPtr, ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_double)], c_enum),
}


def library_path():
    """$IQA_LIBRARY; else the libiqa.so the wheel carries beside this file; else this repository's build
    (python/iqa/ -> target/release/libiqa.so), for tests and development."""
    explicit = os.environ.get("IQA_LIBRARY")
    if explicit:
        return Path(explicit)
    here = Path(__file__).resolve().parent
    packaged = here / "libiqa.so"
    if packaged.exists():
        return packaged
    return here.parent.parent / "target" / "release" / "libiqa.so"


def load():
    """Loads libiqa. Its RUNPATH finds libtorch: $ORIGIN/../torch/lib is the `torch` package beside `iqa` in
    site-packages (build.rs), the absolute path of the build's libtorch serves the repository's build."""
    path = library_path()
    if not path.exists():
        raise ImportError(f"libiqa not found at {path} (build it with `make build`, or set IQA_LIBRARY)")
    lib = ctypes.CDLL(str(path))
    for name, (argtypes, restype) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = argtypes, restype
    for name, (argtypes, restype) in _OPTIONAL_SIGNATURES.items():
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.argtypes, fn.restype = argtypes, restype
    if lib.iqa_abi_version() != ABI_VERSION:
        raise ImportError(f"{path} has C ABI {lib.iqa_abi_version()}, this package needs {ABI_VERSION}")
    return lib
