//! Frequency-domain building blocks shared by the metrics that work on spectra (cw_ssim, fsim, vsi, nrqm), as
//! pyiqa 0.1.16 builds them: the inverse spectrum shift, numpy's linear interpolation, pyiqa's centred frequency
//! grid, the levels and the high-pass residual of the complex steerable pyramid (`SCFpyr_PyTorch`, after
//! matlabPyrTools' `buildSCFpyr`) for cw_ssim and nrqm, the log-Gabor phase-congruency bank and phase congruency
//! for fsim, the SDSP log-Gabor for vsi, and the Scharr gradient magnitude and similarity map fsim and vsi both
//! use.
//!
//! Filters that depend only on the image size are built the way pyiqa builds them (on the CPU, in its dtypes:
//! the pyramid masks in float64 rounded through float32, the log-Gabors in float32) and then moved to the
//! images' device.
use crate::error::{Error, Result};
use crate::image::colour::with_fma;
use crate::runtime::{bits_differing, for_each_piece, Probed};
use crate::tensor::{cpu_slice, FreshTensor, FrozenTensor};
use std::f64::consts::PI;
use tch::{Device, Kind, Tensor};

/// `np.fft.ifftshift` over the last two dimensions (zero frequency moved from the centre to the corner, also
/// for odd sides).
pub fn ifftshift2(x: &Tensor) -> Result<Tensor> {
    let s = x.size();
    let (h, w) = (s[s.len() - 2], s[s.len() - 1]);
    Ok(x.f_roll([-(h / 2), -(w / 2)], [-2i64, -1])?)
}

/// `np.interp(x, xp, fp)` for increasing `xp`: clamped to the end values outside, same formula inside.
pub fn interp(x: f64, xp: &[f64], fp: &[f64]) -> f64 {
    let last = xp.len() - 1;
    if x.is_nan() {
        return x;
    }
    if x <= xp[0] {
        return fp[0];
    }
    if x >= xp[last] {
        return fp[last];
    }
    let j = xp.partition_point(|&v| v <= x) - 1;
    let slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
    let y = slope * (x - xp[j]) + fp[j];
    if y.is_nan() {
        slope * (x - xp[j + 1]) + fp[j + 1]
    } else {
        y
    }
}

/// `np.linspace(start, stop, num)`: start + i·step, with the last sample exactly `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    v[num - 1] = stop;
    v
}

/// The steerable pyramid's normalised frequency coordinate along one side of `m` samples (centre at m/2).
fn pyramid_axis(m: i64) -> Vec<f64> {
    let half = (m / 2) as f64 / (m as f64 / 2.0);
    let stop = half - (1 - m % 2) as f64 * 2.0 / m as f64;
    linspace(-half, stop, m as usize)
}

/// The raised-cosine radial transition of the pyramid (matlabPyrTools' `rcosFn(1, -0.5)`), as the
/// abscissae and the square roots of its values, as the pyramid uses them.
fn raised_cosine() -> (Vec<f64>, Vec<f64>) {
    const N: i64 = 256;
    let x0: Vec<f64> = (-N - 1..2).map(|k| PI * k as f64 / 2.0 / N as f64).collect();
    let mut y: Vec<f64> = x0.iter().map(|x| x.cos().powi(2)).collect();
    y[0] = y[1];
    let n = N as usize;
    y[n + 2] = y[n + 1];
    let x = x0.iter().map(|x| -0.5 + 2.0 / PI * (x + PI / 4.0)).collect();
    (x, y.into_iter().map(f64::sqrt).collect())
}

/// Rounds a host filter through float32, as pyiqa's `torch.from_numpy(mask).float()` does.
fn through_f32(v: f64) -> f64 {
    v as f32 as f64
}

/// pyiqa's centred frequency grid of the steerable pyramid for an image of `height`×`width`.
struct PyramidGrid {
    ys: Vec<f64>,
    xs: Vec<f64>,
    centre: (usize, usize),
    centre_radius: f64,
}

impl PyramidGrid {
    fn new(height: i64, width: i64) -> Self {
        let (ys, xs) = (pyramid_axis(height), pyramid_axis(width));
        let (cy, cx) = ((height / 2) as usize, (width / 2) as usize);
        // The DC sample takes its left neighbour's radius so that log2 stays finite.
        let j = if cx > 0 { cx - 1 } else { cx };
        let centre_radius = (xs[j] * xs[j] + ys[cy] * ys[cy]).sqrt();
        PyramidGrid { ys, xs, centre: (cy, cx), centre_radius }
    }

    fn log_radius(&self, i: usize, j: usize) -> f64 {
        let r = if (i, j) == self.centre {
            self.centre_radius
        } else {
            (self.xs[j] * self.xs[j] + self.ys[i] * self.ys[i]).sqrt()
        };
        r.log2()
    }

    fn angle(&self, i: usize, j: usize) -> f64 {
        self.ys[i].atan2(self.xs[j])
    }
}

