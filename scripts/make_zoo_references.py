#!/usr/bin/env python3
"""Random checkpoints for pyiqa's model zoo, and pyiqa 0.1.16's scores on them (tests/zoo.rs).

Pretrained zoo files cannot be downloaded here, so the architecture, the preprocessing and the file mapping are
proved on random weights: each family's own pyiqa network is built with seeded random weights, its BatchNorm
and LayerNorm affine parameters are drawn at random too (so that a swapped weight/bias shows), its BatchNorm
running statistics are measured on the calibration images (random networks with statistics left at 0/1 give
near-constant scores) in float64 and rounded to float16 values (so that another CPU's convolutions do not
change the file), and the network is saved in the format and under the file name of pyiqa's real checkpoint.
pyiqa then loads that file through its own loading code (its cache folder, the URL's basename) and scores:

  - the calibration files (`file`), gray versions of two of them (`gray`), odd crops (`crop X Y W H`), and a
    large image (`tile 4 3 1920 1080`: the pair tiled 4×3 and cut to 1920×1080 at the top left);

into tests/data/zoo_references.csv (metric,image,region,score). A size pyiqa raises on is recorded as `nan`.

  .venv/bin/python scripts/make_zoo_references.py                 # checkpoints into target/zoo-weights + CSV
  .venv/bin/python scripts/make_zoo_references.py --checkpoints DIR   # checkpoints only (what tests/zoo.rs runs)
  .venv/bin/python scripts/make_zoo_references.py --checkpoints DIR --only cnniqa   # one family's files
  .venv/bin/python scripts/make_zoo_references.py [metric ...]    # only these metrics' rows are rescored
  .venv/bin/python scripts/make_zoo_references.py --only ckdn ckdn   # ... with only their families' files made

Checkpoints are regenerated bit-identically from SEED with the same torch on any CPU (BatchNorm statistics are
measured in float64 and rounded to float16: another CPU's last bits lie ~1e-9 of a float16 step below it);
tests/zoo.rs regenerates them when missing.
"""
import argparse
import contextlib
import csv
import math
import pathlib
import shutil
import sys
import time

import pyiqa_env  # before torch and pyiqa: isolated caches, downloads raise
from pyiqa_env import ROOT, pyiqa, torch
import pyiqa.utils.download_util as pyiqa_dl
import torchvision
import torchvision.transforms.functional as TF
from PIL import Image
from pyiqa.utils.img_util import imread2tensor
from reference_csv import write_rows
from zoo_offline import CUDA_ONLY, PYIQA_KWARGS as METRICS, cuda_as_cpu, no_pretrained

SEED = 20261207
CAL = ROOT / 'data' / 'calibration'
OUT = ROOT / 'tests' / 'data' / 'zoo_references.csv'
WEIGHTS = ROOT / 'target' / 'zoo-weights'
IMAGES = ['I03.bmp', 'I04.bmp', 'I06.bmp', 'I08.bmp', 'I19.bmp']
CROPS = [(7, 5, 301, 257), (33, 21, 37, 29)]
LARGE = (4, 3, 1920, 1080)
GRAY = ['I03.bmp', 'I19.bmp']
# Metrics that score an image against a caption (tests/data/zoo_captions.csv).
CAPTIONED = {'clipscore'}
# Metrics scored on fewer rows (every file, the gray ones, one image's crops, the large one): pyiqa takes ~50 s
# for MANIQA's twenty ViT-B/8 crops of any image on 2 cores, ~25 s for TReS's fifty ResNet-50 crops (twice: it
# runs them flipped too), and `tres` has all the rows.
FEWER_ROWS = {'maniqa', 'maniqa-kadid', 'maniqa-pipal', 'tres-flive'}
# Metrics without the large row: ViT-L/14 on its 10,500 patches of 1920×1080 takes pyiqa ~10 min on 2 cores.
NO_LARGE = {'clipiqa+_vitL14_512'}
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def calibration_images():
    """The ten calibration images as 1×3×H×W tensors in [0,1]."""
    return [imread2tensor(str(CAL / kind / img), rgb=True).unsqueeze(0) for kind in ('ref', 'dist') for img in IMAGES]


def randomize_norms(module, gen):
    """Every BatchNorm/LayerNorm weight drawn from U(0.5, 1.5) and bias from N(0, 0.1)."""
    for m in module.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d, torch.nn.LayerNorm)) and m.weight is not None:
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)


@torch.no_grad()
def measure_bn(module, run, net=None):
    """BatchNorm running statistics of `module` measured by `run()` (forward passes over real images): cumulative
    averages, then rounded to float16 values. `module` runs in float64 meanwhile (every layer with parameters of
    `net`, the network `run` goes through, default `module`, casts its floating inputs to its own dtype), so that
    the statistics do not depend on the CPU's float32 kernels: float32 measurements differed in a few last bits
    between two machines, enough to move an fp16 rounding and, through ARNIQA's regressors, pyiqa's score by
    1e-4."""
    bns = [m for m in module.modules() if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d))]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    module.double()
    layers = [m for m in (net or module).modules() if any(True for _ in m.parameters(recurse=False))]
    hooks = [m.register_forward_pre_hook(_inputs_in_own_dtype) for m in layers]
    try:
        run()
    finally:
        for h in hooks:
            h.remove()
        module.float()
    for bn in bns:
        bn.eval()
        bn.running_mean.copy_(bn.running_mean.half().float())
        bn.running_var.copy_(bn.running_var.half().float())
        bn.num_batches_tracked.zero_()
    module.eval()


