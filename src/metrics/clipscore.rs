//! CLIPScore (Hessel et al. 2021) as pyiqa 0.1.16 runs it: how well an image matches a caption, 2.5 ×
//! max(cos(image, text), 0), with OpenAI's CLIP ViT-B/32. The image is prepared as for `laion_aes` (shorter side
//! to 224, bicubic and antialiased, centre square, OpenAI's statistics); the caption gets the prefix "A photo
//! depicts " and is tokenised with CLIP's BPE, cut to 77 tokens (the last one then the end-of-text token, as
//! `clip.tokenize(..., truncate=True)` does).
use crate::error::{Error, Result};
use crate::metrics::clipiqa::{shared_clip, ClipFile};
use crate::model::{MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::Placement;
use crate::nn::clip::{self, unit, Positions};
use crate::nn::clip_tokenizer;
use crate::nn::interpolate::{self, center_crop, resize_short_side};
use crate::nn::layers::Normalise;
use crate::weights::files;
use std::sync::Arc;
use tch::{Kind, Tensor};

const SIDE: i64 = 224;
const PREFIX: &str = "A photo depicts";
const WEIGHT: f64 = 2.5;

pub const METRICS: &[MetricSpec] = &[MetricSpec::new("clipscore", Mode::NoReference, false, (0.0, 2.5), build)
    .captioned()
    .weights(&[&files::CLIP_VITB32])];

fn build(key: &ModelKey) -> Result<Arc<dyn Model>> {
    let clip = shared_clip(&files::CLIP_VITB32, "", key)?;
    let normalise = Normalise::new(clip::MEAN, clip::STD, Placement::new(key.device, key.precision))?;
    Ok(Arc::new(ClipScore { clip, normalise }))
}

struct ClipScore {
    clip: Arc<ClipFile>,
    normalise: Normalise,
}

impl Model for ClipScore {
    fn forward(&self, _dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        Err(Error::invalid("scores an image against a caption: give one"))
    }

    fn forward_captioned(&self, dist: &Tensor, captions: &[&str]) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let clip = &self.clip.clip;
        let tokenizer = clip_tokenizer::shared()?;
        let context = clip.text.context() as usize;
        let tokens = captions
            .iter()
            .map(|c| tokenizer.tokenize(&format!("{PREFIX} {c}"), context, true))
            .collect::<Result<Vec<_>>>()?;
        let text = unit(&clip.text.encode(&tokens)?.f_to_device(dist.device())?)?;
        let x = resize_short_side(dist, SIDE, interpolate::Mode::BicubicAntialias)?;
        let image = unit(&clip.image.forward(&self.normalise.forward(&center_crop(&x, SIDE)?)?, Positions::Resized)?)?;
        let cosine = image.f_mul(&text)?.f_sum_dim_intlist([-1i64].as_slice(), false, Kind::Float)?;
        Ok(cosine.f_relu()?.f_mul_scalar(WEIGHT)?)
    }
}