/// The high-pass residual of pyiqa's complex steerable pyramid (its first coefficient, real) for a batch of
/// gray images (N×H×W float64): N×H×W float64.
pub fn steerable_highpass(images: &Tensor) -> Result<Tensor> {
    let (_, height, width) = images.size3()?;
    let grid = PyramidGrid::new(height, width);
    let (xr, yr) = raised_cosine();
    let mask: Vec<f64> = (0..height as usize)
        .flat_map(|i| (0..width as usize).map(move |j| (i, j)))
        .map(|(i, j)| through_f32(interp(grid.log_radius(i, j), &xr, &yr)))
        .collect();
    // The mask is centred; the spectrum is not: shift the mask instead of the spectrum (both are permutations).
    let mask = ifftshift2(&Tensor::f_from_slice(&mask)?.f_view([1, height, width])?)?.f_to_device(images.device())?;
    let spectrum = images.f_fft_fft2(None::<&[i64]>, [-2i64, -1], "backward")?;
    Ok(spectrum.f_mul(&mask)?.f_fft_ifft2(None::<&[i64]>, [-2i64, -1], "backward")?.f_real()?)
}

/// The real part of [`steerable_bands`]' bands with pyiqa's unit factor (−i)^(nbands−1) applied: an exact swap
/// of real and imaginary parts and a sign.
pub fn steerable_real_parts(bands: &Tensor, nbands: usize) -> Result<Tensor> {
    Ok(match (nbands - 1) % 4 {
        0 => bands.f_real()?,
        1 => bands.f_imag()?,
        2 => bands.f_real()?.f_neg()?,
        _ => bands.f_imag()?.f_neg()?,
    })
}

/// The oriented sub-bands of level `level` (1 = finest) of pyiqa's complex steerable pyramid with `nbands`
/// orientations and scale factor 2, for a batch of gray images (N×H×W float64). Returns N×nbands×h×w
/// complex128, where h×w is the size of that level.
///
/// Only what that level needs is computed: one FFT of the images, the central crop of the shifted spectrum
/// that the recursive halvings keep, the product of the low-pass masks applied on the way down (evaluated
/// only on that crop), then one inverse FFT per band at the level's size. Mathematically identical to
/// building the whole pyramid; the masks are rounded through float32 as in pyiqa.
///
/// The bands omit pyiqa's unit factor (−i)^(nbands−1): it is exact (a swap of real and imaginary parts and a
/// sign) and cancels in every use that takes magnitudes or products with a conjugate, as CW-SSIM does.
pub fn steerable_bands(images: &Tensor, level: usize, nbands: usize) -> Result<Tensor> {
    let size = images.size();
    let (n, height, width) = (size[0], size[1], size[2]);
    // Crops of the centred spectrum: each level keeps ceil((d-0.5)/2) samples, starting here.
    let (mut r0, mut c0, mut h, mut w) = (0i64, 0i64, height, width);
    let start = |d: i64| {
        let d = d as f64;
        ((d + 0.5) / 2.0).ceil() - ((((d - 0.5) / 2.0).ceil() + 0.5) / 2.0).ceil()
    };
    let keep = |d: i64| ((d as f64 - 0.5) / 2.0).ceil() as i64;
    for _ in 1..level {
        r0 += start(h) as i64;
        c0 += start(w) as i64;
        h = keep(h);
        w = keep(w);
    }
    // The full-size grid (log2 radius and angle), evaluated on the kept crop only.
    let grid = PyramidGrid::new(height, width);
    let (xr, yr) = raised_cosine();
    let yir: Vec<f64> = yr.iter().map(|v| (1.0 - v * v).sqrt()).collect();
    let shifted = |by: f64| -> Vec<f64> { xr.iter().map(|x| x - by).collect() };
    // Angular profile: cos^(nbands-1) over half a turn, normalised as in buildSCFpyr.
    const LUT: i64 = 1024;
    let xcosn: Vec<f64> = (-(2 * LUT + 1)..LUT + 2).map(|k| PI * k as f64 / LUT as f64).collect();
    let order = (nbands - 1) as i32;
    let factorial = |k: i32| (1..=k).map(f64::from).product::<f64>();
    let constant = 2f64.powi(2 * order) * factorial(order).powi(2) / (nbands as f64 * factorial(2 * order));
    let ycosn: Vec<f64> = xcosn
        .iter()
        .map(|&x| {
            let alpha = (x + PI).rem_euclid(2.0 * PI) - PI;
            let inside = if alpha.abs() < PI / 2.0 { 1.0 } else { 0.0 };
            2.0 * constant.sqrt() * x.cos().powf(order as f64) * inside
        })
        .collect();
    let (hu, wu) = (h as usize, w as usize);
    let mut masks = vec![0f64; nbands * hu * wu];
    let lowpass_x: Vec<Vec<f64>> = (0..level).map(|l| shifted(l as f64)).collect();
    let highpass_x = shifted(level as f64);
    let band_x: Vec<Vec<f64>> =
        (0..nbands).map(|b| xcosn.iter().map(|x| x + PI * b as f64 / nbands as f64).collect()).collect();
    for i in 0..hu {
        for j in 0..wu {
            let (gi, gj) = (r0 as usize + i, c0 as usize + j);
            let (log_rad, angle) = (grid.log_radius(gi, gj), grid.angle(gi, gj));
            // lo0mask, then the low-pass of every level above this one.
            let mut m: f64 = lowpass_x.iter().map(|xp| through_f32(interp(log_rad, xp, &yir))).product();
            m *= through_f32(interp(log_rad, &highpass_x, &yr));
            for (b, xp) in band_x.iter().enumerate() {
                masks[(b * hu + i) * wu + j] = m * through_f32(interp(angle, xp, &ycosn));
            }
        }
    }
    let masks = Tensor::f_from_slice(&masks)?.f_view([1, nbands as i64, h, w])?.f_to_device(images.device())?;
    // The kept crop of the centred (fftshifted) spectrum, gathered from the unshifted one: only the crop is
    // copied, not the whole spectrum.
    let spectrum = images.f_fft_fft2(None::<&[i64]>, [-2i64, -1], "backward")?;
    let centred = |start: i64, len: i64, side: i64| -> Result<Tensor> {
        let idx: Vec<i64> = (start..start + len).map(|i| (i - side / 2).rem_euclid(side)).collect();
        Ok(Tensor::f_from_slice(&idx)?.f_to_device(images.device())?)
    };
    let kept = spectrum
        .f_index_select(1, &centred(r0, h, height)?)?
        .f_index_select(2, &centred(c0, w, width)?)?
        .f_view([n, 1, h, w])?;
    let bands = kept.f_mul(&masks)?;
    Ok(ifftshift2(&bands)?.f_fft_ifft2(None::<&[i64]>, [-2i64, -1], "backward")?)
}

