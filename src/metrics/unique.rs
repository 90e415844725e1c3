//! UNIQUE (Zhang et al. 2021) as pyiqa 0.1.16 runs it: a ResNet-34 (up to its last stage) on the
//! ImageNet-normalised image, bilinear pooling of its 512 channels (the mean outer product over positions),
//! signed square root (sign(x)·√(|x| + 1e-8)), L2 normalisation, and a linear layer whose first output (the
//! predicted mean; the second is its uncertainty) is the score.
use crate::error::Result;
use crate::model::{MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::Placement;
use crate::nn::layers::{Checkpoint, Linear, Normalise};
use crate::nn::resnet::{Depth, Layout, ResNet};
use crate::weights::{self, files};
use std::sync::Arc;
use tch::{Kind, Tensor};

pub const METRICS: &[MetricSpec] = &[MetricSpec::new("unique", Mode::NoReference, false, (-3.0, 3.0), build)
    .weights(&[&files::UNIQUE])
    .reduced_precision()];

fn build(key: &ModelKey) -> Result<Arc<dyn Model>> {
    let place = Placement::new(key.device, key.precision);
    let file = &files::UNIQUE;
    let ck = Checkpoint::unwrap(file.official_name, weights::load(file, &[])?, None);
    Ok(Arc::new(Unique {
        backbone: ResNet::load(&ck, "backbone.", Layout::Named, Depth::R34, place)?,
        fc: Linear::load(&ck, "fc", (512 * 512, 2), true, place)?,
        normalise: Normalise::imagenet(place)?,
    }))
}

struct Unique {
    backbone: ResNet,
    fc: Linear,
    normalise: Normalise,
}

impl Model for Unique {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let x = self.normalise.forward(dist)?;
        let f = self.backbone.features(&x)?.pop().expect("five feature maps");
        let (n, c, h, w) = f.size4()?;
        let f = f.f_reshape([n, c, h * w])?;
        let pooled = f.f_bmm(&f.f_transpose(1, 2)?)?.f_mul_scalar(1.0 / (h * w) as f64)?;
        // sign(0) is 0: a pair of channels never active together stays 0, not 1e-4.
        let signed = pooled.f_sign()?.f_mul(&pooled.f_abs()?.f_add_scalar(1e-8)?.f_sqrt()?)?.f_reshape([n, -1])?;
        let norm = signed.f_norm_scalaropt_dim(2, [1i64].as_slice(), true)?.f_clamp_min(1e-12)?;
        let out = self.fc.forward(&signed.f_div(&norm)?)?;
        Ok(out.f_select(1, 0)?.f_to_kind(Kind::Float)?)
    }
}
