//! Building blocks shared by metrics: MATLAB-style filters and ImageNet backbones.
pub mod backbones;
pub mod filters;
pub mod frequency;
pub mod matlab;
pub mod nss;
pub mod resize;