/// MATLAB's `fspecial('gaussian', [rows cols], sigma)` as pyiqa builds it (taps below eps·max set to zero,
/// normalised), rounded through float32 like pyiqa's window, as a rows×cols float64 tensor.
pub fn gaussian_window_f32(rows: i64, cols: i64, sigma: f64, device: Device) -> Result<Tensor> {
    let (m, n) = ((rows as f64 - 1.0) / 2.0, (cols as f64 - 1.0) / 2.0);
    let mut g: Vec<f64> = (0..rows)
        .flat_map(|i| {
            let y = i as f64 - m;
            (0..cols).map(move |j| {
                let x = j as f64 - n;
                (-(x * x + y * y) / (2.0 * sigma * sigma)).exp()
            })
        })
        .collect();
    let max = g.iter().cloned().fold(0.0, f64::max);
    for v in g.iter_mut() {
        if *v < f64::EPSILON * max {
            *v = 0.0;
        }
    }
    let sum: f64 = g.iter().sum();
    let g: Vec<f64> = g.into_iter().map(|v| through_f32(if sum != 0.0 { v / sum } else { v })).collect();
    Ok(Tensor::f_from_slice(&g)?.f_view([rows, cols])?.f_to_kind(Kind::Double)?.f_to_device(device)?)
}

/// pyiqa's `get_meshgrid`: float32 coordinates centred on zero, spaced 1/n for even sides and 1/(n−1) for odd
/// ones (so that odd sides span exactly ±0.5), as `(rows, cols)` grids of rows×cols ('ij' indexing), on the
/// CPU where pyiqa builds its filters.
pub fn centred_grid(rows: i64, cols: i64) -> Result<(Tensor, Tensor)> {
    let axis = |n: i64| -> Result<Tensor> {
        let opts = (Kind::Float, Device::Cpu);
        Ok(if n % 2 == 1 {
            Tensor::f_arange_start(-(n as f64 - 1.0) / 2.0, n as f64 / 2.0, opts)?.f_div_scalar((n - 1) as f64)?
        } else {
            Tensor::f_arange_start(-(n as f64) / 2.0, n as f64 / 2.0, opts)?.f_div_scalar(n as f64)?
        })
    };
    let grids = Tensor::f_meshgrid_indexing(&[axis(rows)?, axis(cols)?], "ij")?;
    Ok((grids[0].shallow_clone(), grids[1].shallow_clone()))
}

/// The x kernel of pyiqa's normalised Scharr pair (row-major, before its division by 16 in float32); the y
/// kernel is its transpose.
const SCHARR_X: [f32; 9] = [-3.0, 0.0, 3.0, -10.0, 0.0, 10.0, -3.0, 0.0, 3.0];

/// Per-pixel gradient magnitude of every image of an N×1×H×W batch with the normalised 3×3 Scharr pair
/// (zero padding, pyiqa's `gradient_map`): sqrt(gx² + gy² + eps of the dtype).
pub fn scharr_magnitude(x: &Tensor) -> Result<Tensor> {
    Ok(scharr_sums_libtorch(x)?.f_add_scalar(machine_eps(x.kind()))?.f_sqrt()?)
}

/// gx² + gy² of an N×1×H×W batch through libtorch's convolution (N×1×H×W).
fn scharr_sums_libtorch(x: &Tensor) -> Result<Tensor> {
    let kx = Tensor::f_from_slice(&SCHARR_X)?.f_view([1, 3, 3])?.f_div_scalar(16.0)?;
    let kernels = Tensor::f_stack(&[kx.shallow_clone(), kx.f_transpose(-1, -2)?], 0)?
        .f_to_kind(x.kind())?
        .f_to_device(x.device())?;
    let grads = x.f_conv2d(&kernels, None::<&Tensor>, [1, 1], [1, 1], [1, 1], 1)?;
    Ok(grads.f_square()?.f_sum_dim_intlist(&[-3i64][..], true, None::<Kind>)?)
}

