//! CKDN (Zheng et al. 2021) as pyiqa 0.1.16 runs it: the distorted image resized (shorter side 329, bicubic,
//! antialiased) and the reference resized (nearest), both centre-cropped to 288×288 and ImageNet-normalised.
//! Each goes through its own stem (a 7×7/2 convolution without normalisation or ReLU, a 3×3/2 max-pool) and
//! its own copy of ResNet-50's first stage; the difference of the two goes through ResNet-50's second stage,
//! is averaged over space and mapped by three linear layers (512 → 2048 → 2048 → 1) and a sigmoid.
use crate::error::Result;
use crate::model::{require_ref, MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::{channels_last, Placement};
use crate::nn::interpolate::{center_crop, resize_short_side, Mode as Resize};
use crate::nn::layers::{Checkpoint, Conv2d, Linear, Normalise};
use crate::nn::resnet::{Stage, StageShape};
use crate::weights::{self, files};
use std::sync::Arc;
use tch::{Kind, Tensor};

pub const METRICS: &[MetricSpec] = &[MetricSpec::new("ckdn", Mode::FullReference, false, (0.0, 1.0), build)
    .weights(&[&files::CKDN_MODEL_BEST])
    .reduced_precision()];

/// ⌊288 / 0.875⌋: the shorter side before the crop.
const RESIZED: i64 = 329;
const CROP: i64 = 288;

fn build(key: &ModelKey) -> Result<Arc<dyn Model>> {
    let place = Placement::new(key.device, key.precision);
    let file = &files::CKDN_MODEL_BEST;
    let ck = Checkpoint::unwrap(file.official_name, weights::load(file, &[])?, None);
    let stem = |name: &str| Conv2d::load(&ck, &format!("net.{name}"), (3, 64, 7), false, 2, 3, place);
    let first = StageShape { cin: 64, width: 64, blocks: 3, stride: 1, bottleneck: true };
    let second = StageShape { cin: 256, width: 128, blocks: 4, stride: 2, bottleneck: true };
    let linear = |i: usize, cin, cout| Linear::load(&ck, &format!("net.fc_.{i}"), (cin, cout), true, place);
    Ok(Arc::new(Ckdn {
        normalise: Normalise::imagenet(place)?,
        dist_stem: stem("qse_1")?,
        dist_stage: Stage::load(&ck, "net.qse_2", first, place)?,
        ref_stem: stem("dte_1")?,
        ref_stage: Stage::load(&ck, "net.dte_2", first, place)?,
        diff_stage: Stage::load(&ck, "net.csp", second, place)?,
        head: [linear(0, 512, 2048)?, linear(3, 2048, 2048)?, linear(6, 2048, 1)?],
    }))
}

struct Ckdn {
    normalise: Normalise,
    dist_stem: Conv2d,
    dist_stage: Stage,
    ref_stem: Conv2d,
    ref_stage: Stage,
    diff_stage: Stage,
    head: [Linear; 3],
}

impl Ckdn {
    fn branch(&self, x: &Tensor, mode: Resize, stem: &Conv2d, stage: &Stage) -> Result<Tensor> {
        let x = center_crop(&resize_short_side(x, RESIZED, mode)?, CROP)?;
        let h = stem.forward(&channels_last(&self.normalise.forward(&x)?)?)?;
        stage.forward(&h.f_max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)?)
    }
}

impl Model for Ckdn {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let reference = require_ref(reference)?;
        let d = self.branch(dist, Resize::BicubicAntialias, &self.dist_stem, &self.dist_stage)?;
        let r = self.branch(reference, Resize::Nearest, &self.ref_stem, &self.ref_stage)?;
        let pooled = self.diff_stage.forward(&d.f_sub(&r)?)?.f_mean_dim([2i64, 3].as_slice(), false, None)?;
        let mut h = self.head[0].forward(&pooled)?;
        let _ = h.f_relu_()?;
        let mut h = self.head[1].forward(&h)?;
        let _ = h.f_relu_()?;
        Ok(self.head[2].forward(&h)?.f_sigmoid()?.f_to_kind(Kind::Float)?.f_view([-1])?)
    }
}
