//! MATLAB-compatible filter kernels.
use crate::error::Result;
use tch::{Device, Kind, Tensor};

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

/// 'valid' filtering of every channel of an N×C×H×W tensor with the separable kernel `taps`⊗`taps`.
/// Output is N×C×(H−k+1)×(W−k+1).
///
/// On the CPU, float64 input goes through [`separable_valid_cpu`]: libtorch has no fast depthwise
/// convolution for float64 there (it was 90% of SSIM's time at 1080p). Elsewhere: two depthwise 1-D
/// convolutions.
pub fn separable_valid(x: &Tensor, taps: &Tensor) -> Result<Tensor> {
    if x.device() == Device::Cpu && x.kind() == Kind::Double {
        let taps = Vec::<f64>::try_from(&taps.f_to_kind(Kind::Double)?.f_to_device(Device::Cpu)?)?;
        return separable_valid_cpu(x, &taps);
    }
    let channels = x.size()[1];
    let k = taps.size()[0];
    let row = taps.f_view([1, 1, 1, k])?.f_expand([channels, 1, 1, k], false)?;
    let col = taps.f_view([1, 1, k, 1])?.f_expand([channels, 1, k, 1], false)?;
    let none = None::<Tensor>;
    let h = x.f_conv2d(&row, none.as_ref(), [1, 1], [0, 0], [1, 1], channels)?;
    Ok(h.f_conv2d(&col, none.as_ref(), [1, 1], [0, 0], [1, 1], channels)?)
}

/// [`separable_valid`] for a float64 CPU tensor, in plain loops over libtorch's thread count: each task
/// filters a band of output rows of one plane, horizontally into a scratch band, then vertically. The sum
/// order per output pixel is fixed (taps in order), so results do not depend on the thread count.
pub fn separable_valid_cpu(x: &Tensor, taps: &[f64]) -> Result<Tensor> {
    let size = x.size();
    let (n, c, h, w) = (size[0], size[1], size[2] as usize, size[3] as usize);
    let k = taps.len();
    if h < k || w < k {
        return Err(crate::error::Error::shape(format!("{w}x{h} is smaller than the {k}x{k} window")));
    }
    let (oh, ow) = (h - k + 1, w - k + 1);
    let x = x.f_contiguous()?;
    let input = unsafe { std::slice::from_raw_parts(x.data_ptr() as *const f64, (n * c) as usize * h * w) };
    let out = Tensor::f_empty([n, c, oh as i64, ow as i64], (Kind::Double, Device::Cpu))?;
    let output = unsafe { std::slice::from_raw_parts_mut(out.data_ptr() as *mut f64, (n * c) as usize * oh * ow) };

    let threads = (tch::get_num_threads().max(1) as usize).min(64);
    // Bands of output rows, enough of them to keep every thread busy.
    let band_rows = oh.div_ceil(threads.div_ceil((n * c) as usize).max(1)).max(16);
    let mut tasks: Vec<(usize, usize, &mut [f64])> = Vec::new();
    for (plane, out_plane) in output.chunks_mut(oh * ow).enumerate() {
        for (band, rows) in out_plane.chunks_mut(band_rows * ow).enumerate() {
            tasks.push((plane, band * band_rows, rows));
        }
    }
    let per_thread = tasks.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let mut rest = tasks;
        while !rest.is_empty() {
            let mine: Vec<_> = rest.drain(..per_thread.min(rest.len())).collect();
            scope.spawn(move || {
                let mut scratch = Vec::new();
                for (plane, first_row, rows) in mine {
                    let src = &input[plane * h * w..(plane + 1) * h * w];
                    filter_band(src, w, taps, first_row, rows, ow, &mut scratch);
                }
            });
        }
    });
    Ok(out)
}

/// Output rows `first_row..` of one plane (`rows` holds whole rows of width `ow`).
fn filter_band(
    src: &[f64],
    w: usize,
    taps: &[f64],
    first_row: usize,
    rows: &mut [f64],
    ow: usize,
    scratch: &mut Vec<f64>,
) {
    let k = taps.len();
    let count = rows.len() / ow;
    // Horizontal pass over the input rows this band needs.
    scratch.clear();
    scratch.resize((count + k - 1) * ow, 0.0);
    for (r, line) in scratch.chunks_mut(ow).enumerate() {
        let input = &src[(first_row + r) * w..(first_row + r + 1) * w];
        for (t, &tap) in taps.iter().enumerate() {
            for (o, &v) in line.iter_mut().zip(&input[t..t + ow]) {
                *o += tap * v;
            }
        }
    }
    // Vertical pass.
    for (r, line) in rows.chunks_mut(ow).enumerate() {
        line.fill(0.0);
        for (t, &tap) in taps.iter().enumerate() {
            for (o, &v) in line.iter_mut().zip(&scratch[(r + t) * ow..(r + t + 1) * ow]) {
                *o += tap * v;
            }
        }
    }
}
