//! MATLAB-compatible filter kernels.
use crate::error::Result;
use crate::image::colour::with_target_feature;
use crate::tensor::{cpu_slice, FreshTensor};
use tch::{Device, Kind, Tensor};

/// Elements of one 1×1×H×W float32 input above which libtorch runs a 3×3 or smaller convolution through
/// oneDNN (its `use_mkldnn` rule); at or below, im2col and BLAS, which sum the taps in another order.
pub const ONEDNN_MIN_ELEMENTS: usize = 20481;

/// Whether libtorch runs the convolution of one 1×1×H×W float32 CPU input of `elements` values with one
/// `side`×`side` filter through oneDNN: kernels larger than 3×3 always, smaller ones above
/// [`ONEDNN_MIN_ELEMENTS`] (libtorch's `use_mkldnn`, with multi-threaded or non-1×1 kernels).
pub fn runs_on_onednn(elements: usize, side: usize) -> bool {
    side > 3 || elements >= ONEDNN_MIN_ELEMENTS
}

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
/// filters a band of output rows of one plane, horizontally into a band of its own, then vertically. The sum
/// order per output pixel is fixed (taps in order), so results do not depend on the thread count.
pub fn separable_valid_cpu(x: &Tensor, taps: &[f64]) -> Result<Tensor> {
    let k = taps.len();
    valid_filter_cpu(x, k, |src, w, first_row, rows, ow| filter_band(src, w, taps, first_row, rows, ow))
}

/// 'valid' 2-D cross-correlation (what conv2d computes) of every plane of an N×C×H×W float64 CPU tensor with
/// one k×k kernel (`kernel`, row-major), in plain loops like [`separable_valid_cpu`]. libtorch convolves
/// float64 through im2col: a k²×H×W buffer (77 MB for NIQE's 7×7 window on 512×384) allocated, and faulted
/// in page by page, on every call.
pub fn correlate_valid_cpu(x: &Tensor, kernel: &[f64], k: usize) -> Result<Tensor> {
    assert_eq!(kernel.len(), k * k, "a k×k kernel");
    valid_filter_cpu(x, k, |src, w, first_row, rows, ow| {
        for (r, line) in rows.chunks_mut(ow).enumerate() {
            line.fill(0.0);
            for (ky, taps) in kernel.chunks_exact(k).enumerate() {
                let input = &src[(first_row + r + ky) * w..(first_row + r + ky + 1) * w];
                for (kx, &tap) in taps.iter().enumerate() {
                    for (o, &v) in line.iter_mut().zip(&input[kx..kx + ow]) {
                        *o += tap * v;
                    }
                }
            }
        }
        Ok(())
    })
}

/// Runs `band(plane input, width, first output row, output rows, output width)` over bands of output
/// rows of every plane of a float64 CPU tensor, on libtorch's thread count, for a k×k 'valid' filter.
fn valid_filter_cpu<F>(x: &Tensor, k: usize, band: F) -> Result<Tensor>
where
    F: Fn(&[f64], usize, usize, &mut [f64], usize) -> Result<()> + Sync,
{
    let size = x.size();
    let (n, c, h, w) = (size[0], size[1], size[2] as usize, size[3] as usize);
    if h < k || w < k {
        return Err(crate::error::Error::shape(format!("{w}x{h} is smaller than the {k}x{k} window")));
    }
    let (oh, ow) = (h - k + 1, w - k + 1);
    let x = x.f_contiguous()?;
    let input = cpu_slice::<f64>(&x)?;
    let mut out = FreshTensor::<f64>::empty(&[n, c, oh as i64, ow as i64])?;
    let output = out.as_mut_slice();

    // Bands of output rows of one plane at a time, enough of them to keep every thread busy.
    let band_rows = oh.div_ceil(crate::runtime::worker_threads()).max(16);
    for (plane, out_plane) in output.chunks_mut(oh * ow).enumerate() {
        let src = &input[plane * h * w..(plane + 1) * h * w];
        crate::runtime::try_for_each_piece(out_plane, band_rows * ow, |i, rows| band(src, w, i * band_rows, rows, ow))?;
    }
    Ok(out.into_tensor())
}

