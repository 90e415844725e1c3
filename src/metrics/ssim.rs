//! SSIM (`ssim` on luma, `ssimc` on RGB) and MS-SSIM (`ms_ssim`) with pyiqa 0.1.16's defaults: inputs scaled
//! to 0..255 and rounded like MATLAB's uint8 images, computed in float64, 11×11 Gaussian window (σ 1.5),
//! 'valid' filtering, negative contrast-structure terms clamped to 0, no automatic downsampling (pyiqa's
//! default `downsample=False`).
use crate::error::{Error, Result};
use crate::image::colour::{preprocess, score_by_rows, with_target_feature, Planes255};
use crate::image::{Frame, Image};
use crate::model::{require_ref, DistanceMap, MetricSpec, Mode, Model, Prepared};
use crate::nn::filters::{filter_band, gaussian_taps, separable_valid, weighted_sums};
use crate::runtime::{bands_of_planes, try_for_each_piece, worker_threads, zeroed};
use crate::tensor::{cpu_slice, FreshTensor, FrozenTensor};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// `ssim` on luma, `ssimc` on RGB, `ms_ssim` on luma.
pub const METRICS: &[MetricSpec] = &[
    MetricSpec::new("ssim", Mode::FullReference, false, (0.0, 1.0), |k| Ok(Arc::new(Ssim::new(true, k.device)?)))
        .min_size(WINDOW as u32, WINDOW as u32),
    MetricSpec::new("ssimc", Mode::FullReference, false, (0.0, 1.0), |k| Ok(Arc::new(Ssim::new(false, k.device)?)))
        .min_size(WINDOW as u32, WINDOW as u32),
    // Each of the four halvings rounds up; the fifth scale still needs one full window.
    MetricSpec::new("ms_ssim", Mode::FullReference, false, (0.0, 1.0), |k| Ok(Arc::new(MsSsim::new(k.device)?)))
        .min_size(MS_SSIM_MIN_SIDE, MS_SSIM_MIN_SIDE),
];
const MS_SSIM_MIN_SIDE: u32 = (WINDOW as u32 - 1) * 16 + 1;

const DATA_RANGE: f64 = 255.0;
const WINDOW: i64 = 11;
const SIGMA: f64 = 1.5;
/// MS-SSIM scale weights (Wang et al. 2003), stored as float32 by pyiqa.
const MS_WEIGHTS: [f32; 5] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];

/// The Gaussian window, applied separably to the five local statistics of `channels` channels.
struct Windows {
    channels: i64,
    taps: FrozenTensor,
}

impl Windows {
    fn new(channels: i64, device: Device) -> Result<Self> {
        let taps = Tensor::f_from_slice(&gaussian_taps(WINDOW as usize, SIGMA))?.f_to_device(device)?;
        Ok(Windows { channels, taps: FrozenTensor::new(taps) })
    }

    /// The mean of map `which` per image of x and y (N×C×H×W float64, 0..255).
    fn mean(&self, x: &Tensor, y: &Tensor, which: MapKind) -> Result<Tensor> {
        Ok(self.map(x, y, which)?.f_mean_dim(&[1i64, 2, 3][..], false, None)?)
    }

    /// The mean SSIM of two images' planes made from their rows ([`Planes255`]), band by band on the CPU.
    fn mean_of_rows(&self, x: &Planes255<'_>, y: &Planes255<'_>) -> Result<f64> {
        if x.size() != y.size() || x.channels() != y.channels() {
            return Err(Error::shape("the two images differ in size or channels"));
        }
        let ((w, h), c) = (x.size(), x.channels());
        let taps = Vec::<f64>::try_from(&*self.taps)?;
        let map = map_bands(
            [1, c, h, w],
            &taps,
            MapKind::Ssim,
            |_, first, out| x.fill(first, out),
            Reference::Rows(|_, first, out: &mut [&mut [f64]]| y.fill(first, out)),
        )?;
        Ok(map.f_mean_dim(&[1i64, 2, 3][..], false, None)?.f_double_value(&[0])?)
    }

