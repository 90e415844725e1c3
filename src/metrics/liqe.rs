//! LIQE (Zhang et al. 2023) as pyiqa 0.1.16 runs it: CLIP ViT-B/32 fine-tuned with its whole model in LIQE's
//! file (`params.clip_model.*`), so that OpenAI's ViT-B/32, which pyiqa builds first, contributes nothing.
//!
//! The image, normalised with OpenAI's statistics, is cut into the 224×224 patches of a 32-pixel grid (row by
//! row); of those, 15 evenly spaced ones are kept (every ⌊total/15⌋-th from the first; all of them where there
//! are fewer). Each patch's unit image feature meets the unit text features of the prompts (cosine × CLIP's
//! logit scale); the logits are averaged over the patches and a softmax taken. `liqe`'s prompts are "a photo
//! with {q} quality" for the five levels bad..perfect; `liqe_mix` crosses them with nine scenes and eleven
//! distortions ("a photo of a {scene} with {distortion} artifacts, which is of {q} quality") and sums each
//! level's 99 probabilities. The score is the expected level, 1..5. Images need both sides of at least 224.
use crate::error::Result;
use crate::metrics::clipiqa::{shared_clip, ClipFile};
use crate::model::{MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::Placement;
use crate::nn::clip::{self, Positions};
use crate::nn::clip_tokenizer;
use crate::nn::layers::Normalise;
use crate::tensor::FrozenTensor;
use crate::weights::{files, WeightFile};
use std::sync::Arc;
use tch::{Kind, Tensor};

const SIDE: i64 = 224;
const STEP: i64 = 32;
const PATCHES: i64 = 15;
const QUALITIES: [&str; 5] = ["bad", "poor", "fair", "good", "perfect"];
const SCENES: [&str; 9] =
    ["animal", "cityscape", "human", "indoor", "landscape", "night", "plant", "still_life", "others"];
const DISTORTIONS: [&str; 11] = [
    "jpeg2000 compression",
    "jpeg compression",
    "noise",
    "blur",
    "color",
    "contrast",
    "overexposure",
    "underexposure",
    "spatial",
    "quantization",
    "other",
];

const fn spec(name: &'static str, file: &'static &'static WeightFile, build: crate::model::Builder) -> MetricSpec {
    MetricSpec::new(name, Mode::NoReference, false, (1.0, 5.0), build)
        .min_size(SIDE as u32, SIDE as u32)
        .weights(std::slice::from_ref(file))
}

pub const METRICS: &[MetricSpec] = &[
    spec("liqe", &&files::LIQE_KONIQ, |k| build(k, &files::LIQE_KONIQ, false)),
    spec("liqe_mix", &&files::LIQE_MIX, |k| build(k, &files::LIQE_MIX, true)),
];

/// The prompts: per quality level (in order), one ("liqe") or every scene × distortion ("liqe_mix").
fn prompts(multitask: bool) -> Vec<String> {
    if !multitask {
        return QUALITIES.iter().map(|q| format!("a photo with {q} quality")).collect();
    }
    let mut out = Vec::with_capacity(QUALITIES.len() * SCENES.len() * DISTORTIONS.len());
    for q in QUALITIES {
        for c in SCENES {
            for d in DISTORTIONS {
                out.push(format!("a photo of a {c} with {d} artifacts, which is of {q} quality"));
            }
        }
    }
    out
}

fn build(key: &ModelKey, file: &'static WeightFile, multitask: bool) -> Result<Arc<dyn Model>> {
    let clip = shared_clip(file, "clip_model.", key)?;
    let _guard = tch::no_grad_guard();
    let tokenizer = clip_tokenizer::shared()?;
    let context = clip.clip.text.context() as usize;
    let tokens =
        prompts(multitask).iter().map(|p| tokenizer.tokenize(p, context, false)).collect::<Result<Vec<_>>>()?;
    let text = clip.clip.text.encode(&tokens)?;
    let text = clip::unit(&text)?;
    Ok(Arc::new(Liqe {
        text_features: FrozenTensor::new(text.f_to_device(key.device)?),
        clip,
        normalise: Normalise::new(clip::MEAN, clip::STD, Placement::new(key.device, key.precision))?,
    }))
}

struct Liqe {
    clip: Arc<ClipFile>,
    /// Prompts × embed, unit rows.
    text_features: FrozenTensor,
    normalise: Normalise,
}

/// The patches pyiqa keeps: (row, column) of the top-left corners, in pyiqa's order.
fn patch_corners(height: i64, width: i64) -> Vec<(i64, i64)> {
    let columns = (width - SIDE) / STEP + 1;
    let total = ((height - SIDE) / STEP + 1) * columns;
    let kept = total.min(PATCHES);
    let step = (total / kept).max(1);
    (0..kept).map(|i| ((i * step) / columns * STEP, (i * step) % columns * STEP)).collect()
}

impl Model for Liqe {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let (n, _, h, w) = dist.size4()?;
        let x = self.normalise.forward(dist)?;
        let corners = patch_corners(h, w);
        let kept = corners.len() as i64;
        let patches = corners
            .iter()
            .map(|&(y, x0)| x.f_narrow(2, y, SIDE)?.f_narrow(3, x0, SIDE))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        // N × patches × 3 × 224 × 224, batch-major as pyiqa flattens it.
        let patches = Tensor::f_stack(&patches, 1)?.f_view([n * kept, 3, SIDE, SIDE])?;
        let clip = &self.clip.clip;
        let image = clip.image.forward(&patches, Positions::Resized)?;
        let image = clip::unit(&image)?;
        let logits = image.f_matmul(&self.text_features.f_transpose(0, 1)?)?.f_mul_scalar(clip.logit_scale)?;
        let probs =
            logits.f_view([n, kept, -1])?.f_mean_dim([1i64].as_slice(), false, None)?.f_softmax(1, Kind::Float)?;
        let per_level =
            probs.f_view([n, QUALITIES.len() as i64, -1])?.f_sum_dim_intlist([2i64].as_slice(), false, None)?;
        let levels = Tensor::f_arange_start(1, QUALITIES.len() as i64 + 1, (Kind::Float, per_level.device()))?;
        Ok(per_level.f_mul(&levels)?.f_sum_dim_intlist([1i64].as_slice(), false, None)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_are_pyiqas_evenly_spaced_grid_positions() {
        // 512×384: 6 rows × 10 columns of positions, every 4th of the first 15 (pyiqa: sel = 4·i).
        let c = patch_corners(384, 512);
        assert_eq!(c.len(), 15);
        assert_eq!(c[..4], [(0, 0), (0, 128), (0, 256), (32, 64)]);
        assert_eq!(c[14], (160, 192));
        // Exactly 224×224: the one patch. 256×224: two positions, both kept.
        assert_eq!(patch_corners(224, 224), [(0, 0)]);
        assert_eq!(patch_corners(224, 256), [(0, 0), (0, 32)]);
    }
}