/// [`scharr_magnitude`] of channel `channel` of a pixel-major float64 CPU batch (N×H×W×C, contiguous), as
/// libtorch computes it for that channel's N×1×H×W view: or `None` where a probe found that this CPU's BLAS sums
/// the taps otherwise. libtorch filters float64 by im2col and dgemm, which (MKL on x86-64 with FMA) sums each
/// gradient as a chain of fused multiply-adds over the nine taps in order; iqa does so in one pass, and leaves
/// the square root to libtorch, whose float64 root (MKL's) is not always the correctly rounded one.
pub fn scharr_magnitude_pixel_major(x: &Tensor, channel: usize) -> Result<Option<Tensor>> {
    let (n, h, w, c) = x.size4()?;
    let key = (h as usize, w as usize, c as usize, channel);
    static FOUND: Probed<(usize, usize, usize, usize), bool> = Probed::new();
    if !FOUND.get_or_probe(key, || probe_scharr(key).unwrap_or(false)) {
        return Ok(None);
    }
    Ok(Some(scharr_sums(x, channel)?.f_add_scalar(f64::EPSILON)?.f_sqrt()?.f_view([n, 1, h, w])?))
}

/// gx² + gy² of channel `channel` of an N×H×W×C float64 CPU batch, N·H×W.
fn scharr_sums(x: &Tensor, channel: usize) -> Result<Tensor> {
    let (n, h, w, c) = x.size4()?;
    let (h, w, c) = (h as usize, w as usize, c as usize);
    let values = cpu_slice::<f64>(x)?;
    let taps_x = SCHARR_X.map(|t| (t / 16.0) as f64);
    let taps_y: [f64; 9] = std::array::from_fn(|i| taps_x[(i % 3) * 3 + i / 3]);
    let mut out = FreshTensor::<f64>::empty(&[n * h as i64, w as i64])?;
    for_each_piece(out.as_mut_slice(), w, |row, line| {
        let (image, y) = (row / h, row % h);
        let plane = &values[image * h * w * c..(image + 1) * h * w * c];
        scharr_row(plane, (h, w, c, channel), y, &taps_x, &taps_y, line);
    });
    Ok(out.into_tensor())
}

with_fma! {
    /// Row `y` of [`scharr_sums`] for one image (`plane`: H×W×C, `shape`: (H, W, C, channel)).
    fn scharr_row / scharr_row_fma(
        plane: &[f64],
        shape: (usize, usize, usize, usize),
        y: usize,
        taps_x: &[f64; 9],
        taps_y: &[f64; 9],
        line: &mut [f64]
    ) {
        let (h, w, c, channel) = shape;
        let at = |yy: usize, xx: usize| plane[(yy * w + xx) * c + channel];
        for (x, out) in line.iter_mut().enumerate() {
            let (mut gx, mut gy) = (0.0f64, 0.0f64);
            for t in 0..9 {
                let (yy, xx) = ((y + t / 3).wrapping_sub(1), (x + t % 3).wrapping_sub(1));
                // Zero padding: libtorch's im2col column holds 0 there, and the tap still adds 0·tap.
                let v = if yy < h && xx < w { at(yy, xx) } else { 0.0 };
                gx = taps_x[t].mul_add(v, gx);
                gy = taps_y[t].mul_add(v, gy);
            }
            *out = gx * gx + gy * gy;
        }
    }
}

/// Whether [`scharr_sums`] gives libtorch's sums to the bit for batches of this (H, W, C, channel) on this
/// CPU, on hashed values with flat patches.
fn probe_scharr((h, w, c, channel): (usize, usize, usize, usize)) -> Result<bool> {
    let values: Vec<f64> = (0..h * w * c)
        .map(|i| match (i / (w * c)) % 5 {
            1 => 40.0,
            _ => ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 44) as f64 / 97.0 - 20.0,
        })
        .collect();
    let x = Tensor::f_from_slice(&values)?.f_view([1, h as i64, w as i64, c as i64])?;
    let theirs = scharr_sums_libtorch(&x.f_permute([0, 3, 1, 2])?.f_narrow(1, channel as i64, 1)?)?.f_contiguous()?;
    let ours = scharr_sums(&x, channel)?;
    Ok(bits_differing(cpu_slice::<f64>(&ours)?, cpu_slice::<f64>(&theirs)?) == 0)
}

/// Machine epsilon of a floating dtype (torch.finfo(kind).eps).
pub fn machine_eps(kind: Kind) -> f64 {
    match kind {
        Kind::Double => f64::EPSILON,
        _ => f32::EPSILON as f64,
    }
}

