//! Building blocks shared by metrics: MATLAB-style filters (later: backbones, pyramids).
pub mod filters;
