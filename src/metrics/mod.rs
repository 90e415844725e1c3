//! Metric implementations: one file per family, each a `Model` over N×3×H×W float tensors in [0,1].
pub mod brisque;
pub mod cw_ssim;
pub mod dists;
pub mod entropy;
pub mod fsim;
pub mod gmsd;
pub mod ilniqe;
pub mod lpips;
pub mod mad;
pub mod niqe;
pub mod nlpd;
pub mod piqe;
pub mod psnr;
pub mod ssim;
pub mod torchscript;
pub mod vif;
pub mod vsi;

use crate::error::Result;
use crate::image::Image;
use tch::Tensor;

/// A built metric, shared between handles and threads through the registry's cache.
pub trait Model: Send + Sync {
    /// Scores a batch: `dist` (and `reference` for FR metrics) are N×3×H×W float32 in [0,1] on the model's
    /// device, of equal shapes. Returns N scores.
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor>;

    /// Scores 8-bit buffers directly on the CPU where that is cheaper than building tensors (PSNR: the
    /// conversion cost more than the metric). `None`: not supported for these images; `forward` is used.
    fn score_pixels(&self, _dists: &[Image<'_>], _refs: Option<&[Image<'_>]>) -> Option<Result<Vec<f64>>> {
        None
    }

    /// Smallest (height, width) the metric accepts; smaller images are a shape error naming this size.
    fn min_size(&self) -> (i64, i64) {
        (1, 1)
    }

    /// Largest image (pixels) the metric scores, and why, for metrics whose peak memory would otherwise grow
    /// without bound (deep metrics that cannot be tiled). Larger images are a shape error naming the limit.
    fn max_pixels(&self) -> Option<(i64, &'static str)> {
        None
    }

    /// The LPIPS model behind this metric, for its spatial distance map.
    fn as_lpips(&self) -> Option<&lpips::Lpips> {
        None
    }
}

/// The reference tensor of an FR metric (presence is checked by the API before any model runs).
pub(crate) fn require_ref(reference: Option<&Tensor>) -> Result<&Tensor> {
    reference.ok_or_else(|| crate::error::Error::invalid("full-reference metric called without a reference"))
}
