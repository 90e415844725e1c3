//! CNNIQA (Kang et al. 2014) as pyiqa 0.1.16 runs it: one 7×7 convolution (50 kernels, no padding) over the
//! image in [0,1], its global maximum and minimum per kernel, and two ReLU layers of 800 units to one score.
use crate::error::Result;
use crate::model::{MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::Placement;
use crate::nn::layers::{Checkpoint, Conv2d, Linear};
use crate::weights::{self, files};
use std::sync::Arc;
use tch::{Kind, Tensor};

pub const METRICS: &[MetricSpec] = &[MetricSpec::new("cnniqa", Mode::NoReference, false, (0.0, 1.0), build)
    .min_size(7, 7)
    .weights(&[&files::CNNIQA_KONIQ])
    .reduced_precision()];

fn build(key: &ModelKey) -> Result<Arc<dyn Model>> {
    let place = Placement::new(key.device, key.precision);
    let file = &files::CNNIQA_KONIQ;
    let ck = Checkpoint::unwrap(file.official_name, weights::load(file, &[])?, Some("params"));
    Ok(Arc::new(Cnniqa {
        conv: Conv2d::load(&ck, "conv1", (3, 50, 7), true, 1, 0, place)?,
        fc1: Linear::load(&ck, "fc1", (100, 800), true, place)?,
        fc2: Linear::load(&ck, "fc2", (800, 800), true, place)?,
        fc3: Linear::load(&ck, "fc3", (800, 1), true, place)?,
    }))
}

struct Cnniqa {
    conv: Conv2d,
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

impl Model for Cnniqa {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let h = self.conv.forward(dist)?.f_flatten(2, 3)?;
        let (max, _) = h.f_max_dim(2, false)?;
        let (min, _) = h.f_min_dim(2, false)?;
        let mut x = self.fc1.forward(&Tensor::f_cat(&[max, min], 1)?)?;
        let _ = x.f_relu_()?;
        let mut x = self.fc2.forward(&x)?;
        let _ = x.f_relu_()?;
        Ok(self.fc3.forward(&x)?.f_to_kind(Kind::Float)?.f_view([-1])?)
    }
}
