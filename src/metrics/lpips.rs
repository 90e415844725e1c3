//! LPIPS (Zhang et al. 2018) as pyiqa 0.1.16 runs it: inputs mapped to [-1,1], the v0.1 scaling layer (v0.0
//! skips it), backbone activations normalised over channels (eps 1e-10), squared differences weighted by the
//! learned 1×1 "lin" layers and averaged over space, summed over layers. The `+` variants (pyiqa's
//! `semantic_weight_layer=2`) average each layer's distance weighted by the reference's third activation,
//! bilinearly resized to that layer. `stlpips` and `stlpips-vgg` (ST-LPIPS, Ghildyal and Liu 2022) are the same
//! distance on the shift-tolerant AlexNet and VGG16 (`nn::shift_tolerant`), backbone and lin layers both from
//! the ST-LPIPS file.
use crate::error::Result;
use crate::model::{require_ref, Builder, DistanceMap, MetricSpec, Mode, Model, ModelKey, Prepared};
use crate::nn::backbones::{self, channels_last, AlexNet, Placement, SqueezeNet11, Vgg};
use crate::nn::layers::Checkpoint;
use crate::nn::shift_tolerant::{ShiftTolerantAlexNet, ShiftTolerantVgg16};
use crate::runtime::Precision;
use crate::tensor::{cpu_slice, FreshTensor, FrozenTensor};
use crate::weights::{self, files, WeightFile};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// The ImageNet backbone of an LPIPS variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    Alex,
    Vgg,
    Squeeze,
    ShiftTolerantAlex,
    ShiftTolerantVgg,
}

impl Net {
    /// Its name in pyiqa's weight files.
    pub const fn name(self) -> &'static str {
        match self {
            Net::Alex => "alex",
            Net::Vgg => "vgg",
            Net::Squeeze => "squeeze",
            Net::ShiftTolerantAlex => "alex_shift_tolerant",
            Net::ShiftTolerantVgg => "vgg_shift_tolerant",
        }
    }

    /// The files it loads: its v0.1 linear layers and its torchvision backbone.
    pub const fn weights(self) -> &'static [&'static WeightFile] {
        match self {
            Net::Alex => &[&files::LPIPS_V0_1_ALEX, &files::ALEXNET],
            Net::Vgg => &[&files::LPIPS_V0_1_VGG, &files::VGG16],
            Net::Squeeze => &[&files::LPIPS_V0_1_SQUEEZE, &files::SQUEEZENET1_1],
            Net::ShiftTolerantAlex => &[&files::STLPIPS_ALEX],
            Net::ShiftTolerantVgg => &[&files::STLPIPS_VGG],
        }
    }

    /// Smallest side the backbone's deepest tap accepts.
    pub const fn min_side(self) -> u32 {
        match self {
            Net::Alex => AlexNet::MIN_SIDE as u32,
            // Four 2×2 poolings: relu5_3 needs 16 pixels.
            Net::Vgg => 16,
            // conv 3×3/2, then three ceil-mode 3×3/2 pools (measured with pyiqa: 17 works, 16 does not).
            Net::Squeeze => 17,
            // Measured with pyiqa: below these the reflection padding of a blur pool exceeds its input.
            Net::ShiftTolerantAlex => ST_ALEX_MIN_SIDE,
            Net::ShiftTolerantVgg => ST_VGG_MIN_SIDE,
        }
    }
}

const fn lpips(name: &'static str, net: Net, build: Builder) -> MetricSpec {
    MetricSpec::new(name, Mode::FullReference, true, (0.0, 1.0), build)
        .reduced_precision()
        .min_size(net.min_side(), net.min_side())
        .weights(net.weights())
}

const SEMANTIC_UNTILED: &str = "its semantic weights are resized over the whole image, so it is not scored in tiles";

