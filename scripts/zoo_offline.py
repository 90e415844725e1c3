"""pyiqa's zoo networks built offline, and the built-in zoo metrics' pyiqa options.

pyiqa's zoo networks built offline: pyiqa's constructors ask timm and torchvision for ImageNet weights
(`pretrained=True`, `weights=...`) before they load their own checkpoint, which replaces every tensor. Inside
`no_pretrained()` those builders make the same networks without downloading anything. Imported by
scripts/make_zoo_references.py and by scripts/benchmark.py's pyiqa children (nothing else: importing it changes
no environment variable)."""
import contextlib

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
}

TORCHVISION_BUILDERS = ('resnet18', 'resnet34', 'resnet50', 'vgg16')


@contextlib.contextmanager
def no_pretrained():
    import timm  # here, not at the top: the benchmark's parent process reads PYIQA_KWARGS without torch
    import torchvision

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
    try:
        yield
    finally:
        timm.create_model = create
        for name, ctor in tv.items():
            setattr(torchvision.models, name, ctor)
