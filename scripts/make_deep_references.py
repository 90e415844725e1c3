#!/usr/bin/env python3
"""Reference scores of pyiqa 0.1.16's deep full-reference metrics, computed with exactly the weight
files in /work/shared/weights (no network, nothing left in the user's caches).

Run with the dev venv (from the repository root; takes a few minutes on 2 cores, the 1024x768 VGG runs
are the slow part; rerunnable, it rewrites both output files every time):

    .venv/bin/python scripts/make_deep_references.py

How the weights reach pyiqa: before torch/pyiqa are imported, TORCH_HOME (and XDG_CACHE_HOME, HF_HOME,
MPLCONFIGDIR) point at a temporary directory created here and removed at exit. pyiqa looks for its zoo
files in `torch.hub.get_dir()/pyiqa/<basename of the URL>` (pyiqa.utils.download_util.DEFAULT_CACHE_DIR,
fixed at import time) and torchvision for its checkpoints in `$TORCH_HOME/hub/checkpoints/<basename of the
weights URL>`; the script places there
  - the LPIPS lin-layer files (shared lpips/lpips_v*_*_lin.pth, byte-identical) and DISTS alpha/beta
    (shared dists/dists_alpha_beta.pt) under pyiqa's names, checked against the sha256 prefix in the name;
  - torchvision checkpoints built from shared backbones/*.safetensors (alexnet/vgg16: feature weights plus
    all-zero classifier tensors of the right shapes, since torchvision loads strictly; squeezenet1_1 as is).
Downloads are disabled (any attempt raises), and after building each metric every backbone conv tensor,
every LPIPS lin weight and DISTS alpha/beta are compared bit-for-bit with the shared files (abort otherwise).

Metrics: lpips, lpips-vgg, lpips+, lpips-vgg+, dists (pyiqa default configs) and lpips-squeeze
(= pyiqa.create_metric('lpips', net='squeeze'): LPIPS v0.1 on SqueezeNet1_1, fp16-rounded shared weights).
device='cpu', torch.set_num_threads(2), float32 as pyiqa does.

Inputs: the calibration pairs data/calibration/{dist,ref}/I0x.bmp, decoded as pyiqa does
(imread2tensor(path, rgb=True): PIL -> RGB -> float/255); metric(dist, ref). Regions:
  - `file`: pyiqa scoring the two file paths;
  - `crop X Y W H`: rows Y..Y+H, columns X..X+W of both decoded tensors;
  - `tile 2 2`: both decoded tensors tiled [[img, img], [img, img]] (cat along W, then H; 1024x768).
A size pyiqa rejects (raises) is recorded as `nan` (exception type printed to stderr).

Writes
  - tests/data/deep_references.csv  (metric,image,region,score; score = repr of the Python float)
  - tests/data/lpips_map_I03.csv    (LPIPS alex v0.1 spatial=True map of the I03 files: shape, mean, max,
                                     min, px,y,x,v lines, the non-spatial score, mean_equals_score)
and prints a summary comparing lpips / dists with the official calibration scores.
"""
import atexit
import hashlib
import os
import pathlib
import shutil
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = pathlib.Path('/work/shared/weights')
CAL = ROOT / 'data' / 'calibration'
OUT = ROOT / 'tests' / 'data' / 'deep_references.csv'
MAP_OUT = ROOT / 'tests' / 'data' / 'lpips_map_I03.csv'
IMAGES = ['I03.bmp', 'I04.bmp', 'I06.bmp', 'I08.bmp', 'I19.bmp']
CROPS = [(7, 5, 301, 257), (100, 50, 161, 163), (33, 21, 37, 29), (0, 0, 16, 16)]
# metric row name -> (pyiqa name, extra kwargs)
METRICS = {
    'lpips': ('lpips', {}),
    'lpips-vgg': ('lpips-vgg', {}),
    'lpips+': ('lpips+', {}),
    'lpips-vgg+': ('lpips-vgg+', {}),
    'lpips-squeeze': ('lpips', {'net': 'squeeze'}),
    'dists': ('dists', {}),
}
OFFICIAL = {
    'lpips': [0.7237, 0.2572, 0.05079, 0.05205, 0.4253],
    'dists': [0.4742, 0.1424, 0.06825, 0.02867, 0.3123],
}
MAP_PIXELS = [(0, 0), (10, 20), (100, 200), (383, 511), (200, 37)]