def _inputs_in_own_dtype(m, args):
    dtype = next(m.parameters(recurse=False)).dtype
    cast = lambda a: a.to(dtype) if torch.is_tensor(a) and a.is_floating_point() else a  # noqa: E731
    return tuple(cast(a) for a in args)


def imagenet(x):
    return (x - IMAGENET_MEAN) / IMAGENET_STD


def sd_params(net, drop=()):
    """pyiqa's training checkpoint format: {'params': state_dict}."""
    return {'params': {k: v for k, v in net.state_dict().items() if not k.startswith(drop)}}


# ---------------------------------------------------------------------------------------------------------------
# Families: each builds its random network(s) from a generator and returns {file name: object to torch.save}.

def cfanet_files(model_name, use_ref, **kwargs):
    def make(gen):
        from pyiqa.archs.topiq_arch import CFANet
        with no_pretrained():
            net = CFANet(semantic_model_name='resnet50', model_name=model_name, backbone_pretrain=False,
                         use_ref=use_ref, pretrained=False, **kwargs)
        randomize_norms(net, gen)
        # h_emb/w_emb are trunc-normal(0.02): too small to show a transposed position embedding.
        with torch.no_grad():
            net.h_emb.copy_(torch.randn(net.h_emb.shape, generator=gen))
            net.w_emb.copy_(torch.randn(net.w_emb.shape, generator=gen))
        measure_bn(net.semantic_model, lambda: [net.semantic_model(imagenet(x)) for x in calibration_images()])
        net.eval()
        return {pyiqa_url_name(model_name): sd_params(net)}
    return make


def pyiqa_url_name(model_name):
    from pyiqa.archs import topiq_arch
    return topiq_arch.default_model_urls[model_name].split('/')[-1]


def hyperiqa_files(gen):
    from pyiqa.archs.hypernet_arch import HyperNet
    with no_pretrained():
        net = HyperNet(pretrained=False)
    randomize_norms(net, gen)

    def run():
        for x in calibration_images():
            net.base_model(imagenet(TF.resize(x, [224, 224], antialias=False)))
    measure_bn(net.base_model, run)
    return {'HyperIQA-resnet50-koniq10k-c96c41b1.pth': sd_params(net)}


def cnniqa_files(gen):
    from pyiqa.archs.cnniqa_arch import CNNIQA
    net = CNNIQA(pretrained=None)
    return {'CNNIQA_koniq10k-e6f14c91.pth': sd_params(net)}


ARNIQA_REGRESSORS = {'koniq': 'regressor_koniq10k.pth', 'live': 'regressor_live.pth', 'csiq': 'regressor_csiq.pth',
                     'tid': 'regressor_tid2013.pth', 'kadid': 'regressor_kadid10k.pth', 'clive': 'regressor_clive.pth',
                     'flive': 'regressor_flive.pth', 'spaq': 'regressor_spaq.pth'}


def arniqa_files(gen):
    """ARNIQA.pth: the encoder, torchvision's ResNet-50 without its classifier as `nn.Sequential` of its children,
    as `model.*` (the official file's SimCLR projector, `projector.*`, is dropped by pyiqa); one TorchScript
    regressor (a linear layer on 4096 features) per dataset."""
    encoder = torch.nn.Sequential(*list(torchvision.models.resnet50(weights=None).children())[:-1])
    randomize_norms(encoder, gen)
    measure_bn(encoder, lambda: [encoder(imagenet(x)) for x in calibration_images()])
    sd = {f'model.{k}': v for k, v in encoder.state_dict().items()}
    projector = torch.nn.Sequential(torch.nn.Linear(2048, 2048), torch.nn.ReLU(), torch.nn.Linear(2048, 128))
    sd.update({f'projector.{k}': v for k, v in projector.state_dict().items()})
    files = {'ARNIQA.pth': sd}
    for name in ARNIQA_REGRESSORS.values():
        lin = torch.nn.Linear(4096, 1)
        with torch.no_grad():
            # Unit features give a score near the bias: spread the weights so that scores differ between images.
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=gen) * 2.0)
            lin.bias.copy_(torch.randn(lin.bias.shape, generator=gen) * 0.5)
        files[name] = torch.jit.script(lin.eval())
    return files


@contextlib.contextmanager
def loads_nothing(module):
    """pyiqa's `module.load_pretrained_network` does nothing while the random network is built (some
    constructors load their checkpoint unconditionally)."""
    saved = module.load_pretrained_network
    module.load_pretrained_network = lambda *args, **kwargs: None
    try:
        yield
    finally:
        module.load_pretrained_network = saved


def batch_of_calibration_images(size=None):
    """The ten calibration images as one batch (BatchNorm1d layers need more than one sample)."""
    return torch.cat(calibration_images())


