//! Building blocks shared by metrics: MATLAB-style filters, ImageNet backbones, and the model zoo's layers.
pub mod backbones;
pub mod clip;
pub mod clip_tokenizer;
pub mod filters;
pub mod frequency;
pub mod inception_resnet;
pub mod interpolate;
pub mod layers;
pub mod matlab;
pub mod nss;
pub mod resize;
pub mod resnet;
pub mod shift_tolerant;
pub mod swin;
pub mod vit;
