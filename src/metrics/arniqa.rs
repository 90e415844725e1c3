//! ARNIQA (Agnolucci et al. 2024) as pyiqa 0.1.16 runs it: the image and its half-size copy (bilinear,
//! `scale_factor=0.5`), ImageNet-normalised, each through a ResNet-50 encoder (global average of the last
//! stage, L2-normalised); the two 2048-vectors side by side go through a linear regressor trained on one
//! dataset, and the result is mapped from that dataset's MOS range onto [0, 1], higher better.
//!
//! The eight variants share one encoder (ARNIQA.pth, loaded once through the model cache) and differ in their
//! regressor, a TorchScript archive read as data (its attributes), never run.
use crate::cache;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::Placement;
use crate::nn::interpolate::{self, rescale};
use crate::nn::layers::{Checkpoint, Linear, Normalise};
use crate::nn::resnet::{Depth, Layout, ResNet};
use crate::weights::{self, files, WeightFile};
use std::sync::Arc;
use tch::{Kind, Tensor};

/// A training set's MOS range and direction (pyiqa's dataset configuration).
#[derive(Debug, Clone, Copy)]
struct Dataset {
    /// The shared encoder and this dataset's regressor.
    files: [&'static WeightFile; 2],
    mos_range: (f64, f64),
    lower_better: bool,
}

const fn dataset(index: usize, mos_range: (f64, f64), lower_better: bool) -> Dataset {
    Dataset { files: [&files::ARNIQA_ENCODER, &files::ARNIQA_REGRESSORS[index].1], mos_range, lower_better }
}

const KONIQ: Dataset = dataset(0, (1.0, 100.0), false);
const LIVE: Dataset = dataset(1, (1.0, 100.0), true);
const CSIQ: Dataset = dataset(2, (0.0, 1.0), true);
const TID: Dataset = dataset(3, (0.0, 9.0), false);
const KADID: Dataset = dataset(4, (1.0, 5.0), false);
const CLIVE: Dataset = dataset(5, (1.0, 100.0), false);
const FLIVE: Dataset = dataset(6, (0.0, 100.0), false);
const SPAQ: Dataset = dataset(7, (1.0, 100.0), false);

const fn spec(name: &'static str, d: &'static Dataset, build: crate::model::Builder) -> MetricSpec {
    // The half-size copy needs a pixel.
    MetricSpec::new(name, Mode::NoReference, false, (0.0, 1.0), build).min_size(2, 2).weights(&d.files)
}

// bf16 where it moves scores by less than 1e-2 of the range (tests/zoo.rs); the CSIQ, TID and KADID regressors
// amplify the encoder's rounding beyond that (up to 0.27 on the random checkpoints).
pub const METRICS: &[MetricSpec] = &[
    spec("arniqa", &KONIQ, |k| build(k, KONIQ)).reduced_precision(),
    spec("arniqa-live", &LIVE, |k| build(k, LIVE)).reduced_precision(),
    spec("arniqa-csiq", &CSIQ, |k| build(k, CSIQ)),
    spec("arniqa-tid", &TID, |k| build(k, TID)),
    spec("arniqa-kadid", &KADID, |k| build(k, KADID)),
    spec("arniqa-clive", &CLIVE, |k| build(k, CLIVE)).reduced_precision(),
    spec("arniqa-flive", &FLIVE, |k| build(k, FLIVE)).reduced_precision(),
    spec("arniqa-spaq", &SPAQ, |k| build(k, SPAQ)).reduced_precision(),
];

fn build(key: &ModelKey, d: Dataset) -> Result<Arc<dyn Model>> {
    let place = Placement::new(key.device, key.precision);
    let shared = ModelKey { name: "zoo/ARNIQA.pth".into(), ..key.clone() };
    let encoder = cache::acquire(&shared, cache::Kind::SharedPart, || {
        let file = &files::ARNIQA_ENCODER;
        let ck = Checkpoint::unwrap(file.official_name, weights::load(file, &[])?, None).sub("model.");
        Ok::<_, Error>(Arc::new(ResNet::load(&ck, "", Layout::Sequential, Depth::R50, place)?))
    })?;
    let tensors = weights::load(d.files[1], &[("weight", &[1, 4096]), ("bias", &[1])])?;
    let take = |k: &str| -> Result<Tensor> {
        let t = tensors.get(k).ok_or_else(|| Error::new(ErrorKind::Weights, format!("regressor lacks {k}")))?;
        Ok(t.f_to_kind(Kind::Float)?)
    };
    Ok(Arc::new(Arniqa {
        encoder,
        regressor: Linear::from_tensors(take("weight")?, Some(take("bias")?), place)?,
        dataset: d,
        normalise: Normalise::imagenet(place)?,
    }))
}

struct Arniqa {
    encoder: Arc<ResNet>,
    regressor: Linear,
    dataset: Dataset,
    normalise: Normalise,
}

impl Arniqa {
    /// The encoder's L2-normalised global feature of an image in [0,1].
    fn feature(&self, x: &Tensor) -> Result<Tensor> {
        let f = self.encoder.pooled(&self.normalise.forward(x)?)?;
        let norm = f.f_norm_scalaropt_dim(2, [1i64].as_slice(), true)?.f_clamp_min(1e-12)?;
        Ok(f.f_div(&norm)?)
    }
}

impl Model for Arniqa {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let half = rescale(dist, 0.5, interpolate::Mode::Bilinear)?;
        let features = Tensor::f_cat(&[self.feature(dist)?, self.feature(&half)?], 1)?;
        let score = self.regressor.forward(&features)?.f_to_kind(Kind::Float)?.f_view([-1])?;
        let (lo, hi) = self.dataset.mos_range;
        let scaled = score.f_sub_scalar(lo)?.f_mul_scalar(1.0 / (hi - lo))?;
        Ok(if self.dataset.lower_better { scaled.f_neg()?.f_add_scalar(1.0)? } else { scaled })
    }
}