    /// The reference's planes (1×C×H×W float64 on the CPU, 0..255) and their two filtered statistics.
    fn moments(&self, y: &Tensor) -> Result<ReferenceMoments> {
        let (_, c, h, w) = y.size4()?;
        let (c, h, w) = (c as usize, h as usize, w as usize);
        let k = WINDOW as usize;
        if h < k || w < k {
            return Err(Error::shape(format!("{w}x{h} is smaller than the {k}x{k} window")));
        }
        let planes = Vec::<f64>::try_from(&y.f_contiguous()?.f_view([-1])?)?;
        let taps = Vec::<f64>::try_from(&*self.taps)?;
        let (oh, ow) = (h + 1 - k, w + 1 - k);
        // Planes 0..C: the means; C..2C: the means of the squares.
        let mut moments = zeroed(2 * c * oh * ow, "SSIM reference moments")?;
        let mut bands = bands_of_planes(&mut moments, oh * ow, BAND_ROWS * ow);
        try_for_each_piece(&mut bands, 1, |i, piece| {
            let (means, squares) = piece[0].split_at_mut(c);
            for (channel, (mean, square)) in means.iter_mut().zip(squares).enumerate() {
                let rows = &planes[(channel * h + i * BAND_ROWS) * w..][..(mean.len() / ow + k - 1) * w];
                filter_band(rows, w, &taps, 0, mean, ow)?;
                let squared: Vec<f64> = rows.iter().map(|v| v * v).collect();
                filter_band(&squared, w, &taps, 0, square, ow)?;
            }
            Ok(())
        })?;
        Ok(ReferenceMoments { planes, moments, shape: [c, h, w] })
    }

    /// The SSIM or the contrast-structure map, N×C×(H−10)×(W−10) ('valid' filtering). Float64 on the CPU:
    /// [`map_cpu`].
    fn map(&self, x: &Tensor, y: &Tensor, which: MapKind) -> Result<Tensor> {
        if x.device() == Device::Cpu && x.kind() == Kind::Double && y.kind() == Kind::Double {
            let taps = Vec::<f64>::try_from(&*self.taps)?;
            return map_cpu(x, y, &taps, which);
        }
        let (ssim, cs) = self.maps_libtorch(x, y)?;
        Ok(match which {
            MapKind::Ssim => ssim,
            MapKind::ContrastStructure => cs,
        })
    }

    /// Both maps through libtorch's operations (the GPU path).
    fn maps_libtorch(&self, x: &Tensor, y: &Tensor) -> Result<(Tensor, Tensor)> {
        let c1 = (0.01 * DATA_RANGE).powi(2);
        let c2 = (0.03 * DATA_RANGE).powi(2);
        // One depthwise pass filters x, y, x², y² and xy at once (5·C independent channels).
        let stacked = Tensor::f_cat(&[x, y, &x.f_square()?, &y.f_square()?, &x.f_mul(y)?], 1)?;
        let filtered = separable_valid(&stacked, &self.taps)?;
        let parts = filtered.f_split(self.channels, 1)?;
        let (mu1, mu2, xx, yy, xy) = (&parts[0], &parts[1], &parts[2], &parts[3], &parts[4]);
        let mu1_sq = mu1.f_square()?;
        let mu2_sq = mu2.f_square()?;
        let mu1_mu2 = mu1.f_mul(mu2)?;
        let sigma1_sq = xx.f_sub(&mu1_sq)?;
        let sigma2_sq = yy.f_sub(&mu2_sq)?;
        let sigma12 = xy.f_sub(&mu1_mu2)?;
        let cs_map = sigma12
            .f_mul_scalar(2.0)?
            .f_add_scalar(c2)?
            .f_div(&sigma1_sq.f_add(&sigma2_sq)?.f_add_scalar(c2)?)?
            .f_relu()?;
        let luminance =
            mu1_mu2.f_mul_scalar(2.0)?.f_add_scalar(c1)?.f_div(&mu1_sq.f_add(&mu2_sq)?.f_add_scalar(c1)?)?;
        Ok((luminance.f_mul(&cs_map)?, cs_map))
    }
}

