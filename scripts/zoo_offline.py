"""pyiqa's zoo networks built offline, and the built-in zoo metrics' pyiqa options.

pyiqa's zoo networks built offline: pyiqa's constructors ask timm and torchvision for ImageNet weights
(`pretrained=True`, `weights=...`) before they load their own checkpoint, which replaces every tensor. Inside
`no_pretrained()` those builders make the same networks without downloading anything. Imported by
scripts/make_zoo_references.py and by scripts/benchmark.py's pyiqa children (nothing else: importing it changes
no environment variable)."""
import contextlib
import sys
import types

try:
    import pkg_resources  # noqa: F401
except ModuleNotFoundError:
    # OpenAI's clip package (pyiqa's CLIP tokenizer) takes `packaging` from pkg_resources, which setuptools >= 81
    # no longer has: a stand-in with just that, before anything imports clip.
    import packaging.version
    sys.modules['pkg_resources'] = types.SimpleNamespace(packaging=packaging)

# Every built-in zoo metric (iqa's name = pyiqa's) and the create_metric options pyiqa needs to build it offline.
PYIQA_KWARGS = {
    'topiq_nr': {'backbone_pretrain': False},
    'topiq_nr-flive': {'backbone_pretrain': False},
    'topiq_nr-spaq': {'backbone_pretrain': False},
    'topiq_fr': {'backbone_pretrain': False},
    'topiq_fr-pipal': {'backbone_pretrain': False},
    'topiq_iaa_res50': {'backbone_pretrain': False},
    'hyperiqa': {},
    'cnniqa': {},
    **{name: {} for name in ('arniqa', 'arniqa-live', 'arniqa-csiq', 'arniqa-tid', 'arniqa-kadid', 'arniqa-clive',
                             'arniqa-flive', 'arniqa-spaq')},
    'dbcnn': {},
    'paq2piq': {},
    'unique': {},
    'metaiqa': {},
    'nima-vgg16-ava': {},
    'nima': {},
    'nima-koniq': {},
    'nima-spaq': {},
    'niqe_matlab': {},
    'wadiqam_fr': {},
    'wadiqam_nr': {},
    'ckdn': {},
    'deepdc': {},
    'pieapp': {},
    'brisque_matlab': {},
    'stlpips': {},
    'stlpips-vgg': {},
    'nrqm': {},
    'pi': {},
    'clipiqa': {},
    'clipiqa+': {},
    'clipiqa+_rn50_512': {},
    'clipiqa+_vitL14_512': {},
    'laion_aes': {},
    'qualiclip': {},
    'qualiclip+': {},
    'qualiclip+-clive': {},
    'qualiclip+-flive': {},
    'qualiclip+-spaq': {},
    'liqe': {},
    'liqe_mix': {},
    'maclip': {},
    'clipscore': {},
    'musiq': {},
    'musiq-ava': {},
    'musiq-paq2piq': {},
    'musiq-spaq': {},
    'maniqa': {},
    'maniqa-kadid': {},
    'maniqa-pipal': {},
    'tres': {},
    'tres-flive': {},
}

TORCHVISION_BUILDERS = ('resnet18', 'resnet34', 'resnet50', 'vgg16')


def clip_file(url, root):
    """OpenAI's CLIP loaders (pyiqa's `clip_model` and the `clip` package) take an archive from `root` if its
    sha256 is the one in the URL, and download it otherwise. The random archive is taken from torch hub's `clip`
    or `checkpoints` folder as it is."""
    import pathlib
    import torch
    name = url.split('/')[-1]
    hub = pathlib.Path(torch.hub.get_dir())
    for d in (hub / 'clip', hub / 'checkpoints'):
        if (d / name).is_file():
            return str(d / name)
    raise RuntimeError(f'{name} is not in {hub / "clip"}, and downloads are off')


# pyiqa's code for these moves the model and the images to CUDA by name.
CUDA_ONLY = {'maclip'}


@contextlib.contextmanager
def cuda_as_cpu():
    """On a machine without a GPU, pyiqa's MACLIP with its moves to CUDA (its CLIP loaded for 'cuda', `.cuda()`
    and `.to('cuda')` on the images) kept on the CPU; nothing else changes."""
    import torch
    from pyiqa.archs import clip_model, maclip_arch
    if torch.cuda.is_available():
        yield
        return
    saved = maclip_arch.load, torch.Tensor.cuda, torch.Tensor.to
    to = torch.Tensor.to
    maclip_arch.load = lambda name, device='cpu', *args, **kwargs: clip_model.load(name, 'cpu', *args, **kwargs)
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    torch.Tensor.to = lambda self, *args, **kwargs: to(self, *('cpu' if a == 'cuda' else a for a in args), **kwargs)
    try:
        yield
    finally:
        maclip_arch.load, torch.Tensor.cuda, torch.Tensor.to = saved


@contextlib.contextmanager
def no_pretrained():
    import timm  # here, not at the top: the benchmark's parent process reads PYIQA_KWARGS without torch
    import torchvision
    from pyiqa.archs import clip_model
    try:
        import clip.clip
    except ImportError:  # no OpenAI clip package (a GPU machine without the bundle's copy): pyiqa's CLIP metrics fail
        clip = None

    create = timm.create_model
    tv = {name: getattr(torchvision.models, name) for name in TORCHVISION_BUILDERS}

    def timm_create(*args, **kwargs):
        kwargs['pretrained'] = False
        return create(*args, **kwargs)

    def tv_wrap(ctor):
        def build(*args, **kwargs):
            kwargs.pop('weights', None)
            kwargs.pop('pretrained', None)
            return ctor(*args, weights=None, **kwargs)
        return build

    timm.create_model = timm_create
    for name, ctor in tv.items():
        setattr(torchvision.models, name, tv_wrap(ctor))
    packages = [clip_model] + [clip.clip] * (clip is not None)
    downloads = [p._download for p in packages]
    for p in packages:
        p._download = clip_file
    try:
        yield
    finally:
        for p, d in zip(packages, downloads):
            p._download = d
        timm.create_model = create
        for name, ctor in tv.items():
            setattr(torchvision.models, name, ctor)