def dbcnn_files(gen):
    """The whole network under `params`, and the S-CNN's own file (its features are the network's), which
    pyiqa's constructor loads first."""
    from pyiqa.archs import dbcnn_arch
    with no_pretrained(), loads_nothing(dbcnn_arch):
        net = dbcnn_arch.DBCNN(pretrained=False)
    randomize_norms(net, gen)
    measure_bn(net.features2, lambda: [net.features2(imagenet(x)) for x in calibration_images()])
    scnn = dbcnn_arch.SCNN()
    scnn.features.load_state_dict(net.features2.state_dict())
    return {'DBCNN_KonIQ10k-2de81c0a.pth': sd_params(net), 'DBCNN_scnn-7ea73d75.pth': scnn.state_dict()}


def paq2piq_files(gen):
    from pyiqa.archs import paq2piq_arch
    with no_pretrained():
        net = paq2piq_arch.PAQ2PIQ(pretrained=False)
    randomize_norms(net, gen)
    measure_bn(net, lambda: net(batch_of_calibration_images().double()))
    return {'P2P_RoIPoolModel-fit.10.bs.120-ca69882e.pth': net.state_dict()}


def unique_files(gen):
    from pyiqa.archs import unique_arch
    with no_pretrained(), loads_nothing(unique_arch):
        net = unique_arch.UNIQUE()
    randomize_norms(net, gen)
    measure_bn(net.backbone, lambda: [net(x) for x in calibration_images()], net)
    with torch.no_grad():
        # The default init (±1/512) on unit features gives scores of a few 1e-3: spread them.
        net.fc.weight.mul_(100.0)
    return {'UNIQUE.pt': net.state_dict()}


def metaiqa_files(gen):
    """A plain state dict with the head under `net.` (pyiqa renames `net.` to `head.` when it loads)."""
    from pyiqa.archs import metaiqa_arch
    net = metaiqa_arch.MetaIQA(pretrained=False)
    randomize_norms(net, gen)
    measure_bn(net, lambda: net(batch_of_calibration_images().double()))
    return {'Metaiqa_livec.pth': {k.replace('head.', 'net.', 1) if k.startswith('head.') else k: v
                                  for k, v in net.state_dict().items() if k not in ('mean', 'std')}}


def nima_vgg_files(gen):
    from pyiqa.archs.nima_arch import NIMA
    with no_pretrained():
        net = NIMA(base_model_name='vgg16', pretrained=False)
    return {'NIMA_VGG16_ava-dc4e8265.pth': sd_params(net)}


def nima_inception_files(gen):
    """One network per training set (AVA: ten classes; KonIQ, SPAQ: one), BatchNorm measured at 299×299."""
    from pyiqa.archs.nima_arch import NIMA
    files = {}
    for name, dataset, classes in [('NIMA_InceptionV2_ava-b0c77c00.pth', 'ava', 10),
                                   ('NIMA_koniq-250367ae.pth', 'koniq', 1), ('NIMA-spaq-46a7fcb7.pth', 'spaq', 1)]:
        with no_pretrained():
            net = NIMA(base_model_name='inception_resnet_v2', train_dataset=dataset, num_classes=classes,
                       pretrained=False)
        randomize_norms(net, gen)
        net.eval()  # preprocess resizes and crops in eval mode only
        measure_bn(net.base_model, lambda: [net.base_model(net.preprocess(x)) for x in calibration_images()])
        files[name] = sd_params(net)
    return files


def niqe_matlab_files(gen):
    """NIQE's pristine model as MATLAB's `niqe` ships it (`mu_prisparam` 1×36, `cov_prisparam` 36×36): the LIVE
    model of the shared weights folder (IQA_WEIGHTS_DIR, default ../shared/weights) moved at random, the covariance
    kept positive definite."""
    import numpy as np
    import scipy.io
    live = np.load(pyiqa_env.SHARED / 'niqe' / 'niqe_pris_params.npz')
    mu, cov = live['mu_pris_param'].ravel(), live['cov_pris_param']
    mu = mu * (1 + 0.3 * torch.randn(mu.shape, generator=gen, dtype=torch.float64).numpy())
    b = torch.randn(cov.shape, generator=gen, dtype=torch.float64).numpy() * np.sqrt(np.diag(cov).mean()) / 12
    buf = MatFile()
    scipy.io.savemat(buf, {'mu_prisparam': mu[None, :], 'cov_prisparam': cov + b @ b.T})
    return {'niqe_matlab_params.mat': buf}


def random_square_lumas(gen, per_image, smallest, largest):
    """`per_image` random square crops of each calibration image (sides smallest..largest−1, drawn from `gen`),
    as pyiqa's 0..255 luma (float32)."""
    from pyiqa.utils.color_util import to_y_channel
    for img in calibration_images():
        for _ in range(per_image):
            h, w = img.shape[-2:]
            side = int(torch.randint(smallest, largest, (1,), generator=gen))
            y = int(torch.randint(0, h - side, (1,), generator=gen))
            x = int(torch.randint(0, w - side, (1,), generator=gen))
            yield to_y_channel(img[..., y:y + side, x:x + side], 255.0)

