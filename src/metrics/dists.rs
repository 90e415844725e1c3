//! DISTS (Ding et al. 2020) as pyiqa 0.1.16 runs it: ImageNet-normalised input through VGG16 with its
//! max-pools replaced by L2 pooling (3×3 Hann window, stride 2), then structure and texture similarity of the
//! input and five stages' activations, weighted by the learned alpha/beta.
use crate::error::Result;
use crate::model::{require_ref, MetricSpec, Mode, Model, ModelKey, Prepared};
use crate::nn::backbones::{self, channels_last, Vgg};
use crate::nn::layers::hann_l2_pool;
use crate::tensor::{cpu_slice, FrozenTensor};
use crate::weights;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

pub const METRICS: &[MetricSpec] = &[MetricSpec::new("dists", Mode::FullReference, true, (0.0, 1.0), build)
    .reduced_precision()
    .max_pixels(
        crate::metrics::lpips::TILE_ABOVE_PIXELS as u64,
        "its statistics span whole VGG16 feature maps (~1.5 KB per pixel at once), so it is not scored in tiles",
    )
    .weights(&[&weights::files::DISTS_ALPHA_BETA, &weights::files::VGG16])];

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];
/// Channels of the six compared feature sets: the input and the five stages.
const CHANNELS: [i64; 6] = [3, 64, 128, 256, 512, 512];
const C1: f64 = 1e-6;
const C2: f64 = 1e-6;

pub struct Dists {
    vgg: Arc<Vgg>,
    mean: FrozenTensor,
    std: FrozenTensor,
    /// alpha/beta divided by their joint sum, split per feature set: 1×C×1×1 each.
    alpha: Vec<FrozenTensor>,
    beta: Vec<FrozenTensor>,
}

impl Dists {
    /// `alpha` and `beta` as stored (1×1475×1×1), on the model's device.
    pub fn new(vgg: Arc<Vgg>, alpha: &Tensor, beta: &Tensor) -> Result<Self> {
        let device = alpha.device();
        let constant = |v: &[f32; 3]| -> Result<FrozenTensor> {
            Ok(FrozenTensor::new(Tensor::f_from_slice(v)?.f_view([1, 3, 1, 1])?.f_to_device(device)?))
        };
        let total = alpha.f_sum(Kind::Float)?.f_add(&beta.f_sum(Kind::Float)?)?;
        let split = |w: &Tensor| -> Result<Vec<FrozenTensor>> {
            Ok(w.f_div(&total)?.f_split_with_sizes(&CHANNELS[..], 1)?.into_iter().map(FrozenTensor::new).collect())
        };
        Ok(Dists { vgg, mean: constant(&MEAN)?, std: constant(&STD)?, alpha: split(alpha)?, beta: split(beta)? })
    }

    fn l2_pool(&self, h: &Tensor) -> Result<Tensor> {
        // Pooled in float32 even when the backbone runs in reduced precision.
        hann_l2_pool(&h.f_to_kind(Kind::Float)?, 2)
    }
}

/// Per-channel means, variances and covariance of two N×C×H×W feature maps, N×C×1×1 float32 each.
struct Moments {
    mx: Tensor,
    my: Tensor,
    vx: Tensor,
    vy: Tensor,
    cov: Tensor,
}

/// pyiqa's statistics: var = mean((f − m)²), cov = mean(fx·fy) − mx·my.
fn moments(fx: &Tensor, fy: &Tensor) -> Result<Moments> {
    // Large maps only: on small ones (a 16×16 crop's last stages) the variances are tiny against C2 and pyiqa's
    // float32 rounding shows in the score (2e-5), so they keep pyiqa's operations.
    if fx.device() == Device::Cpu && fx.kind() == Kind::Float && fy.kind() == Kind::Float && fx.numel() >= 1 << 24 {
        return moments_cpu(fx, fy);
    }
    moments_tensor(fx, fy)
}

