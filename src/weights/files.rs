//! Every pretrained file iqa knows, with where to download it and its checksum.
//!
//! Sources and checksums: /work/shared/weights/PROVENANCE.md (the shared folder's `.pth`/`.pt` copies are
//! byte-identical to pyiqa's release assets, whose full sha256 are listed there) and pyiqa 0.1.16's
//! `archs/{lpips,dists,niqe,brisque}_arch.py` for the official names. The alternative names are the files of the
//! shared folder; with `IQA_WEIGHTS_DIR` pointing at it (as it is: lpips/, backbones/, dists/, ...) every entry
//! resolves without a download.
//!
//! Key names, so callers know what [`super::load`] returns:
//! - LPIPS: `lin{k}.model.1.weight`, (1, C_k, 1, 1), no bias.
//! - DISTS: `alpha`, `beta`, (1, 1475, 1, 1).
//! - Torchvision backbones: `features.N.{weight,bias}` (the official files also hold `classifier.*`; the shared
//!   AlexNet/VGG16 copies hold the features only, the SqueezeNet copy also `classifier.1.*`).
//! - NIQE, BRISQUE, IL-NIQE: the official files and the shared copies differ in format and key names, see each
//!   entry; `renames` maps the official keys to iqa's.
//!
//! `builtin` points at the copies built into the library (data/builtin/): the LPIPS v0.1 layers, DISTS, NIQE,
//! BRISQUE and IL-NIQE.
use super::{builtin, WeightFile};

/// pyiqa's release assets (the `github` store of pyiqa's `get_url_from_name`).
macro_rules! pyiqa_release {
    ($name:literal) => {
        concat!("https://github.com/chaofengc/IQA-PyTorch/releases/download/v0.1-weights/", $name)
    };
}

/// pyiqa 0.1.16's default store (`hf_hub_url(repo_id='chaofengc/IQA-PyTorch-Weights', filename=name)`).
macro_rules! pyiqa_hf {
    ($name:literal) => {
        concat!("https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/", $name)
    };
}

macro_rules! lpips_file {
    ($ident:ident, $ver:literal, $net:literal, $sha8:literal, $sha:literal, $builtin:expr) => {
        #[doc = concat!("LPIPS v", $ver, " ", $net, " linear layers (`lin{k}.model.1.weight`, (1, C_k, 1, 1)).")]
        pub const $ident: WeightFile = WeightFile {
            official_name: concat!("LPIPS_v", $ver, "_", $net, "-", $sha8, ".pth"),
            alternative_names: &[
                concat!("lpips_v", $ver, "_", $net, "_lin.safetensors"),
                concat!("lpips_v", $ver, "_", $net, "_lin.pth"),
            ],
            url: concat!(
                "https://github.com/chaofengc/IQA-PyTorch/releases/download/v0.1-weights/LPIPS_v",
                $ver,
                "_",
                $net,
                "-",
                $sha8,
                ".pth"
            ),
            sha256: $sha,
            builtin: $builtin,
            renames: &[],
        };
    };
}

lpips_file!(
    LPIPS_V0_0_ALEX,
    "0.0",
    "alex",
    "18720f55",
    "18720f55913d0af89042f13faa7e536a6ce1444a0914e6db9461355ece1e8cd5",
    &[]
);
lpips_file!(
    LPIPS_V0_0_VGG,
    "0.0",
    "vgg",
    "b9e42362",
    "b9e4236260c3dd988fc79d2a48d645d885afcbb21f9fd595e6744cf7419b582c",
    &[]
);
lpips_file!(
    LPIPS_V0_0_SQUEEZE,
    "0.0",
    "squeeze",
    "c27abd3a",
    "c27abd3a0145541baa50990817df58d3759c3f8154949f42af3b59b4e042d0bf",
    &[]
);
lpips_file!(
    LPIPS_V0_1_ALEX,
    "0.1",
    "alex",
    "df73285e",
    "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
    &[builtin::LPIPS_V0_1_ALEX]
);
lpips_file!(
    LPIPS_V0_1_VGG,
    "0.1",
    "vgg",
    "a78928a0",
    "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
    &[builtin::LPIPS_V0_1_VGG]
);
lpips_file!(
    LPIPS_V0_1_SQUEEZE,
    "0.1",
    "squeeze",
    "4a5350f2",
    "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76",
    &[builtin::LPIPS_V0_1_SQUEEZE]
);