def brisque_matlab_files(gen):
    """An SVR in the layout of MATLAB's BRISQUE model (`sv` k×36, `sv_coef` k×1): support vectors placed at the
    features (pyiqa's own `compute_nss_features`, two scales) of random crops of the calibration images, moved a
    little, with random coefficients; SVs far from every image's features would give every image the bias."""
    import scipy.io
    from pyiqa.archs.func_util import normalize_img_with_gauss
    from pyiqa.matlab_utils import imresize
    from pyiqa.matlab_utils.nss_feature import compute_nss_features
    feats = []
    for luma in random_square_lumas(gen, 6, 64, 200):
        f = []
        for _ in range(2):
            f.append(compute_nss_features(normalize_img_with_gauss(luma, 7, 7 / 6, padding='replicate')))
            luma = imresize(luma, scale=0.5, antialiasing=True)
        feats.append(torch.cat(f, dim=-1).double())
    sv = torch.cat(feats)
    sv = sv * (1 + 0.05 * torch.randn(sv.shape, generator=gen, dtype=torch.float64))
    sv_coef = torch.randn((sv.shape[0], 1), generator=gen, dtype=torch.float64) * 10
    buf = MatFile()
    scipy.io.savemat(buf, {'sv': sv.numpy(), 'sv_coef': sv_coef.numpy()})
    return {'brisque_matlab.mat': buf}


def stlpips_files(gen):
    """Both ST-LPIPS networks as plain state dicts (backbone `net.*`, lin layers `lin{k}.model.1.*`), the
    lin weights positive as trained ones are."""
    from pyiqa.archs.stlpips_arch import STLPIPS
    files = {}
    for net in ('alex', 'vgg'):
        model = STLPIPS(pretrained=False, net=net, variant='shift_tolerant')
        relu_init(model.net, gen)
        for lin in model.lins:
            with torch.no_grad():
                w = lin.model[-1].weight
                w.copy_(torch.rand(w.shape, generator=gen))
        files[f'{net}_shift_tolerant.pth'] = model.state_dict()
    return files


class MatFile:
    """A MAT-file written by scipy into memory, saved as bytes by write_checkpoints."""
    def __init__(self):
        import io
        self.io = io.BytesIO()

    def write(self, data):
        return self.io.write(data)

    def tell(self):
        return self.io.tell()

    def seek(self, *args):
        return self.io.seek(*args)


def relu_init(net, gen):
    """Every convolution and linear layer drawn He-normal (fan-in) with small biases: the default init shrinks
    activations layer after layer, which leaves deep plain CNNs with near-constant outputs."""
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            with torch.no_grad():
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * math.sqrt(2.0 / fan_in))
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.05)


def wadiqam_files(gen):
    """One network per mode: FR on KADID (`fc_*` on 3×512 features), NR on KonIQ (on 512), under `params`."""
    from pyiqa.archs.wadiqam_arch import WaDIQaM
    files = {}
    for name, mode in [('WaDIQaM-kadid-f7541ea5.pth', 'FR'), ('WaDIQaM-NR-koniq-aaffea29.pth', 'NR')]:
        net = WaDIQaM(metric_type=mode, pretrained=False)
        relu_init(net, gen)
        files[name] = sd_params(net)
    return files


def ckdn_files(gen):
    """The whole network as a plain state dict (`net.*`), and torchvision's ResNet-50 file that pyiqa's
    constructor loads first (then replaced by the checkpoint; iqa does not read it)."""
    from pyiqa.archs import ckdn_arch
    saved = ckdn_arch.load_state_dict_from_url
    ckdn_arch.load_state_dict_from_url = lambda *a, **k: torchvision.models.resnet50(weights=None).state_dict()
    try:
        net = ckdn_arch.CKDN(pretrained=False)
    finally:
        ckdn_arch.load_state_dict_from_url = saved
    randomize_norms(net, gen)

    def run():
        images = calibration_images()
        for dist, ref in zip(images[len(IMAGES):], images[:len(IMAGES)]):
            x, y = net._default_preprocess(dist, ref)
            n = net.net
            n.csp(n.qse_2(n.maxpool(n.qse_1(x))) - n.dte_2(n.maxpool(n.dte_1(y))))
    measure_bn(net.net, run)
    return {'CKDN_model_best-38b27dc6.pth': net.state_dict(),
            'resnet50-19c8e357.pth': placeholders(torchvision.models.resnet50(weights=None).state_dict())}


def placeholders(sd):
    """`sd` with every tensor stored as one broadcast zero (a small file that loads into the same shapes): for
    tensors that pyiqa loads and then replaces or never uses, and iqa never reads."""
    return {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in sd.items()}


def vgg19_file(gen):
    """torchvision's VGG-19 file (`features.*`, `classifier.*`) with random features; the classifier, which no
    metric reads, as placeholders."""
    net = torchvision.models.vgg19(weights=None)
    relu_init(net.features, gen)
    sd = net.state_dict()
    sd.update(placeholders({k: v for k, v in sd.items() if k.startswith('classifier.')}))
    return {'vgg19-dcbb9e9d.pth': sd}


def pieapp_files(gen):
    """A plain state dict (pyiqa loads it with no wrapper key)."""
    from pyiqa.archs.pieapp_arch import PieAPP
    net = PieAPP(pretrained=False)
    relu_init(net, gen)
    return {'PieAPPv0.1-0937b014.pth': net.state_dict()}