/// [`moments`] in pyiqa's libtorch operations (float32, any device).
fn moments_tensor(fx: &Tensor, fy: &Tensor) -> Result<Moments> {
    let dims = &[2i64, 3][..];
    let mx = fx.f_mean_dim(dims, true, None::<Kind>)?;
    let my = fy.f_mean_dim(dims, true, None::<Kind>)?;
    let vx = fx.f_sub(&mx)?.f_square()?.f_mean_dim(dims, true, None::<Kind>)?;
    let vy = fy.f_sub(&my)?.f_square()?.f_mean_dim(dims, true, None::<Kind>)?;
    let cov = fx.f_mul(fy)?.f_mean_dim(dims, true, None::<Kind>)?.f_sub(&mx.f_mul(&my)?)?;
    Ok(Moments { mx, my, vx, vy, cov })
}

/// [`moments`] on the CPU in two passes accumulated in float64, rounded to float32: no full-size temporaries
/// (the five libtorch expressions allocated four per layer, 530 MB each for VGG16's first stage at 1080p,
/// which set DISTS' peak: 3.84 → 2.68 GB at 1080p). More exact than pyiqa's float32 sums, whose covariance
/// cancels; scores move by < 1e-6 on the large maps where it is used.
fn moments_cpu(fx: &Tensor, fy: &Tensor) -> Result<Moments> {
    let (n, c, h, w) = fx.size4()?;
    let (n, c, pixels) = (n as usize, c as usize, (h * w) as usize);
    // Pixel-major (channels innermost): free for the channels-last VGG16 maps.
    let (x, y) = (fx.f_permute([0, 2, 3, 1])?.f_contiguous()?, fy.f_permute([0, 2, 3, 1])?.f_contiguous()?);
    let (xs, ys) = (cpu_slice::<f32>(&x)?, cpu_slice::<f32>(&y)?);
    let mut out: [Vec<f32>; 5] = std::array::from_fn(|_| Vec::with_capacity(n * c));
    for (xi, yi) in xs.chunks_exact(pixels * c).zip(ys.chunks_exact(pixels * c)) {
        let (mut sx, mut sy, mut sxy) = (vec![0f64; c], vec![0f64; c], vec![0f64; c]);
        for (px, py) in xi.chunks_exact(c).zip(yi.chunks_exact(c)) {
            for k in 0..c {
                let (a, b) = (px[k] as f64, py[k] as f64);
                sx[k] += a;
                sy[k] += b;
                sxy[k] += a * b;
            }
        }
        let count = pixels as f64;
        let mx: Vec<f64> = sx.iter().map(|s| s / count).collect();
        let my: Vec<f64> = sy.iter().map(|s| s / count).collect();
        let (mut vx, mut vy) = (vec![0f64; c], vec![0f64; c]);
        for (px, py) in xi.chunks_exact(c).zip(yi.chunks_exact(c)) {
            for k in 0..c {
                vx[k] += (px[k] as f64 - mx[k]).powi(2);
                vy[k] += (py[k] as f64 - my[k]).powi(2);
            }
        }
        for k in 0..c {
            let values = [mx[k], my[k], vx[k] / count, vy[k] / count, sxy[k] / count - mx[k] * my[k]];
            for (o, v) in out.iter_mut().zip(values) {
                o.push(v as f32);
            }
        }
    }
    let shape = [n as i64, c as i64, 1, 1];
    let [mx, my, vx, vy, cov] = out.map(|v| Tensor::f_from_slice(&v).and_then(|t| t.f_view(shape)));
    Ok(Moments { mx: mx?, my: my?, vx: vx?, vy: vy?, cov: cov? })
}

impl Dists {
    /// The six feature sets of a batch: the image itself, then VGG16's five stages L2-pooled.
    fn features(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let h = channels_last(&x.f_sub(&self.mean)?.f_div(&self.std)?)?;
        let mut feats = vec![x.shallow_clone()];
        feats.extend(self.vgg.taps(&h, |t, _| self.l2_pool(t))?);
        Ok(feats)
    }

