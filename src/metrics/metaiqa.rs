//! MetaIQA (Zhu et al. 2020) as pyiqa 0.1.16 runs it: the image resized to 224×224 (bilinear, unless it
//! already is), ImageNet-normalised, a whole ResNet-18 classifier (1000 logits), then a head of three linear
//! layers (1000 → 1024 → 512 → 1) with BatchNorm and PReLU between them and a sigmoid at the end.
//!
//! pyiqa reads the checkpoint's `params` or `state_dict` (or the plain dict) and renames its keys (`net_g.` and
//! `module.` dropped, `net.` → `head.`); so does iqa.
use crate::error::Result;
use crate::model::{MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::Placement;
use crate::nn::interpolate::{self, resize};
use crate::nn::layers::{BatchNorm1d, Checkpoint, Linear, Normalise};
use crate::nn::resnet::{Depth, Layout, ResNet};
use crate::tensor::FrozenTensor;
use crate::weights::{self, files};
use std::sync::Arc;
use tch::{Kind, Tensor};

pub const METRICS: &[MetricSpec] = &[MetricSpec::new("metaiqa", Mode::NoReference, false, (0.0, 1.0), build)
    .weights(&[&files::METAIQA_LIVEC])
    .reduced_precision()];

fn build(key: &ModelKey) -> Result<Arc<dyn Model>> {
    let place = Placement::new(key.device, key.precision);
    let file = &files::METAIQA_LIVEC;
    let name = file.official_name;
    let params = Checkpoint::unwrap(name, weights::load(file, &[])?, Some("params"));
    let inner = Checkpoint::unwrap(name, params.renamed(|k| Some(k.to_string())), Some("state_dict"));
    let ck = &Checkpoint::new(
        name,
        inner.renamed(|k| Some(k.replace("net_g.", "").replace("module.", "").replace("net.", "head."))),
    );
    let prelu = |p: &str| -> Result<FrozenTensor> { ck.frozen(&format!("{p}.weight"), &[1], place) };
    Ok(Arc::new(MetaIqa {
        backbone: ResNet::load(ck, "resnet_layer.", Layout::Named, Depth::R18, place)?,
        classifier: Linear::load(ck, "resnet_layer.fc", (512, 1000), true, place)?,
        fc1: Linear::load(ck, "head.fc1", (1000, 1024), true, place)?,
        bn1: BatchNorm1d::load(ck, "head.bn1", 1024, place)?,
        prelu1: prelu("head.relu1")?,
        fc2: Linear::load(ck, "head.fc2", (1024, 512), true, place)?,
        bn2: BatchNorm1d::load(ck, "head.bn2", 512, place)?,
        prelu2: prelu("head.relu2")?,
        fc3: Linear::load(ck, "head.fc3", (512, 1), true, place)?,
        normalise: Normalise::imagenet(place)?,
    }))
}

struct MetaIqa {
    backbone: ResNet,
    classifier: Linear,
    fc1: Linear,
    bn1: BatchNorm1d,
    prelu1: FrozenTensor,
    fc2: Linear,
    bn2: BatchNorm1d,
    prelu2: FrozenTensor,
    fc3: Linear,
    normalise: Normalise,
}

impl Model for MetaIqa {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let x = if dist.size()[2..] == [224, 224] {
            dist.shallow_clone()
        } else {
            resize(dist, (224, 224), interpolate::Mode::Bilinear)?
        };
        let x = self.normalise.forward(&x)?;
        let logits = self.classifier.forward(&self.backbone.pooled(&x)?)?;
        let h = self.bn1.forward(&self.fc1.forward(&logits)?)?.f_prelu(&self.prelu1)?;
        let h = self.bn2.forward(&self.fc2.forward(&h)?)?.f_prelu(&self.prelu2)?;
        Ok(self.fc3.forward(&h)?.f_sigmoid()?.f_to_kind(Kind::Float)?.f_view([-1])?)
    }
}
