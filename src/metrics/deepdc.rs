//! DeepDC (Zhu et al. 2024) as pyiqa 0.1.16 runs it: the ImageNet-normalised distorted and reference images
//! through torchvision's VGG-19 features, at five layers: relu1_2, relu2_2, relu3_4, relu4_4 and conv5_4 (pyiqa
//! taps conv1_2 … conv5_4, but torchvision's in-place ReLU overwrites every tapped map except the last). For
//! each map (C channels of M positions) the double-centred matrix of the distances between channels,
//! √(‖fᵢ − fⱼ‖²/C² + 1e-5); the score is 1 − the mean over the five layers of the two images' distance
//! correlation (Σ A·B + 1e-6) / (√(Σ A² · Σ B²) + 1e-6).
//!
//! The sums against all-ones matrices are pyiqa's batched products with an all-ones matrix (not reductions),
//! kept as such: the centred matrices cancel, and another summation order moves small scores.
use crate::error::Result;
use crate::model::{require_ref, MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::{self, channels_last, Placement, Vgg};
use crate::nn::layers::Normalise;
use crate::weights::files;
use std::sync::Arc;
use tch::{Kind, Tensor};

pub const METRICS: &[MetricSpec] = &[MetricSpec::new("deepdc", Mode::FullReference, true, (0.0, 1.0), build)
    .min_size(16, 16)
    .weights(&[&files::VGG19])
    .reduced_precision()];

/// Added to the scaled squared distances before the square root, and to the correlation's terms.
const DISTANCE_EPS: f64 = 1e-5;
const CORRELATION_EPS: f64 = 1e-6;

fn build(key: &ModelKey) -> Result<Arc<dyn Model>> {
    Ok(Arc::new(DeepDc {
        vgg: backbones::shared_vgg19(key.device, key.precision)?,
        normalise: Normalise::imagenet(Placement::new(key.device, key.precision))?,
    }))
}

struct DeepDc {
    vgg: Arc<Vgg>,
    normalise: Normalise,
}

impl DeepDc {
    fn taps(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        self.vgg.taps_last_linear(&channels_last(&self.normalise.forward(x)?)?, Vgg::max_pool)
    }
}

/// The double-centred distance matrix of the channels of N×C×H×W features: N×C×C.
fn centred_distances(x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.size4()?;
    let x = x.f_reshape([n, c, h * w])?;
    // pyiqa: exp(log(1 / (C·C))) in float32.
    let scale = Tensor::f_from_slice(&[1.0f32])?.f_div_scalar((c * c) as f64)?.f_log()?.f_exp()?;
    let ones = Tensor::f_ones([n, c, c], (Kind::Float, x.device()))?;
    let gram = x.f_bmm(&x.f_transpose(1, 2)?)?;
    let diag = gram.f_mul(&Tensor::f_eye(c, (Kind::Float, x.device()))?)?;
    let squared = ones.f_bmm(&diag)?.f_add(&diag.f_bmm(&ones)?)?.f_sub(&gram.f_mul_scalar(2.0)?)?;
    let d = squared.f_clamp_min(0.0)?.f_mul(&scale.f_to_device(x.device())?)?.f_add_scalar(DISTANCE_EPS)?.f_sqrt()?;
    let k = 1.0 / c as f64;
    let row = ones.f_bmm(&d)?;
    Ok(d.f_sub(&d.f_bmm(&ones)?.f_mul_scalar(k)?)?
        .f_sub(&row.f_mul_scalar(k)?)?
        .f_add(&row.f_bmm(&ones)?.f_mul_scalar(1.0 / (c * c) as f64)?)?)
}

impl Model for DeepDc {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let reference = require_ref(reference)?;
        let (fd, fr) = (self.taps(dist)?, self.taps(reference)?);
        let mut correlations = Vec::with_capacity(fd.len());
        for (d, r) in fd.iter().zip(&fr) {
            let (a, b) = (centred_distances(r)?, centred_distances(d)?);
            let sum = |t: Tensor| t.f_sum_dim_intlist([1i64, 2].as_slice(), false, None);
            let ab = sum(a.f_mul(&b)?)?;
            let (aa, bb) = (sum(a.f_mul(&a)?)?, sum(b.f_mul(&b)?)?);
            let denominator = aa.f_mul(&bb)?.f_sqrt()?.f_add_scalar(CORRELATION_EPS)?;
            correlations.push(ab.f_add_scalar(CORRELATION_EPS)?.f_div(&denominator)?);
        }
        let mean = Tensor::f_stack(&correlations, 1)?.f_mean_dim([1i64].as_slice(), false, None)?;
        Ok(mean.f_neg()?.f_add_scalar(1.0)?)
    }
}