/// The LPIPS family; the `+` variants (pyiqa's `semantic_weight_layer=2`) are refused above the tiling size.
pub const METRICS: &[MetricSpec] = &[
    lpips("lpips", Net::Alex, |k| build(k, Net::Alex, false)),
    lpips("lpips-vgg", Net::Vgg, |k| build(k, Net::Vgg, false)),
    lpips("lpips+", Net::Alex, |k| build(k, Net::Alex, true)).max_pixels(TILE_ABOVE_PIXELS as u64, SEMANTIC_UNTILED),
    lpips("lpips-vgg+", Net::Vgg, |k| build(k, Net::Vgg, true)).max_pixels(TILE_ABOVE_PIXELS as u64, SEMANTIC_UNTILED),
    // pyiqa builds it with create_metric('lpips', net='squeeze') but has no name for it.
    lpips("lpips-squeeze", Net::Squeeze, |k| build(k, Net::Squeeze, false)),
    shift_tolerant("stlpips", Net::ShiftTolerantAlex),
    shift_tolerant("stlpips-vgg", Net::ShiftTolerantVgg),
];

const fn shift_tolerant(name: &'static str, net: Net) -> MetricSpec {
    let build: Builder = match net {
        Net::ShiftTolerantVgg => |k| build(k, Net::ShiftTolerantVgg, false),
        _ => |k| build(k, Net::ShiftTolerantAlex, false),
    };
    MetricSpec::new(name, Mode::FullReference, true, (0.0, 1.0), build)
        .min_size(net.min_side(), net.min_side())
        .weights(net.weights())
}

const ST_ALEX_MIN_SIDE: u32 = 21;
const ST_VGG_MIN_SIDE: u32 = 18;

/// The backbone a variant runs on (shared with other metrics through the registry).
pub enum LpipsNet {
    Alex(Arc<AlexNet>),
    Vgg(Arc<Vgg>),
    Squeeze(Arc<SqueezeNet11>),
    ShiftTolerantAlex(Box<ShiftTolerantAlexNet>),
    ShiftTolerantVgg(Box<ShiftTolerantVgg16>),
}

impl LpipsNet {
    fn taps(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        match self {
            LpipsNet::Alex(n) => n.taps(x),
            LpipsNet::Vgg(n) => n.taps(x, Vgg::max_pool),
            LpipsNet::Squeeze(n) => n.taps(x),
            LpipsNet::ShiftTolerantAlex(n) => n.taps(x),
            LpipsNet::ShiftTolerantVgg(n) => n.taps(x),
        }
    }

    /// Channels of each tap (the lin layers' input widths).
    pub fn channels(&self) -> &'static [i64] {
        match self {
            LpipsNet::Alex(_) => &AlexNet::CHANNELS,
            LpipsNet::Vgg(_) => &Vgg::CHANNELS,
            LpipsNet::Squeeze(_) => &SqueezeNet11::CHANNELS,
            LpipsNet::ShiftTolerantAlex(_) => &ShiftTolerantAlexNet::CHANNELS,
            LpipsNet::ShiftTolerantVgg(_) => &ShiftTolerantVgg16::CHANNELS,
        }
    }

    /// Total stride of each tap (input pixels per feature).
    fn tap_strides(&self) -> &'static [i64] {
        match self {
            LpipsNet::Alex(_) => &[4, 8, 16, 16, 16],
            LpipsNet::Vgg(_) => &[1, 2, 4, 8, 16],
            LpipsNet::Squeeze(_) => &[2, 4, 8, 16, 16, 16, 16],
            LpipsNet::ShiftTolerantAlex(_) => &ShiftTolerantAlexNet::TAP_STRIDES,
            LpipsNet::ShiftTolerantVgg(_) => &ShiftTolerantVgg16::TAP_STRIDES,
        }
    }

    /// Tiling geometry for images too large for one forward pass: (core, halo) in pixels, both multiples of
    /// [`TILE_ALIGN`]. The halo exceeds the receptive field of the deepest tap (AlexNet conv5 195 px, VGG16
    /// relu5_3 212 px, SqueezeNet's last fire 223 px), so the features of a tile's core equal those of the
    /// whole image; the core is sized for a peak of a few GB per forward pass. The shift-tolerant networks
    /// (receptive fields 101 and 226 px) run at full resolution longer: smaller cores.
    fn tiling(&self) -> (i64, i64) {
        match self {
            LpipsNet::Vgg(_) | LpipsNet::ShiftTolerantAlex(_) => (1024, 256),
            LpipsNet::ShiftTolerantVgg(_) => (768, 256),
            LpipsNet::Alex(_) | LpipsNet::Squeeze(_) => (2048, 256),
        }
    }
}