/// pyiqa's `similarity_map` with alpha = 0: (2xy + c) / (x² + y² + c + eps32), in the inputs' dtype.
pub fn similarity_map(x: &Tensor, y: &Tensor, c: f64) -> Result<Tensor> {
    // pyiqa subtracts alpha·x·y (= 0 exactly here) from both sides; skipped as it changes nothing.
    let num = x.f_mul_scalar(2.0)?.f_mul(y)?.f_add_scalar(c)?;
    let den = x.f_square()?.f_add(&y.f_square()?)?.f_add_scalar(c)?.f_add_scalar(f32::EPSILON as f64)?;
    Ok(num.f_div(&den)?)
}

/// The log-Gabor phase-congruency filter bank of FSIM (Kovesi's phasecong2 as pyiqa builds it), for
/// rows×cols spectra with zero frequency at the corner: `orientations`·`scales` float32 filters, index
/// o·scales + s, each an angular Gaussian times a radial log-Gabor (wavelength `min_length`·`mult`^s,
/// bandwidth ratio `sigma_f`) times a Butterworth low-pass (cutoff 0.45, order 15). Built on the CPU.
pub struct PhaseCongruency {
    pub scales: i64,
    pub orientations: i64,
    pub min_length: f64,
    pub mult: f64,
    pub sigma_f: f64,
    pub delta_theta: f64,
    /// Noise threshold in standard deviations of the noise energy.
    pub k: f64,
}

/// A [`PhaseCongruency`] filter bank for one image size, on one device, with the per-orientation sums of
/// the noise model that depend on the filters only (1×orientations×1×1×1 each).
pub struct FilterBank {
    size: (i64, i64),
    device: Device,
    filters: FrozenTensor,
    /// Σ over the spectrum of the smallest-scale filter squared.
    smallest_energy: FrozenTensor,
    /// Σ over space of every scale's spatial response squared.
    sum_an2: FrozenTensor,
    /// Σ over space of the products of the spatial responses of every pair of scales.
    sum_ai_aj: FrozenTensor,
}

impl FilterBank {
    /// Whether it serves rows×cols images on `device`.
    pub fn fits(&self, rows: i64, cols: i64, device: Device) -> bool {
        self.size == (rows, cols) && self.device == device
    }
}

impl PhaseCongruency {
    /// The filter bank for rows×cols, as 1×(orientations·scales)×rows×cols float32 on the CPU.
    fn filters(&self, rows: i64, cols: i64) -> Result<Tensor> {
        self.log_gabor_bank(rows, cols, true)
    }

    /// The bank for rows×cols (1×(orientations·scales)×rows×cols float32 on the CPU, index o·scales + s), with
    /// or without the Butterworth low-pass (pyiqa's `_construct_filters(use_lowpass_filter=…)`; IL-NIQE builds
    /// it without).
    pub fn log_gabor_bank(&self, rows: i64, cols: i64, lowpass: bool) -> Result<Tensor> {
        let theta_sigma = PI / (self.orientations as f64 * self.delta_theta);
        let (gx, gy) = centred_grid(rows, cols)?;
        let radius = gx.f_square()?.f_add(&gy.f_square()?)?.f_sqrt()?;
        let theta = ifftshift2(&gy.f_neg()?.f_atan2(&gx)?)?;
        // Butterworth low-pass 1 / (1 + (r/0.45)^30), keeping the log-Gabors off the spectrum's corners.
        let lowpass_filter =
            ifftshift2(&radius.f_div_scalar(0.45)?.f_pow_tensor_scalar(30i64)?.f_add_scalar(1.0)?.f_reciprocal()?)?;
        // Radius with the zero frequency (now at [0, 0]) set to 1 so that its log is finite.
        let radius = ifftshift2(&radius)?;
        let _ = radius.f_get(0)?.f_get(0)?.f_fill_(1.0)?;
        let log_sigma2 = 2.0 * self.sigma_f.ln().powi(2);
        let mut radial = Vec::with_capacity(self.scales as usize);
        for s in 0..self.scales {
            let omega0 = 1.0 / (self.min_length * self.mult.powi(s as i32));
            let lg = radius.f_div_scalar(omega0)?.f_log()?.f_square()?.f_neg()?.f_div_scalar(log_sigma2)?.f_exp()?;
            let lg = if lowpass { lg.f_mul(&lowpass_filter)? } else { lg };
            let _ = lg.f_get(0)?.f_get(0)?.f_fill_(0.0)?;
            radial.push(lg);
        }
        let (sin, cos) = (theta.f_sin()?, theta.f_cos()?);
        let mut bank = Vec::with_capacity((self.scales * self.orientations) as usize);
        for o in 0..self.orientations {
            let angle = o as f64 * PI / self.orientations as f64;
            // Angular distance to this orientation, through atan2 of the sine and cosine differences so
            // that it wraps correctly.
            let ds = sin.f_mul_scalar(angle.cos())?.f_sub(&cos.f_mul_scalar(angle.sin())?)?;
            let dc = cos.f_mul_scalar(angle.cos())?.f_add(&sin.f_mul_scalar(angle.sin())?)?;
            let dtheta = ds.f_atan2(&dc)?.f_abs()?;
            let spread = dtheta.f_square()?.f_neg()?.f_div_scalar(2.0 * theta_sigma.powi(2))?.f_exp()?;
            for lg in &radial {
                bank.push(spread.f_mul(lg)?);
            }
        }
        Ok(Tensor::f_stack(&bank, 0)?.f_unsqueeze(0)?)
    }

