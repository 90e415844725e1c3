"""iqa: pyiqa's image quality metrics from libiqa (Rust over libtorch), with pyiqa's API.

    import iqa
    metric = iqa.create_metric("lpips", device="cpu")
    score = metric("dist.png", "ref.png")          # a float
    scores = metric(dist_tensor, ref_tensor)       # N x 3 x H x W float in [0, 1] -> torch tensor of N scores

Inputs: file paths (str or os.PathLike, or a list of them), numpy arrays (H x W x 3|4 uint8/uint16/float,
H x W gray, N x H x W x C batches) and torch tensors (N x 3|1 x H x W or 3|1 x H x W, float in [0, 1]). Arrays
and contiguous float32 CPU tensors are read in place (the library borrows the buffer for the call only).
numpy and torch are imported by the caller, never by this module: `import iqa` loads libiqa and nothing else.
"""
import ctypes
import fnmatch
import os
import sys
import threading

from . import _capi

_lib = _capi.load()

__version__ = _lib.iqa_version().decode()

__all__ = [
    "IqaError",
    "Metric",
    "Reference",
    "cache_stats",
    "create_metric",
    "list_models",
    "set_preset",
]


class IqaError(Exception):
    """A libiqa call failed: `status` is the IqaStatus value, `status_name` its name, `message` the library's
    description (iqa_last_error)."""

    def __init__(self, status, message):
        self.status = status
        self.status_name = _capi.STATUS_NAMES.get(status, f"IqaStatus({status})")
        self.message = message
        super().__init__(f"{self.status_name}: {message}")

    def __str__(self):  # KeyError and OSError subclasses would otherwise format their arguments differently
        return f"{self.status_name}: {self.message}"


class InvalidArgumentError(IqaError, ValueError):
    pass


class UnknownMetricError(IqaError, KeyError):
    pass


class ImageIOError(IqaError, OSError):
    pass


class DecodeError(IqaError, ValueError):
    pass


class ShapeMismatchError(IqaError, ValueError):
    pass


class WeightsError(IqaError):
    pass


class DeviceError(IqaError):
    pass


class LibraryRuntimeError(IqaError, RuntimeError):
    pass


class PanicError(IqaError, RuntimeError):
    pass


_ERRORS = {
    1: InvalidArgumentError,
    2: UnknownMetricError,
    3: ImageIOError,
    4: DecodeError,
    5: ShapeMismatchError,
    6: WeightsError,
    7: DeviceError,
    8: LibraryRuntimeError,
    9: PanicError,
}


def _check(status):
    if status != 0:
        message = _lib.iqa_last_error().decode("utf-8", "replace")
        raise _ERRORS.get(status, IqaError)(status, message)


def list_models(filter="", exclude_filters=""):
    """Names of the metrics create_metric accepts, sorted, optionally filtered with fnmatch wildcards as
    pyiqa.list_models does."""
    names = sorted(_lib.iqa_metric_name(i).decode() for i in range(_lib.iqa_metric_count()))
    if filter:
        patterns = filter if isinstance(filter, (list, tuple)) else [filter]
        names = sorted({n for p in patterns for n in fnmatch.filter(names, p)})
    if exclude_filters:
        patterns = exclude_filters if isinstance(exclude_filters, (list, tuple)) else [exclude_filters]
        names = [n for n in names if not any(fnmatch.fnmatch(n, p) for p in patterns)]
    return names


def set_preset(name):
    """Switches the process to "accuracy" (default), "speed" or "memory" (see iqa_set_preset in iqa.h)."""
    _check(_lib.iqa_set_preset(name.encode()))


def cache_stats():
    """(models_alive, handles_alive), process-wide."""
    stats = _capi.CacheStats()
    _check(_lib.iqa_cache_stats(ctypes.byref(stats)))
    return stats.models_alive, stats.handles_alive


