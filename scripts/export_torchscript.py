#!/usr/bin/env python3
"""Export pyiqa 0.1.16 deep metrics as TorchScript modules for libiqa's `torch` backend.

For each metric NAME this builds the pyiqa network (pretrained weights found locally, or deterministic
random weights with --random-weights), wraps it so that

    forward(dist[, ref]) : float32 N x 3 x H x W in [0, 1]  ->  float32 scores of shape [N]

with every resizing / normalisation / fixed crop inside the module, converts it to TorchScript (trace, or
script where tracing would bake in the input size), loads the written file back with `torch.jit.load` and
checks it against pyiqa itself on the calibration images (512x384) and on a second size (a 301x257 crop),
and writes into --out:

    NAME.pt               the TorchScript module
    NAME.json             sidecar: mode, lower_better, score_range + informative keys
    NAME.references.csv   pyiqa's scores (metric,image,region,score) for the same weights
    summary.json          one entry per requested metric (exported or the reason why not)

Usage (dev venv):
    .venv/bin/python scripts/export_torchscript.py NAME [NAME ...] --out DIR [--random-weights] [--seed 0]
                                                   [--images N] [--all]

The wrappers below are written for this project; they reproduce pyiqa's inference-time arithmetic
(resize rules, crop positions, normalisation) with TorchScript-compatible code and reuse the pyiqa
network's own sub-modules (and therefore its weights).
"""
import argparse
import hashlib
import json
import math
import os
import pathlib
import random
import statistics
import sys
import time
import traceback
import warnings
from typing import List, Optional, Tuple

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from reference_csv import write_rows  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
CAL = ROOT / 'data' / 'calibration'
IMAGES = ['I03.bmp', 'I04.bmp', 'I06.bmp', 'I08.bmp', 'I19.bmp']
CROP = (7, 5, 301, 257)  # x, y, w, h: the second size checked
ALL = ['cnniqa', 'nima', 'hyperiqa', 'dbcnn', 'paq2piq', 'topiq_nr', 'topiq_fr', 'arniqa',
       'wadiqam_nr', 'clipiqa', 'maniqa', 'musiq']
TOLERANCE = 1e-5
SHARED_WEIGHTS = pathlib.Path('/work/shared/weights')


class NotExportable(Exception):
    """The metric cannot be exported here; the message says why."""


# ----------------------------------------------------------------------------------------------
# Offline building: random weights, no network access
# ----------------------------------------------------------------------------------------------

class _NoWeights(dict):
    """Stands for a state dict that would have been downloaded (random-weights mode)."""


_NO_FILE = '<random-weights: no file>'
_PATCHED = {}


def _patch(obj, name, value):
    _PATCHED.setdefault((id(obj), name), (obj, name, getattr(obj, name)))
    setattr(obj, name, value)


def _no_download(*args, **kwargs):
    url = args[0] if args else kwargs.get('url')
    raise NotExportable(f'pretrained weights not available locally (would download {url}); '
                        f'put them in the pyiqa/torch cache or use --random-weights')