/// Images above this many pixels are scored tile by tile (plain LPIPS) or refused (the `+` variants, whose
/// semantic weights are resized over the whole image). 8000×6000 through VGG16 in one pass would need ~70 GB.
pub const TILE_ABOVE_PIXELS: i64 = 4_000_000;
/// Tiles start on multiples of the deepest tap's total stride (16), rounded up to 32: each tap's feature grid
/// then splits between tiles exactly where the image does.
const TILE_ALIGN: i64 = 32;

/// pyiqa's ScalingLayer constants (v0.1).
const SHIFT: [f32; 3] = [-0.030, -0.088, -0.188];
const SCALE: [f32; 3] = [0.458, 0.448, 0.450];
const NORM_EPS: f64 = 1e-10;
/// Tap whose reference activations weight the `+` variants.
const SEMANTIC_LAYER: usize = 2;

pub struct Lpips {
    net: LpipsNet,
    /// One 1×C×1×1 weight per tap.
    lins: Vec<FrozenTensor>,
    /// v0.1 applies the scaling layer; v0.0 (the original release) does not.
    scaling: Option<(FrozenTensor, FrozenTensor)>,
    semantic_weighting: bool,
}

impl Lpips {
    pub fn new(net: LpipsNet, lins: Vec<Tensor>, version_0_1: bool, semantic_weighting: bool) -> Result<Self> {
        let device = lins.first().map(|t| t.device()).unwrap_or(tch::Device::Cpu);
        let constant = |v: &[f32; 3]| -> Result<FrozenTensor> {
            Ok(FrozenTensor::new(Tensor::f_from_slice(v)?.f_view([1, 3, 1, 1])?.f_to_device(device)?))
        };
        let scaling = if version_0_1 { Some((constant(&SHIFT)?, constant(&SCALE)?)) } else { None };
        Ok(Lpips { net, lins: lins.into_iter().map(FrozenTensor::new).collect(), scaling, semantic_weighting })
    }

    /// The backbone's activations of a batch, one tensor per tap.
    fn taps(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut x = x.f_mul_scalar(2.0)?.f_sub_scalar(1.0)?;
        if let Some((shift, scale)) = &self.scaling {
            x = x.f_sub(shift)?.f_div(scale)?;
        }
        self.net.taps(&channels_last(&x)?)
    }

    /// Per-layer weighted squared differences of normalised activations, N×1×h_k×w_k each, and the
    /// reference's activations (for the semantic weights).
    fn layer_distances(&self, dist: &Tensor, reference: &Tensor) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
        let n = dist.size()[0];
        // Both images through the backbone in one batch: reference first (pyiqa's in0), then distorted.
        let taps = self.taps(&Tensor::f_cat(&[reference, dist], 0)?)?;
        let ref_taps = taps.iter().map(|tap| Ok(tap.f_narrow(0, 0, n)?)).collect::<Result<Vec<_>>>()?;
        let distances = taps
            .iter()
            .zip(&ref_taps)
            .zip(&self.lins)
            .map(|((tap, ref_tap), lin)| distance(ref_tap, &tap.f_narrow(0, n, n)?, lin))
            .collect::<Result<_>>()?;
        Ok((distances, ref_taps))
    }

    /// The score from each layer's distance map (and the reference's activations, for the semantic weights).
    fn pool(&self, distances: &[Tensor], ref_taps: &[Tensor]) -> Result<Tensor> {
        let mut total: Option<Tensor> = None;
        for d in distances {
            let layer = if self.semantic_weighting {
                let size = d.size();
                let w = ref_taps[SEMANTIC_LAYER].f_upsample_bilinear2d([size[2], size[3]], false, None, None)?;
                let dims = &[1i64, 2, 3][..];
                d.f_mul(&w)?.f_sum_dim_intlist(dims, false, None::<Kind>)?.f_div(&w.f_sum_dim_intlist(
                    dims,
                    false,
                    None::<Kind>,
                )?)?
            } else {
                d.f_mean_dim(&[1i64, 2, 3][..], false, None::<Kind>)?
            };
            total = Some(match total {
                None => layer,
                Some(t) => t.f_add(&layer)?,
            });
        }
        Ok(total.expect("at least one layer"))
    }

    /// Whether images of this size are scored in tiles.
    fn tiled(&self, size: &[i64]) -> bool {
        size[2] * size[3] > TILE_ABOVE_PIXELS && !self.semantic_weighting
    }
}