with_target_feature! {
    "avx512f" / "avx2",
    /// Output rows `first_row..` of one plane (`rows` holds whole rows of width `ow`), with 512-bit (else 256-bit)
    /// vectors where the CPU has them. Fails only where memory for the band's horizontal pass is short.
    pub(crate) fn filter_band / filter_band_avx512 / filter_band_avx2(
        src: &[f64],
        w: usize,
        taps: &[f64],
        first_row: usize,
        rows: &mut [f64],
        ow: usize
    ) -> Result<()> {
        let k = taps.len();
        let count = rows.len() / ow;
        // Horizontal pass over the input rows this band needs.
        let mut horizontal = crate::runtime::zeroed((count + k - 1) * ow, "a filter band")?;
        for (r, line) in horizontal.chunks_mut(ow).enumerate() {
            let input = &src[(first_row + r) * w..(first_row + r + 1) * w];
            weighted_sums(line, taps, |t| &input[t..t + ow]);
        }
        // Vertical pass.
        for (r, line) in rows.chunks_mut(ow).enumerate() {
            weighted_sums(line, taps, |t| &horizontal[(r + t) * ow..(r + t + 1) * ow]);
        }
        Ok(())
    }
}

/// `out[o] = Σ_t taps[t]·term(t)[o]`, each sum from 0 in tap order with separate multiplies and adds (the
/// order libtorch's convolution sums in), computed for [`LANES`] outputs at a time in registers: the same
/// values as tap-by-tap passes over `out`, without storing and reloading `out` for every tap.
#[inline(always)]
pub(crate) fn weighted_sums<'t>(out: &mut [f64], taps: &[f64], term: impl Fn(usize) -> &'t [f64]) {
    // The terms cut to the output's length (so that the loops below need no bounds checks), on the stack for
    // windows of up to 32 taps: this runs once per row.
    const STACK: usize = 32;
    let (mut stack, heap): ([&[f64]; STACK], Vec<&[f64]>);
    let terms: &[&[f64]] = if taps.len() <= STACK {
        stack = [&[]; STACK];
        for (t, slot) in stack.iter_mut().enumerate().take(taps.len()) {
            *slot = &term(t)[..out.len()];
        }
        &stack[..taps.len()]
    } else {
        heap = (0..taps.len()).map(|t| &term(t)[..out.len()]).collect();
        &heap
    };
    let blocks = out.len() / LANES * LANES;
    for (b, block) in out[..blocks].chunks_exact_mut(LANES).enumerate() {
        let mut acc = [0f64; LANES];
        for (&tap, row) in taps.iter().zip(terms) {
            let v: &[f64; LANES] = row[b * LANES..(b + 1) * LANES].try_into().expect("a block");
            for (a, &v) in acc.iter_mut().zip(v) {
                *a += tap * v;
            }
        }
        block.copy_from_slice(&acc);
    }
    for (o, out) in out.iter_mut().enumerate().skip(blocks) {
        *out = 0.0;
        for (&tap, row) in taps.iter().zip(terms) {
            *out += tap * row[o];
        }
    }
}

/// Outputs per block of [`weighted_sums`]: two AVX-512 vectors of float64 (independent sums, so that
/// the adds' latency is hidden).
const LANES: usize = 16;

/// `avg_pool2d(x · scale, k, stride k)` of an N×C×H×W float32 tensor (trailing rows and columns that do not fill
/// a block dropped), as pyiqa computes it: each element scaled in float32, each block summed row by row in
/// float32 and divided by k². On the CPU in one pass (the scaled full-size copy and the pooling were a fifth
/// of FSIM's time at 1080p), bit for bit libtorch's NCHW pooling loop (tested).
pub fn scaled_block_mean(x: &Tensor, scale: f64, k: i64) -> Result<Tensor> {
    if x.device() != Device::Cpu || x.kind() != Kind::Float || k < 1 {
        return Ok(x.f_mul_scalar(scale)?.f_avg_pool2d([k, k], [k, k], [0, 0], false, true, None)?);
    }
    let (n, c, h, w) = x.size4()?;
    let (oh, ow) = ((h / k) as usize, (w / k) as usize);
    let (h, w, k) = (h as usize, w as usize, k as usize);
    let x = x.f_contiguous()?;
    let input = cpu_slice::<f32>(&x)?;
    let mut out = FreshTensor::<f32>::empty(&[n, c, oh as i64, ow as i64])?;
    let output = out.as_mut_slice();
    let (scale, area) = (scale as f32, (k * k) as f32);
    if oh == 0 || ow == 0 {
        return Ok(out.into_tensor());
    }
    let blocks = PoolingBlocks::unpadded(h, w, k);
    let mut sums = vec![0f32; ow];
    for (plane, pooled) in input.chunks_exact(h * w).zip(output.chunks_exact_mut(oh * ow)) {
        for (by, pooled_row) in pooled.chunks_exact_mut(ow).enumerate() {
            blocks.row_sums(plane, w, by, &mut sums, |v| v * scale);
            for (o, s) in pooled_row.iter_mut().zip(&sums) {
                *o = s / area;
            }
        }
    }
    Ok(out.into_tensor())
}