def create_metric(metric_name, device=None, precision=None, as_loss=False):
    """pyiqa.create_metric: a callable Metric. device: None/"auto" (CUDA when usable), "cpu", "cuda",
    "cuda:N" or a torch.device; precision: None (IQA_PRECISION, else fp32), "fp32", "fp16", "bf16" or a
    torch dtype."""
    if as_loss:
        raise InvalidArgumentError(1, "as_loss is not supported: libiqa computes scores without gradients")
    return Metric(metric_name, device=device, precision=precision)


_PRECISIONS = {
    "fp32": _capi.PRECISION_FP32,
    "float32": _capi.PRECISION_FP32,
    "fp16": _capi.PRECISION_FP16,
    "float16": _capi.PRECISION_FP16,
    "half": _capi.PRECISION_FP16,
    "bf16": _capi.PRECISION_BF16,
    "bfloat16": _capi.PRECISION_BF16,
}
_PRECISION_NAMES = {_capi.PRECISION_FP32: "fp32", _capi.PRECISION_FP16: "fp16", _capi.PRECISION_BF16: "bf16"}


def _options(device, precision):
    options = _capi.Options()
    _lib.iqa_options_default(ctypes.byref(options))
    text = "auto" if device is None else str(device)  # str(torch.device("cuda", 1)) == "cuda:1"
    kind, _, index = text.partition(":")
    kinds = {"auto": _capi.DEVICE_AUTO, "cpu": _capi.DEVICE_CPU, "cuda": _capi.DEVICE_CUDA}
    if kind not in kinds or (index and not index.isdigit()):
        raise InvalidArgumentError(1, f"device {device!r}: expected None, 'auto', 'cpu', 'cuda' or 'cuda:N'")
    options.device, options.device_index = kinds[kind], int(index or 0)
    if precision is not None:
        key = str(precision).removeprefix("torch.")
        if key not in _PRECISIONS:
            raise InvalidArgumentError(1, f"precision {precision!r}: expected 'fp32', 'fp16' or 'bf16'")
        options.precision = _PRECISIONS[key]
    return options