def nrqm_files(gen):
    """NRQM's model in the layout of its `NRQM_model.mat` (struct `model`: `linear` 4×1 and `rf`, a 1×3 cell of
    randomforest-matlab regression forests over the DCT, GSM and SVD features, whose fields pyiqa reads by
    position: 0 lDau, 1 rDau, 4 upper (threshold), 5 avnode (prediction), 6 mbest (1-based feature)). Random
    trees of depth 4 whose thresholds lie between the features pyiqa computes on crops of the calibration images,
    so that different images take different paths; leaves predict 0..10."""
    import numpy as np
    import scipy.io
    from pyiqa.archs import nrqm_arch as A
    feats = [[], [], []]
    for luma in random_square_lumas(gen, 3, 100, 240):
        luma = luma.double()
        pyr = A.get_gauss_pyramid(luma / 255.0)
        feats[0].append(torch.cat([A.block_dct(im) for im in pyr], dim=1))
        feats[1].append(A.global_gsm(luma))
        cols = [torch.linalg.svd(A.im2col(im, 5, 'distinct'), full_matrices=False)[1] for im in pyr]
        feats[2].append(torch.cat(cols, dim=1))
    nodes, trees = 31, 8
    forests = np.empty((1, 3), dtype=object)
    for f, samples in enumerate(feats):
        samples = torch.cat(samples).numpy()  # images × features
        fields = {k: np.zeros((nodes, trees), dtype=t) for k, t in (
            ('lDau', np.int32), ('rDau', np.int32), ('nodestatus', np.int32), ('nrnodes', np.int32),
            ('upper', np.float64), ('avnode', np.float64), ('mbest', np.int32))}
        for t in range(trees):
            for k in range(nodes):
                if 2 * k + 2 < nodes:  # a full binary tree in breadth-first order: children 2k+1, 2k+2 (0-based)
                    col = int(torch.randint(0, samples.shape[1], (1,), generator=gen))
                    a, b = torch.randint(0, samples.shape[0], (2,), generator=gen).tolist()
                    fields['lDau'][k, t], fields['rDau'][k, t] = 2 * k + 2, 2 * k + 3
                    fields['nodestatus'][k, t] = -3
                    fields['mbest'][k, t] = col + 1
                    fields['upper'][k, t] = (samples[a, col] + samples[b, col]) / 2
                else:
                    fields['nodestatus'][k, t] = -1
                fields['avnode'][k, t] = 10 * float(torch.rand((1,), generator=gen, dtype=torch.float64))
        fields['nrnodes'][:] = nodes
        forests[0, f] = fields
    linear = np.array([[0.5], [0.4], [0.35], [0.3]]) * (1 + 0.2 * torch.randn((4, 1), generator=gen,
                                                                               dtype=torch.float64).numpy())
    buf = MatFile()
    scipy.io.savemat(buf, {'model': {'linear': linear, 'rf': forests}})
    return {'NRQM_model.mat': buf}


CLIP_RN50 = dict(embed_dim=1024, image_resolution=224, vision_layers=(3, 4, 6, 3), vision_width=64,
                 vision_patch_size=None, context_length=77, vocab_size=49408, transformer_width=512,
                 transformer_heads=8, transformer_layers=12)


def random_clip(config, gen):
    """A CLIP model with random weights, BatchNorm measured on the calibration images (ImageNet-normalised, close
    enough to CLIP's statistics), and a spread-out text embedding so that prompts differ."""
    from pyiqa.archs import clip_model as C
    model = C.CLIP(**config).eval()
    randomize_norms(model, gen)
    with torch.no_grad():
        model.token_embedding.weight.normal_(0, 0.5, generator=gen)
    if isinstance(model.visual, C.ModifiedResNet):
        measure_bn(model.visual, lambda: [model.visual(imagenet(x)) for x in calibration_images()])
    return model


def clip_archive(config, gen, shared_direction=False):
    """A random CLIP model (`random_clip`) in the format of OpenAI's release (what pyiqa's `clip_model.load`
    reads): a traced TorchScript archive whose convolution, linear, attention and projection tensors are float16
    (OpenAI's `convert_weights`), the rest float32. With `shared_direction`, image and text embeddings share a
    component (as trained ones do), so that their cosines are positive and differ between pairs: the final
    LayerNorms' biases moved by 1 and mapped by each projection onto one common direction."""
    from pyiqa.archs import clip_model as C
    model = random_clip(config, gen)
    if shared_direction:
        with torch.no_grad():
            common = model.text_projection.mean(0)
            common /= common.norm()
            for bias, proj in ((model.visual.ln_post.bias, model.visual.proj),
                               (model.ln_final.bias, model.text_projection)):
                bias.add_(1.0)
                proj.add_(torch.outer(bias, common) * proj.norm() / bias.norm() ** 2)
    side = config['image_resolution']
    text = torch.zeros(2, config['context_length'], dtype=torch.long)
    text[:, 0], text[:, 1], text[:, 2] = 49406, 320, 49407
    traced = torch.jit.trace(model, (torch.rand(1, 3, side, side), text), check_trace=False)
    fp16 = C.CLIP(**config)
    C.convert_weights(fp16)
    halves = {k for k, v in fp16.state_dict().items() if v.dtype == torch.float16}
    for k, p in traced.named_parameters():
        if k in halves:
            p.data = p.data.half()
    return model, traced