/// One layer's distance map from the activations of the references (N, or 1 for every image) and of the N
/// distorted images.
fn distance(refs: &Tensor, dists: &Tensor, lin: &Tensor) -> Result<Tensor> {
    if dists.device() == Device::Cpu && dists.kind() == Kind::Float && refs.kind() == Kind::Float {
        layer_distance_cpu(refs, dists, lin)
    } else {
        layer_distance(refs, dists, lin)
    }
}

/// A batch of at least two images: a single image repeated. The backbone's convolutions give an image of a
/// batch of two or more the same activations whatever the others are, but may round an image alone otherwise
/// (small images), and a pair always runs as a batch of two.
fn in_twos(x: &Tensor) -> Result<Tensor> {
    Ok(if x.size()[0] == 1 { Tensor::f_cat(&[x, x], 0)? } else { x.shallow_clone() })
}

/// A reference's activations, one per tap (1×C×h×w), kept by [`Model::prepare`].
struct ReferenceTaps(Vec<FrozenTensor>);

impl Lpips {
    /// The score of images above [`TILE_ABOVE_PIXELS`]: each tap's distance map summed over the cores of
    /// overlapping tiles (computed with a halo beyond the receptive field, which is then cut off in feature
    /// space), divided by the size of the whole map. Equals the untiled score up to summation order.
    fn forward_tiled(&self, dist: &Tensor, reference: &Tensor) -> Result<Tensor> {
        self.score_in_tiles(dist, reference, self.net.tiling().0)
    }

    /// [`Self::forward_tiled`] with tile cores of `core` pixels (rounded up to a multiple of 32); public so that
    /// tests can check tiling against one pass on images of moderate size.
    pub fn score_in_tiles(&self, dist: &Tensor, reference: &Tensor, core: i64) -> Result<Tensor> {
        let size = dist.size();
        let (n, h, w) = (size[0], size[2], size[3]);
        let core = (core.max(1) + TILE_ALIGN - 1) / TILE_ALIGN * TILE_ALIGN;
        let halo = self.net.tiling().1;
        let starts = |len: i64| (0..len).step_by(core as usize).collect::<Vec<_>>();
        let layers = self.lins.len();
        let mut sums: Vec<Option<Tensor>> = (0..layers).map(|_| None).collect();
        let mut counts = vec![(0i64, 0i64); layers]; // (rows, cols) of each tap's whole map
        for &y0 in &starts(h) {
            for &x0 in &starts(w) {
                let (y1, x1) = ((y0 + core).min(h), (x0 + core).min(w));
                let (ty0, tx0) = ((y0 - halo).max(0), (x0 - halo).max(0));
                let (ty1, tx1) = ((y1 + halo).min(h), (x1 + halo).min(w));
                let crop =
                    |t: &Tensor| -> Result<Tensor> { Ok(t.f_narrow(2, ty0, ty1 - ty0)?.f_narrow(3, tx0, tx1 - tx0)?) };
                let (distances, _) = self.layer_distances(&crop(dist)?, &crop(reference)?)?;
                for (k, d) in distances.iter().enumerate() {
                    let (fh, fw) = (d.size()[2], d.size()[3]);
                    let s = self.net.tap_strides()[k];
                    // The core's rows/cols in this tile's feature grid; the last tile takes the rest.
                    let r0 = (y0 - ty0) / s;
                    let r1 = if y1 == h { fh } else { (y1 - ty0) / s };
                    let c0 = (x0 - tx0) / s;
                    let c1 = if x1 == w { fw } else { (x1 - tx0) / s };
                    let part = d.f_narrow(2, r0, r1 - r0)?.f_narrow(3, c0, c1 - c0)?;
                    let sum = part.f_sum_dim_intlist(&[1i64, 2, 3][..], false, Kind::Double)?;
                    sums[k] = Some(match sums[k].take() {
                        None => sum,
                        Some(t) => t.f_add(&sum)?,
                    });
                    if x0 == 0 {
                        counts[k].0 += r1 - r0;
                    }
                    if y0 == 0 {
                        counts[k].1 += c1 - c0;
                    }
                }
            }
        }
        let mut total = Tensor::f_zeros([n], (Kind::Double, dist.device()))?;
        for (sum, (rows, cols)) in sums.into_iter().zip(counts) {
            total = total.f_add(&sum.expect("every tap").f_div_scalar((rows * cols) as f64)?)?;
        }
        Ok(total.f_to_kind(Kind::Float)?)
    }
}

