//! Colour conversions as tensor ops on N×3×H×W batches, with pyiqa's coefficients and operation order.
use crate::error::Result;
use tch::{Kind, Tensor};

/// RGB → YIQ matrix (rows: Y, I, Q), the conversion pyiqa's `to_y_channel` uses by default.
const RGB_TO_YIQ: [f32; 9] = [0.299, 0.587, 0.114, 0.5959, -0.2746, -0.3213, 0.2115, -0.5227, 0.3112];
/// Its Y row, for code that computes luma pixel by pixel.
pub const Y_OF_RGB: [f32; 3] = [RGB_TO_YIQ[0], RGB_TO_YIQ[1], RGB_TO_YIQ[2]];

/// Luma (the Y of YIQ) of an RGB batch, as N×1×H×W, scaled to `out_range`; rounded to integers when
/// `out_range >= 255`, which makes the values those of a MATLAB uint8 image.
/// Computed as the full 3×3 matrix product in the input's dtype, as pyiqa does, so that values on a rounding
/// boundary fall the same way.
pub fn rgb_to_y(rgb: &Tensor, out_range: f64) -> Result<Tensor> {
    let weights =
        Tensor::f_from_slice(&RGB_TO_YIQ)?.f_view([3, 3])?.f_tr()?.f_to_device(rgb.device())?.f_to_kind(rgb.kind())?;
    let yiq = rgb.f_permute([0, 2, 3, 1])?.f_matmul(&weights)?.f_permute([0, 3, 1, 2])?;
    let y = yiq.f_narrow(1, 0, 1)?.f_mul_scalar(out_range)?;
    Ok(if out_range >= 255.0 { y.f_round()? } else { y })
}

/// pyiqa's `preprocess_rgb`: luma or all channels, scaled to `data_range` (rounded when 255), then `kind`.
pub fn preprocess(rgb: &Tensor, luma_only: bool, data_range: f64, kind: Kind) -> Result<Tensor> {
    let x = if luma_only {
        rgb_to_y(rgb, data_range)?
    } else {
        let x = rgb.f_mul_scalar(data_range)?;
        if data_range == 255.0 {
            x.f_round()?
        } else {
            x
        }
    };
    Ok(x.f_to_kind(kind)?)
}
