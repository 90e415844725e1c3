//! MATLAB-compatible filter kernels.
use crate::error::Result;
use tch::{Device, Kind, Tensor};

/// MATLAB `fspecial('gaussian', size, sigma)`: normalised, with values below eps·max set to zero.
/// Returned as f32 values (pyiqa builds its windows in float32 and casts them to the image's dtype), shaped
/// `channels`×1×size×size for a depthwise convolution, in `kind` on `device`.
pub fn gaussian_window(
    size: usize,
    sigma: f64,
    channels: i64,
    kind: Kind,
    device: Device,
) -> Result<Tensor> {
    let half = (size as f64 - 1.0) / 2.0;
    let mut h: Vec<f64> = (0..size * size)
        .map(|i| {
            let (y, x) = ((i / size) as f64 - half, (i % size) as f64 - half);
            (-(x * x + y * y) / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let max = h.iter().cloned().fold(0.0, f64::max);
    h.iter_mut()
        .filter(|v| **v < f64::EPSILON * max)
        .for_each(|v| *v = 0.0);
    let sum: f64 = h.iter().sum();
    let h32: Vec<f32> = h.iter().map(|v| (v / sum) as f32).collect();
    let n = size as i64;
    Ok(Tensor::f_from_slice(&h32)?
        .f_view([1, 1, n, n])?
        .f_repeat([channels, 1, 1, 1])?
        .f_to_kind(kind)?
        .f_to_device(device)?)
}
