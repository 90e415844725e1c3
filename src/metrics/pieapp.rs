//! PieAPP v0.1 (Prashnani et al. 2018) as pyiqa 0.1.16 runs it: both images as BGR in [0, 255], cut into
//! 64×64 patches every 27 pixels (no padding: rows and columns 0, 27, … up to side − 64), each through eleven
//! 3×3 conv+ReLU layers with 2×2 max-pooling after conv 2, 4, 6, 8 and 10. Per patch, the reference's
//! features minus the distorted image's: all five stages' maps flattened (120 832 values) give a score
//! (two linear layers, ×0.01, then `x·w + b`), the last stage's (2048) a weight (two linear layers + 1e-6,
//! no ReLU: weights may be negative, as in pyiqa). The score is Σ weight·score / Σ weight.
use crate::error::Result;
use crate::model::{require_ref, MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::{channels_last, Placement};
use crate::nn::layers::{Checkpoint, Conv2d, Linear};
use crate::tensor::FrozenTensor;
use crate::weights::{self, files};
use std::sync::Arc;
use tch::{Kind, Tensor};

pub const METRICS: &[MetricSpec] = &[MetricSpec::new("pieapp", Mode::FullReference, true, (0.0, 5.0), build)
    .min_size(PATCH as u32, PATCH as u32)
    .weights(&[&files::PIEAPP_V01])
    .reduced_precision()];

const PATCH: i64 = 64;
const STRIDE: i64 = 27;
/// Flattened features of the five stages of a 64×64 patch: 64·32² + 128·16² + 256·8² + 256·4² + 512·2².
const MULTISCALE: i64 = 120_832;
const COARSE: i64 = 2048;
/// Patches through the network at once: bounds the activations (64 channels of 64×64 floats per patch).
const PATCH_CHUNK: i64 = 64;
const WEIGHT_EPS: f64 = 1e-6;

fn build(key: &ModelKey) -> Result<Arc<dyn Model>> {
    let place = Placement::new(key.device, key.precision);
    let file = &files::PIEAPP_V01;
    let ck = Checkpoint::unwrap(file.official_name, weights::load(file, &[])?, None);
    let widths = [64, 64, 64, 128, 128, 128, 256, 256, 256, 512, 512];
    let mut convs = Vec::with_capacity(widths.len());
    let mut cin = 3;
    for (i, &cout) in widths.iter().enumerate() {
        convs.push(Conv2d::load(&ck, &format!("conv{}", i + 1), (cin, cout, 3), true, 1, 1, place)?);
        cin = cout;
    }
    let linear = |name: &str, cin, cout| Linear::load(&ck, name, (cin, cout), true, place);
    Ok(Arc::new(PieApp {
        convs,
        score: [linear("fc1_score", MULTISCALE, 512)?, linear("fc2_score", 512, 1)?],
        weight: [linear("fc1_weight", COARSE, 512)?, linear("fc2_weight", 512, 1)?],
        subtract_weight: FrozenTensor::new(ck.get("ref_score_subtract.weight", &[1])?.f_to_device(key.device)?),
        subtract_bias: FrozenTensor::new(ck.get("ref_score_subtract.bias", &[1])?.f_to_device(key.device)?),
    }))
}

struct PieApp {
    convs: Vec<Conv2d>,
    score: [Linear; 2],
    weight: [Linear; 2],
    /// `ref_score_subtract`: `x·w + b` on every patch score, float32.
    subtract_weight: FrozenTensor,
    subtract_bias: FrozenTensor,
}

/// The 64×64 patches every 27 pixels of N×3×H×W, image by image and row-major: (N·rows·cols)×3×64×64.
fn patches(x: &Tensor) -> Result<(Tensor, i64)> {
    let (n, c, _, _) = x.size4()?;
    let p = x.f_unfold(2, PATCH, STRIDE)?.f_unfold(3, PATCH, STRIDE)?; // N×C×rows×cols×64×64
    let (rows, cols) = (p.size()[2], p.size()[3]);
    Ok((p.f_permute([0, 2, 3, 1, 4, 5])?.f_reshape([n * rows * cols, c, PATCH, PATCH])?, rows * cols))
}

impl PieApp {
    /// The flattened maps of the five stages (P×120832) and the last one's (P×2048) of P patches.
    fn features(&self, patches: &Tensor) -> Result<(Tensor, Tensor)> {
        let mut h = channels_last(patches)?;
        let mut maps = Vec::with_capacity(5);
        // Taps after the ReLU of conv 3, 5, 7, 9 and 11; pools after conv 2, 4, 6, 8 and 10.
        for (i, conv) in self.convs.iter().enumerate() {
            h = conv.forward_relu(&h)?;
            if i % 2 == 1 {
                h = h.f_max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)?;
            } else if i > 0 {
                maps.push(h.f_flatten(1, 3)?);
            }
        }
        let coarse = maps.last().expect("five taps").shallow_clone();
        Ok((Tensor::f_cat(&maps, 1)?, coarse))
    }

    /// Per patch of the pair: (score, weight), each P.
    fn patch_scores(&self, dist: &Tensor, reference: &Tensor) -> Result<(Tensor, Tensor)> {
        let (dist_ms, dist_coarse) = self.features(dist)?;
        let (ref_ms, ref_coarse) = self.features(reference)?;
        let mut h = self.score[0].forward(&ref_ms.f_sub(&dist_ms)?)?;
        let _ = h.f_relu_()?;
        let score = self.score[1].forward(&h)?.f_to_kind(Kind::Float)?.f_mul_scalar(0.01)?;
        let score = score.f_mul(&self.subtract_weight)?.f_add(&self.subtract_bias)?;
        let mut h = self.weight[0].forward(&ref_coarse.f_sub(&dist_coarse)?)?;
        let _ = h.f_relu_()?;
        let weight = self.weight[1].forward(&h)?.f_to_kind(Kind::Float)?.f_add_scalar(WEIGHT_EPS)?;
        Ok((score.f_view([-1])?, weight.f_view([-1])?))
    }
}

/// BGR in [0, 255], PieAPP's input.
fn bgr255(x: &Tensor) -> Result<Tensor> {
    Ok(x.f_flip([1])?.f_mul_scalar(255.0)?)
}

impl Model for PieApp {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let reference = require_ref(reference)?;
        let n = dist.size()[0];
        let (dist_patches, per_image) = patches(&bgr255(dist)?)?;
        let (ref_patches, _) = patches(&bgr255(reference)?)?;
        let total = n * per_image;
        let (mut scores, mut weights) = (Vec::new(), Vec::new());
        for start in (0..total).step_by(PATCH_CHUNK as usize) {
            let len = PATCH_CHUNK.min(total - start);
            let (s, w) =
                self.patch_scores(&dist_patches.f_narrow(0, start, len)?, &ref_patches.f_narrow(0, start, len)?)?;
            scores.push(s);
            weights.push(w);
        }
        let score = Tensor::f_cat(&scores, 0)?.f_view([n, per_image])?;
        let weight = Tensor::f_cat(&weights, 0)?.f_view([n, per_image])?;
        let total_weight = weight.f_sum_dim_intlist(1, false, None)?;
        Ok(weight.f_mul(&score)?.f_sum_dim_intlist(1, false, None)?.f_div(&total_weight)?)
    }
}