CLIP_VITL14 = dict(embed_dim=768, image_resolution=224, vision_layers=24, vision_width=1024, vision_patch_size=14,
                   context_length=77, vocab_size=49408, transformer_width=768, transformer_heads=12,
                   transformer_layers=12)


def prompt_learner_params(model, gen):
    """CLIP-IQA+'s prompt learner for `model` (`perturbed_prompt_learner`)."""
    from pyiqa.archs.clipiqa_arch import PromptLearner
    return perturbed_prompt_learner(PromptLearner(model), gen)


def perturbed_prompt_learner(learner, gen):
    """A prompt learner with random context, under `params` as pyiqa's CLIPIQA and QualiCLIP save it; its SOS and
    class/EOS embeddings perturbed, so that only reading them from the file gives pyiqa's score."""
    with torch.no_grad():
        learner.ctx.copy_(torch.randn(learner.ctx.shape, generator=gen) * 0.5)
        learner.token_prefix.add_(torch.randn(learner.token_prefix.shape, generator=gen) * 0.1)
        learner.token_suffix.add_(torch.randn(learner.token_suffix.shape, generator=gen) * 0.1)
    return {'params': {f'prompt_learner.{k}': v for k, v in learner.state_dict().items()}}


# QualiCLIP's antonym prompts (pyiqa's `QualiCLIP.prompt_pairs`, which its PromptLearner takes as an argument).
QUALICLIP_PROMPTS = ['Good photo.', 'Bad photo.', 'Sharp image.', 'Blurry image.', 'Sharp edges.', 'Blurry edges.',
                     'High-resolution image.', 'Low-resolution image.', 'Noise-free image.', 'Noisy image.',
                     'High-quality image.', 'Low-quality image.', 'Good picture.', 'Bad picture.']


def clip_vitl14_files(gen):
    """OpenAI's ViT-L/14 CLIP archive (`clipiqa+_vitL14_512`, `laion_aes`); `clipiqa+_vitL14_512`'s prompt
    learner; LAION's aesthetic MLP as a plain state dict (`layers.{0,2,4,6,7}`), its weights spread so that
    the scores of unit-norm embeddings differ between images."""
    from pyiqa.archs import clipiqa_arch, laion_aes_arch
    name = {k: url.split('/')[-1] for k, url in clipiqa_arch.default_model_urls.items()}
    model, archive = clip_archive(CLIP_VITL14, gen)
    model.float()
    mlp = laion_aes_arch.MLP(768)
    with torch.no_grad():
        for layer in mlp.layers:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.normal_(0, 2.0 / layer.in_features ** 0.5, generator=gen)
                layer.bias.normal_(0, 0.1, generator=gen)
    return {'ViT-L-14.pt': archive, name['clipiqa+_vitL14_512']: prompt_learner_params(model, gen),
            laion_aes_arch.default_model_urls['url'].split('/')[-1]: mlp.state_dict()}


def clipiqa_files(gen):
    """OpenAI's RN50 CLIP archive (`clipiqa`, and what pyiqa's QualiCLIP loads first); CLIP-IQA+'s learned
    context (a bare 2×16×512 tensor, as `torch.load` gives pyiqa); `clipiqa+_rn50_512`'s prompt learner;
    QualiCLIP's own RN50 (`clip_model.*`, plain, float32) with its stored text features (`prompts_features`,
    14 unit rows), and one QualiCLIP+ prompt learner per dataset (14 prompts, 16 context vectors each)."""
    from pyiqa.archs import clipiqa_arch, qualiclip_arch
    name = {k: url.split('/')[-1] for k, url in clipiqa_arch.default_model_urls.items()}  # '+' is '%2B'
    model, archive = clip_archive(CLIP_RN50, gen)
    model.float()
    ctx = torch.randn((2, 16, 512), generator=gen) * 0.5
    files = {'RN50.pt': archive, name['clipiqa+']: ctx, name['clipiqa+_rn50_512']: prompt_learner_params(model, gen)}
    quali = random_clip(CLIP_RN50, gen)
    features = torch.randn((14, 1024), generator=gen)
    sd = {f'clip_model.{k}': v for k, v in quali.state_dict().items()}
    sd['prompts_features'] = features / features.norm(dim=-1, keepdim=True)
    files['QualiCLIP.pth'] = sd
    for variant, url in qualiclip_arch.default_model_urls.items():
        if variant == 'qualiclip':
            continue
        learner = qualiclip_arch.PromptLearner(quali, QUALICLIP_PROMPTS, n_ctx=16, prompt_specific_ctx=True)
        files[url.split('/')[-1]] = perturbed_prompt_learner(learner, gen)
    return files


CLIP_VITB32 = dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32,
                   context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8,
                   transformer_layers=12)


def liqe_files(gen):
    """OpenAI's ViT-B/32 archive (`clipscore`; pyiqa builds LIQE from it first), and LIQE's two files: each a whole
    fine-tuned CLIP under `params.clip_model.`, which replaces every tensor of OpenAI's, in OpenAI's mixed
    float16/float32 layout (LIQE trained its CLIP as `clip.load` gives it on a GPU, where it stays float16)."""
    from pyiqa.archs import clip_model as C
    _, archive = clip_archive(CLIP_VITB32, gen, shared_direction=True)
    files = {'ViT-B-32.pt': archive}
    for name in ('liqe_koniq.pt', 'liqe_mix.pt'):
        model = random_clip(CLIP_VITB32, gen)
        C.convert_weights(model)
        files[name] = {'params': {f'clip_model.{k}': v for k, v in model.state_dict().items()}}
    return files