/// Which of the two maps [`Windows::map`] makes: SSIM (`ssim`, `ssimc`, MS-SSIM's last scale) or
/// contrast-structure (MS-SSIM's other scales).
#[derive(Clone, Copy, PartialEq)]
enum MapKind {
    Ssim,
    ContrastStructure,
}

/// Output rows per task of [`Windows::moments`].
const BAND_ROWS: usize = 32;

/// [`Windows::map`] of float64 CPU tensors: [`map_bands`] reading their rows.
fn map_cpu(x: &Tensor, y: &Tensor, taps: &[f64], which: MapKind) -> Result<Tensor> {
    let (n, c, h, w) = x.size4()?;
    let (x, y) = (x.f_contiguous()?, y.f_contiguous()?);
    let (xs, ys) = (cpu_slice::<f64>(&x)?, cpu_slice::<f64>(&y)?);
    let shape = [c as usize, h as usize, w as usize];
    map_bands(
        [n as usize, shape[0], shape[1], shape[2]],
        taps,
        which,
        |i, first, out| copy_rows(xs, shape, i, first, out),
        Reference::Rows(|i, first, out: &mut [&mut [f64]]| copy_rows(ys, shape, i, first, out)),
    )
}

/// Rows `first..` of each channel of image `image` of N×C×H×W `planes` into `out` (one slice per channel).
fn copy_rows(planes: &[f64], [c, h, w]: [usize; 3], image: usize, first: usize, out: &mut [&mut [f64]]) {
    for (channel, out) in out.iter_mut().enumerate() {
        out.copy_from_slice(&planes[((image * c + channel) * h + first) * w..][..out.len()]);
    }
}

/// What a prepared reference keeps of SSIM's work: the reference's planes at 0..255 (C×H×W) and, for each
/// channel, its two filtered statistics (the local mean and the local mean of the squares, C×(H−10)×(W−10)
/// each), so that each distorted image filters three statistics instead of five.
struct ReferenceMoments {
    planes: Vec<f64>,
    /// The C means, then the C means of the squares.
    moments: Vec<f64>,
    shape: [usize; 3],
}

/// Where [`map_bands`] gets the reference's side: rows to filter, or moments filtered once.
enum Reference<'a, Y> {
    Rows(Y),
    Moments(&'a ReferenceMoments),
}

/// The window's side as a constant, for the kernels' fixed-size arrays.
const K: usize = WINDOW as usize;
/// Fewest output rows per task of [`map_bands`]: each task filters the K − 1 input rows below its band again.
const MIN_BAND_ROWS: usize = 32;
/// Input rows a task of [`map_bands`] has its row sources write at a time.
const CHUNK_ROWS: usize = 8;