impl Model for Lpips {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let reference = require_ref(reference)?;
        if self.tiled(&dist.size()) {
            return self.forward_tiled(dist, reference);
        }
        let (distances, ref_taps) = self.layer_distances(dist, reference)?;
        self.pool(&distances, &ref_taps)
    }

    fn prepares_references(&self) -> bool {
        true
    }

    /// The reference's activations, for images scored in one pass (tiled ones are scored pair by pair).
    fn prepare(&self, reference: &Tensor) -> Result<Option<Prepared>> {
        if self.tiled(&reference.size()) {
            return Ok(None);
        }
        let taps = self.taps(&in_twos(reference)?)?;
        let taps = taps.iter().map(|t| Ok(FrozenTensor::new(t.f_narrow(0, 0, 1)?))).collect::<Result<_>>()?;
        Ok(Some(Prepared(Box::new(ReferenceTaps(taps)))))
    }

    fn forward_prepared(&self, dist: &Tensor, prepared: &Prepared) -> Result<Tensor> {
        let ReferenceTaps(ref_taps) = prepared.get::<ReferenceTaps>()?;
        let n = dist.size()[0];
        let mut scores = Vec::new();
        for start in (0..n).step_by(2) {
            let len = (n - start).min(2);
            let taps = self.taps(&in_twos(&dist.f_narrow(0, start, len)?)?)?;
            let distances = taps
                .iter()
                .zip(ref_taps)
                .zip(&self.lins)
                .map(|((tap, ref_tap), lin)| distance(ref_tap, tap, lin))
                .collect::<Result<Vec<_>>>()?;
            let ref_taps: Vec<Tensor> = ref_taps.iter().map(|t| t.shallow_clone()).collect();
            // Each image's maps pooled alone, as a pair's are: libtorch splits a mean over one image's map
            // differently from the same means over a batch.
            for i in 0..len {
                let own = distances.iter().map(|d| Ok(d.f_narrow(0, i, 1)?)).collect::<Result<Vec<_>>>()?;
                scores.push(self.pool(&own, &ref_taps)?);
            }
        }
        Ok(Tensor::f_cat(&scores, 0)?)
    }

    fn distance_map(&self) -> Option<&dyn DistanceMap> {
        Some(self)
    }
}

impl DistanceMap for Lpips {
    /// LPIPS' spatial distance map: each layer's distance bilinearly upsampled to the input size and summed.
    /// Its mean is close to (not exactly) the score, as in the reference implementation.
    fn map(&self, dist: &Tensor, reference: &Tensor) -> Result<Tensor> {
        let size = dist.size();
        let (distances, _) = self.layer_distances(dist, reference)?;
        let mut total: Option<Tensor> = None;
        for d in distances {
            let up = d.f_upsample_bilinear2d([size[2], size[3]], false, None, None)?;
            total = Some(match total {
                None => up,
                Some(t) => t.f_add(&up)?,
            });
        }
        Ok(total.expect("at least one layer"))
    }
}

/// Builds an LPIPS variant with pyiqa's v0.1 weights; `semantic` selects the `+` variant.
pub fn build(key: &ModelKey, net: Net, semantic: bool) -> Result<Arc<dyn Model>> {
    Ok(Arc::new(Lpips::load(key, net, semantic)?))
}

impl Lpips {
    fn load(key: &ModelKey, net: Net, semantic: bool) -> Result<Lpips> {
        let device = key.device;
        let backbone = match net {
            Net::Alex => LpipsNet::Alex(backbones::shared_alexnet(device, key.precision)?),
            Net::Vgg => LpipsNet::Vgg(backbones::shared_vgg16(device, key.precision)?),
            Net::Squeeze => LpipsNet::Squeeze(backbones::shared_squeezenet(device, key.precision)?),
            Net::ShiftTolerantAlex | Net::ShiftTolerantVgg => return Self::load_shift_tolerant(key, net),
        };
        let names: Vec<(String, [i64; 4])> = backbone
            .channels()
            .iter()
            .enumerate()
            .map(|(k, &c)| (format!("lin{k}.model.1.weight"), [1, c, 1, 1]))
            .collect();
        let expected: Vec<(&str, &[i64])> = names.iter().map(|(n, s)| (n.as_str(), &s[..])).collect();
        let file = weights::files::lpips("0.1", net.name()).expect("every Net has v0.1 weights");
        let state = weights::load(file, &expected)?;
        let lins = names
            .iter()
            .map(|(n, _)| Ok(state[n].f_to_kind(Kind::Float)?.f_to_device(device)?))
            .collect::<Result<Vec<_>>>()?;
        Lpips::new(backbone, lins, true, semantic)
    }

