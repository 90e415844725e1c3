//! Building blocks shared by metrics: MATLAB-style filters and ImageNet backbones.
pub mod backbones;
pub mod filters;