    /// 1 − the weighted structure and texture similarity of two images' feature sets.
    fn score(&self, feats_x: &[Tensor], feats_y: &[Tensor]) -> Result<Tensor> {
        let mut similarity: Option<Tensor> = None;
        for (k, (fx, fy)) in feats_x.iter().zip(feats_y).enumerate() {
            let Moments { mx, my, vx, vy, cov } = moments(fx, fy)?;
            let s1 = mx
                .f_mul(&my)?
                .f_mul_scalar(2.0)?
                .f_add_scalar(C1)?
                .f_div(&mx.f_square()?.f_add(&my.f_square()?)?.f_add_scalar(C1)?)?;
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
}

/// A reference's six feature sets (1×C×h×w), kept by [`Model::prepare`].
struct ReferenceFeatures(Vec<FrozenTensor>);

impl Model for Dists {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let reference = require_ref(reference)?;
        // The two images go through VGG16 one after the other, as in pyiqa: a batch of both would double the
        // peak (4.35 GB against pyiqa's 3.75 GB for a 1080p pair).
        self.score(&self.features(dist)?, &self.features(reference)?)
    }

    fn prepares_references(&self) -> bool {
        true
    }

    fn prepare(&self, reference: &Tensor) -> Result<Option<Prepared>> {
        let features = self.features(reference)?.into_iter().map(FrozenTensor::new).collect();
        Ok(Some(Prepared(Box::new(ReferenceFeatures(features)))))
    }

    /// Image by image, as `forward` runs a pair (VGG16 on one image at a time).
    fn forward_prepared(&self, dist: &Tensor, prepared: &Prepared) -> Result<Tensor> {
        let ReferenceFeatures(ref_features) = prepared.get::<ReferenceFeatures>()?;
        let ref_features: Vec<Tensor> = ref_features.iter().map(|f| f.shallow_clone()).collect();
        let scores = (0..dist.size()[0])
            .map(|i| self.score(&self.features(&dist.f_narrow(0, i, 1)?)?, &ref_features))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::f_cat(&scores, 0)?)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPU moments equal pyiqa's operations run in float64, to float32 rounding, on channels-last maps with
    /// an offset (var ≪ mean², where pyiqa's float32 covariance carries 0.7% of cancellation error here) and a
    /// batch of 2.
    #[test]
    fn cpu_moments_equal_libtorch() {
        tch::manual_seed(9);
        let map = |scale: f64| Tensor::rand([2, 5, 37, 41], (Kind::Float, Device::Cpu)) * scale + 3.0;
        // Correlated maps, so that the covariance is not just float32 noise.
        let fx = crate::nn::backbones::channels_last(&map(0.5)).unwrap();
        let fy = crate::nn::backbones::channels_last(&(&fx * 0.02 + map(0.01))).unwrap();
        let exact = moments_tensor(&fx.to_kind(Kind::Double), &fy.to_kind(Kind::Double)).unwrap();
        let (fast, slow) = (moments_cpu(&fx, &fy).unwrap(), exact);
        for (name, a, b, tolerance) in [
            ("mx", &fast.mx, &slow.mx, 1e-6),
            ("my", &fast.my, &slow.my, 1e-6),
            ("vx", &fast.vx, &slow.vx, 1e-6),
            ("vy", &fast.vy, &slow.vy, 1e-6),
            ("cov", &fast.cov, &slow.cov, 1e-6),
        ] {
            assert_eq!(a.size(), vec![2, 5, 1, 1], "{name}");
            let scale = f64::try_from(b.abs().max()).unwrap().max(1e-6);
            let err = f64::try_from((a.to_kind(Kind::Double) - b).abs().max()).unwrap() / scale;
            assert!(err < tolerance, "{name}: relative error {err}");
        }
    }
}