    /// ST-LPIPS: its file holds the backbone (`net.*`) and the lin layers (`lin{k}.model.1.weight`), read as
    /// pyiqa reads it (a plain state dict, `module.` dropped).
    fn load_shift_tolerant(key: &ModelKey, net: Net) -> Result<Lpips> {
        let place = Placement::new(key.device, Precision::Fp32);
        let file = net.weights()[0];
        let ck = Checkpoint::unwrap(file.official_name, weights::load(file, &[])?, None);
        let backbone = match net {
            Net::ShiftTolerantVgg => {
                LpipsNet::ShiftTolerantVgg(Box::new(ShiftTolerantVgg16::load(&ck, "net.", place)?))
            }
            _ => LpipsNet::ShiftTolerantAlex(Box::new(ShiftTolerantAlexNet::load(&ck, "net.", place)?)),
        };
        Self::with_lins(backbone, &ck, key.device)
    }

    /// `backbone` with the lin layers of `ck`.
    fn with_lins(backbone: LpipsNet, ck: &Checkpoint, device: Device) -> Result<Lpips> {
        let lins = backbone
            .channels()
            .iter()
            .enumerate()
            .map(|(k, &c)| Ok(ck.get(&format!("lin{k}.model.1.weight"), &[1, c, 1, 1])?.f_to_device(device)?))
            .collect::<Result<Vec<_>>>()?;
        Lpips::new(backbone, lins, true, false)
    }
}

/// One layer's LPIPS distance map, N×1×h×w, from the activations of the references (N×C×h×w, or 1×C×h×w for
/// every image) and of the N distorted images: each pixel's channel vector scaled to unit length (+eps), the
/// squared difference weighted by `lin` (1×C×1×1) and summed over channels. pyiqa's operations, each on its own
/// pixels, so one reference serves every image without being copied.
fn layer_distance(refs: &Tensor, dists: &Tensor, lin: &Tensor) -> Result<Tensor> {
    let unit = |tap: &Tensor| -> Result<Tensor> {
        let norm = tap.f_square()?.f_sum_dim_intlist(1, true, None::<Kind>)?.f_sqrt()?.f_add_scalar(NORM_EPS)?;
        Ok(tap.f_div(&norm)?)
    };
    let mut diff = unit(refs)?.f_sub(&unit(dists)?)?;
    let _ = diff.f_square_()?;
    Ok(diff.f_conv2d(lin, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1)?)
}

