//! torch's `F.interpolate` as the model zoo calls it (libtorch's own kernels, so the pixels are pyiqa's) and
//! torchvision's `resize` size rule.
use crate::error::Result;
use tch::Tensor;

/// How an image is resized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `mode='bilinear', align_corners=False`.
    Bilinear,
    /// The same with `antialias=True` (torchvision's default on tensors).
    BilinearAntialias,
    /// `mode='bicubic', align_corners=False`.
    Bicubic,
    /// The same with `antialias=True` (torchvision's default on tensors).
    BicubicAntialias,
    /// `mode='nearest'` (the source pixel ⌊dst·in/out⌋, not `nearest-exact`).
    Nearest,
}

/// `x` (N×C×H×W) resized to `(height, width)`.
pub fn resize(x: &Tensor, (height, width): (i64, i64), mode: Mode) -> Result<Tensor> {
    let size = [height, width];
    Ok(match mode {
        Mode::Bilinear => x.f_upsample_bilinear2d(size, false, None, None)?,
        Mode::BilinearAntialias => x.f_internal_upsample_bilinear2d_aa(size, false, None, None)?,
        Mode::Bicubic => x.f_upsample_bicubic2d(size, false, None, None)?,
        Mode::BicubicAntialias => x.f_internal_upsample_bicubic2d_aa(size, false, None, None)?,
        Mode::Nearest => x.f_upsample_nearest2d(size, None, None)?,
    })
}

/// `F.interpolate(x, scale_factor=s, mode=...)`: the output size is ⌊side·s⌋, and the kernels sample with
/// the scale factor itself (not the ratio of the sizes), as torch does when it is given one.
pub fn rescale(x: &Tensor, factor: f64, mode: Mode) -> Result<Tensor> {
    let (h, w) = (x.size()[2], x.size()[3]);
    let size = [(h as f64 * factor).floor() as i64, (w as f64 * factor).floor() as i64];
    Ok(match mode {
        Mode::Bilinear => x.f_upsample_bilinear2d(size, false, factor, factor)?,
        Mode::BilinearAntialias => x.f_internal_upsample_bilinear2d_aa(size, false, factor, factor)?,
        Mode::Bicubic => x.f_upsample_bicubic2d(size, false, factor, factor)?,
        Mode::BicubicAntialias => x.f_internal_upsample_bicubic2d_aa(size, false, factor, factor)?,
        Mode::Nearest => x.f_upsample_nearest2d(size, factor, factor)?,
    })
}

/// torchvision's `resize(x, short)`: the shorter side becomes `short`, the longer ⌊short·long/short_side⌋;
/// an image already of that size is returned as it is.
pub fn resize_short_side(x: &Tensor, short: i64, mode: Mode) -> Result<Tensor> {
    let (h, w) = (x.size()[2], x.size()[3]);
    let size = if w <= h { (short * h / w, short) } else { (short, short * w / h) };
    if size == (h, w) {
        return Ok(x.shallow_clone());
    }
    resize(x, size, mode)
}

/// torchvision's `center_crop` of a tensor at least `side` each way: the top-left corner at
/// round((h − side)/2), round((w − side)/2), Python's rounding (half to even).
pub fn center_crop(x: &Tensor, side: i64) -> Result<Tensor> {
    let (h, w) = (x.size()[2], x.size()[3]);
    let top = ((h - side) as f64 / 2.0).round_ties_even() as i64;
    let left = ((w - side) as f64 / 2.0).round_ties_even() as i64;
    Ok(x.f_narrow(2, top, side)?.f_narrow(3, left, side)?)
}

/// pyiqa's `uniform_crop(x, side, count)` of one image (1×C×H×W), as `count`×C×side×side: an image whose shorter
/// side is at most `side` is first enlarged by (side + 1)/shorter (bilinear, by the factor); the crops start
/// at (i·step_h, j·step_w) on a ⌈√count⌉² grid, row by row, the first `count` of them, where
/// step = (length − side) / ⌊√count⌋.
pub fn uniform_crops(x: &Tensor, side: i64, count: i64) -> Result<Tensor> {
    let (h, w) = (x.size()[2], x.size()[3]);
    let x = if h.min(w) <= side {
        rescale(x, (side + 1) as f64 / h.min(w) as f64, Mode::Bilinear)?
    } else {
        x.shallow_clone()
    };
    let (h, w) = (x.size()[2], x.size()[3]);
    let root = (count as f64).sqrt();
    let (steps, grid) = (root.floor() as i64, root.ceil() as i64);
    let (step_h, step_w) = ((h - side) / steps, (w - side) / steps);
    let mut crops = Vec::with_capacity(count as usize);
    for i in 0..grid {
        for j in 0..grid {
            if crops.len() < count as usize {
                crops.push(x.f_narrow(2, i * step_h, side)?.f_narrow(3, j * step_w, side)?);
            }
        }
    }
    Ok(Tensor::f_cat(&crops, 0)?)
}