/// The SSIM or contrast-structure map of N images of C channels, H×W, in float64 on the CPU, one band of
/// output rows of an image per task on the worker threads. A task streams its input rows: `x_rows` (and the
/// reference's `Rows`) write a few rows at a time (image, first row, one slice per channel); each row's x², y²
/// and xy are formed and its five statistics filtered horizontally ([`filter_row`]; three where the reference's
/// two come filtered from its `Moments`) into a ring of the last K rows; once K rows are in, the map's row is
/// made from their vertical sums ([`map_row`]). Every value comes from the operations libtorch applies
/// to the whole tensors (horizontal then vertical, each sum from 0 in tap order, no fused multiply-adds), so
/// the map, and its mean, are the same to the bit, with no full-size array but the map itself.
fn map_bands<X, Y>(shape: [usize; 4], taps: &[f64], which: MapKind, x_rows: X, y: Reference<'_, Y>) -> Result<Tensor>
where
    X: Fn(usize, usize, &mut [&mut [f64]]) + Sync,
    Y: Fn(usize, usize, &mut [&mut [f64]]) + Sync,
{
    let [n, c, h, w] = shape;
    let taps: &[f64; K] = taps.try_into().map_err(|_| Error::shape("SSIM's window has 11 taps"))?;
    if h < K || w < K {
        return Err(Error::shape(format!("{w}x{h} is smaller than the {K}x{K} window")));
    }
    if let Reference::Moments(m) = &y {
        if m.shape != [c, h, w] {
            return Err(Error::shape("the image and the prepared reference differ in size or channels"));
        }
    }
    let (oh, ow) = (h + 1 - K, w + 1 - K);
    let stats = match y {
        Reference::Rows(_) => 5,
        Reference::Moments(_) => 3,
    };
    let mut map = FreshTensor::<f64>::empty(&[n as i64, c as i64, oh as i64, ow as i64])?;
    // One band per thread (the pieces are handed out in contiguous runs), so that few rows are filtered twice.
    let band_rows = oh.div_ceil(worker_threads()).max(MIN_BAND_ROWS);
    for (image, out) in map.as_mut_slice().chunks_mut(c * oh * ow).enumerate() {
        let mut bands = bands_of_planes(out, oh * ow, band_rows * ow);
        try_for_each_piece(&mut bands, 1, |i, piece| {
            let outs = &mut piece[0];
            let (first, rows) = (i * band_rows, outs[0].len() / ow);
            let inputs = rows + K - 1;
            let chunk = CHUNK_ROWS.min(inputs);
            let mut xb = zeroed(c * chunk * w, "SSIM input rows")?;
            let mut yb = zeroed(if stats == 5 { c * chunk * w } else { 0 }, "SSIM input rows")?;
            let mut products = zeroed(3 * w, "SSIM products")?;
            let mut sums = zeroed(5 * ow, "SSIM statistics")?;
            // Per channel, K slots of `stats` horizontally filtered rows; input row j of the band in slot j % K.
            let ring_len = K * stats * ow;
            let mut ring = zeroed(c * ring_len, "SSIM filtered rows")?;
            for start in (0..inputs).step_by(chunk) {
                let count = chunk.min(inputs - start);
                x_rows(image, first + start, &mut xb.chunks_mut(count * w).take(c).collect::<Vec<_>>());
                if let Reference::Rows(y_rows) = &y {
                    y_rows(image, first + start, &mut yb.chunks_mut(count * w).take(c).collect::<Vec<_>>());
                }
                for (channel, ring) in ring.chunks_exact_mut(ring_len).enumerate() {
                    for row in start..start + count {
                        let at = (channel * count + row - start) * w;
                        let x_row = &xb[at..at + w];
                        let y_row = match &y {
                            Reference::Rows(_) => &yb[at..at + w],
                            Reference::Moments(m) => &m.planes[(channel * h + first + row) * w..][..w],
                        };
                        let slot = &mut ring[row % K * stats * ow..][..stats * ow];
                        filter_row(x_row, y_row, stats == 5, taps, &mut products, slot);
                        let Some(r) = (row + 1).checked_sub(K) else { continue };
                        let out = &mut outs[channel][r * ow..][..ow];
                        match &y {
                            Reference::Rows(_) => map_row(ring, r % K, taps, None, which, &mut sums, out),
                            Reference::Moments(m) => {
                                let at = |plane: usize| &m.moments[(plane * oh + first + r) * ow..][..ow];
                                map_row(ring, r % K, taps, Some((at(channel), at(c + channel))), which, &mut sums, out)
                            }
                        }
                    }
                }
            }
            Ok(())
        })?;
    }
    Ok(map.into_tensor())
}

with_target_feature! {
    "avx512f" / "avx2",
    /// One input row's statistics filtered horizontally into `out` (`stats` rows of the output width, one after
    /// the other): x, y, x², y², xy, or with `both` false (the reference's come prepared) x, x², xy. `products`
    /// is scratch of three rows.
    fn filter_row / filter_row_avx512 / filter_row_avx2(
        x: &[f64],
        y: &[f64],
        both: bool,
        taps: &[f64; K],
        products: &mut [f64],
        out: &mut [f64]
    ) {
        let w = x.len();
        let ow = w + 1 - K;
        let (xx, rest) = products.split_at_mut(w);
        let (yy, xy) = rest.split_at_mut(w);
        let xy = &mut xy[..w];
        if both {
            for (((a, b), (xx, yy)), xy) in x.iter().zip(y).zip(xx.iter_mut().zip(yy.iter_mut())).zip(xy.iter_mut()) {
                (*xx, *yy, *xy) = (a * a, b * b, a * b);
            }
        } else {
            for ((a, b), (xx, xy)) in x.iter().zip(y).zip(xx.iter_mut().zip(xy.iter_mut())) {
                (*xx, *xy) = (a * a, a * b);
            }
        }
        let sources: &[&[f64]] = if both { &[x, y, xx, yy, xy] } else { &[x, xx, xy] };
        for (src, out) in sources.iter().zip(out.chunks_exact_mut(ow)) {
            weighted_sums(out, taps, |t| &src[t..]);
        }
    }
}

with_target_feature! {
    "avx512f" / "avx2",
    /// One row of the map from the ring of horizontally filtered rows ([`map_bands`]): the vertical sums of its
    /// statistics over the K slots from `first_slot` on (into `sums`, scratch of five rows), then the map's
    /// formula ([`ssim_value`]). `prepared` holds the reference's filtered mean and mean of squares for this row
    /// where the ring has three statistics.
    fn map_row / map_row_avx512 / map_row_avx2(
        ring: &[f64],
        first_slot: usize,
        taps: &[f64; K],
        prepared: Option<(&[f64], &[f64])>,
        which: MapKind,
        sums: &mut [f64],
        out: &mut [f64]
    ) {
        let ow = out.len();
        let stats = if prepared.is_some() { 3 } else { 5 };
        for (s, sum) in sums.chunks_exact_mut(ow).take(stats).enumerate() {
            weighted_sums(sum, taps, |t| &ring[((first_slot + t) % K * stats + s) * ow..]);
        }
        let row = |s: usize| &sums[s * ow..(s + 1) * ow];
        // x, x², xy and (without a prepared reference) y, y², in that order: x, y, x², y², xy or x, x², xy.
        let (mu1, xx, xy) = (row(0), row(stats / 2), row(stats - 1));
        let (mu2, yy) = prepared.unwrap_or((row(1), row(3)));
        let (mu2, yy) = (&mu2[..ow], &yy[..ow]);
        // One loop per kind, so that each is a straight vector loop.
        match which {
            MapKind::Ssim => {
                for (j, out) in out.iter_mut().enumerate() {
                    *out = ssim_value(mu1[j], mu2[j], xx[j], yy[j], xy[j], MapKind::Ssim);
                }
            }
            MapKind::ContrastStructure => {
                for (j, out) in out.iter_mut().enumerate() {
                    *out = ssim_value(mu1[j], mu2[j], xx[j], yy[j], xy[j], MapKind::ContrastStructure);
                }
            }
        }
    }
}

/// pyiqa's SSIM (or contrast-structure) value of one pixel from its five filtered statistics.
#[inline(always)]
fn ssim_value(mu1: f64, mu2: f64, xx: f64, yy: f64, xy: f64, which: MapKind) -> f64 {
    let (c1, c2) = ((0.01 * DATA_RANGE).powi(2), (0.03 * DATA_RANGE).powi(2));
    let (mu1_sq, mu2_sq, mu1_mu2) = (mu1 * mu1, mu2 * mu2, mu1 * mu2);
    let (sigma1_sq, sigma2_sq, sigma12) = (xx - mu1_sq, yy - mu2_sq, xy - mu1_mu2);
    let cs = relu((sigma12 * 2.0 + c2) / ((sigma1_sq + sigma2_sq) + c2));
    match which {
        MapKind::ContrastStructure => cs,
        MapKind::Ssim => (mu1_mu2 * 2.0 + c1) / ((mu1_sq + mu2_sq) + c1) * cs,
    }
}

/// libtorch's relu: NaN stays NaN.
#[inline(always)]
fn relu(v: f64) -> f64 {
    if v.is_nan() || v > 0.0 {
        v
    } else {
        0.0
    }
}

/// `ssim` (luma) and `ssimc` (RGB).
pub struct Ssim {
    luma_only: bool,
    windows: Windows,
    device: Device,
}

impl Ssim {
    pub fn new(luma_only: bool, device: Device) -> Result<Self> {
        Ok(Ssim { luma_only, windows: Windows::new(if luma_only { 1 } else { 3 }, device)?, device })
    }

    /// The mean SSIM of `x` (its rows written by `x_rows`) against a prepared reference.
    fn mean_against<X>(&self, shape: [usize; 3], x_rows: X, reference: &ReferenceMoments) -> Result<f64>
    where
        X: Fn(usize, usize, &mut [&mut [f64]]) + Sync,
    {
        let taps = Vec::<f64>::try_from(&*self.windows.taps)?;
        let [c, h, w] = shape;
        let kept = Reference::<fn(usize, usize, &mut [&mut [f64]])>::Moments(reference);
        let map = map_bands([1, c, h, w], &taps, MapKind::Ssim, x_rows, kept)?;
        Ok(map.f_mean_dim(&[1i64, 2, 3][..], false, None)?.f_double_value(&[0])?)
    }
}

impl Model for Ssim {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let x = preprocess(dist, self.luma_only, DATA_RANGE, Kind::Double)?;
        let y = preprocess(require_ref(reference)?, self.luma_only, DATA_RANGE, Kind::Double)?;
        self.windows.mean(&x, &y, MapKind::Ssim)
    }

    fn score_pixels(&self, dists: &[Image<'_>], refs: Option<&[Image<'_>]>) -> Option<Result<Vec<f64>>> {
        let planes = |i| Planes255::of_8bit(i, self.luma_only);
        score_by_rows(dists, refs, planes, |x, y| self.windows.mean_of_rows(x, y))
    }

    fn score_frames(&self, dists: &[Frame<'_>], refs: Option<&[Frame<'_>]>) -> Option<Result<Vec<f64>>> {
        let planes = |f| Planes255::of_frame(f, self.luma_only);
        score_by_rows(dists, refs, planes, |x, y| self.windows.mean_of_rows(x, y))
    }

    /// On the CPU the reference's planes and two filtered statistics are kept.
    fn prepares_references(&self) -> bool {
        self.device == Device::Cpu
    }

    fn prepare(&self, reference: &Tensor) -> Result<Option<Prepared>> {
        if reference.device() != Device::Cpu {
            return Ok(None);
        }
        let y = preprocess(reference, self.luma_only, DATA_RANGE, Kind::Double)?;
        Ok(Some(Prepared(Box::new(self.windows.moments(&y)?))))
    }

    /// Image by image, as each pair alone is scored.
    fn forward_prepared(&self, dist: &Tensor, prepared: &Prepared) -> Result<Tensor> {
        let reference = prepared.get::<ReferenceMoments>()?;
        let scores = (0..dist.size()[0])
            .map(|i| {
                let x = preprocess(&dist.f_narrow(0, i, 1)?, self.luma_only, DATA_RANGE, Kind::Double)?;
                let (_, c, h, w) = x.size4()?;
                let x = x.f_contiguous()?;
                let xs = cpu_slice::<f64>(&x)?;
                let shape = [c as usize, h as usize, w as usize];
                self.mean_against(
                    shape,
                    |_, first, out: &mut [&mut [f64]]| copy_rows(xs, shape, 0, first, out),
                    reference,
                )
            })
            .collect::<Result<Vec<f64>>>()?;
        Ok(Tensor::f_from_slice(&scores)?)
    }

    fn score_pixels_prepared(&self, dists: &[Image<'_>], prepared: &Prepared) -> Option<Result<Vec<f64>>> {
        let planes: Vec<_> = dists.iter().map(|d| Planes255::of_8bit(d, self.luma_only)).collect::<Option<_>>()?;
        let reference = match prepared.get::<ReferenceMoments>() {
            Ok(reference) => reference,
            Err(e) => return Some(Err(e)),
        };
        let score = |x: &Planes255<'_>| {
            let ((w, h), c) = (x.size(), x.channels());
            self.mean_against([c, h, w], |_, first, out: &mut [&mut [f64]]| x.fill(first, out), reference)
        };
        Some(planes.iter().map(score).collect())
    }

    fn distance_map(&self) -> Option<&dyn DistanceMap> {
        Some(self)
    }
}