class _Owned:
    """A libiqa object freed by `_free(handle)`: close() (or `with`) frees it once the calls in progress on other
    threads (between _acquire and _release) have returned; otherwise garbage collection does."""

    _free = None  # the libiqa function that frees the handle, set by each subclass

    def _own(self, handle):
        self._handle = handle
        self._in_flight = 0
        self._idle = threading.Condition()

    def close(self):
        """Frees it once calls in progress on other threads have returned; later calls raise."""
        with self._idle:
            while self._in_flight:
                self._idle.wait()
            handle, self._handle = self._handle, None
        if handle:
            type(self)._free(handle)

    def __del__(self):
        handle = getattr(self, "_handle", None)
        if handle:
            type(self)._free(handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _acquire(self):
        with self._idle:
            if not self._handle:
                raise InvalidArgumentError(1, f"{self._describe()} is closed")
            self._in_flight += 1
            return self._handle

    def _release(self):
        with self._idle:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.notify_all()


class Metric(_Owned):
    """One metric handle (pyiqa's InferenceModel). Thread-safe: threads may call it at once, and the GIL is
    released while libiqa scores. close() (or `with`) frees it at once; otherwise garbage collection does."""

    def __init__(self, metric_name, device=None, precision=None):
        options = _options(device, precision)
        handle = _capi.MetricPtr()
        _check(_lib.iqa_metric_create(str(metric_name).encode(), ctypes.byref(options), ctypes.byref(handle)))
        self._own(handle)
        info = _capi.MetricInfo()
        _check(_lib.iqa_metric_info(handle, ctypes.byref(info)))
        self.metric_name = info.name.decode()
        self.metric_mode = "FR" if info.mode == _capi.MODE_FR else "NR"
        self.lower_better = bool(info.lower_better)
        self.score_range = (info.score_min, info.score_max)  # floats, NaN where pyiqa states no bound
        kind, index = _capi.c_enum(), ctypes.c_int32()
        _check(_lib.iqa_metric_device(handle, ctypes.byref(kind), ctypes.byref(index)))
        self.device = f"cuda:{index.value}" if kind.value == _capi.DEVICE_CUDA else "cpu"
        real = _capi.c_enum()
        _check(_lib.iqa_metric_precision(handle, ctypes.byref(real)))
        self.precision = _PRECISION_NAMES[real.value]
        captioned = ctypes.c_bool(False)
        if hasattr(_lib, "iqa_metric_takes_caption"):
            _check(_lib.iqa_metric_takes_caption(handle, ctypes.byref(captioned)))
        self.takes_caption = captioned.value  # clipscore: scored against caption_list

    def __repr__(self):
        return f"<iqa.Metric {self.metric_name} {self.metric_mode} on {self.device}, {self.precision}>"

    _free = staticmethod(lambda handle: _lib.iqa_metric_free(handle))

    def _describe(self):
        return f"metric {self.metric_name}"

    def __call__(self, target, ref=None, caption_list=None):
        """Scores `target` (against `ref` for FR metrics). Returns a float for one path or array image, a list
        of floats for a list of paths, a float64 numpy array for an N x H x W x C array, a float64 torch
        tensor of N scores (on the input's device) for torch tensors. `ref` may be a prepared Reference
        (prepare_reference): then `target` is pixels, one image or a batch, each scored against it.
        Metrics that take captions (clipscore, `takes_caption`) need `caption_list`, one string per image, as
        in pyiqa."""
        if self.takes_caption or caption_list is not None:
            return self._score_captioned(target, ref, caption_list)
        if self.metric_mode == "FR" and ref is None:
            raise InvalidArgumentError(1, f"{self.metric_name} is full-reference: pass ref")
        if self.metric_mode == "NR" and ref is not None:
            raise InvalidArgumentError(1, f"{self.metric_name} is no-reference: ref must be None")
        if isinstance(ref, Reference):
            return ref._score(self, target)
        handle = self._acquire()
        try:
            if _is_path(target) or _is_path_list(target):
                return self._score_files(handle, target, ref)
            dist = _Batch.of(target)
            refs = _Batch.of(ref) if ref is not None else None
            if refs is not None and (refs.count != dist.count or refs.single != dist.single):
                raise ShapeMismatchError(5, f"{dist.count} target image(s) but {refs.count} reference image(s)")
            scores = (ctypes.c_double * dist.count)()
            ref_images = refs.images if refs is not None else None
            if dist.single:
                _check(_lib.iqa_score(handle, dist.images, ref_images, scores))
            else:
                _check(_lib.iqa_score_batch(handle, dist.images, ref_images, dist.count, scores))
            return dist.result(list(scores))
        finally:
            self._release()

    def _score_captioned(self, target, ref, caption_list):
        if not self.takes_caption:
            raise InvalidArgumentError(1, f"{self.metric_name} takes no caption: caption_list must be None")
        if caption_list is None:
            raise InvalidArgumentError(1, f"{self.metric_name} scores images against captions: pass caption_list")
        if ref is not None:
            raise InvalidArgumentError(1, f"{self.metric_name} is no-reference: ref must be None")
        if isinstance(caption_list, str):
            raise InvalidArgumentError(1, "caption_list is a list of strings, one per image")
        captions = [str(c).encode() for c in caption_list]
        handle = self._acquire()
        try:
            if _is_path(target) or _is_path_list(target):
                paths = [target] if _is_path(target) else list(target)
                if len(captions) != len(paths):
                    raise ShapeMismatchError(5, f"{len(paths)} path(s) but {len(captions)} caption(s)")
                scores = []
                for path, caption in zip(paths, captions):
                    score = ctypes.c_double()
                    _check(_lib.iqa_score_files_captioned(handle, os.fsencode(path), caption, ctypes.byref(score)))
                    scores.append(score.value)
                return scores[0] if _is_path(target) else scores
            dist = _Batch.of(target)
            if len(captions) != dist.count:
                raise ShapeMismatchError(5, f"{dist.count} image(s) but {len(captions)} caption(s)")
            scores = (ctypes.c_double * dist.count)()
            texts = (ctypes.c_char_p * dist.count)(*captions)
            _check(_lib.iqa_score_batch_captioned(handle, dist.images, texts, dist.count, scores))
            return dist.result(list(scores))
        finally:
            self._release()

    def prepare_reference(self, ref):
        """Prepares one reference image (array or tensor pixels) for scoring many images against it:
        metric(target, ref=prepared). Each score equals the pair's; the reference's share of the work (LPIPS
        and DISTS backbone activations) is done once, here. The pixels are copied."""
        return Reference(self, ref)

    def _score_files(self, handle, target, ref):
        if ref is not None and _is_path(target) != _is_path(ref):
            raise InvalidArgumentError(1, "pass a path with a path, a list of paths with a list of paths")
        if _is_path(target):
            return _score_file(handle, target, ref)
        refs = [None] * len(target) if ref is None else list(ref)
        if len(refs) != len(target):
            raise ShapeMismatchError(5, f"{len(target)} target paths but {len(refs)} reference paths")
        return [_score_file(handle, t, r) for t, r in zip(target, refs)]


class Reference(_Owned):
    """A reference image prepared by Metric.prepare_reference for one metric, device and precision. Usable from
    many threads and with any handle of that metric; close() (or `with`) frees it once calls in progress have
    returned, otherwise garbage collection does."""

    def __init__(self, metric, ref):
        if metric.metric_mode != "FR":
            raise InvalidArgumentError(1, f"{metric.metric_name} is no-reference: there is no reference to prepare")
        if not hasattr(_lib, "iqa_reference_create"):
            raise LibraryRuntimeError(8, "this libiqa has no prepared references (iqa_reference_create)")
        if _is_path(ref) or _is_path_list(ref):
            raise InvalidArgumentError(1, "prepare_reference takes pixels (an array or a tensor), not a path")
        pixels = _Batch.of(ref)
        if pixels.count != 1:
            raise InvalidArgumentError(1, f"one reference image to prepare, got a batch of {pixels.count}")
        handle = metric._acquire()
        try:
            reference = _capi.ReferencePtr()
            _check(_lib.iqa_reference_create(handle, pixels.images, ctypes.byref(reference)))
        finally:
            metric._release()
        self._own(reference)
        self.metric_name = metric.metric_name
        self.size = (pixels.images[0].height, pixels.images[0].width)

    def __repr__(self):
        return f"<iqa.Reference for {self.metric_name}, {self.size[1]}x{self.size[0]}>"

    _free = staticmethod(lambda reference: _lib.iqa_reference_free(reference))

    def _describe(self):
        return f"the prepared reference for {self.metric_name}"

    def _score(self, metric, target):
        if _is_path(target) or _is_path_list(target):
            raise InvalidArgumentError(1, "a prepared reference scores pixels (arrays or tensors), not paths")
        dist = _Batch.of(target)
        reference = self._acquire()
        try:
            handle = metric._acquire()
            try:
                scores = (ctypes.c_double * dist.count)()
                if dist.single:
                    _check(_lib.iqa_score_with_reference(handle, reference, dist.images, scores))
                else:
                    _check(_lib.iqa_score_batch_with_reference(handle, reference, dist.images, dist.count, scores))
                return dist.result(list(scores))
            finally:
                metric._release()
        finally:
            self._release()


def _is_path(x):
    return isinstance(x, (str, bytes, os.PathLike))


def _is_path_list(x):
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(_is_path(p) for p in x)


def _score_file(handle, target, ref):
    if ref is not None and not _is_path(ref):
        raise InvalidArgumentError(1, "pass a path with a path, a list of paths with a list of paths")
    score = ctypes.c_double()
    _check(_lib.iqa_score_files(handle, os.fsencode(target), os.fsencode(ref) if ref is not None else None,
                                ctypes.byref(score)))
    return score.value


# numpy dtype name, channels -> pixel format of an interleaved H x W x C image.
_ARRAY_FORMATS = {
    ("uint8", 3): _capi.FORMAT_RGB8,
    ("uint8", 4): _capi.FORMAT_RGBA8,
    ("uint8", 1): _capi.FORMAT_GRAY8,
    ("uint16", 3): _capi.FORMAT_RGB16,
    ("float32", 3): _capi.FORMAT_RGB_F32,
    ("float32", 1): _capi.FORMAT_GRAY_F32,
    ("float16", 3): _capi.FORMAT_RGB_F16,
}


class _Batch:
    """IqaImage structs for one side of a call, and what keeps their pixels alive until it returns."""

    def __init__(self, images, count, single, keep, result):
        self.images, self.count, self.single, self.keep, self.result = images, count, single, keep, result

    @staticmethod
    def of(x):
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(x, torch.Tensor):
            return _Batch._of_tensor(torch, x)
        np = sys.modules.get("numpy")
        if np is not None and isinstance(x, np.ndarray):
            return _Batch._of_array(np, x)
        raise InvalidArgumentError(
            1, f"unsupported input {type(x).__name__}: expected a path, a list of paths, a numpy array or a "
               "torch tensor")

    @staticmethod
    def _of_array(np, a):
        if a.ndim == 2 or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
            a = a[..., None]  # H x W gray, or N x H x W gray batch
        if a.ndim == 3:
            single, batch = True, a[None]
        elif a.ndim == 4:
            single, batch = False, a
        else:
            raise InvalidArgumentError(1, f"array of shape {a.shape}: expected H x W [x C] or N x H x W x C")
        channels = batch.shape[3]
        if batch.dtype == np.float64:
            batch = batch.astype(np.float32)
        if batch.dtype == np.uint16 and channels != 3:
            # No 16-bit gray/RGBA format: gray is replicated (as pyiqa reads gray files), alpha dropped.
            batch = np.repeat(batch, 3, axis=3) if channels == 1 else batch[..., :3]
            channels = 3
        fmt = _ARRAY_FORMATS.get((batch.dtype.name, channels))
        if fmt is None:
            raise InvalidArgumentError(1, f"array of {batch.dtype} with {channels} channel(s): expected uint8, "
                                          "uint16, float16/32/64 with 1, 3 (or 4 for uint8) channels")
        n, h, w = batch.shape[:3]
        item = batch.itemsize
        # Rows may lie any positive distance apart (crops of a larger array); pixels and channels must be packed.
        if batch.strides[3] != item or batch.strides[2] != channels * item or batch.strides[1] < w * channels * item \
                or batch.strides[0] < 0:
            batch = np.ascontiguousarray(batch)
        images = (_capi.Image * n)()
        base, step = batch.ctypes.data, batch.strides[0]
        for i in range(n):
            images[i] = _capi.Image(base + i * step, w, h, batch.strides[1], fmt)
        result = (lambda s: s[0]) if single else (lambda s: np.asarray(s, dtype=np.float64))
        return _Batch(images, n, single, batch, result)

    @staticmethod
    def _of_tensor(torch, t):
        device = t.device
        single = t.dim() == 3
        if single:
            t = t.unsqueeze(0)
        if t.dim() != 4 or t.shape[1] not in (1, 3):
            raise InvalidArgumentError(1, f"tensor of shape {tuple(t.shape)}: expected N x 3 x H x W (or 1 channel)")
        if not t.is_floating_point():
            raise InvalidArgumentError(1, f"tensor of {t.dtype}: expected a float tensor with values in [0, 1]")
        # Contiguous float32 CPU tensors are read in place (planar format); anything else is copied once.
        t = t.detach().to(device="cpu", dtype=torch.float32).contiguous()
        n, c, h, w = t.shape
        images = (_capi.Image * n)()
        fmt = _capi.FORMAT_RGB_F32_PLANAR if c == 3 else _capi.FORMAT_GRAY_F32
        base, step = t.data_ptr(), c * h * w * 4
        for i in range(n):
            images[i] = _capi.Image(base + i * step, w, h, 0, fmt)

        def result(scores):
            return torch.tensor(scores, dtype=torch.float64, device=device)

        # pyiqa returns N scores for an N-image batch, one for a single C x H x W image.
        return _Batch(images, n, False, t, result)