/// [`layer_distance`] for float32 CPU activations in one pass over each pixel's channels (those eight
/// full-size libtorch passes were ~10% of LPIPS' time at 1080p), split between libtorch's threads. Sums run in
/// another order than libtorch's, which moves scores by ~1e-7.
fn layer_distance_cpu(refs: &Tensor, dists: &Tensor, lin: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = dists.size4()?;
    let (n, c, pixels) = (n as usize, c as usize, (h * w) as usize);
    // Pixel-major (channels innermost): free when the backbone ran channels-last.
    let pixel_major = |t: &Tensor| t.f_permute([0, 2, 3, 1])?.f_contiguous();
    let (refs_nhwc, dists_nhwc) = (pixel_major(refs)?, pixel_major(dists)?);
    let weights = Vec::<f32>::try_from(&lin.f_to_kind(Kind::Float)?.f_contiguous()?.f_view([-1])?)?;
    if weights.len() != c {
        return layer_distance(refs, dists, lin);
    }
    let (references, distorted) = (cpu_slice::<f32>(&refs_nhwc)?, cpu_slice::<f32>(&dists_nhwc)?);
    // One reference for every image, or one each.
    let reference_values = references.len();
    let mut out = FreshTensor::<f32>::empty(&[n as i64, 1, h, w])?;
    let output = out.as_mut_slice();
    let eps = NORM_EPS as f32;
    let inverse_norm = |v: &[f32]| 1.0 / (v.iter().map(|x| x * x).sum::<f32>().sqrt() + eps);
    let weights = weights.as_slice();
    let row = w as usize;
    debug_assert!(reference_values == pixels * c || reference_values == n * pixels * c);
    crate::runtime::for_each_piece(output, row, |y, distances| {
        for (i, d) in distances.iter_mut().enumerate() {
            let at = (y * row + i) * c;
            let at_ref = at % reference_values;
            let (r, x) = (&references[at_ref..at_ref + c], &distorted[at..at + c]);
            let (kr, kx) = (inverse_norm(r), inverse_norm(x));
            *d = r.iter().zip(x).zip(weights).map(|((a, b), w)| w * (a * kr - b * kx).powi(2)).sum();
        }
    });
    Ok(out.into_tensor())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{decode_file, to_batch_tensor};
    use crate::runtime::Precision;

    /// One layer's distance with one reference for three images equals, to the bit, pyiqa's order of operations
    /// on the batch of the three pairs (references first, normalised together with the distorted images); the
    /// one-pass CPU version agrees within float32 summation order.
    #[test]
    fn one_reference_distance_equals_the_pairs_batch() {
        let _no_grad = tch::no_grad_guard();
        tch::manual_seed(7);
        let (c, h, w) = (16, 5, 7);
        let refs = Tensor::rand([1, c, h, w], (Kind::Float, Device::Cpu));
        let dists = Tensor::rand([3, c, h, w], (Kind::Float, Device::Cpu));
        let lin = Tensor::rand([1, c, 1, 1], (Kind::Float, Device::Cpu));
        let shared = layer_distance(&refs, &dists, &lin).unwrap();
        assert_eq!(shared.size(), [3, 1, h, w]);
        let batch = Tensor::cat(&[&refs.expand([3, c, h, w], false), &dists], 0);
        let unit = &batch / (batch.square().sum_dim_intlist(1, true, None::<Kind>).sqrt() + NORM_EPS);
        let pairs = (unit.narrow(0, 0, 3) - unit.narrow(0, 3, 3)).square().conv2d(
            &lin,
            None::<Tensor>,
            [1, 1],
            [0, 0],
            [1, 1],
            1,
        );
        assert!(shared.equal(&pairs), "shared reference differs from the pairs' batch");
        let cpu = layer_distance_cpu(&refs, &dists, &lin).unwrap();
        let worst = f64::try_from((&cpu - &shared).abs().max() / shared.abs().max()).unwrap();
        assert!(worst < 1e-6, "one-pass CPU distance {worst:.1e} from libtorch's");
    }

    /// The calibration pair I03 (distorted, reference) repeated 3×3: 1536×1152, several tiles of 512 plus halo.
    fn i03_pair_3x3() -> (Tensor, Tensor) {
        let load = |kind: &str| {
            let path =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/calibration").join(kind).join("I03.bmp");
            let img = decode_file(&path).unwrap();
            to_batch_tensor(&[img.as_image()], Device::Cpu).unwrap().repeat([1, 1, 3, 3])
        };
        (load("dist"), load("ref"))
    }

    /// The I03 pair repeated 3×3 (1536×1152), large enough for several tiles of 512 plus halo: LPIPS in tiles
    /// equals one pass. Needs IQA_WEIGHTS_DIR.
    #[test]
    fn lpips_in_tiles_equals_one_pass() {
        assert!(std::env::var_os("IQA_WEIGHTS_DIR").is_some(), "IQA_WEIGHTS_DIR is not set: this test needs weights");
        let (d, r) = i03_pair_3x3();
        let _no_grad = tch::no_grad_guard();
        for net in [Net::Alex, Net::Squeeze, Net::Vgg] {
            let name = format!("lpips-{}-tiling-test", net.name());
            let key = ModelKey { name, device: Device::Cpu, precision: Precision::Fp32 };
            let lpips = Lpips::load(&key, net, false).unwrap();
            let whole = f64::try_from(lpips.forward(&d, Some(&r)).unwrap()).unwrap();
            let tiled = f64::try_from(lpips.score_in_tiles(&d, &r, 512).unwrap()).unwrap();
            let err = (tiled - whole).abs() / whole;
            println!("lpips {net:?}: one pass {whole}, 3x3 tiles of 512 {tiled}, relative {err:.1e}");
            assert!(err < 1e-5, "lpips {net:?}: tiled {tiled} vs one pass {whole}");
        }
    }

    /// ST-LPIPS on seeded random He-normal weights: in tiles (cores of 512, the halo of 256) equals one pass on
    /// the I03 pair repeated 3×3 (1536×1152). ST-VGG16 (about a minute) only with IQA_ZOO_LONG=1.
    #[test]
    fn shift_tolerant_lpips_in_tiles_equals_one_pass() {
        let _no_grad = tch::no_grad_guard();
        tch::manual_seed(11);
        let (d, r) = i03_pair_3x3();
        let alex: &[(&str, [i64; 4])] = &[
            ("slice1.0", [64, 3, 11, 11]),
            ("slice2.5", [192, 64, 5, 5]),
            ("slice3.9", [384, 192, 3, 3]),
            ("slice4.11", [256, 384, 3, 3]),
            ("slice5.13", [256, 256, 3, 3]),
        ];
        let vgg: Vec<(String, [i64; 4])> = [(1, 0, 3, 64), (1, 2, 64, 64), (2, 6, 64, 128), (2, 8, 128, 128)]
            .into_iter()
            .chain([(3, 12, 128, 256), (3, 14, 256, 256), (3, 16, 256, 256), (4, 20, 256, 512)])
            .chain([(4, 22, 512, 512), (4, 24, 512, 512), (5, 28, 512, 512), (5, 30, 512, 512), (5, 32, 512, 512)])
            .map(|(s, i, cin, cout)| (format!("slice{s}.{i}"), [cout, cin, 3, 3]))
            .collect();
        let long = std::env::var_os("IQA_ZOO_LONG").is_some_and(|v| v == "1");
        let vgg: Vec<(&str, [i64; 4])> = vgg.iter().map(|(k, s)| (k.as_str(), *s)).collect();
        for (net, layers) in [(Net::ShiftTolerantAlex, alex), (Net::ShiftTolerantVgg, &vgg[..])] {
            if net == Net::ShiftTolerantVgg && !long {
                continue;
            }
            let mut tensors = std::collections::HashMap::new();
            for &(key, shape) in layers {
                let fan_in = (shape[1] * shape[2] * shape[3]) as f64;
                tensors.insert(
                    format!("net.{key}.weight"),
                    Tensor::randn(shape, (Kind::Float, Device::Cpu)) * (2.0 / fan_in).sqrt(),
                );
                tensors.insert(format!("net.{key}.bias"), Tensor::zeros([shape[0]], (Kind::Float, Device::Cpu)));
            }
            let channels = if net == Net::ShiftTolerantVgg {
                ShiftTolerantVgg16::CHANNELS
            } else {
                ShiftTolerantAlexNet::CHANNELS
            };
            for (k, c) in channels.iter().enumerate() {
                tensors
                    .insert(format!("lin{k}.model.1.weight"), Tensor::rand([1, *c, 1, 1], (Kind::Float, Device::Cpu)));
            }
            let ck = Checkpoint::new("random", tensors);
            let place = Placement::new(Device::Cpu, Precision::Fp32);
            let backbone = match net {
                Net::ShiftTolerantVgg => {
                    LpipsNet::ShiftTolerantVgg(Box::new(ShiftTolerantVgg16::load(&ck, "net.", place).unwrap()))
                }
                _ => LpipsNet::ShiftTolerantAlex(Box::new(ShiftTolerantAlexNet::load(&ck, "net.", place).unwrap())),
            };
            let lpips = Lpips::with_lins(backbone, &ck, Device::Cpu).unwrap();
            let whole = f64::try_from(lpips.forward(&d, Some(&r)).unwrap()).unwrap();
            let tiled = f64::try_from(lpips.score_in_tiles(&d, &r, 512).unwrap()).unwrap();
            let err = (tiled - whole).abs() / whole;
            println!("{net:?}: one pass {whole}, 3x3 tiles of 512 {tiled}, relative {err:.1e}");
            assert!(err < 1e-5, "{net:?}: tiled {tiled} vs one pass {whole}");
        }
    }
}
