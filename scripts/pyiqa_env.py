"""pyiqa 0.1.16 run offline on exactly the weight files of the shared folder (IQA_WEIGHTS_DIR, default
../shared/weights), with nothing left in the user's caches: imported before torch and pyiqa by every script that
runs pyiqa for reference numbers (make_references.py, benchmark.py).

On import, TORCH_HOME (and XDG_CACHE_HOME, HF_HOME, MPLCONFIGDIR) point at a temporary directory removed at exit.
pyiqa looks for its zoo files in `torch.hub.get_dir()/pyiqa/<basename of the URL>` and torchvision for its
checkpoints in `$TORCH_HOME/hub/checkpoints/<basename of the weights URL>`; `setup_weights()` places there
  - the LPIPS lin-layer files and DISTS alpha/beta under pyiqa's names, checked against the sha256 prefix in the
    name;
  - torchvision checkpoints built from backbones/*.safetensors (alexnet/vgg16: feature weights plus all-zero
    classifier tensors of the right shapes, since torchvision loads strictly; squeezenet1_1 as is);
and `metric_kwargs()` gives pyiqa the NIQE, BRISQUE and IL-NIQE parameter files in the formats it reads.
Downloads raise. `verify()` compares a built LPIPS/DISTS model's tensors bit for bit with the shared files.
"""
import atexit
import hashlib
import os
import pathlib
import shutil
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = pathlib.Path(os.environ.get('IQA_WEIGHTS_DIR') or ROOT.parent / 'shared' / 'weights')

TMP = pathlib.Path(tempfile.mkdtemp(prefix='iqa_pyiqa_env_'))
atexit.register(shutil.rmtree, TMP, ignore_errors=True)
os.environ['TORCH_HOME'] = str(TMP / 'torch')
os.environ['XDG_CACHE_HOME'] = str(TMP / 'xdg_cache')
os.environ['HF_HOME'] = str(TMP / 'hf')
os.environ['HF_HUB_OFFLINE'] = '1'
os.environ['MPLCONFIGDIR'] = str(TMP / 'mpl')
os.environ.pop('TORCH_HUB', None)

import numpy as np  # noqa: E402
import scipy.io  # noqa: E402
import torch  # noqa: E402
import torch.hub  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from torchvision import models as tvm  # noqa: E402
import pyiqa  # noqa: E402
import pyiqa.utils.download_util as pyiqa_dl  # noqa: E402
from pyiqa.archs import lpips_arch, dists_arch  # noqa: E402


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


def metric_kwargs(name, directory):
    """pyiqa's keyword arguments that hand it the parameter files of `name` (niqe, brisque, ilniqe), written into
    `directory` under pyiqa's names from the shared folder: the NIQE `.mat` from `niqe/niqe_pris_params.npz`, the
    BRISQUE `(sv_coef, sv)` file from `brisque/brisque_live_svm.safetensors`, IL-NIQE's official template as is."""
    if name == 'niqe':
        p = np.load(SHARED / 'niqe' / 'niqe_pris_params.npz')
        path = os.path.join(directory, 'niqe_modelparameters.mat')
        scipy.io.savemat(path, {'mu_prisparam': p['mu_pris_param'], 'cov_prisparam': p['cov_pris_param']})
        return {'pretrained_model_path': path}
    if name == 'brisque':
        p = load_file(str(SHARED / 'brisque' / 'brisque_live_svm.safetensors'))
        path = os.path.join(directory, 'brisque_svm_weights.pth')
        torch.save((p['sv_coef'], p['sv']), path)
        return {'pretrained_model_path': path}
    if name == 'ilniqe':
        path = os.path.join(directory, 'ILNIQE_templateModel.mat')
        shutil.copyfile(SHARED / 'ilniqe' / 'ILNIQE_templateModel.mat', path)
        return {'pretrained_model_path': path}
    return {}