/// DISTS `alpha`, `beta`, each (1, 1475, 1, 1) float32 (dingkeyan93/DISTS `weights.pt`).
pub const DISTS_ALPHA_BETA: WeightFile = WeightFile {
    official_name: "DISTS_weights-f5e65c96.pth",
    alternative_names: &["dists_alpha_beta.safetensors", "dists_alpha_beta.pt"],
    url: pyiqa_release!("DISTS_weights-f5e65c96.pth"),
    sha256: "f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218",
    builtin: &[builtin::DISTS_ALPHA_BETA],
    renames: &[],
};

/// Torchvision AlexNet IMAGENET1K_V1 (LPIPS-alex backbone): `features.{0,3,6,8,10}.{weight,bias}`.
pub const ALEXNET: WeightFile = WeightFile {
    official_name: "alexnet-owt-7be5be79.pth",
    alternative_names: &["alexnet_features_torchvision.safetensors"],
    url: "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    sha256: "7be5be79",
    builtin: &[],
    renames: &[],
};

/// Torchvision VGG16 IMAGENET1K_V1 (LPIPS-vgg and DISTS backbone): `features.{0,2,5,...,28}.{weight,bias}`.
pub const VGG16: WeightFile = WeightFile {
    official_name: "vgg16-397923af.pth",
    alternative_names: &["vgg16_features_torchvision.safetensors"],
    url: "https://download.pytorch.org/models/vgg16-397923af.pth",
    sha256: "397923af",
    builtin: &[],
    renames: &[],
};

/// Torchvision VGG19 IMAGENET1K_V1 (DeepDC's backbone): `features.{0,2,5,...,34}.{weight,bias}` (the classifier
/// is not read). Not in the shared folder: found in torch hub's cache as torchvision leaves it, or downloaded.
pub const VGG19: WeightFile = WeightFile {
    official_name: "vgg19-dcbb9e9d.pth",
    alternative_names: &[],
    url: "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    sha256: "dcbb9e9d",
    builtin: &[],
    renames: &[],
};

/// Torchvision SqueezeNet 1.1 IMAGENET1K_V1 (LPIPS-squeeze backbone). The shared copy
/// (`squeezenet1_1_torchvision_fp16rounded.safetensors`) has its conv weights rounded to fp16 (PROVENANCE.md);
/// it is the only copy that was found, so it is the alternative.
pub const SQUEEZENET1_1: WeightFile = WeightFile {
    official_name: "squeezenet1_1-b8a52dc0.pth",
    alternative_names: &["squeezenet1_1_torchvision_fp16rounded.safetensors"],
    url: "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth",
    sha256: "b8a52dc0",
    builtin: &[],
    renames: &[],
};

/// NIQE pristine model (LIVE `modelparameters.mat`), pyiqa's `niqe` (version 'original'): F64 `mu_pris_param`
/// (36,), `cov_pris_param` (36, 36) (the built-in copy also holds the 7×7 `gaussian_window`). The official
/// `.mat` names them `mu_prisparam` (1, 36) and `cov_prisparam`. No checksum of pyiqa's asset is published or
/// verified, so it is never downloaded (`sha256` is empty): the built-in copy serves.
pub const NIQE_PARAMS: WeightFile = WeightFile {
    official_name: "niqe_modelparameters.mat",
    alternative_names: &["niqe_pris_params.safetensors"],
    url: pyiqa_hf!("niqe_modelparameters.mat"),
    sha256: "",
    builtin: &[builtin::NIQE_PRISTINE],
    renames: &[("mu_prisparam", "mu_pris_param"), ("cov_prisparam", "cov_pris_param")],
};

/// BRISQUE LIVE SVR model, pyiqa's `brisque` (version 'original'): F64 `sv_coef` (774), `sv` (774, 36) (the
/// built-in copy also holds `feature_min`, `feature_max`, `scale_lower_upper`, `gamma`, `rho`). The official
/// file is `torch.save((sv_coef, sv))`, a tuple, which loads as keys `0` and `1`. No checksum of pyiqa's asset
/// is published or verified, so it is never downloaded (`sha256` is empty): the built-in copy serves.
pub const BRISQUE_SVM: WeightFile = WeightFile {
    official_name: "brisque_svm_weights.pth",
    alternative_names: &["brisque_live_svm.safetensors"],
    url: pyiqa_hf!("brisque_svm_weights.pth"),
    sha256: "",
    builtin: &[builtin::BRISQUE_SVM],
    renames: &[("0", "sv_coef"), ("1", "sv")],
};

