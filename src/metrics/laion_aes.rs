//! LAION's aesthetic predictor (improved-aesthetic-predictor) as pyiqa 0.1.16 runs it: the shorter side
//! resized to 224 (bicubic, antialiased) and the centre square cropped, normalised with OpenAI's statistics,
//! CLIP ViT-L/14's image embedding scaled to unit length, then five linear layers with nothing between them
//! (the dropouts are off in eval mode). CLIP's own position embedding is added as it is (224×224 is its size).
use crate::error::Result;
use crate::metrics::clipiqa::{shared_clip, ClipFile};
use crate::model::{MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::Placement;
use crate::nn::clip::{self, Positions};
use crate::nn::interpolate::{self, center_crop, resize_short_side};
use crate::nn::layers::{Checkpoint, Linear, Normalise};
use crate::weights::{self, files};
use std::sync::Arc;
use tch::Tensor;

const SIDE: i64 = 224;
/// The head's layers (indices in its `nn.Sequential`) and their (in, out) features.
const LAYERS: [(usize, (i64, i64)); 5] =
    [(0, (768, 1024)), (2, (1024, 128)), (4, (128, 64)), (6, (64, 16)), (7, (16, 1))];

pub const METRICS: &[MetricSpec] = &[MetricSpec::new("laion_aes", Mode::NoReference, false, (1.0, 10.0), build)
    .weights(&[&files::CLIP_VITL14, &files::LAION_AES_MLP])];

fn build(key: &ModelKey) -> Result<Arc<dyn Model>> {
    let place = Placement::new(key.device, key.precision);
    let clip = shared_clip(&files::CLIP_VITL14, "", key)?;
    let file = &files::LAION_AES_MLP;
    let ck = Checkpoint::unwrap(file.official_name, weights::load(file, &[])?, None);
    let head = LAYERS
        .iter()
        .map(|&(i, shape)| Linear::load(&ck, &format!("layers.{i}"), shape, true, place))
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(LaionAes { clip, head, normalise: Normalise::new(clip::MEAN, clip::STD, place)? }))
}

struct LaionAes {
    clip: Arc<ClipFile>,
    head: Vec<Linear>,
    normalise: Normalise,
}

impl Model for LaionAes {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let x = resize_short_side(dist, SIDE, interpolate::Mode::BicubicAntialias)?;
        let x = self.normalise.forward(&center_crop(&x, SIDE)?)?;
        let emb = self.clip.clip.image.forward(&x, Positions::Resized)?;
        let mut h = emb.f_div(&emb.f_norm_scalaropt_dim(2, [-1i64].as_slice(), true)?.f_clamp_min(1e-12)?)?;
        for layer in &self.head {
            h = layer.forward(&h)?;
        }
        Ok(h.f_view([-1])?.f_to_kind(tch::Kind::Float)?)
    }
}