def patch_offline(random_weights: bool):
    """Make building offline. With random_weights every pretrained-loading path is neutralised."""
    import torch.hub
    import timm
    try:  # openai `clip` does `from pkg_resources import packaging`; setuptools may be absent
        import pkg_resources  # noqa: F401
    except ImportError:
        import types
        import packaging.version
        shim = types.ModuleType('pkg_resources')
        shim.packaging = packaging
        sys.modules['pkg_resources'] = shim
    import torchvision.models._api as tv_api
    import pyiqa  # noqa: F401  (registers all archs)
    import pyiqa.utils.download_util as du
    import pyiqa.archs.clip_model as clip_model

    # never go online, whatever the mode
    _patch(du, 'download_url_to_file', _no_download)
    _patch(torch.hub, 'download_url_to_file', _no_download)
    if not random_weights:
        return

    def no_load_pretrained_network(net, *a, **k):
        return None

    def no_file(*a, **k):
        return _NO_FILE

    orig_create = timm.create_model

    def create_model(*a, **k):
        k['pretrained'] = False
        return orig_create(*a, **k)

    def random_clip(name, device='cpu', *a, **k):
        configs = {  # (embed_dim, image_resolution, vision_layers, vision_width, patch, ctx, vocab, tw, th, tl)
            'RN50': (1024, 224, (3, 4, 6, 3), 64, None, 77, 49408, 512, 8, 12),
            'ViT-B/32': (512, 224, 12, 768, 32, 77, 49408, 512, 8, 12),
            'ViT-B/16': (512, 224, 12, 768, 16, 77, 49408, 512, 8, 12),
        }
        if name not in configs:
            raise NotExportable(f'no offline configuration for CLIP backbone {name}')
        return clip_model.CLIP(*configs[name]).float().to(device).eval()

    orig_jit_load = torch.jit.load

    def jit_load(f, *a, **k):
        if f == _NO_FILE:  # ARNIQA's regressor (a linear map of the 2x2048 features)
            return torch.jit.script(nn.Linear(4096, 1))
        return orig_jit_load(f, *a, **k)

    orig_torch_load = torch.load

    def torch_load(f, *a, **k):
        if f == _NO_FILE:
            return _NoWeights()
        return orig_torch_load(f, *a, **k)

    orig_lsd = nn.Module.load_state_dict

    def load_state_dict(self, state_dict, *a, **k):
        if isinstance(state_dict, _NoWeights) or len(state_dict) == 0:  # e.g. ARNIQA's filtered copy
            return None
        return orig_lsd(self, state_dict, *a, **k)

    _patch(timm, 'create_model', create_model)
    _patch(tv_api.WeightsEnum, 'get_state_dict', lambda self, *a, **k: _NoWeights())
    _patch(torch.hub, 'load_state_dict_from_url', lambda *a, **k: _NoWeights())
    _patch(torch.jit, 'load', jit_load)
    _patch(torch, 'load', torch_load)
    _patch(nn.Module, 'load_state_dict', load_state_dict)
    for mod_name, mod in list(sys.modules.items()):
        if not mod_name.startswith('pyiqa') or mod is None:
            continue
        for attr, repl in (('load_pretrained_network', no_load_pretrained_network),
                           ('load_file_from_url', no_file), ('create_model', create_model)):
            if attr in vars(mod) and callable(vars(mod)[attr]):
                _patch(mod, attr, repl)
        if vars(mod).get('load') is clip_model.load or (mod is clip_model):
            _patch(mod, 'load', random_clip)


def unpatch_loading():
    """Restore torch.jit.load / torch.load (needed to load the exported file back)."""
    for (obj, name, orig) in list(_PATCHED.values()):
        if obj in (torch, torch.jit) or name in ('load_state_dict',):
            setattr(obj, name, orig)