    /// The filters for rows×cols images on `device`, and what the noise estimate needs of them: everything
    /// that depends on the size only, so that a caller can keep it for the next image of that size.
    pub fn bank(&self, rows: i64, cols: i64, device: Device) -> Result<FilterBank> {
        let (o, s) = (self.orientations, self.scales);
        let filters = self.filters(rows, cols)?.f_to_device(device)?;
        let dims = [-2i64, -1];
        let smallest_energy = filters.f_view([1, o, s, rows, cols])?.f_narrow(2, 0, 1)?.f_square()?.f_sum_dim_intlist(
            &dims[..],
            true,
            None::<Kind>,
        )?;
        // The filters' spatial responses, scaled by sqrt(H·W), as pyiqa's noise model uses them.
        let spatial = filters
            .f_fft_ifft2(None::<&[i64]>, dims, "backward")?
            .f_real()?
            .f_mul_scalar(((rows * cols) as f64).sqrt())?
            .f_view([1, o, s, rows, cols])?;
        let sum_an2 = spatial.f_square()?.f_sum_dim_intlist(&[-3i64][..], true, None::<Kind>)?;
        let mut sum_ai_aj = Tensor::f_zeros([1, o, 1, rows, cols], (spatial.kind(), device))?;
        for sc in 0..s - 1 {
            let pair = spatial.f_narrow(2, sc, 1)?.f_mul(&spatial.f_narrow(2, sc + 1, s - sc - 1)?)?;
            sum_ai_aj = sum_ai_aj.f_add(&pair.f_sum_dim_intlist(&[-3i64][..], true, None::<Kind>)?)?;
        }
        let over_space = |t: &Tensor| t.f_sum_dim_intlist(&[-1i64, -2][..], true, None::<Kind>);
        Ok(FilterBank {
            size: (rows, cols),
            device,
            filters: FrozenTensor::new(filters),
            smallest_energy: FrozenTensor::new(smallest_energy),
            sum_an2: FrozenTensor::new(over_space(&sum_an2)?),
            sum_ai_aj: FrozenTensor::new(over_space(&sum_ai_aj)?),
        })
    }

    /// Phase congruency (PC₂ with Kovesi's noise compensation) of every image of an N×1×H×W float32 batch,
    /// as N×1×H×W, with the bank for H×W from [`Self::bank`] on the batch's device.
    pub fn compute(&self, x: &Tensor, bank: &FilterBank) -> Result<Tensor> {
        let size = x.size();
        let (n, h, w) = (size[0], size[2], size[3]);
        if !bank.fits(h, w, x.device()) {
            return Err(Error::invalid(format!("phase-congruency filter bank for {:?}, images {h}x{w}", bank.size)));
        }
        let responses = responses(x, bank)?;
        if x.device() == Device::Cpu && x.kind() == Kind::Float {
            self.combine_cpu(&responses, bank, (n, h, w))
        } else {
            self.combine(&responses, bank, (n, h, w))
        }
    }

    /// The noise threshold of every image and orientation (N×O×1×1×1) from the median squared amplitude of
    /// its smallest-scale response (N×O×1×1×1): under Gaussian noise that amplitude is Rayleigh-distributed,
    /// and the noise energy of the summed scales follows from the filters' own energies.
    fn noise_threshold(&self, median: &Tensor, bank: &FilterBank) -> Result<Tensor> {
        let mean_e2n = median.f_neg()?.f_div_scalar(0.5f64.ln())?;
        let noise_power = mean_e2n.f_div(&bank.smallest_energy)?;
        let noise_energy2 = noise_power
            .f_mul_scalar(2.0)?
            .f_mul(&bank.sum_an2)?
            .f_add(&noise_power.f_mul_scalar(4.0)?.f_mul(&bank.sum_ai_aj)?)?;
        let tau = noise_energy2.f_div_scalar(2.0)?.f_sqrt()?;
        let noise_energy = tau.f_mul_scalar((PI / 2.0).sqrt())?;
        let noise_sigma = tau.f_square()?.f_mul_scalar(2.0 - PI / 2.0)?.f_sqrt()?;
        // k sigmas above the mean; /1.7 is Kovesi's empirical rescaling for the PC₂ measure.
        Ok(noise_energy.f_add(&noise_sigma.f_mul_scalar(self.k)?)?.f_div_scalar(1.7)?)
    }

