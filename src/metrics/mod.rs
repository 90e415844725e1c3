//! The metrics: one file per family, each describing its metrics in a `METRICS` list of
//! [`MetricSpec`](crate::model::MetricSpec)s and implementing [`Model`](crate::model::Model) over N×3×H×W
//! float tensors in [0,1]. `torchscript` wraps user-supplied modules.
pub mod arniqa;
pub mod brisque;
pub mod ckdn;
pub mod cnniqa;
pub mod cw_ssim;
pub mod dbcnn;
pub mod deepdc;
pub mod dists;
pub mod entropy;
pub mod fsim;
pub mod gmsd;
pub mod hyperiqa;
pub mod ilniqe;
pub mod lpips;
pub mod mad;
pub mod metaiqa;
pub mod nima;
pub mod niqe;
pub mod nlpd;
pub mod nrqm;
pub mod paq2piq;
pub mod pieapp;
pub mod piqe;
pub mod psnr;
pub mod ssim;
pub mod topiq;
pub mod torchscript;
pub mod unique;
pub mod vif;
pub mod vsi;
pub mod wadiqam;