def musiq_files(gen):
    """MUSIQ's four checkpoints: plain state dicts, the AVA one with a ten-class head. GroupNorm affines and the
    class token are drawn like the other norms, and the hashed spatial and scale embeddings at the size of the
    patch embeddings (N(0, 0.5) rather than N(0, 0.02)), so that a wrong position or scale index moves the
    score."""
    from pyiqa.archs import musiq_arch
    files = {}
    for key, classes in (('koniq', 1), ('ava', 10), ('paq2piq', 1), ('spaq', 1)):
        net = musiq_arch.MUSIQ(pretrained=False, num_class=classes)
        randomize_norms(net, gen)
        enc = net.transformer_encoder
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, torch.nn.GroupNorm):
                    m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            for p in (enc.posembed_input.position_emb, enc.scaleembed_input.scale_emb, enc.cls):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        url = musiq_arch.default_model_urls['koniq10k' if key == 'koniq' else key]
        files[url.split('/')[-1]] = net.state_dict()
    return files


def maniqa_files(gen):
    """MANIQA's three checkpoints: plain state dicts of the whole network (timm's ViT-B/8 under `vit.`)."""
    from pyiqa.archs import maniqa_arch
    files = {}
    for key in ('koniq', 'kadid', 'pipal'):
        with no_pretrained():
            net = maniqa_arch.MANIQA(pretrained=False, train_dataset=key)
        randomize_norms(net, gen)
        with torch.no_grad():
            for m in net.modules():
                table = getattr(m, 'relative_position_bias_table', None)
                if table is not None:
                    table.copy_(torch.randn(table.shape, generator=gen))
            # Most patch scores are 0 after the head's last ReLU at the default init: lift them.
            net.fc_score[3].bias.fill_(0.3)
        files[maniqa_arch.default_model_urls[key].split('/')[-1]] = net.state_dict()
    return files


def tres_files(gen):
    """TReS's two checkpoints: plain state dicts, torchvision's ResNet-50 under `model.` with BatchNorm statistics
    measured on 224×224 crops of the calibration images."""
    from pyiqa.archs import tres_arch
    files = {}
    for key in ('koniq', 'flive'):
        with no_pretrained():
            net = tres_arch.TReS(pretrained=False, train_dataset=key)
        randomize_norms(net, gen)
        crops = [imagenet(x)[..., :224, :224] for x in calibration_images()]
        measure_bn(net.model, lambda: [net.model(c) for c in crops])
        files[tres_arch.default_model_urls[key].split('/')[-1]] = net.state_dict()
    return files


# name -> (family, pyiqa kwargs). A family makes every file of its names at once.
FAMILIES = {
    'topiq_nr': cfanet_files('cfanet_nr_koniq_res50', False),
    'topiq_nr-flive': cfanet_files('cfanet_nr_flive_res50', False),
    'topiq_nr-spaq': cfanet_files('cfanet_nr_spaq_res50', False),
    'topiq_fr': cfanet_files('cfanet_fr_kadid_res50', True),
    'topiq_fr-pipal': cfanet_files('cfanet_fr_pipal_res50', True),
    'topiq_iaa_res50': cfanet_files('cfanet_iaa_ava_res50', False, inter_dim=512, num_heads=8, num_class=10),
    'hyperiqa': hyperiqa_files,
    'cnniqa': cnniqa_files,
    'arniqa': arniqa_files,
    'dbcnn': dbcnn_files,
    'paq2piq': paq2piq_files,
    'unique': unique_files,
    'metaiqa': metaiqa_files,
    'nima-vgg16-ava': nima_vgg_files,
    'nima': nima_inception_files,
    'niqe_matlab': niqe_matlab_files,
    'wadiqam': wadiqam_files,
    'ckdn': ckdn_files,
    'deepdc': vgg19_file,
    'pieapp': pieapp_files,
    'brisque_matlab': brisque_matlab_files,
    'stlpips': stlpips_files,
    'nrqm': nrqm_files,
    'clipiqa': clipiqa_files,
    'clip_vitl14': clip_vitl14_files,
    'liqe': liqe_files,
    'musiq': musiq_files,
    'maniqa': maniqa_files,
    'tres': tres_files,
}


def write_checkpoints(out, only=None):
    """Every family's files (or those of the families named in `only`) into `out`, each family seeded from SEED
    and its place in FAMILIES, so that a family's files are the same whichever others are written."""
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for i, (family, make) in enumerate(FAMILIES.items()):
        if only and family not in only:
            continue
        torch.manual_seed(SEED + i)
        gen = torch.Generator().manual_seed(SEED + 1000 + i)
        torch.set_num_threads(1)
        t0 = time.time()
        for name, obj in make(gen).items():
            path = out / name
            tmp = path.with_suffix('.tmp')
            if isinstance(obj, torch.jit.ScriptModule):
                obj.save(str(tmp))
            elif isinstance(obj, MatFile):
                tmp.write_bytes(obj.io.getvalue())
            else:
                torch.save(obj, tmp)
            tmp.replace(path)
            written[name] = path
        print(f'{family}: {time.time() - t0:.1f} s', file=sys.stderr)
    return written