impl DistanceMap for Ssim {
    /// pyiqa's SSIM map (averaged over channels for `ssimc`): its mean is the score.
    fn map(&self, dist: &Tensor, reference: &Tensor) -> Result<Tensor> {
        let x = preprocess(dist, self.luma_only, DATA_RANGE, Kind::Double)?;
        let y = preprocess(reference, self.luma_only, DATA_RANGE, Kind::Double)?;
        Ok(self.windows.map(&x, &y, MapKind::Ssim)?.f_mean_dim(&[1i64][..], true, None)?)
    }

    /// The 11×11 window is applied without padding ('valid').
    fn map_size(&self, height: i64, width: i64) -> (i64, i64) {
        (height - (WINDOW - 1), width - (WINDOW - 1))
    }
}

/// `ms_ssim`: five scales, product of contrast-structure terms at the first four and SSIM at the last.
pub struct MsSsim {
    windows: Windows,
    weights: FrozenTensor,
}

impl MsSsim {
    pub fn new(device: Device) -> Result<Self> {
        let weights = Tensor::f_from_slice(&MS_WEIGHTS)?.f_to_kind(Kind::Double)?.f_to_device(device)?;
        Ok(MsSsim { windows: Windows::new(1, device)?, weights: FrozenTensor::new(weights) })
    }
}

