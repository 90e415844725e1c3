//! MATLAB-compatible filter kernels.
use crate::error::Result;
use tch::Tensor;

/// Normalised 1-D Gaussian of `size` taps. Its outer product with itself is MATLAB's
/// `fspecial('gaussian', size, sigma)` whenever no tap falls below eps·max (true for every window iqa uses:
/// the check is kept so that a future one that would be clipped fails loudly instead of drifting).
pub fn gaussian_taps(size: usize, sigma: f64) -> Vec<f64> {
    let half = (size as f64 - 1.0) / 2.0;
    let g: Vec<f64> = (0..size).map(|i| (-((i as f64 - half).powi(2)) / (2.0 * sigma * sigma)).exp()).collect();
    let corner = g[0] * g[0];
    assert!(corner >= f64::EPSILON * 1.0, "Gaussian {size}/{sigma} is clipped by fspecial; use gaussian_window");
    let sum: f64 = g.iter().sum();
    g.into_iter().map(|v| v / sum).collect()
}

/// 'valid' filtering of every channel of an N×C×H×W tensor with the separable kernel `taps`⊗`taps`, as two
/// depthwise 1-D convolutions. Output is N×C×(H−k+1)×(W−k+1).
pub fn separable_valid(x: &Tensor, taps: &Tensor) -> Result<Tensor> {
    let channels = x.size()[1];
    let k = taps.size()[0];
    let row = taps.f_view([1, 1, 1, k])?.f_expand([channels, 1, 1, k], false)?;
    let col = taps.f_view([1, 1, k, 1])?.f_expand([channels, 1, k, 1], false)?;
    let none = None::<Tensor>;
    let h = x.f_conv2d(&row, none.as_ref(), [1, 1], [0, 0], [1, 1], channels)?;
    Ok(h.f_conv2d(&col, none.as_ref(), [1, 1], [0, 0], [1, 1], channels)?)
}