def install_for_pyiqa(files):
    """The files where pyiqa's own loaders look: its cache folder and torch.hub's checkpoints folder."""
    hub = pathlib.Path(torch.hub.get_dir())
    for d in (pathlib.Path(pyiqa_dl.DEFAULT_CACHE_DIR), hub / 'checkpoints'):
        d.mkdir(parents=True, exist_ok=True)
        for name, path in files.items():
            shutil.copyfile(path, d / name)
        pyiqa_env.metric_kwargs('niqe', d)  # pi's NIQE half loads the LIVE model from pyiqa's cache


REFUSED = float('nan')


def score(metric, *inputs, **kwargs):
    try:
        return metric(*inputs, **kwargs).item()
    except Exception as e:
        print(f'  refused: {type(e).__name__}: {str(e).splitlines()[0][:160]}', file=sys.stderr)
        return REFUSED


def gray(path):
    return TF.to_tensor(Image.open(path).convert('L').convert('RGB')).unsqueeze(0)


def large(t):
    nx, ny, w, h = LARGE
    return t.repeat(1, 1, ny, nx)[..., :h, :w].contiguous()


def captions():
    """The caption of each calibration image for captioned metrics (clipscore), shared with tests/zoo.rs."""
    with (ROOT / 'tests' / 'data' / 'zoo_captions.csv').open() as f:
        return {r['image']: r['caption'] for r in csv.DictReader(f)}


def metric_rows(name, metric):
    fr = metric.metric_mode == 'FR'
    rows = []
    for img in IMAGES:
        pair = (lambda d, r: (d, r)) if fr else (lambda d, r: (d,))
        kw = {'caption_list': [captions()[img]]} if name in CAPTIONED else {}
        dist, ref = CAL / 'dist' / img, CAL / 'ref' / img
        rows.append((img, 'file', score(metric, *pair(str(dist), str(ref)), **kw)))
        if img in GRAY:
            rows.append((img, 'gray', score(metric, *pair(gray(dist), gray(ref)), **kw)))
        d = imread2tensor(str(dist), rgb=True).unsqueeze(0)
        r = imread2tensor(str(ref), rgb=True).unsqueeze(0)
        for x, y, w, h in CROPS if name not in FEWER_ROWS or img == 'I03.bmp' else ():
            crop = lambda t: t[..., y:y + h, x:x + w].contiguous()  # noqa: E731
            rows.append((img, f'crop {x} {y} {w} {h}', score(metric, *pair(crop(d), crop(r)), **kw)))
        if img == 'I03.bmp' and name not in NO_LARGE:
            rows.append((img, 'tile {} {} {} {}'.format(*LARGE), score(metric, *pair(large(d), large(r)), **kw)))
    for img, region, s in rows:
        if math.isnan(s) and region.split(' ')[0] in ('file', 'gray'):
            raise RuntimeError(f'{name} {img} {region}: pyiqa failed')
    scores = [s for _, g, s in rows if g == 'file']
    if max(scores) - min(scores) < 1e-3 * max(abs(s) for s in scores):
        raise RuntimeError(f'{name}: near-constant scores on random weights {scores}: they prove little')
    return rows


def main():
    assert pyiqa.__version__ == '0.1.16', pyiqa.__version__
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--checkpoints', type=pathlib.Path, help='only write the random checkpoints into this folder')
    ap.add_argument('--only', help='only these families\' checkpoints (comma-separated, e.g. cnniqa,arniqa)')
    ap.add_argument('metrics', nargs='*')
    args = ap.parse_args()
    only = set(args.only.split(',')) if args.only else None
    if only and not only <= set(FAMILIES):
        sys.exit(f'unknown families {sorted(only - set(FAMILIES))}; known: {list(FAMILIES)}')
    if args.checkpoints:
        write_checkpoints(args.checkpoints, only)
        return
    names = args.metrics or list(METRICS)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        sys.exit(f'unknown metrics {unknown}; known: {list(METRICS)}')
    files = write_checkpoints(WEIGHTS, only)
    install_for_pyiqa(files)
    existing = []
    if OUT.exists():
        with OUT.open() as f:
            existing = list(csv.DictReader(f))
    rows = [r for r in existing if r['metric'] not in names]
    torch.set_num_threads(2)
    for name in names:
        t0 = time.time()
        pyiqa_name, kwargs = name, METRICS[name]
        with cuda_as_cpu() if name in CUDA_ONLY else contextlib.nullcontext():
            with no_pretrained():
                metric = pyiqa.create_metric(pyiqa_name, device='cpu', **kwargs)
            new = metric_rows(name, metric)
        rows += [{'metric': name, 'image': i, 'region': g, 'score': repr(s)} for i, g, s in new]
        print(f'{name}: {len(new)} rows, {time.time() - t0:.1f} s', [s for _, g, s in new if g == 'file'])
    order = {name: i for i, name in enumerate(METRICS)}
    rows.sort(key=lambda r: order.get(r['metric'], len(order)))
    write_rows(OUT, rows)


if __name__ == '__main__':
    main()
