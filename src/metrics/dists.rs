//! DISTS (Ding et al. 2020) as pyiqa 0.1.16 runs it: ImageNet-normalised input through VGG16 with its
//! max-pools replaced by L2 pooling (3×3 Hann window, stride 2), then structure and texture similarity of the
//! input and five stages' activations, weighted by the learned alpha/beta.
use super::{require_ref, Model};
use crate::error::Result;
use crate::nn::backbones::{self, channels_last, Vgg16};
use crate::registry::ModelKey;
use crate::runtime::FrozenTensor;
use crate::weights;
use std::sync::Arc;
use tch::{Kind, Tensor};

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];
/// Channels of the six compared feature sets: the input and the five stages.
const CHANNELS: [i64; 6] = [3, 64, 128, 256, 512, 512];
const C1: f64 = 1e-6;
const C2: f64 = 1e-6;

pub struct Dists {
    vgg: Arc<Vgg16>,
    mean: FrozenTensor,
    std: FrozenTensor,
    /// 3×3 normalised Hann window (numpy's hanning(5) without its zero ends), for L2 pooling.
    hann: FrozenTensor,
    /// alpha/beta divided by their joint sum, split per feature set: 1×C×1×1 each.
    alpha: Vec<FrozenTensor>,
    beta: Vec<FrozenTensor>,
}

impl Dists {
    /// `alpha` and `beta` as stored (1×1475×1×1), on the model's device.
    pub fn new(vgg: Arc<Vgg16>, alpha: &Tensor, beta: &Tensor) -> Result<Self> {
        let device = alpha.device();
        let constant = |v: &[f32; 3]| -> Result<FrozenTensor> {
            Ok(FrozenTensor::new(Tensor::f_from_slice(v)?.f_view([1, 3, 1, 1])?.f_to_device(device)?))
        };
        let a = [0.5f32, 1.0, 0.5];
        let g: Vec<f32> = (0..9).map(|i| a[i / 3] * a[i % 3] / 4.0).collect();
        let hann = Tensor::f_from_slice(&g)?.f_view([1, 1, 3, 3])?.f_to_device(device)?;
        let total = alpha.f_sum(Kind::Float)?.f_add(&beta.f_sum(Kind::Float)?)?;
        let split = |w: &Tensor| -> Result<Vec<FrozenTensor>> {
            Ok(w.f_div(&total)?.f_split_with_sizes(&CHANNELS[..], 1)?.into_iter().map(FrozenTensor::new).collect())
        };
        Ok(Dists {
            vgg,
            mean: constant(&MEAN)?,
            std: constant(&STD)?,
            hann: FrozenTensor::new(hann),
            alpha: split(alpha)?,
            beta: split(beta)?,
        })
    }

    fn l2_pool(&self, h: &Tensor) -> Result<Tensor> {
        // Pooled in float32 even when the backbone runs in reduced precision.
        let h = h.f_to_kind(Kind::Float)?;
        let c = h.size()[1];
        let window = self.hann.f_expand([c, 1, 3, 3], false)?;
        let pooled = h.f_square()?.f_conv2d(&window, None::<Tensor>, [2, 2], [1, 1], [1, 1], c)?;
        Ok(pooled.f_add_scalar(1e-12)?.f_sqrt()?)
    }
}

impl Model for Dists {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let reference = require_ref(reference)?;
        // The two images go through VGG16 one after the other, as in pyiqa: a batch of both would double the
        // peak (4.35 GB against pyiqa's 3.75 GB for a 1080p pair).
        let features = |x: &Tensor| -> Result<Vec<Tensor>> {
            let h = channels_last(&x.f_sub(&self.mean)?.f_div(&self.std)?)?;
            let mut feats = vec![x.shallow_clone()];
            feats.extend(self.vgg.taps(&h, |t, _| self.l2_pool(t))?);
            Ok(feats)
        };
        let (feats_x, feats_y) = (features(dist)?, features(reference)?);
        let dims = &[2i64, 3][..];
        let mut similarity: Option<Tensor> = None;
        for (k, (fx, fy)) in feats_x.iter().zip(&feats_y).enumerate() {
            let mx = fx.f_mean_dim(dims, true, None::<Kind>)?;
            let my = fy.f_mean_dim(dims, true, None::<Kind>)?;
            let s1 = mx
                .f_mul(&my)?
                .f_mul_scalar(2.0)?
                .f_add_scalar(C1)?
                .f_div(&mx.f_square()?.f_add(&my.f_square()?)?.f_add_scalar(C1)?)?;
            let vx = fx.f_sub(&mx)?.f_square()?.f_mean_dim(dims, true, None::<Kind>)?;
            let vy = fy.f_sub(&my)?.f_square()?.f_mean_dim(dims, true, None::<Kind>)?;
            let cov = fx.f_mul(fy)?.f_mean_dim(dims, true, None::<Kind>)?.f_sub(&mx.f_mul(&my)?)?;
            let s2 = cov.f_mul_scalar(2.0)?.f_add_scalar(C2)?.f_div(&vx.f_add(&vy)?.f_add_scalar(C2)?)?;
            let term = self.alpha[k].f_mul(&s1)?.f_add(&self.beta[k].f_mul(&s2)?)?.f_sum_dim_intlist(
                &[1i64, 2, 3][..],
                false,
                None::<Kind>,
            )?;
            similarity = Some(match similarity {
                None => term,
                Some(s) => s.f_add(&term)?,
            });
        }
        Ok(similarity.expect("six feature sets").f_neg()?.f_add_scalar(1.0)?)
    }

    fn max_pixels(&self) -> Option<(i64, &'static str)> {
        Some((
            crate::metrics::lpips::TILE_ABOVE_PIXELS,
            "its statistics span whole VGG16 feature maps (~1.5 KB per pixel at once), so it is not scored in tiles",
        ))
    }
}

/// Builds DISTS with the official alpha/beta over the shared VGG16.
pub fn build(key: &ModelKey) -> Result<Arc<dyn Model>> {
    let total: i64 = CHANNELS.iter().sum();
    let shape = [1, total, 1, 1];
    let state = weights::load(&weights::files::DISTS_ALPHA_BETA, &[("alpha", &shape), ("beta", &shape)])?;
    let on_device = |k: &str| -> Result<Tensor> { Ok(state[k].f_to_kind(Kind::Float)?.f_to_device(key.device)?) };
    Ok(Arc::new(Dists::new(
        backbones::shared_vgg16(key.device, key.precision)?,
        &on_device("alpha")?,
        &on_device("beta")?,
    )?))
}