# ---- isolate every cache in a temporary directory BEFORE importing torch / pyiqa -------------------
TMP = pathlib.Path(tempfile.mkdtemp(prefix='iqa_deep_refs_'))
atexit.register(shutil.rmtree, TMP, ignore_errors=True)
os.environ['TORCH_HOME'] = str(TMP / 'torch')
os.environ['XDG_CACHE_HOME'] = str(TMP / 'xdg_cache')
os.environ['HF_HOME'] = str(TMP / 'hf')
os.environ['HF_HUB_OFFLINE'] = '1'
os.environ['MPLCONFIGDIR'] = str(TMP / 'mpl')
os.environ.pop('TORCH_HUB', None)

import torch  # noqa: E402
import torch.hub  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from torchvision import models as tvm  # noqa: E402
import pyiqa  # noqa: E402
import pyiqa.utils.download_util as pyiqa_dl  # noqa: E402
from pyiqa.archs import lpips_arch, dists_arch  # noqa: E402
from pyiqa.utils.img_util import imread2tensor  # noqa: E402


def die(msg):
    print(f'FATAL: {msg}', file=sys.stderr)
    sys.exit(1)


def no_download(url, dst, *args, **kwargs):
    raise RuntimeError(f'download attempted (weights not where expected): {url} -> {dst}')


# pyiqa imported download_url_to_file by name; torchvision goes through torch.hub.
torch.hub.download_url_to_file = no_download
pyiqa_dl.download_url_to_file = no_download


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def url_name(url):
    return url.split('?')[0].rstrip('/').rsplit('/', 1)[-1]


def setup_weights():
    hub = pathlib.Path(torch.hub.get_dir())
    pyiqa_dir = pathlib.Path(pyiqa_dl.DEFAULT_CACHE_DIR)
    if TMP not in hub.parents or TMP not in pyiqa_dir.parents:
        die(f'caches not redirected: hub={hub} pyiqa={pyiqa_dir}')
    pyiqa_dir.mkdir(parents=True, exist_ok=True)

    # pyiqa zoo files: name is <stem>-<first 8 hex of sha256>.pth
    zoo = {url_name(lpips_arch.default_model_urls[f'{v}_{n}']): SHARED / 'lpips' / f'lpips_v{v}_{n}_lin.pth'
           for v in ('0.0', '0.1') for n in ('alex', 'vgg', 'squeeze')}
    zoo[url_name(dists_arch.default_model_urls['url'])] = SHARED / 'dists' / 'dists_alpha_beta.pt'
    for name, src in zoo.items():
        prefix = name.rsplit('-', 1)[1].split('.')[0]
        if not sha256(src).startswith(prefix):
            die(f'{src} does not match the pyiqa name {name}')
        shutil.copyfile(src, pyiqa_dir / name)

    # torchvision checkpoints, named as the installed torchvision requests them
    ckpt = hub / 'checkpoints'
    ckpt.mkdir(parents=True, exist_ok=True)
    backbones = {
        'alexnet': (tvm.alexnet, tvm.AlexNet_Weights.IMAGENET1K_V1, 'alexnet_features_torchvision.safetensors'),
        'vgg16': (tvm.vgg16, tvm.VGG16_Weights.IMAGENET1K_V1, 'vgg16_features_torchvision.safetensors'),
        'squeezenet1_1': (tvm.squeezenet1_1, tvm.SqueezeNet1_1_Weights.IMAGENET1K_V1,
                          'squeezenet1_1_torchvision_fp16rounded.safetensors'),
    }
    feats = {}
    for key, (ctor, weights, fname) in backbones.items():
        sd = load_file(str(SHARED / 'backbones' / fname))
        with torch.device('meta'):
            ref_sd = ctor(num_classes=len(weights.meta['categories'])).state_dict()
        extra = set(sd) - set(ref_sd)
        if extra:
            die(f'{fname}: keys unknown to torchvision {key}: {sorted(extra)}')
        out = {}
        for k, t in ref_sd.items():
            if k in sd:
                if sd[k].shape != t.shape or sd[k].dtype != torch.float32:
                    die(f'{fname}: {k} has {tuple(sd[k].shape)} {sd[k].dtype}, torchvision wants {tuple(t.shape)}')
                out[k] = sd[k].contiguous()
            elif k.startswith('classifier.'):
                # unused by LPIPS/DISTS (.features only); zeros, stored as a broadcast view of one element
                out[k] = torch.zeros((), dtype=t.dtype).expand(t.shape)
            else:
                die(f'{fname}: missing {k}')
        torch.save(out, ckpt / url_name(weights.url))
        feats[key] = sd
        print(f'{key}: {ckpt / url_name(weights.url)} ({len(sd)} tensors from {fname}, '
              f'{len(ref_sd) - len(sd)} zero classifier tensors)')
    return feats


