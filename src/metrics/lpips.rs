//! LPIPS (Zhang et al. 2018) as pyiqa 0.1.16 runs it: inputs mapped to [-1,1], the v0.1 scaling layer (v0.0
//! skips it), backbone activations normalised over channels (eps 1e-10), squared differences weighted by the
//! learned 1×1 "lin" layers and averaged over space, summed over layers. The `+` variants (pyiqa's
//! `semantic_weight_layer=2`) average each layer's distance weighted by the reference's third activation,
//! bilinearly resized to that layer.
use super::{require_ref, Model};
use crate::error::Result;
use crate::nn::backbones::{self, AlexNet, SqueezeNet11, Vgg16};
use crate::registry::ModelKey;
use crate::runtime::FrozenTensor;
use crate::weights;
use std::sync::Arc;
use tch::{Kind, Tensor};

/// The backbone a variant runs on (shared with other metrics through the registry).
pub enum LpipsNet {
    Alex(Arc<AlexNet>),
    Vgg(Arc<Vgg16>),
    Squeeze(Arc<SqueezeNet11>),
}

impl LpipsNet {
    fn taps(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        match self {
            LpipsNet::Alex(n) => n.taps(x),
            LpipsNet::Vgg(n) => n.taps(x, Vgg16::max_pool),
            LpipsNet::Squeeze(n) => n.taps(x),
        }
    }

    /// Channels of each tap (the lin layers' input widths).
    pub fn channels(&self) -> &'static [i64] {
        match self {
            LpipsNet::Alex(_) => &AlexNet::CHANNELS,
            LpipsNet::Vgg(_) => &Vgg16::CHANNELS,
            LpipsNet::Squeeze(_) => &SqueezeNet11::CHANNELS,
        }
    }

    fn min_side(&self) -> i64 {
        match self {
            LpipsNet::Alex(_) => AlexNet::MIN_SIDE,
            // Four 2×2 poolings: relu5_3 needs 16 pixels.
            LpipsNet::Vgg(_) => 16,
            // conv 3×3/2, then three ceil-mode 3×3/2 pools (measured with pyiqa: 17 works, 16 does not).
            LpipsNet::Squeeze(_) => 17,
        }
    }
}

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

    /// Per-layer weighted squared differences of normalised activations, N×1×h_k×w_k each, and the
    /// reference's activations (for the semantic weights).
    fn layer_distances(&self, dist: &Tensor, reference: &Tensor) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
        let n = dist.size()[0];
        // Both images through the backbone in one batch: reference first (pyiqa's in0), then distorted.
        let mut x = Tensor::f_cat(&[reference, dist], 0)?.f_mul_scalar(2.0)?.f_sub_scalar(1.0)?;
        if let Some((shift, scale)) = &self.scaling {
            x = x.f_sub(shift)?.f_div(scale)?;
        }
        let taps = self.net.taps(&x)?;
        let mut distances = Vec::with_capacity(taps.len());
        let mut ref_taps = Vec::with_capacity(taps.len());
        for (tap, lin) in taps.iter().zip(&self.lins) {
            let norm = tap.f_square()?.f_sum_dim_intlist(1, true, None::<Kind>)?.f_sqrt()?.f_add_scalar(NORM_EPS)?;
            let unit = tap.f_div(&norm)?;
            let (r, d) = (unit.f_narrow(0, 0, n)?, unit.f_narrow(0, n, n)?);
            let diff = r.f_sub(&d)?.f_square()?;
            distances.push(diff.f_conv2d(lin, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1)?);
            ref_taps.push(tap.f_narrow(0, 0, n)?);
        }
        Ok((distances, ref_taps))
    }

    /// LPIPS' spatial distance map: each layer's distance bilinearly upsampled to the input size and summed.
    /// N×1×H×W; its mean is close to (not exactly) the score, as in the reference implementation.
    pub fn distance_map(&self, dist: &Tensor, reference: &Tensor) -> Result<Tensor> {
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

impl Model for Lpips {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let (distances, ref_taps) = self.layer_distances(dist, require_ref(reference)?)?;
        let mut total: Option<Tensor> = None;
        for d in &distances {
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

    fn min_size(&self) -> (i64, i64) {
        let s = self.net.min_side();
        (s, s)
    }

    fn as_lpips(&self) -> Option<&Lpips> {
        Some(self)
    }
}

/// Builds an LPIPS variant with pyiqa's v0.1 weights: `net` is "alex", "vgg" or "squeeze"; `semantic` selects
/// the `+` variant.
pub fn build(key: &ModelKey, net: &str, semantic: bool) -> Result<Arc<dyn Model>> {
    let device = key.device;
    let backbone = match net {
        "alex" => LpipsNet::Alex(backbones::shared_alexnet(device, key.precision)?),
        "vgg" => LpipsNet::Vgg(backbones::shared_vgg16(device, key.precision)?),
        _ => LpipsNet::Squeeze(backbones::shared_squeezenet(device, key.precision)?),
    };
    let names: Vec<(String, [i64; 4])> = backbone
        .channels()
        .iter()
        .enumerate()
        .map(|(k, &c)| (format!("lin{k}.model.1.weight"), [1, c, 1, 1]))
        .collect();
    let expected: Vec<(&str, &[i64])> = names.iter().map(|(n, s)| (n.as_str(), &s[..])).collect();
    let file = weights::files::lpips("0.1", net).expect("known LPIPS net");
    let state = weights::load(file, &expected)?;
    let lins = names
        .iter()
        .map(|(n, _)| Ok(state[n].f_to_kind(Kind::Float)?.f_to_device(device)?))
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(Lpips::new(backbone, lins, true, semantic)?))
}