    /// Phase congruency from the filter responses in libtorch operations, pyiqa's sequence (any device).
    pub(crate) fn combine(&self, responses: &Tensor, bank: &FilterBank, (n, h, w): (i64, i64, i64)) -> Result<Tensor> {
        let (o, s) = (self.orientations, self.scales);
        let eps = machine_eps(responses.f_real()?.kind());
        let even_odd = responses.f_view_as_real()?.f_view([n, o, s, h, w, 2])?;
        let sum_last = |t: &Tensor| t.f_sum_dim_intlist(&[-1i64][..], false, None::<Kind>);
        let amplitude = sum_last(&even_odd.f_square()?)?.f_sqrt()?;
        let even = even_odd.f_select(-1, 0)?;
        let odd = even_odd.f_select(-1, 1)?;
        let sum_e = even.f_sum_dim_intlist(&[2i64][..], true, None::<Kind>)?;
        let sum_o = odd.f_sum_dim_intlist(&[2i64][..], true, None::<Kind>)?;
        let x_energy = sum_e.f_square()?.f_add(&sum_o.f_square()?)?.f_sqrt()?.f_add_scalar(eps)?;
        let mean_e = sum_e.f_div(&x_energy)?;
        let mean_o = sum_o.f_div(&x_energy)?;
        let energy = even
            .f_mul(&mean_e)?
            .f_add(&odd.f_mul(&mean_o)?)?
            .f_sub(&even.f_mul(&mean_o)?.f_sub(&odd.f_mul(&mean_e)?)?.f_abs()?)?
            .f_sum_dim_intlist(&[2i64][..], true, None::<Kind>)?;
        let abs_eo = sum_last(&even_odd.f_narrow(2, 0, 1)?.f_square()?)?.f_sqrt()?.f_reshape([n, o, 1, 1, h * w])?;
        let median = abs_eo.f_square()?.f_median_dim(-1, true)?.0;
        let threshold = self.noise_threshold(&median, bank)?;
        let energy = energy.f_sub(&threshold)?.f_clamp_min(0.0)?;
        let energy_all = energy.f_sum_dim_intlist(&[1i64, 2][..], false, None::<Kind>)?.f_add_scalar(eps)?;
        let an_all = amplitude.f_sum_dim_intlist(&[1i64, 2][..], false, None::<Kind>)?.f_add_scalar(eps)?;
        Ok(energy_all.f_div(&an_all)?.f_unsqueeze(1)?)
    }

    /// [`Self::combine`] for float32 on the CPU in two passes over the responses (libtorch needed some twenty
    /// full-size passes, most of FSIM's time): the same float32 operations per pixel and the median as libtorch
    /// takes it (the lower middle value). Not bit for bit: libtorch's float32 sqrt (MKL's vector routine)
    /// is not always correctly rounded, and its 16-term sums over orientations and scales switch to four
    /// interleaved partial sums at the end of each vectorised stretch (where that falls depends on the CPU's
    /// vector width and the thread split); here sqrt is exact and sums are sequential. Tested within 1e-6 of
    /// `combine`; FSIM scores stay within 1e-6 relative of pyiqa's.
    pub(crate) fn combine_cpu(
        &self,
        responses: &Tensor,
        bank: &FilterBank,
        (n, h, w): (i64, i64, i64),
    ) -> Result<Tensor> {
        let (o, s, hw) = (self.orientations as usize, self.scales as usize, (h * w) as usize);
        let responses = responses.f_contiguous()?;
        // N·O·S·H·W (re, im) pairs.
        let pairs = responses.f_view_as_real()?;
        let values = cpu_slice::<f32>(&pairs)?;

        // Pass 1: the median squared amplitude of the smallest scale, per image and orientation.
        let mut medians = vec![0f32; n as usize * o];
        for_each_piece(&mut medians, 1, |plane, median| {
            let smallest = &values[plane * s * hw * 2..][..hw * 2];
            let mut squares: Vec<f32> = smallest
                .chunks_exact(2)
                .map(|c| {
                    let amplitude = (c[0] * c[0] + c[1] * c[1]).sqrt();
                    amplitude * amplitude
                })
                .collect();
            median[0] = lower_median(&mut squares);
        });
        let median = Tensor::f_from_slice(&medians)?.f_view([n, o as i64, 1, 1, 1])?;
        let threshold = self.noise_threshold(&median, bank)?.f_contiguous()?;
        let threshold: Vec<f32> = Vec::<f32>::try_from(threshold.f_flatten(0, -1)?)?;

        // Pass 2: energy and amplitude sums per pixel, a row at a time in blocks of pixels.
        let mut out = FreshTensor::<f32>::empty(&[n, 1, h, w])?;
        let output = out.as_mut_slice();
        const BLOCK: usize = 256;
        let eps = f32::EPSILON;
        let (h, w) = (h as usize, w as usize);
        for_each_piece(output, w, |row, row_out| {
            let image = row / h;
            let mut energy_all = [0f32; BLOCK];
            let mut amplitude_all = [0f32; BLOCK];
            let (mut sum_e, mut sum_o) = ([0f32; BLOCK], [0f32; BLOCK]);
            let mut energy = [0f32; BLOCK];
            for (b, pc) in row_out.chunks_mut(BLOCK).enumerate() {
                let (first, len) = ((row % h) * w + b * BLOCK, pc.len());
                energy_all[..len].fill(0.0);
                amplitude_all[..len].fill(0.0);
                for orientation in 0..o {
                    let band = |scale: usize| {
                        let start = (((image * o + orientation) * s + scale) * hw + first) * 2;
                        &values[start..start + 2 * len]
                    };
                    sum_e[..len].fill(0.0);
                    sum_o[..len].fill(0.0);
                    for scale in 0..s {
                        let eo = band(scale);
                        for p in 0..len {
                            let (e, od) = (eo[2 * p], eo[2 * p + 1]);
                            sum_e[p] += e;
                            sum_o[p] += od;
                            amplitude_all[p] += (e * e + od * od).sqrt();
                        }
                    }
                    // The mean phase direction, in place of the sums.
                    for p in 0..len {
                        let x_energy = (sum_e[p] * sum_e[p] + sum_o[p] * sum_o[p]).sqrt() + eps;
                        (sum_e[p], sum_o[p]) = (sum_e[p] / x_energy, sum_o[p] / x_energy);
                    }
                    let (mean_e, mean_o) = (&sum_e, &sum_o);
                    energy[..len].fill(0.0);
                    for scale in 0..s {
                        let eo = band(scale);
                        for p in 0..len {
                            let (e, od) = (eo[2 * p], eo[2 * p + 1]);
                            energy[p] += (e * mean_e[p] + od * mean_o[p]) - (e * mean_o[p] - od * mean_e[p]).abs();
                        }
                    }
                    let t = threshold[image * o + orientation];
                    for p in 0..len {
                        let above = energy[p] - t;
                        // clamp_min(0) keeps NaN, as libtorch's does.
                        energy_all[p] += if above < 0.0 { 0.0 } else { above };
                    }
                }
                for p in 0..len {
                    pc[p] = (energy_all[p] + eps) / (amplitude_all[p] + eps);
                }
            }
        });
        Ok(out.into_tensor())
    }
}