/// IL-NIQE template model (official 2014 `templateModel.mat`), pyiqa's `ilniqe`: F64 `mu_pris_param` (430,),
/// `cov_pris_param` (430, 430), `mean_of_sample_data` (468,), `principle_vectors` (468, 430). The official
/// `.mat` holds them as the 1×4 cell `templateModel` (items 1×430, 430×430, 468×1, 468×430). The built-in copy
/// is two files (the pristine Gaussian, the PCA projection), each under the repository's 2 MiB limit. No
/// checksum of pyiqa's asset is published or verified, so it is never downloaded (`sha256` is empty).
pub const ILNIQE_TEMPLATE: WeightFile = WeightFile {
    official_name: "ILNIQE_templateModel.mat",
    alternative_names: &["ILNIQE_templateModel.safetensors"],
    url: pyiqa_hf!("ILNIQE_templateModel.mat"),
    sha256: "",
    builtin: &[builtin::ILNIQE_PRISTINE, builtin::ILNIQE_PCA],
    renames: &[
        ("templateModel.0", "mu_pris_param"),
        ("templateModel.1", "cov_pris_param"),
        ("templateModel.2", "mean_of_sample_data"),
        ("templateModel.3", "principle_vectors"),
    ],
};

/// NIQE's pristine model as MATLAB's `niqe` ships it, pyiqa's `niqe_matlab`: F64 `mu_prisparam` (1, 36),
/// `cov_prisparam` (36, 36). Its name carries no checksum, so it is never downloaded, only found.
pub const NIQE_MATLAB_PARAMS: WeightFile = WeightFile {
    official_name: "niqe_matlab_params.mat",
    alternative_names: &[],
    url: pyiqa_hf!("niqe_matlab_params.mat"),
    sha256: "",
    builtin: &[],
    renames: &[("mu_prisparam", "mu_pris_param"), ("cov_prisparam", "cov_pris_param")],
};

