//! MA-CLIP (Liao et al., AAAI 2026) as pyiqa 0.1.16 runs it: OpenAI's CLIP RN50 as it is (no file of its own),
//! on the overlapping 224×224 patches of a 128-pixel grid (`nn.Unfold`'s row-major order) plus the whole image
//! resized to 224×224 (bilinear, no antialiasing), each normalised with OpenAI's statistics. Per patch:
//! - the cosine cue, CLIP-IQA's score with its five antonym pairs;
//! - the magnitude cue: the image feature's absolute values, divided by their standard deviation (+1e-6),
//!   Box-Cox transformed with λ = 0.5 ((x + 1)^½ − 1) / ½, averaged;
//! - fused by a two-way softmax of (1 + d, 0.6 − d), d = cosine − magnitude, as weights of the two cues.
//!
//! The score is the mean over the patches. pyiqa's code runs only on CUDA (`.cuda()` calls) and one image at a
//! time; iqa runs it on any device and scores a batch image by image. Images need both sides of at least 224.
use crate::error::Result;
use crate::metrics::clipiqa::{shared_clip, text_features, ClipFile, CLIPIQA_ANTONYMS};
use crate::model::{MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::Placement;
use crate::nn::clip::{self, Positions};
use crate::nn::interpolate::{self, resize};
use crate::nn::layers::Normalise;
use crate::tensor::FrozenTensor;
use crate::weights::files;
use std::sync::Arc;
use tch::{Kind, Tensor};

const SIDE: i64 = 224;
const STRIDE: i64 = 128;
const BOX_COX_LAMBDA: f64 = 0.5;
const BASE_COSINE: f64 = 1.0;
const BASE_MAGNITUDE: f64 = 0.6;

pub const METRICS: &[MetricSpec] = &[MetricSpec::new("maclip", Mode::NoReference, false, (0.0, 1.0), build)
    .min_size(SIDE as u32, SIDE as u32)
    .weights(&[&files::CLIP_RN50])];

fn build(key: &ModelKey) -> Result<Arc<dyn Model>> {
    let clip = shared_clip(&files::CLIP_RN50, "", key)?;
    let text = {
        let _guard = tch::no_grad_guard();
        text_features(&clip.clip, CLIPIQA_ANTONYMS)?
    };
    Ok(Arc::new(MaClip {
        text_features: FrozenTensor::new(text.f_to_device(key.device)?),
        clip,
        normalise: Normalise::new(clip::MEAN, clip::STD, Placement::new(key.device, key.precision))?,
    }))
}

struct MaClip {
    clip: Arc<ClipFile>,
    text_features: FrozenTensor,
    normalise: Normalise,
}

impl MaClip {
    /// One normalised 1×3×H×W image's score.
    fn score(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = x.size4()?;
        let mut patches = Vec::new();
        for y in (0..=h - SIDE).step_by(STRIDE as usize) {
            for x0 in (0..=w - SIDE).step_by(STRIDE as usize) {
                patches.push(x.f_narrow(2, y, SIDE)?.f_narrow(3, x0, SIDE)?);
            }
        }
        patches.push(resize(x, (SIDE, SIDE), interpolate::Mode::Bilinear)?);
        let batch = Tensor::f_cat(&patches, 0)?;
        let clip = &self.clip.clip;
        let features = clip.image.forward(&batch, Positions::Off)?;
        let logits = clip.logits(&features, &self.text_features)?;
        let p = logits.size()[0];
        let cosine = logits.f_view([p, -1, 2])?.f_softmax(-1, Kind::Float)?.f_select(2, 0)?.f_mean_dim(
            [1i64].as_slice(),
            false,
            None,
        )?;
        let a = features.f_abs()?;
        let a = a.f_div(&a.f_std_dim([1i64].as_slice(), true, true)?.f_add_scalar(1e-6)?)?;
        let boxed = a
            .f_add_scalar(1.0)?
            .f_pow_tensor_scalar(BOX_COX_LAMBDA)?
            .f_sub_scalar(1.0)?
            .f_div_scalar(BOX_COX_LAMBDA)?;
        let magnitude = boxed.f_mean_dim([-1i64].as_slice(), false, None)?;
        let d = cosine.f_sub(&magnitude)?;
        let weights = Tensor::f_stack(&[d.f_add_scalar(BASE_COSINE)?, d.f_neg()?.f_add_scalar(BASE_MAGNITUDE)?], -1)?
            .f_softmax(-1, Kind::Float)?;
        let fused = weights.f_select(1, 0)?.f_mul(&cosine)?.f_add(&weights.f_select(1, 1)?.f_mul(&magnitude)?)?;
        Ok(fused.f_mean(Kind::Float)?)
    }
}

impl Model for MaClip {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let x = self.normalise.forward(dist)?;
        let scores = (0..x.size()[0]).map(|i| self.score(&x.f_narrow(0, i, 1)?)).collect::<Result<Vec<_>>>()?;
        Ok(Tensor::f_stack(&scores, 0)?)
    }
}
