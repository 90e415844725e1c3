//! CW-SSIM (`cw_ssim`, Sampat et al. 2009) with pyiqa 0.1.16's defaults: luma (Y of YIQ, 0..255, rounded) in
//! float64, a complex steerable pyramid of 4 levels and 8 orientations, CW-SSIM of each orientation of the 4th
//! level over 7×7 windows with K = 0, pooled with a Gaussian weight of σ = rows/4, averaged over orientations.
//!
//! pyiqa builds the whole pyramid and uses only the deepest oriented level; iqa computes just that level
//! (see `steerable_bands`), the same arithmetic for those bands.
use crate::error::Result;
use crate::image::colour::rgb_to_y;
use crate::model::{require_ref, MetricSpec, Mode, Model};
use crate::nn::frequency::{gaussian_window_f32, steerable_bands};
use crate::tensor::FrozenTensor;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// pyiqa refuses images whose shorter side s has floor(log2 s) - 2 < 4 levels.
pub const METRICS: &[MetricSpec] =
    &[MetricSpec::new("cw_ssim", Mode::FullReference, false, (0.0, 1.0), |k| Ok(Arc::new(CwSsim::new(k.device)?)))
        .min_size(1 << (LEVELS + 2), 1 << (LEVELS + 2))];

const LEVELS: usize = 4;
const ORIENTATIONS: usize = 8;
const WINDOW: i64 = 7;
/// pyiqa's `math_util.abs` adds this under the square root of every complex magnitude.
const ABS_EPS: f64 = 1e-12;

pub struct CwSsim {
    /// The 7×7 box window, 1/49 rounded through float32 as pyiqa's buffer is, as a float64 conv weight.
    box_window: FrozenTensor,
}

impl CwSsim {
    pub fn new(device: Device) -> Result<Self> {
        let tap = (1.0f32 / 49.0) as f64;
        let window = Tensor::f_full([1, 1, WINDOW, WINDOW], tap, (Kind::Double, device))?;
        Ok(CwSsim { box_window: FrozenTensor::new(window) })
    }

    /// 7×7 'valid' box filter of every map of an N×B×h×w float64 tensor.
    fn box_filter(&self, x: &Tensor) -> Result<Tensor> {
        let s = x.size();
        let flat = x.f_reshape([s[0] * s[1], 1, s[2], s[3]])?;
        let none = None::<Tensor>;
        let out = flat.f_conv2d(&self.box_window, none.as_ref(), [1, 1], [0, 0], [1, 1], 1)?;
        Ok(out.f_reshape([s[0], s[1], s[2] - WINDOW + 1, s[3] - WINDOW + 1])?)
    }
}

/// |z|² + eps over the real/imaginary pair in the last dimension.
fn squared_magnitude(z: &Tensor) -> Result<Tensor> {
    Ok(z.f_square()?.f_sum_dim_intlist(&[-1i64][..], false, None::<Kind>)?.f_add_scalar(ABS_EPS)?)
}

impl Model for CwSsim {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let reference = require_ref(reference)?;
        let n = dist.size()[0];
        // pyiqa converts to float64 before taking the luma, so the YIQ product is in float64.
        let both = Tensor::f_cat(&[dist, reference], 0)?.f_to_kind(Kind::Double)?;
        let y = rgb_to_y(&both, 255.0)?.f_squeeze_dim(1)?;
        let bands = steerable_bands(&y, LEVELS, ORIENTATIONS)?; // 2N×B×h×w complex
        let (b1, b2) = (bands.f_narrow(0, 0, n)?, bands.f_narrow(0, n, n)?);
        let corr = b1.f_mul(&b2.f_conj()?)?.f_view_as_real()?; // N×B×h×w×2
        let corr_re = self.box_filter(&corr.f_select(-1, 0)?)?;
        let corr_im = self.box_filter(&corr.f_select(-1, 1)?)?;
        let corr_abs = corr_re.f_square()?.f_add(&corr_im.f_square()?)?.f_add_scalar(ABS_EPS)?.f_sqrt()?;
        let energy = squared_magnitude(&b1.f_view_as_real()?)?.f_add(&squared_magnitude(&b2.f_view_as_real()?)?)?;
        let cssim = corr_abs.f_mul_scalar(2.0)?.f_div(&self.box_filter(&energy)?)?;
        let (rows, cols) = (cssim.size()[2], cssim.size()[3]);
        let level_rows = rows + WINDOW - 1;
        let weight = gaussian_window_f32(rows, cols, level_rows as f64 / 4.0, cssim.device())?;
        let per_band = cssim.f_mul(&weight)?.f_sum_dim_intlist(&[2i64, 3][..], false, None::<Kind>)?;
        Ok(per_band.f_mean_dim(&[1i64][..], false, None::<Kind>)?)
    }
}