/// A file of pyiqa's model zoo, named `<stem>-<first 8 hex of its sha256>.pth` (checked on download) and
/// fetched from pyiqa 0.1.16's default store. Its keys are those of pyiqa's network for it (each metric's
/// module says which), under the `params` wrapper pyiqa saves its checkpoints in.
macro_rules! zoo_file {
    ($(#[$doc:meta])* $ident:ident, $name:literal, $sha8:literal) => {
        $(#[$doc])*
        pub const $ident: WeightFile = WeightFile {
            official_name: $name,
            alternative_names: &[],
            url: pyiqa_hf!($name),
            sha256: $sha8,
            builtin: &[],
            renames: &[],
        };
    };
}

/// A zoo file whose name carries no checksum: never downloaded (no verified digest), only found.
macro_rules! zoo_file_unverified {
    ($(#[$doc:meta])* $ident:ident, $name:literal) => {
        $(#[$doc])*
        pub const $ident: WeightFile = WeightFile {
            official_name: $name,
            alternative_names: &[],
            url: pyiqa_hf!($name),
            sha256: "",
            builtin: &[],
            renames: &[],
        };
    };
}

/// OpenAI's CLIP RN50 (`clipiqa`, `clipiqa+`, `clipiqa+_rn50_512`): a TorchScript archive (`RN50/data.pkl`),
/// float16 linear/convolution tensors, keys as OpenAI's `build_model` reads them (`visual.*`, `transformer.*`,
/// `token_embedding.weight`, `positional_embedding`, `ln_final.*`, `text_projection`, `logit_scale`). pyiqa
/// keeps it in torch hub's `clip` folder; the URL names its full sha256.
pub const CLIP_RN50: WeightFile = WeightFile {
    official_name: "RN50.pt",
    alternative_names: &[],
    url: "https://openaipublic.azureedge.net/clip/models/\
          afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt",
    sha256: "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762",
    builtin: &[],
    renames: &[],
};

/// OpenAI's CLIP ViT-B/32 (`clipscore`; LIQE's files hold a fine-tuned copy of their own), laid out as
/// [`CLIP_VITL14`].
pub const CLIP_VITB32: WeightFile = WeightFile {
    official_name: "ViT-B-32.pt",
    alternative_names: &[],
    url: "https://openaipublic.azureedge.net/clip/models/\
          40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
    sha256: "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
    builtin: &[],
    renames: &[],
};

/// OpenAI's CLIP ViT-L/14 (`clipiqa+_vitL14_512`, `laion_aes`), laid out as [`CLIP_RN50`] with a vision
/// transformer (`visual.conv1`, `.class_embedding`, `.positional_embedding`, `.transformer`, `.ln_post`, `.proj`).
pub const CLIP_VITL14: WeightFile = WeightFile {
    official_name: "ViT-L-14.pt",
    alternative_names: &[],
    url: "https://openaipublic.azureedge.net/clip/models/\
          b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
    sha256: "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",
    builtin: &[],
    renames: &[],
};

/// `clipiqa+_vitL14_512`'s prompt learner, as [`CLIPIQA_PLUS_RN50_512`] with 768 features.
pub const CLIPIQA_PLUS_VITL14_512: WeightFile = WeightFile {
    official_name: "CLIPIQA%2B_ViTL14_512-e66488f2.pth",
    alternative_names: &["CLIPIQA+_ViTL14_512-e66488f2.pth"],
    url: pyiqa_hf!("CLIPIQA%2B_ViTL14_512-e66488f2.pth"),
    sha256: "e66488f2",
    builtin: &[],
    renames: &[],
};

/// LAION's aesthetic predictor head (`laion_aes`): a plain state dict of five linear layers,
/// `layers.{0,2,4,6,7}.{weight,bias}` (768 → 1024 → 128 → 64 → 16 → 1). Its name carries no checksum.
pub const LAION_AES_MLP: WeightFile = WeightFile {
    official_name: "sac%2Blogos%2Bava1-l14-linearMSE.pth",
    alternative_names: &["sac+logos+ava1-l14-linearMSE.pth"],
    url: pyiqa_hf!("sac%2Blogos%2Bava1-l14-linearMSE.pth"),
    sha256: "",
    builtin: &[],
    renames: &[],
};

/// QualiCLIP's fine-tuned CLIP RN50 (`qualiclip*`): a plain state dict, OpenAI's keys under `clip_model.`, and
/// `prompts_features` (14, 1024), the unit text features of its seven antonym pairs. No checksum in its name.
pub const QUALICLIP: WeightFile = WeightFile {
    official_name: "QualiCLIP.pth",
    alternative_names: &[],
    url: pyiqa_hf!("QualiCLIP.pth"),
    sha256: "",
    builtin: &[],
    renames: &[],
};

macro_rules! qualiclip_plus {
    ($name:literal) => {
        WeightFile {
            official_name: concat!("QualiCLIP%2B_", $name, ".pth"),
            alternative_names: &[concat!("QualiCLIP+_", $name, ".pth")],
            url: concat!(
                "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/QualiCLIP%2B_",
                $name,
                ".pth"
            ),
            sha256: "",
            builtin: &[],
            renames: &[],
        }
    };
}

/// QualiCLIP+'s prompt learners (`qualiclip+`, `-clive`, `-flive`, `-spaq`) under `params`:
/// `prompt_learner.ctx` (14, 16, 512), `.token_prefix` (14, 1, 512), `.token_suffix` (14, 60, 512).
pub const QUALICLIP_PLUS: [WeightFile; 4] =
    [qualiclip_plus!("koniq"), qualiclip_plus!("clive"), qualiclip_plus!("flive"), qualiclip_plus!("spaq")];

/// LIQE on KonIQ (`liqe`): its whole fine-tuned CLIP ViT-B/32 under `params.clip_model.` (OpenAI's keys).
pub const LIQE_KONIQ: WeightFile = WeightFile {
    official_name: "liqe_koniq.pt",
    alternative_names: &[],
    url: pyiqa_hf!("liqe_koniq.pt"),
    sha256: "",
    builtin: &[],
    renames: &[],
};

/// LIQE's multitask model (`liqe_mix`), laid out as [`LIQE_KONIQ`].
pub const LIQE_MIX: WeightFile = WeightFile {
    official_name: "liqe_mix.pt",
    alternative_names: &[],
    url: pyiqa_hf!("liqe_mix.pt"),
    sha256: "",
    builtin: &[],
    renames: &[],
};

/// CLIP-IQA+'s learned context (`clipiqa+`): one bare tensor, 2 prompts × 16 tokens × 512. pyiqa's URL (and so
/// its cache) quotes the '+' as `%2B`; the unquoted name is also accepted.
pub const CLIPIQA_PLUS_CONTEXT: WeightFile = WeightFile {
    official_name: "CLIP-IQA%2B_learned_prompts-603f3273.pth",
    alternative_names: &["CLIP-IQA+_learned_prompts-603f3273.pth"],
    url: pyiqa_hf!("CLIP-IQA%2B_learned_prompts-603f3273.pth"),
    sha256: "603f3273",
    builtin: &[],
    renames: &[],
};

/// `clipiqa+_rn50_512`'s prompt learner under `params`: `prompt_learner.ctx` (2, 16, 512), `.token_prefix`
/// (2, 1, 512), `.token_suffix` (2, 60, 512).
pub const CLIPIQA_PLUS_RN50_512: WeightFile = WeightFile {
    official_name: "CLIPIQA%2B_RN50_512-89f5d940.pth",
    alternative_names: &["CLIPIQA+_RN50_512-89f5d940.pth"],
    url: pyiqa_hf!("CLIPIQA%2B_RN50_512-89f5d940.pth"),
    sha256: "89f5d940",
    builtin: &[],
    renames: &[],
};

zoo_file_unverified!(
    /// BRISQUE's SVR as MATLAB's `brisque` ships it, pyiqa's `brisque_matlab`: F64 `sv` (k, 36), `sv_coef` (k, 1).
    BRISQUE_MATLAB, "brisque_matlab.mat"
);
zoo_file_unverified!(
    /// NRQM's model (`nrqm`, `pi`): struct `model` with F64 `linear` (4, 1) and `rf`, a 1×3 cell of
    /// randomforest-matlab regression forests read by field position (0 lDau, 1 rDau, 4 upper, 5 avnode, 6 mbest;
    /// each nodes × trees).
    NRQM_MODEL, "NRQM_model.mat"
);
zoo_file!(
    /// TOPIQ NR on KonIQ (`topiq_nr`): CFANet with its ResNet-50 as `semantic_model.*`.
    CFANET_NR_KONIQ_RES50, "cfanet_nr_koniq_res50-9a73138b.pth", "9a73138b"
);
zoo_file!(
    /// TOPIQ NR on FLIVE (`topiq_nr-flive`).
    CFANET_NR_FLIVE_RES50, "cfanet_nr_flive_res50-ded1c74e.pth", "ded1c74e"
);
zoo_file!(
    /// TOPIQ NR on SPAQ (`topiq_nr-spaq`).
    CFANET_NR_SPAQ_RES50, "cfanet_nr_spaq_res50-a7f799ac.pth", "a7f799ac"
);
zoo_file!(
    /// TOPIQ FR on KADID (`topiq_fr`).
    CFANET_FR_KADID_RES50, "cfanet_fr_kadid_res50-2c4cc61d.pth", "2c4cc61d"
);
zoo_file!(
    /// TOPIQ FR on PIPAL (`topiq_fr-pipal`).
    CFANET_FR_PIPAL_RES50, "cfanet_fr_pipal_res50-69bbe5ba.pth", "69bbe5ba"
);
zoo_file!(
    /// TOPIQ aesthetics on AVA with ResNet-50 (`topiq_iaa_res50`): inter_dim 512, 8 heads, 10 classes.
    CFANET_IAA_AVA_RES50, "cfanet_iaa_ava_res50-3cd62bb3.pth", "3cd62bb3"
);
zoo_file!(
    /// HyperIQA on KonIQ (`hyperiqa`): its ResNet-50 as `base_model.*`, the hyper network beside it.
    HYPERIQA_RESNET50_KONIQ, "HyperIQA-resnet50-koniq10k-c96c41b1.pth", "c96c41b1"
);
zoo_file!(
    /// CNNIQA on KonIQ (`cnniqa`): `conv1` (50, 3, 7, 7), `fc1..fc3`.
    CNNIQA_KONIQ, "CNNIQA_koniq10k-e6f14c91.pth", "e6f14c91"
);
zoo_file!(
    /// DBCNN on KonIQ (`dbcnn`): VGG16 as `features1.*`, the S-CNN as `features2.*`, `fc` (1, 65536). (pyiqa
    /// also loads the S-CNN's own file first; the checkpoint holds its features again.)
    DBCNN_KONIQ, "DBCNN_KonIQ10k-2de81c0a.pth", "2de81c0a"
);
zoo_file!(
    /// PaQ-2-PiQ (`paq2piq`): a plain state dict, ResNet-18 as `body.{0,1,4..7}`, head `head.{2,4,6,8}`.
    PAQ2PIQ_ROIPOOL, "P2P_RoIPoolModel-fit.10.bs.120-ca69882e.pth", "ca69882e"
);
zoo_file_unverified!(
    /// UNIQUE (`unique`): a plain state dict, ResNet-34 as `backbone.*` (its ImageNet `fc` unused), `fc` (2, 262144).
    UNIQUE, "UNIQUE.pt"
);
zoo_file_unverified!(
    /// MetaIQA fine-tuned on LIVE Challenge (`metaiqa`): ResNet-18 as `resnet_layer.*` (with its ImageNet `fc`),
    /// the head as `net.*` (pyiqa renames it `head.*`), plain or under `params` / `state_dict`.
    METAIQA_LIVEC, "Metaiqa_livec.pth"
);
zoo_file!(
    /// NIMA on AVA with VGG16 (`nima-vgg16-ava`): timm's features-only VGG16 as `base_model.features_N.*`,
    /// `classifier.2` (10, 512).
    NIMA_VGG16_AVA, "NIMA_VGG16_ava-dc4e8265.pth", "dc4e8265"
);
zoo_file!(
    /// NIMA on AVA with Inception-ResNet-v2 (`nima`): timm's features-only network as `base_model.*`,
    /// `classifier.2` (10, 1536).
    NIMA_INCEPTION_AVA, "NIMA_InceptionV2_ava-b0c77c00.pth", "b0c77c00"
);
zoo_file!(
    /// NIMA on KonIQ (`nima-koniq`): as `nima`, `classifier.2` (1, 1536).
    NIMA_KONIQ, "NIMA_koniq-250367ae.pth", "250367ae"
);
zoo_file!(
    /// NIMA on SPAQ (`nima-spaq`): as `nima-koniq`.
    NIMA_SPAQ, "NIMA-spaq-46a7fcb7.pth", "46a7fcb7"
);
zoo_file!(
    /// WaDIQaM FR on KADID (`wadiqam_fr`): `features.{0,2,5,...,22}` (ten 3×3 convolutions), `fc_q.{0,3}` and
    /// `fc_w.{0,3}` on 3×512 features, under `params`.
    WADIQAM_FR_KADID, "WaDIQaM-kadid-f7541ea5.pth", "f7541ea5"
);
zoo_file!(
    /// WaDIQaM NR on KonIQ (`wadiqam_nr`): as `wadiqam_fr`, its heads on 512 features.
    WADIQAM_NR_KONIQ, "WaDIQaM-NR-koniq-aaffea29.pth", "aaffea29"
);
zoo_file!(
    /// CKDN (`ckdn`): a plain state dict under `net.`: stems `qse_1`/`dte_1`, stages `qse_2`/`dte_2` and `csp`
    /// (ResNet-50's layer1 and layer2), head `fc_.{0,3,6}` (`aux_csp`, `fc1_` unused).
    CKDN_MODEL_BEST, "CKDN_model_best-38b27dc6.pth", "38b27dc6"
);
zoo_file!(
    /// PieAPP v0.1 (`pieapp`): a plain state dict, `conv1..conv11`, `fc1_score` (512, 120832), `fc2_score`,
    /// `fc1_weight` (512, 2048), `fc2_weight`, `ref_score_subtract.{weight,bias}` (1).
    PIEAPP_V01, "PieAPPv0.1-0937b014.pth", "0937b014"
);
zoo_file_unverified!(
    /// ST-LPIPS with the shift-tolerant AlexNet (`stlpips`): a plain state dict, the backbone as
    /// `net.slice{1..5}.{0,5,9,11,13}`, the lin layers as `lin{0..4}.model.1.weight` (1, C, 1, 1).
    STLPIPS_ALEX, "alex_shift_tolerant.pth"
);
zoo_file_unverified!(
    /// ST-LPIPS with the shift-tolerant VGG16 (`stlpips-vgg`): the backbone as `net.slice1.{0,2}`,
    /// `slice2.{6,8}`, `slice3.{12,14,16}`, `slice4.{20,22,24}`, `slice5.{28,30,32}`, the lin layers as above.
    STLPIPS_VGG, "vgg_shift_tolerant.pth"
);
zoo_file_unverified!(
    /// ARNIQA's encoder: the official training checkpoint, a torchvision ResNet-50 as `model.*` (plus the
    /// SimCLR projector, unused).
    ARNIQA_ENCODER, "ARNIQA.pth"
);

/// ARNIQA's regressors (TorchScript archives of a linear layer on 4096 features), one per training set:
/// (pyiqa's dataset key, file).
pub const ARNIQA_REGRESSORS: [(&str, WeightFile); 8] = [
    ("koniq", arniqa_regressor("regressor_koniq10k.pth", pyiqa_hf!("regressor_koniq10k.pth"))),
    ("live", arniqa_regressor("regressor_live.pth", pyiqa_hf!("regressor_live.pth"))),
    ("csiq", arniqa_regressor("regressor_csiq.pth", pyiqa_hf!("regressor_csiq.pth"))),
    ("tid", arniqa_regressor("regressor_tid2013.pth", pyiqa_hf!("regressor_tid2013.pth"))),
    ("kadid", arniqa_regressor("regressor_kadid10k.pth", pyiqa_hf!("regressor_kadid10k.pth"))),
    ("clive", arniqa_regressor("regressor_clive.pth", pyiqa_hf!("regressor_clive.pth"))),
    ("flive", arniqa_regressor("regressor_flive.pth", pyiqa_hf!("regressor_flive.pth"))),
    ("spaq", arniqa_regressor("regressor_spaq.pth", pyiqa_hf!("regressor_spaq.pth"))),
];

const fn arniqa_regressor(official_name: &'static str, url: &'static str) -> WeightFile {
    WeightFile { official_name, alternative_names: &[], url, sha256: "", builtin: &[], renames: &[] }
}

/// Every entry above.
#[cfg(test)]
pub const ALL: &[&WeightFile] = &[
    &LPIPS_V0_0_ALEX,
    &LPIPS_V0_0_VGG,
    &LPIPS_V0_0_SQUEEZE,
    &LPIPS_V0_1_ALEX,
    &LPIPS_V0_1_VGG,
    &LPIPS_V0_1_SQUEEZE,
    &DISTS_ALPHA_BETA,
    &ALEXNET,
    &VGG16,
    &SQUEEZENET1_1,
    &NIQE_PARAMS,
    &BRISQUE_SVM,
    &ILNIQE_TEMPLATE,
];

zoo_file!(
    /// MUSIQ trained on KonIQ-10k (`musiq`): a plain state dict, stem `conv_root`/`gn_root`/`block1.*`,
    /// `embedding`, `transformer_encoder.*` (14 blocks of 384 features), `head` (1, 384).
    MUSIQ_KONIQ, "musiq_koniq_ckpt-e95806b9.pth", "e95806b9"
);
zoo_file!(
    /// MUSIQ trained on AVA (`musiq-ava`): as [`MUSIQ_KONIQ`] with a ten-class head `head.0` (10, 384).
    MUSIQ_AVA, "musiq_ava_ckpt-e8d3f067.pth", "e8d3f067"
);
zoo_file!(
    /// MUSIQ trained on PaQ-2-PiQ's dataset (`musiq-paq2piq`): as [`MUSIQ_KONIQ`].
    MUSIQ_PAQ2PIQ, "musiq_paq2piq_ckpt-364c0c84.pth", "364c0c84"
);
zoo_file!(
    /// MUSIQ trained on SPAQ (`musiq-spaq`): as [`MUSIQ_KONIQ`].
    MUSIQ_SPAQ, "musiq_spaq_ckpt-358bb6af.pth", "358bb6af"
);

zoo_file_unverified!(
    /// MANIQA trained on KonIQ-10k (`maniqa`): a plain state dict, timm's ViT-B/8 as `vit.*`, `tablock{1,2}.{0,1}`,
    /// `conv{1,2}`, `swintransformer{1,2}.layers.{0,1}`, `fc_score`, `fc_weight`.
    MANIQA_KONIQ, "ckpt_koniq10k.pt"
);
zoo_file_unverified!(
    /// MANIQA trained on KADID-10k (`maniqa-kadid`): as [`MANIQA_KONIQ`].
    MANIQA_KADID, "ckpt_kadid10k.pt"
);
zoo_file!(
    /// MANIQA trained on PIPAL (`maniqa-pipal`): as [`MANIQA_KONIQ`].
    MANIQA_PIPAL, "MANIQA_PIPAL-ae6d356b.pth", "ae6d356b"
);

zoo_file!(
    /// TReS trained on KonIQ-10k (`tres`): a plain state dict, torchvision's ResNet-50 as `model.*`,
    /// `transformer.encoder.layers.{0,1}.*` and `transformer.encoder.norm` (3840 features), `fc2`, `fc`.
    TRES_KONIQ, "tres_koniq-f0502926.pth", "f0502926"
);
zoo_file!(
    /// TReS trained on FLIVE (`tres-flive`): as [`TRES_KONIQ`].
    TRES_FLIVE, "tres_flive-09b0de5b.pth", "09b0de5b"
);

/// Every model-zoo file (none is in the shared weights folder: tests/zoo.rs makes random ones).
#[cfg(test)]
pub const ZOO: &[&WeightFile] = &[
    &NIQE_MATLAB_PARAMS,
    &BRISQUE_MATLAB,
    &NRQM_MODEL,
    &STLPIPS_ALEX,
    &STLPIPS_VGG,
    &VGG19,
    &WADIQAM_FR_KADID,
    &WADIQAM_NR_KONIQ,
    &CKDN_MODEL_BEST,
    &PIEAPP_V01,
    &CFANET_NR_KONIQ_RES50,
    &CFANET_NR_FLIVE_RES50,
    &CFANET_NR_SPAQ_RES50,
    &CFANET_FR_KADID_RES50,
    &CFANET_FR_PIPAL_RES50,
    &CFANET_IAA_AVA_RES50,
    &HYPERIQA_RESNET50_KONIQ,
    &CNNIQA_KONIQ,
    &ARNIQA_ENCODER,
    &ARNIQA_REGRESSORS[0].1,
    &ARNIQA_REGRESSORS[1].1,
    &ARNIQA_REGRESSORS[2].1,
    &ARNIQA_REGRESSORS[3].1,
    &ARNIQA_REGRESSORS[4].1,
    &ARNIQA_REGRESSORS[5].1,
    &ARNIQA_REGRESSORS[6].1,
    &ARNIQA_REGRESSORS[7].1,
    &DBCNN_KONIQ,
    &PAQ2PIQ_ROIPOOL,
    &UNIQUE,
    &METAIQA_LIVEC,
    &NIMA_VGG16_AVA,
    &NIMA_INCEPTION_AVA,
    &NIMA_KONIQ,
    &NIMA_SPAQ,
    &CLIP_RN50,
    &CLIPIQA_PLUS_CONTEXT,
    &CLIPIQA_PLUS_RN50_512,
    &CLIP_VITL14,
    &CLIP_VITB32,
    &CLIPIQA_PLUS_VITL14_512,
    &LAION_AES_MLP,
    &QUALICLIP,
    &QUALICLIP_PLUS[0],
    &QUALICLIP_PLUS[1],
    &QUALICLIP_PLUS[2],
    &QUALICLIP_PLUS[3],
    &LIQE_KONIQ,
    &LIQE_MIX,
    &MUSIQ_KONIQ,
    &MUSIQ_AVA,
    &MUSIQ_PAQ2PIQ,
    &MUSIQ_SPAQ,
    &MANIQA_KONIQ,
    &MANIQA_KADID,
    &MANIQA_PIPAL,
    &TRES_KONIQ,
    &TRES_FLIVE,
];

/// The LPIPS linear layers for a version ("0.0", "0.1") and net ("alex", "vgg", "squeeze").
pub fn lpips(version: &str, net: &str) -> Option<&'static WeightFile> {
    Some(match (version, net) {
        ("0.0", "alex") => &LPIPS_V0_0_ALEX,
        ("0.0", "vgg") => &LPIPS_V0_0_VGG,
        ("0.0", "squeeze") => &LPIPS_V0_0_SQUEEZE,
        ("0.1", "alex") => &LPIPS_V0_1_ALEX,
        ("0.1", "vgg") => &LPIPS_V0_1_VGG,
        ("0.1", "squeeze") => &LPIPS_V0_1_SQUEEZE,
        _ => return None,
    })
}

/// The torchvision backbone of an LPIPS net ("alex", "vgg", "squeeze").
pub fn backbone(net: &str) -> Option<&'static WeightFile> {
    Some(match net {
        "alex" => &ALEXNET,
        "vgg" => &VGG16,
        "vgg19" => &VGG19,
        "squeeze" => &SQUEEZENET1_1,
        _ => return None,
    })
}