/// The even (real) and odd (imaginary) responses of every filter of `bank` to every image of N×1×H×W:
/// N×(O·S)×H×W complex.
pub(crate) fn responses(x: &Tensor, bank: &FilterBank) -> Result<Tensor> {
    let dims = [-2i64, -1];
    let spectrum = x.f_fft_fft2(None::<&[i64]>, dims, "backward")?;
    Ok(spectrum.f_mul(&bank.filters)?.f_fft_ifft2(None::<&[i64]>, dims, "backward")?)
}

/// The lower of the two middle values (the middle one for odd lengths), NaN if any value is NaN: what
/// libtorch's `median(dim)` returns.
fn lower_median(values: &mut [f32]) -> f32 {
    if values.iter().any(|v| v.is_nan()) {
        return f32::NAN;
    }
    let mid = (values.len() - 1) / 2;
    *values.select_nth_unstable_by(mid, f32::total_cmp).1
}

/// The radial log-Gabor filter of SDSP saliency (VSI) for a rows×cols spectrum with zero frequency at the
/// corner: exp(−log²(r/ω₀) / (2σ_f²)) inside radius 0.5 of pyiqa's centred grid, zero outside and at DC.
/// Built in float32 on the CPU as pyiqa builds it.
pub fn log_gabor(rows: i64, cols: i64, omega0: f64, sigma_f: f64) -> Result<Tensor> {
    let (gx, gy) = centred_grid(rows, cols)?;
    let radius = gx.f_square()?.f_add(&gy.f_square()?)?.f_sqrt()?;
    let inside = radius.f_le(0.5)?;
    let r = ifftshift2(&radius.f_mul(&inside)?)?;
    let _ = r.f_get(0)?.f_get(0)?.f_fill_(1.0)?;
    let lg = r.f_div_scalar(omega0)?.f_log()?.f_square()?.f_neg()?.f_div_scalar(2.0 * sigma_f * sigma_f)?.f_exp()?;
    let _ = lg.f_get(0)?.f_get(0)?.f_fill_(0.0)?;
    Ok(lg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the probe takes the fast path, iqa's Scharr magnitudes of a pixel-major batch's channel are
    /// libtorch's to the bit, at the shapes VSI gives, odd ones, and images so small that every pixel touches the
    /// zero padding. (Whether it takes it depends on the dgemm kernel MKL picks for the probe's convolution,
    /// which a fresh-clone CI run showed can differ between runs under parallel tests; the fallback is
    /// libtorch's own.)
    #[test]
    fn scharr_magnitude_pixel_major_equals_libtorch() {
        for (n, h, w, channel) in [(2, 192, 256, 0), (4, 37, 50, 0), (2, 1, 1, 0), (2, 2, 3, 1), (2, 270, 481, 2)] {
            let len = (n * h * w * 3) as u64;
            let values: Vec<f64> =
                (0..len).map(|i| ((i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f64) / 1e5 - 60.0).collect();
            let x = Tensor::from_slice(&values).view([n, h, w, 3]);
            let Some(ours) = scharr_magnitude_pixel_major(&x, channel as usize).unwrap() else { continue };
            let theirs = scharr_magnitude(&x.permute([0, 3, 1, 2]).narrow(1, channel, 1)).unwrap().contiguous();
            assert_eq!(ours.size(), [n, 1, h, w]);
            let (ours, theirs) = (cpu_slice::<f64>(&ours).unwrap(), cpu_slice::<f64>(&theirs).unwrap());
            assert_eq!(bits_differing(ours, theirs), 0, "{n}x{h}x{w}, channel {channel}");
        }
    }
}