def seed_all(seed: int):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def state_hash(module: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def build_metric(name: str, random_weights: bool, seed: int):
    import pyiqa
    seed_all(seed)
    try:
        metric = pyiqa.create_metric(name, device='cpu')
    except NotExportable:
        raise
    except Exception as e:  # e.g. a file only obtainable online
        if not random_weights and ('download' in repr(e).lower() or 'connect' in repr(e).lower()
                                   or 'offline' in repr(e).lower() or 'hub' in repr(e).lower()):
            raise NotExportable(f'pretrained weights not available locally: {e!r}')
        raise NotExportable(f'pyiqa could not build it offline: {type(e).__name__}: {e}')
    metric.eval()
    metric.net.eval()
    for p in metric.parameters():
        p.requires_grad_(False)
    return metric


# ----------------------------------------------------------------------------------------------
# TorchScript helpers shared by the wrappers
# ----------------------------------------------------------------------------------------------

def script_or_trace(m: nn.Module, example) -> Tuple[torch.jit.ScriptModule, str]:
    try:
        return torch.jit.script(m), 'script'
    except Exception:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter('ignore')
            return torch.jit.trace(m, example, check_trace=False), 'trace'


def trace(m: nn.Module, example) -> torch.jit.ScriptModule:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return torch.jit.trace(m, example, check_trace=False)


@torch.jit.script
def uniform_crops(x: torch.Tensor, crop: int, num: int) -> torch.Tensor:
    """pyiqa's uniform_crop for one tensor: upscale when min side <= crop, then a regular grid of
    crop x crop windows with step (size - crop) // floor(sqrt(num)), first `num` of the row-major grid.
    Returns (N * num) x C x crop x crop (the crops of one image are consecutive)."""
    h = x.shape[2]
    w = x.shape[3]
    if min(h, w) <= crop:
        sf = float(crop + 1) / float(min(h, w))
        x = F.interpolate(x, scale_factor=[sf, sf], mode='bilinear')
        h = x.shape[2]
        w = x.shape[3]
    k = int(math.floor(math.sqrt(float(num))))
    g = int(math.ceil(math.sqrt(float(num))))
    step_h = (h - crop) // k
    step_w = (w - crop) // k
    crops: List[torch.Tensor] = []
    for i in range(g):
        for j in range(g):
            if len(crops) < num:
                crops.append(x[:, :, i * step_h:i * step_h + crop, j * step_w:j * step_w + crop])
    return torch.stack(crops, dim=1).reshape(-1, x.shape[1], crop, crop)


# ----------------------------------------------------------------------------------------------
# Wrappers: forward(x[, y]) in [0,1] -> [N] scores
# ----------------------------------------------------------------------------------------------

class TraceNR(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x).reshape(-1).float()


class TraceFR(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, y):
        return self.net(x, y).reshape(-1).float()


class WaDIQaMNR(nn.Module):
    """Non-overlapping 32x32 patches (pyiqa's test-time rule: starts 0, 32, ... < size - 32)."""

    def __init__(self, net):
        super().__init__()
        self.features = net.features
        self.fc_q = net.fc_q
        self.weighted = bool(net.weighted_average)
        self.fc_w = net.fc_w if self.weighted else nn.Identity()
        self.eps = float(net.eps)
        self.ps = int(net.patch_size)

    def forward(self, x):
        c = x.shape[1]
        h = x.shape[2]
        w = x.shape[3]
        ps = self.ps
        crops: List[torch.Tensor] = []
        for i in range(0, h - ps, ps):
            for j in range(0, w - ps, ps):
                crops.append(x[:, :, i:i + ps, j:j + ps])
        n = len(crops)
        patches = torch.stack(crops, dim=1).reshape(-1, c, ps, ps)
        feat = self.features(patches).reshape(-1, n, 512)
        q = self.fc_q(feat)
        if self.weighted:
            wt = self.fc_w(feat) + self.eps
            out = torch.sum(q * wt, dim=1) / torch.sum(wt, dim=1)
        else:
            out = q.mean(dim=1)
        return out.reshape(-1)


class NIMA(nn.Module):
    """torchvision resize(shorter side -> S, bilinear, antialias) + centre crop S x S, normalise, backbone."""

    def __init__(self, net):
        super().__init__()
        self.size = int(net.base_model.default_cfg['input_size'][-1])
        self.register_buffer('mean', net.default_mean.clone().float())
        self.register_buffer('std', net.default_std.clone().float())
        ex = torch.rand(1, 3, self.size, self.size)
        self.backbone = trace(_LastFeature(net.base_model), ex)
        self.head = nn.Sequential(net.global_pool, net.classifier)
        self.register_buffer('bins', torch.arange(1, net.num_classes + 1, dtype=torch.float32))

    def forward(self, x):
        s = self.size
        h = x.shape[2]
        w = x.shape[3]
        if w <= h:
            nw = s
            nh = int(float(s) * float(h) / float(w))
        else:
            nh = s
            nw = int(float(s) * float(w) / float(h))
        if nh != h or nw != w:
            x = F.interpolate(x, size=[nh, nw], mode='bilinear', align_corners=False, antialias=True)
        top = _round_half_even_half(nh - s)
        left = _round_half_even_half(nw - s)
        x = x[:, :, top:top + s, left:left + s]
        x = (x - self.mean) / self.std
        dist = self.head(self.backbone(x))
        return (dist * self.bins).sum(dim=-1)


@torch.jit.script
def _round_half_even_half(d: int) -> int:
    """Python's round(d / 2.0) for an integer d >= 0 (ties to even), as torchvision's center_crop."""
    q = d // 2
    if d % 2 == 0:
        return q
    return q if q % 2 == 0 else q + 1


class _LastFeature(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x)[-1]


class HyperIQA(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.num_crop = int(net.num_crop)
        self.patch = trace(_Method(net, 'forward_patch'), torch.rand(2, 3, 224, 224))

    def forward(self, x):
        b = x.shape[0]
        crops = uniform_crops(x, 224, self.num_crop)
        r = self.patch(crops)
        return r.reshape(b, self.num_crop, -1).mean(dim=1).reshape(-1)


class _Method(nn.Module):
    def __init__(self, net, method):
        super().__init__()
        self.net = net
        self.method = method

    def forward(self, x):
        return getattr(self.net, self.method)(x)


class DBCNN(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.register_buffer('mean', net.default_mean.clone().float())
        self.register_buffer('std', net.default_std.clone().float())
        self.features1 = net.features1
        self.features2 = net.features2
        self.fc = net.fc

    def forward(self, x):
        x = (x - self.mean) / self.std
        x1 = self.features1(x)
        x2 = self.features2(x)
        n = x1.shape[0]
        h = x1.shape[2]
        w = x1.shape[3]
        if x2.shape[2] != h or x2.shape[3] != w:
            x2 = F.interpolate(x2, size=[h, w], mode='bilinear', align_corners=True)
        x1 = x1.reshape(n, 512, h * w)
        x2 = x2.reshape(n, 128, h * w)
        z = torch.bmm(x1, x2.transpose(1, 2)) / float(h * w)
        z = torch.sqrt(z.reshape(n, 512 * 128) + 1e-8)
        z = F.normalize(z)
        return self.fc(z).reshape(-1)


class PaQ2PiQ(nn.Module):
    """Global-image RoIPool (2x2 bins, spatial scale 1/32) re-implemented without torchvision ops,
    following the RoIPool kernel's rounding (box ends rounded half away from zero, bins floor/ceil)."""

    def __init__(self, net):
        super().__init__()
        self.body = net.body
        self.head = net.head
        self.scale = float(net.roi_pool.spatial_scale)
        self.out_h = int(net.roi_pool.output_size[0])
        self.out_w = int(net.roi_pool.output_size[1])

    def forward(self, x):
        feats = self.body(x)
        fh = feats.shape[2]
        fw = feats.shape[3]
        roi_w = max(int(math.floor(float(x.shape[3]) * self.scale + 0.5)) + 1, 1)
        roi_h = max(int(math.floor(float(x.shape[2]) * self.scale + 0.5)) + 1, 1)
        bin_h = float(roi_h) / float(self.out_h)
        bin_w = float(roi_w) / float(self.out_w)
        rows: List[torch.Tensor] = []
        for ph in range(self.out_h):
            hs = min(max(int(math.floor(ph * bin_h)), 0), fh)
            he = min(max(int(math.ceil((ph + 1) * bin_h)), 0), fh)
            cols: List[torch.Tensor] = []
            for pw in range(self.out_w):
                ws = min(max(int(math.floor(pw * bin_w)), 0), fw)
                we = min(max(int(math.ceil((pw + 1) * bin_w)), 0), fw)
                cols.append(feats[:, :, hs:he, ws:we].amax(dim=(2, 3)))
            rows.append(torch.stack(cols, dim=-1))
        pooled = torch.stack(rows, dim=-2)
        return self.head(pooled).reshape(-1)


class ARNIQA(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x).reshape(-1)


class CLIPIQA(nn.Module):
    """CLIP-IQA with the prompt text features computed once at export and stored as a buffer."""

    def __init__(self, net):
        super().__init__()
        clip = net.clip_model[0]
        if net.model_type != 'clipiqa':
            raise NotExportable(f'only model_type clipiqa is handled, not {net.model_type}')
        with torch.no_grad():
            tf = clip.encode_text(net.prompt_pairs).float()
        self.register_buffer('text', tf / tf.norm(dim=-1, keepdim=True))
        self.register_buffer('logit_scale', clip.logit_scale.detach().exp().reshape(()).float())
        self.register_buffer('mean', net.default_mean.clone().float())
        self.register_buffer('std', net.default_std.clone().float())
        self.visual = clip.visual
        self.pos_embedding = bool(net.pos_embedding)

    def forward(self, x):
        x = (x - self.mean) / self.std
        f = self.visual(x, pos_embedding=self.pos_embedding)
        f = f / f.norm(dim=-1, keepdim=True)
        logits = self.logit_scale * f @ self.text.t()
        probs = logits.reshape(logits.shape[0], -1, 2).softmax(dim=-1)
        return probs[:, :, 0].mean(dim=1)


class MANIQA(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.register_buffer('mean', net.default_mean.clone().float())
        self.register_buffer('std', net.default_std.clone().float())
        self.num = int(net.test_sample)
        # traced with exactly the crops of one image: the Swin window code turns the batch size into a
        # Python int, so the traced core is only valid for a batch of `num` crops (images are looped)
        self.core = trace(_ManiqaCore(net), torch.rand(self.num, 3, 224, 224))

    def forward(self, x):
        b = x.shape[0]
        x = (x - self.mean) / self.std
        crops = uniform_crops(x, 224, self.num)
        out: List[torch.Tensor] = []
        for i in range(b):
            score, weight = self.core(crops[i * self.num:(i + 1) * self.num])
            score = score.reshape(1, -1)  # all crops' patches pooled together, as pyiqa does
            weight = weight.reshape(1, -1)
            out.append((weight * score).sum(dim=-1) / (weight.sum(dim=-1) + 1e-8))
        return torch.cat(out)


class _ManiqaCore(nn.Module):
    """MANIQA on normalised 224x224 crops -> per-patch scores and weights (pyiqa's forward after its crop
    step, up to its final weighted pooling)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        n = self.net
        from einops import rearrange
        n.vit(x)
        f = n.extract_feature(n.save_output)
        n.save_output.outputs.clear()
        s = n.input_size
        f = rearrange(f, 'b (h w) c -> b c (h w)', h=s, w=s)
        for tab in n.tablock1:
            f = tab(f)
        f = rearrange(f, 'b c (h w) -> b c h w', h=s, w=s)
        f = n.swintransformer1(n.conv1(f))
        f = rearrange(f, 'b c h w -> b c (h w)', h=s, w=s)
        for tab in n.tablock2:
            f = tab(f)
        f = rearrange(f, 'b c (h w) -> b c h w', h=s, w=s)
        f = n.swintransformer2(n.conv2(f))
        f = rearrange(f, 'b c h w -> b (h w) c', h=s, w=s)
        return n.fc_score(f).reshape(x.shape[0], -1), n.fc_weight(f).reshape(x.shape[0], -1)


@torch.jit.script
def _round_half_even(v: float) -> int:
    """Python's round() of a non-negative float (ties to even)."""
    f = math.floor(v)
    d = v - f
    i = int(f)
    if d > 0.5:
        return i + 1
    if d < 0.5:
        return i
    return i if i % 2 == 0 else i + 1


@torch.jit.script
def _musiq_scale(img: torch.Tensor, ps: int, stride: int, grid: int, scale_id: int, max_len: int) -> torch.Tensor:
    """Patches (TF 'SAME' padding) + hashed spatial index + scale id + mask, padded/cut to max_len
    (max_len < 0: all patches). -> n x (c*ps*ps + 3) x L"""
    n = img.shape[0]
    h = img.shape[2]
    w = img.shape[3]
    h2 = (h + stride - 1) // stride
    w2 = (w + stride - 1) // stride
    pad_r = (h2 - 1) * stride + ps - h
    pad_c = (w2 - 1) * stride + ps - w
    x = F.pad(img, [pad_c // 2, pad_c - pad_c // 2, pad_r // 2, pad_r - pad_r // 2])
    p = F.unfold(x, [ps, ps], dilation=[1, 1], padding=[0, 0], stride=[stride, stride])
    g = torch.arange(grid, device=img.device).to(torch.float32).reshape(1, 1, grid)
    hw = F.interpolate(g, size=[w2], mode='nearest').repeat(1, h2, 1)
    hh = F.interpolate(g, size=[h2], mode='nearest').transpose(1, 2).repeat(1, 1, w2)
    sp = (hh * float(grid) + hw).reshape(1, -1).unsqueeze(1).repeat(n, 1, 1)
    out = torch.cat([p, sp.to(p), (torch.ones_like(sp) * float(scale_id)).to(p), torch.ones_like(sp).to(p)], dim=1)
    if max_len >= 0:
        out = torch.cat([out, torch.zeros(out.shape[0], out.shape[1], max_len, dtype=out.dtype,
                                          device=out.device)], dim=-1)[:, :, :max_len]
    return out


class MUSIQ(nn.Module):
    """Multi-scale patching (aspect-preserving bicubic resizes to each longer side + the original
    resolution) in TorchScript; the patch network is traced (it only sees 32x32 patches and token
    sequences)."""

    def __init__(self, net):
        super().__init__()
        o = net.data_preprocess_opts
        self.ps = int(o['patch_size'])
        self.stride = int(o['patch_stride'])
        self.grid = int(o['hse_grid_size'])
        self.lengths: List[int] = [int(v) for v in sorted(o['longer_side_lengths'])]
        self.use_orig = o['max_seq_len_from_original_res'] is not None
        self.orig_len = int(o['max_seq_len_from_original_res']) if self.use_orig else -1
        core = _MusiqCore(net)
        ex = self.patches(torch.rand(1, 3, 384, 512))
        self.core = trace(core, ex)

    def patches(self, x):
        n = x.shape[0]
        h = x.shape[2]
        w = x.shape[3]
        outs: List[torch.Tensor] = []
        sid = 0
        for L in self.lengths:
            ratio = float(L) / float(max(h, w))
            rh = _round_half_even(float(h) * ratio)
            rw = _round_half_even(float(w) * ratio)
            r = F.interpolate(x, size=[rh, rw], mode='bicubic', align_corners=False)
            m = (L + self.stride - 1) // self.stride
            outs.append(_musiq_scale(r, self.ps, self.stride, self.grid, sid, m * m))
            sid += 1
        if self.use_orig:
            outs.append(_musiq_scale(x, self.ps, self.stride, self.grid, sid, self.orig_len))
        return torch.cat(outs, dim=-1).transpose(1, 2)

    def forward(self, x):
        x = (x - 0.5) * 2
        return self.core(self.patches(x)).reshape(-1)


class _MusiqCore(nn.Module):
    """pyiqa's MUSIQ forward after its patching step (one crop per image)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        n = self.net
        b, seq_len, dim = x.shape
        sp = x[:, :, -3]
        sc = x[:, :, -2]
        mask = x[:, :, -1].bool()
        x = x[:, :, :-3].reshape(-1, 3, n.patch_size, n.patch_size)
        x = n.block1(n.root_pool(n.gn_root(n.conv_root(x))))
        x = x.permute(0, 2, 3, 1).reshape(b, seq_len, -1)
        x = n.transformer_encoder(n.embedding(x), sp, sc, mask)
        q = n.head(x[:, 0])
        bins = torch.arange(1, q.shape[-1] + 1).to(q)
        return (q * bins).sum(dim=-1, keepdim=True)


def wrap(name, metric):
    """-> (wrapper module, 'trace'|'script', notes)."""
    net = metric.net
    if name == 'wadiqam_nr':
        return WaDIQaMNR(net), 'script', 'non-overlapping 32x32 patches computed in TorchScript'
    if name == 'nima':
        return NIMA(net), 'script', ('resize shorter side (bilinear, antialias) + centre crop in TorchScript; '
                                     'backbone traced at fixed 299x299')
    if name == 'hyperiqa':
        return HyperIQA(net), 'script', 'uniform 224 crops in TorchScript; per-crop network traced at 224x224'
    if name == 'dbcnn':
        return DBCNN(net), 'script', 'scripted (feature-size mismatch branch depends on input size)'
    if name == 'paq2piq':
        return PaQ2PiQ(net), 'script', 'torchvision RoIPool replaced by an equivalent global-box max pooling'
    if name == 'clipiqa':
        return CLIPIQA(net), 'trace', 'text features of the prompt pairs precomputed into a buffer'
    if name == 'maniqa':
        return MANIQA(net), 'script', ('uniform (deterministic) 224 crops, as pyiqa does in eval mode; '
                                       'per-crop network traced at 224x224')
    if name == 'musiq':
        return MUSIQ(net), 'script', ('multi-scale patching in TorchScript; patch/transformer network traced '
                                      '(variable sequence length checked at two sizes)')
    if metric.metric_mode == 'FR':
        return TraceFR(net), 'trace', ''
    return TraceNR(net), 'trace', ''


def to_torchscript(name, metric, example_args):
    module, how, notes = wrap(name, metric)
    module.eval()
    if how == 'script':
        ts = torch.jit.script(module)
    else:
        ts = trace(module, example_args)
    return ts, how, notes


# ----------------------------------------------------------------------------------------------
# Checking
# ----------------------------------------------------------------------------------------------

def load_pair(img):
    from pyiqa.utils.img_util import imread2tensor
    d = imread2tensor(str(CAL / 'dist' / img), rgb=True).unsqueeze(0)
    r = imread2tensor(str(CAL / 'ref' / img), rgb=True).unsqueeze(0)
    return d, r


def crop_of(t, c):
    x, y, w, h = c
    return t[..., y:y + h, x:x + w].contiguous()


def rel_err(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def run_pyiqa(metric, d, r):
    with torch.no_grad():
        out = metric(d, r) if metric.metric_mode == 'FR' else metric(d)
    return out.reshape(-1).double().tolist()


def run_module(mod, mode, d, r):
    with torch.no_grad():
        out = mod(d, r) if mode == 'FR' else mod(d)
    if out.dtype != torch.float32:
        raise RuntimeError(f'module returned {out.dtype}, not float32')
    if out.dim() != 1 or out.shape[0] != d.shape[0]:
        raise RuntimeError(f'module returned shape {list(out.shape)}, expected [{d.shape[0]}]')
    return out.double().tolist()


def export_one(name, args, outdir: pathlib.Path):
    import pyiqa
    from pyiqa.default_model_configs import DEFAULT_CONFIGS
    cfg = DEFAULT_CONFIGS[name]
    metric = build_metric(name, args.random_weights, args.seed)
    mode = metric.metric_mode
    images = IMAGES[:args.images]
    pairs = [load_pair(img) for img in images]
    d0, r0 = pairs[0]
    example = (d0, r0) if mode == 'FR' else (d0,)
    t0 = time.time()
    ts, how, notes = to_torchscript(name, metric, example)
    path = outdir / f'{name}.pt'
    ts.save(str(path))
    export_s = time.time() - t0
    unpatch_loading()
    mod = torch.jit.load(str(path), map_location='cpu').eval()

    # warm-up (TorchScript's profiling executor optimises during the first calls), not timed
    heavy = name in HEAVY
    if not heavy:
        run_pyiqa(metric, d0, r0)
    for _ in range(1 if heavy else 2):
        run_module(mod, mode, d0, r0)
    rows, errs, t_py, t_mod = [], [], [], []
    worst = (0.0, '')
    for img, (d, r) in zip(images, pairs):
        for region, dd, rr in (('file', d, r), ('crop %d %d %d %d' % CROP, crop_of(d, CROP), crop_of(r, CROP))):
            t1 = time.perf_counter()
            p = run_pyiqa(metric, dd, rr)[0]
            t2 = time.perf_counter()
            m = run_module(mod, mode, dd, rr)[0]
            t3 = time.perf_counter()
            if region == 'file':
                t_py.append(t2 - t1)
                t_mod.append(t3 - t2)
            e = rel_err(m, p)
            errs.append(e)
            if e >= worst[0]:
                worst = (e, f'{img} {region}: module {m!r} pyiqa {p!r}')
            rows.append({'metric': name, 'image': img, 'region': region, 'score': repr(p)})
            if not math.isfinite(p):
                raise RuntimeError(f'pyiqa score is not finite for {img} {region}')
    # batch of 2 (two different images) at the calibration size, when there are two pairs
    if len(pairs) >= 2 and not heavy:
        d = torch.cat([pairs[0][0], pairs[1][0]])
        r = torch.cat([pairs[0][1], pairs[1][1]])
        p = run_pyiqa(metric, d, r)
        m = run_module(mod, mode, d, r)
        for a, b in zip(m, p):
            errs.append(rel_err(a, b))
    max_err = max(errs)
    scores = [float(r['score']) for r in rows]
    sizes = [f'{d0.shape[-1]}x{d0.shape[-2]}', f'{CROP[2]}x{CROP[3]}'] + (['batch 2'] if len(pairs) >= 2 and not heavy else [])
    graph = str(mod.inlined_graph) if hasattr(mod, 'inlined_graph') else ''
    cpu_consts = graph.count('device=cpu')
    info = {
        'mode': mode,
        'lower_better': bool(cfg.get('lower_better', False)),
    }
    sr = parse_score_range(cfg.get('score_range'))
    if sr is not None:
        info['score_range'] = sr
    info.update({
        'pyiqa_name': name,
        'pyiqa_version': pyiqa.__version__,
        'torch_version': torch.__version__,
        'weights': 'random' if args.random_weights else 'pretrained',
        'seed': args.seed,
        'state_dict_sha256_16': state_hash(metric.net),
        'export': how,
        'input': 'float32 N x 3 x H x W in [0,1]' + (' (dist, ref)' if mode == 'FR' else ' (dist)'),
        'output': 'float32 [N]',
        'sizes_checked': sizes,
        'images_checked': images,
        'max_rel_error': max_err,
        'worst_case': worst[1],
        'score_spread': [min(scores), max(scores)],
        # (max - min) / max |score| over the checked scores: how much the (random) weights tell images apart
        'relative_spread': (max(scores) - min(scores)) / max(max(abs(v) for v in scores), 1e-30),
        'seconds_per_image_pyiqa': statistics.median(t_py),
        'seconds_per_image_module': statistics.median(t_mod),
        'export_seconds': export_s,
        'notes': '; '.join(x for x in [notes, EXTRA_NOTES.get(name, '')] + (
            [f'{cpu_consts} graph constants mention device=cpu (check before moving to CUDA)'] if cpu_consts else [])
                           if x),
    })
    (outdir / f'{name}.json').write_text(json.dumps(info, indent=1) + '\n')
    write_rows(outdir / f'{name}.references.csv', rows)
    if max_err > TOLERANCE:
        raise RuntimeError(f'module differs from pyiqa: max relative error {max_err:.3g} > {TOLERANCE} '
                           f'({worst[1]})')
    if len(set(scores)) == 1:
        raise RuntimeError(f'all scores equal ({scores[0]!r}): degenerate weights, check is meaningless')
    return info


HEAVY = {'maniqa'}  # slow on CPU: no batch-2 check, fewer warm-up runs
EXTRA_NOTES = {
    'maniqa': 'pyiqa eval mode already uses uniform_crop (20 crops), no random crop to replace',
    'topiq_nr': 'whole network traced; size-dependent shapes checked at two sizes',
    'topiq_fr': 'whole network traced; size-dependent shapes checked at two sizes',
}


def parse_score_range(s):
    if s is None:
        return None
    try:
        lo, hi = [float(v.strip().lstrip('~')) for v in str(s).split(',')]
        return [lo, hi]
    except Exception:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('names', nargs='*')
    ap.add_argument('--out', required=True, type=pathlib.Path)
    ap.add_argument('--random-weights', action='store_true')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--images', type=int, default=5)
    ap.add_argument('--all', action='store_true')
    args = ap.parse_args()
    names = list(dict.fromkeys((ALL if args.all else []) + args.names))
    if not names:
        ap.error('give metric names or --all')
    if not 1 <= args.images <= len(IMAGES):
        ap.error(f'--images must be in 1..{len(IMAGES)}')
    args.out.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings('ignore')
    patch_offline(args.random_weights)

    summary = {}
    t_all = time.time()
    for name in names:
        t0 = time.time()
        print(f'== {name}', flush=True)
        try:
            info = export_one(name, args, args.out)
            summary[name] = {'exported': True, 'reason': '', 'max_rel_error': info['max_rel_error'],
                             'export': info['export'], 'sizes_checked': info['sizes_checked'],
                             'seconds_per_image_pyiqa': info['seconds_per_image_pyiqa'],
                             'seconds_per_image_module': info['seconds_per_image_module']}
        except Exception as e:
            reason = str(e) if isinstance(e, NotExportable) else f'{type(e).__name__}: {e}'
            if not isinstance(e, NotExportable):
                traceback.print_exc()
            for ext in ('.pt', '.json', '.references.csv'):  # never leave a half-checked module behind
                (args.out / f'{name}{ext}').unlink(missing_ok=True)
            summary[name] = {'exported': False, 'reason': reason.splitlines()[0][:500] if reason else ''}
        summary[name]['seconds_total'] = time.time() - t0
        patch_offline(args.random_weights)  # re-apply what unpatch_loading undid
        print(f'   {name}: {summary[name]}', flush=True)
    (args.out / 'summary.json').write_text(json.dumps(summary, indent=1) + '\n')

    print(f'\n{"metric":12} {"exported":8} {"max rel err":>11} {"s/img pyiqa":>11} {"s/img module":>12}  reason')
    for name, s in summary.items():
        if s['exported']:
            print(f'{name:12} {"yes":8} {s["max_rel_error"]:11.2e} {s["seconds_per_image_pyiqa"]:11.3f} '
                  f'{s["seconds_per_image_module"]:12.3f}  ({s["export"]})')
        else:
            print(f'{name:12} {"no":8} {"":>11} {"":>11} {"":>12}  {s["reason"]}')
    print(f'total {time.time() - t_all:.1f} s')
    return 0 if all(s['exported'] for s in summary.values()) else 1


if __name__ == '__main__':
    sys.exit(main())