/// The source rows and columns of the k×k blocks of libtorch's `avg_pool2d` (stride k, no padding of its own),
/// for iqa's loops that reproduce it: block i reads sources `rows[i·k..(i + 1)·k]` (and the same of `cols`).
pub struct PoolingBlocks {
    k: usize,
    rows: Vec<usize>,
    cols: Vec<usize>,
}

impl PoolingBlocks {
    /// The blocks that fit in an H×W plane (trailing rows and columns that do not fill one dropped).
    pub fn unpadded(h: usize, w: usize, k: usize) -> Self {
        PoolingBlocks { k, rows: (0..h / k * k).collect(), cols: (0..w / k * k).collect() }
    }

    /// The blocks of the plane after replicate padding of k/2 leading and (k−1)/2 trailing rows and columns
    /// (pyiqa's `downsample` for VSI): (n − 1)/k + 1 of them along a side of n.
    pub fn replicated(h: usize, w: usize, k: usize) -> Self {
        let sources = |n: usize| (0..((n - 1) / k + 1) * k).map(|i| i.saturating_sub(k / 2).min(n - 1)).collect();
        PoolingBlocks { k, rows: sources(h), cols: sources(w) }
    }

    /// Blocks down and across.
    pub fn out_size(&self) -> (usize, usize) {
        (self.rows.len() / self.k, self.cols.len() / self.k)
    }

    /// The sums of the blocks in block row `row` of `plane` (`w` wide), one per block column, each from zero in
    /// libtorch's order (source rows in turn, each left to right) of the values as `load` converts them.
    #[inline]
    pub fn row_sums<T: Copy, A: Copy + Default + std::ops::AddAssign>(
        &self,
        plane: &[T],
        w: usize,
        row: usize,
        sums: &mut [A],
        load: impl Fn(T) -> A,
    ) {
        let k = self.k;
        let lines: Vec<&[T]> = self.rows[row * k..(row + 1) * k].iter().map(|&y| &plane[y * w..(y + 1) * w]).collect();
        // Each sum in a register: adding into `sums` row after row made every add wait for a store.
        for (sum, cols) in sums.iter_mut().zip(self.cols.chunks_exact(k)) {
            let mut total = A::default();
            for line in &lines {
                for &x in cols {
                    total += load(line[x]);
                }
            }
            *sum = total;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit for bit libtorch's `avg_pool2d` of the scaled tensor, for pool sizes 1–5 over sides that leave
    /// remainders, a batch of 2 with 3 channels, and 8-bit values scaled to 0..255 as FSIM feeds it.
    #[test]
    fn scaled_block_mean_equals_libtorch() {
        tch::manual_seed(5);
        let random = Tensor::rand([2, 3, 37, 29], (Kind::Float, Device::Cpu));
        let eight_bit = Tensor::randint(256, [1, 3, 23, 41], (Kind::Float, Device::Cpu)) / 255.0;
        for x in [&random, &eight_bit] {
            for k in 1..=5 {
                let expected = x.f_mul_scalar(255.0).unwrap().avg_pool2d([k, k], [k, k], [0, 0], false, true, None);
                let got = scaled_block_mean(x, 255.0, k).unwrap();
                assert_eq!(got.size(), expected.size(), "k {k}");
                let bits = |t: &Tensor| -> Vec<u32> {
                    Vec::<f32>::try_from(t.flatten(0, -1)).unwrap().iter().map(|v| v.to_bits()).collect()
                };
                assert_eq!(bits(&got), bits(&expected), "k {k}");
            }
        }
    }
}