def verify(row_name, metric, feats):
    """Bit-compare the weights the built pyiqa model holds with the shared files."""
    net = metric.net
    if isinstance(net, lpips_arch.LPIPS):
        bb = {'alex': 'alexnet', 'vgg': 'vgg16', 'squeeze': 'squeezenet1_1'}[net.pnet_type]
        trunk = net.net.state_dict()
        lin = torch.load(SHARED / 'lpips' / f'lpips_v{net.version}_{net.pnet_type}_lin.pth',
                         map_location='cpu', weights_only=False)
        if len(lin) != net.L:
            die(f'{row_name}: lin file has {len(lin)} tensors, model {net.L}')
        for k in range(net.L):
            if not torch.equal(getattr(net, f'lin{k}').model[-1].weight, lin[f'lin{k}.model.1.weight']) or \
                    not torch.equal(net.lins[k].model[-1].weight, lin[f'lin{k}.model.1.weight']):
                die(f'{row_name}: lin{k} weight differs from the shared file')
    elif isinstance(net, dists_arch.DISTS):
        bb = 'vgg16'
        trunk = {k: v for k, v in net.state_dict().items() if k.startswith('stage') and not k.endswith('.filter')}
        ab = torch.load(SHARED / 'dists' / 'dists_alpha_beta.pt', map_location='cpu', weights_only=False)
        if not (torch.equal(net.alpha, ab['alpha']) and torch.equal(net.beta, ab['beta'])):
            die(f'{row_name}: alpha/beta differ from the shared file')
    else:
        die(f'{row_name}: unexpected network {type(net)}')
    sd = feats[bb]
    seen = set()
    for k, v in trunk.items():  # sliceK.N.rest / stageK.N.rest -> features.N.rest
        fk = 'features.' + k.split('.', 1)[1]
        if fk not in sd or not torch.equal(v, sd[fk]):
            die(f'{row_name}: {k} differs from {bb} safetensors {fk}')
        seen.add(fk)
    want = {k for k in sd if k.startswith('features.')}
    if seen != want:
        die(f'{row_name}: backbone tensors not all used: {sorted(want - seen)}')
    print(f'{row_name}: verified {len(seen)} {bb} tensors + lin/alpha-beta weights against the shared files')


def score(metric, a, b):
    try:
        return metric(a, b).item()
    except Exception as e:  # too small for the network
        print(f'  nan: {type(e).__name__}: {str(e).splitlines()[0][:160]}', file=sys.stderr)
        return float('nan')