impl Model for MsSsim {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let x = preprocess(dist, true, DATA_RANGE, Kind::Double)?;
        let y = preprocess(require_ref(reference)?, true, DATA_RANGE, Kind::Double)?;
        self.of_luma(x, y)
    }

    fn score_pixels(&self, dists: &[Image<'_>], refs: Option<&[Image<'_>]>) -> Option<Result<Vec<f64>>> {
        score_by_rows(dists, refs, |i| Planes255::of_8bit(i, true), |x, y| self.of_planes(x, y))
    }

    fn score_frames(&self, dists: &[Frame<'_>], refs: Option<&[Frame<'_>]>) -> Option<Result<Vec<f64>>> {
        score_by_rows(dists, refs, |f| Planes255::of_frame(f, true), |x, y| self.of_planes(x, y))
    }
}

impl MsSsim {
    fn of_planes(&self, x: &Planes255<'_>, y: &Planes255<'_>) -> Result<f64> {
        let (x, y) = (x.tensor()?, y.tensor()?);
        Ok(self.of_luma(x, y)?.f_double_value(&[0])?)
    }

    /// MS-SSIM of luma planes x and y (N×1×H×W float64, 0..255).
    fn of_luma(&self, mut x: Tensor, mut y: Tensor) -> Result<Tensor> {
        let levels = MS_WEIGHTS.len();
        let mut cs_levels = Vec::with_capacity(levels - 1);
        let mut last_ssim = None;
        for level in 0..levels {
            // The contrast-structure term at every scale but the last, where the SSIM is taken instead.
            if level + 1 == levels {
                last_ssim = Some(self.windows.mean(&x, &y, MapKind::Ssim)?);
            } else {
                cs_levels.push(self.windows.mean(&x, &y, MapKind::ContrastStructure)?);
                // 2×2 average pooling; odd sides get one zero-padded row/column counted in the mean.
                let (h, w) = (x.size()[2], x.size()[3]);
                let pad = [h % 2, w % 2];
                x = x.f_avg_pool2d([2, 2], [2, 2], pad, false, true, None)?;
                y = y.f_avg_pool2d([2, 2], [2, 2], pad, false, true, None)?;
            }
        }
        let cs = Tensor::f_stack(&cs_levels, 0)?; // (levels-1)×N
        let w = self.weights.f_narrow(0, 0, levels as i64 - 1)?.f_unsqueeze(1)?;
        let cs_term = cs.f_pow(&w)?.f_prod_dim_int(0, false, None::<Kind>)?;
        let ssim_term = last_ssim.expect("five levels").f_pow(&self.weights.f_get(levels as i64 - 1)?)?;
        Ok(cs_term.f_mul(&ssim_term)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernels' AVX2 copies (what CPUs without AVX-512 run) give the bits of the copies this CPU runs.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_kernels_equal_the_dispatched_ones() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let taps: [f64; K] = gaussian_taps(K, SIGMA).try_into().unwrap();
        let w = 71;
        let ow = w + 1 - K;
        let row = |seed: usize| (0..w).map(|i| ((i * 37 + seed * 11) % 256) as f64).collect::<Vec<f64>>();
        let (x, y) = (row(1), row(2));
        for both in [true, false] {
            let stats = if both { 5 } else { 3 };
            let (mut products, mut want, mut got) = (vec![0.0; 3 * w], vec![0.0; stats * ow], vec![0.0; stats * ow]);
            filter_row(&x, &y, both, &taps, &mut products, &mut want);
            // SAFETY: the CPU has AVX2 (checked above).
            unsafe { filter_row_avx2(&x, &y, both, &taps, &mut products, &mut got) };
            assert_eq!(want, got, "filter_row, both {both}");
        }
        let ring: Vec<f64> = (0..K * 5 * ow).map(|i| ((i * 7919) % 1000) as f64 * 0.25).collect();
        let prepared = (vec![3.5; ow], vec![40.0; ow]);
        for which in [MapKind::Ssim, MapKind::ContrastStructure] {
            for reference in [None, Some((&prepared.0[..], &prepared.1[..]))] {
                let ring = &ring[..K * if reference.is_some() { 3 } else { 5 } * ow];
                let (mut sums, mut want, mut got) = (vec![0.0; 5 * ow], vec![0.0; ow], vec![0.0; ow]);
                map_row(ring, 4, &taps, reference, which, &mut sums, &mut want);
                // SAFETY: the CPU has AVX2 (checked above).
                unsafe { map_row_avx2(ring, 4, &taps, reference, which, &mut sums, &mut got) };
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&want), bits(&got), "map_row, prepared {}", reference.is_some());
            }
        }
    }

    /// The band kernel's maps equal those of the operations on whole tensors ([`Windows::maps_libtorch`]) bit
    /// for bit: both kinds, one and three channels, widths under and over a vector block, heights that split
    /// unevenly into bands and into chunks of input rows, and against a prepared reference.
    #[test]
    fn band_maps_equal_whole_tensor_maps() {
        tch::manual_seed(7);
        for (c, h, w) in [(1, 11, 11), (1, 83, 37), (3, 50, 29), (1, 300, 141)] {
            let windows = Windows::new(c, Device::Cpu).unwrap();
            let taps = Vec::<f64>::try_from(&*windows.taps).unwrap();
            let pixels = || (Tensor::rand([2, c, h, w], (Kind::Double, Device::Cpu)) * 255.0).round();
            let (x, y) = (pixels(), pixels());
            let (ssim, cs) = windows.maps_libtorch(&x, &y).unwrap();
            for (which, want) in [(MapKind::Ssim, &ssim), (MapKind::ContrastStructure, &cs)] {
                let got = map_cpu(&x, &y, &taps, which).unwrap();
                assert!(got.equal(want), "{c}x{h}x{w}");
            }
            let shape = [c as usize, h as usize, w as usize];
            let xs = Vec::<f64>::try_from(x.flatten(0, -1)).unwrap();
            for image in 0..2 {
                let moments = windows.moments(&y.narrow(0, image, 1)).unwrap();
                let rows = |_, first, out: &mut [&mut [f64]]| copy_rows(&xs, shape, image as usize, first, out);
                let kept = Reference::<fn(usize, usize, &mut [&mut [f64]])>::Moments(&moments);
                let got = map_bands([1, shape[0], shape[1], shape[2]], &taps, MapKind::Ssim, rows, kept).unwrap();
                assert!(got.equal(&ssim.narrow(0, image, 1)), "{c}x{h}x{w}, prepared, image {image}");
            }
        }
    }
}