def tile(t):
    row = torch.cat([t, t], dim=-1)
    return torch.cat([row, row], dim=-2)


def main():
    assert pyiqa.__version__ == '0.1.16', pyiqa.__version__
    torch.set_num_threads(2)
    t0 = time.time()
    feats = setup_weights()

    pairs = {}
    for img in IMAGES:
        dist, ref = CAL / 'dist' / img, CAL / 'ref' / img
        d = imread2tensor(str(dist), rgb=True).unsqueeze(0)
        r = imread2tensor(str(ref), rgb=True).unsqueeze(0)
        assert d.shape == r.shape == (1, 3, 384, 512) and d.dtype == torch.float32, (d.shape, d.dtype)
        pairs[img] = (dist, ref, d, r)

    rows = []
    file_scores = {}
    for row_name, (name, kwargs) in METRICS.items():
        metric = pyiqa.create_metric(name, device='cpu', **kwargs)
        verify(row_name, metric, feats)
        for img, (dist, ref, d, r) in pairs.items():
            s = score(metric, str(dist), str(ref))
            file_scores.setdefault(row_name, []).append(s)
            rows.append((row_name, img, 'file', s))
            for x, y, w, h in CROPS:
                dc = d[..., y:y + h, x:x + w].contiguous()
                rc = r[..., y:y + h, x:x + w].contiguous()
                region = f'crop {x} {y} {w} {h}'
                s = score(metric, dc, rc)
                if s != s:
                    print(f'  ^ {row_name} {img} {region}', file=sys.stderr)
                rows.append((row_name, img, region, s))
            s = score(metric, tile(d).contiguous(), tile(r).contiguous())
            rows.append((row_name, img, 'tile 2 2', s))
        print(f'{row_name}: done ({time.time() - t0:.0f} s)')
        del metric

    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open('w') as f:
        f.write('metric,image,region,score\n')
        for m, img, region, s in rows:
            f.write(f'{m},{img},{region},{s!r}\n')

    # ---- LPIPS spatial map on the I03 files ----
    dist, ref, _, _ = pairs['I03.bmp']
    spatial = pyiqa.create_metric('lpips', device='cpu', spatial=True)
    verify('lpips(spatial)', spatial, feats)
    m = spatial(str(dist), str(ref))
    s = file_scores['lpips'][0]
    mean = m.mean().item()
    lines = ['shape,' + ','.join(str(n) for n in m.shape),
             f'mean,{mean!r}', f'max,{m.max().item()!r}', f'min,{m.min().item()!r}']
    lines += [f'px,{y},{x},{m[0, 0, y, x].item()!r}' for y, x in MAP_PIXELS]
    lines += [f'score,{s!r}', f'mean_equals_score,{mean == s}']
    MAP_OUT.write_text('\n'.join(lines) + '\n')

    # ---- summary ----
    print(f'\nwrote {OUT.relative_to(ROOT)} ({len(rows)} rows) and {MAP_OUT.relative_to(ROOT)} '
          f'in {time.time() - t0:.0f} s')
    print('file scores (' + ', '.join(i[:-4] for i in IMAGES) + '):')
    for row_name, v in file_scores.items():
        print(f'  {row_name:14s} ' + '  '.join(f'{x:.6f}' for x in v))
        if row_name in OFFICIAL:
            diff = max(abs(a - b) for a, b in zip(v, OFFICIAL[row_name]))
            print(f'  {"":14s} official {OFFICIAL[row_name]}  max |diff| = {diff:.3g}')
    nans = sorted({(mn, reg) for mn, _, reg, v in rows if v != v})
    print('nan (pyiqa raised): ' + (', '.join(f'{mn} [{reg}]' for mn, reg in nans) or 'none'))
    print(f'LPIPS map I03: shape {tuple(m.shape)}, mean {mean!r}, score {s!r}, '
          f'mean - score = {mean - s:.3g}')


if __name__ == '__main__':
    main()
