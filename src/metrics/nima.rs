//! NIMA (Talebi & Milanfar 2018) as pyiqa 0.1.16 runs it on its VGG16 backbone (`nima-vgg16-ava`): the shorter
//! side resized to 224 (bilinear, antialiased) and the centre 224×224 cropped (torchvision's `center_crop`:
//! offsets rounded half to even), ImageNet-normalised, VGG16's convolutions through the last max-pool (timm's
//! `features_only`), the global average, one linear layer to ten classes and a softmax, whose mean class
//! (1..10) is the score.
use crate::error::Result;
use crate::model::{MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::{Placement, Vgg16};
use crate::nn::interpolate::{self, resize_short_side};
use crate::nn::layers::{Checkpoint, Linear};
use crate::tensor::FrozenTensor;
use crate::weights::{self, files};
use std::sync::Arc;
use tch::{Kind, Tensor};

pub const METRICS: &[MetricSpec] =
    &[MetricSpec::new("nima-vgg16-ava", Mode::NoReference, false, (0.0, 10.0), build)
        .weights(&[&files::NIMA_VGG16_AVA])];

const SIDE: i64 = 224;

fn build(key: &ModelKey) -> Result<Arc<dyn Model>> {
    let place = Placement::new(key.device, key.precision);
    let file = &files::NIMA_VGG16_AVA;
    let ck = Checkpoint::unwrap(file.official_name, weights::load(file, &[])?, Some("params"));
    // timm's features_only network names VGG's `features.N` as `features_N`.
    let vgg = ck.renamed(|k| k.strip_prefix("base_model.features_").map(|rest| format!("features.{rest}")));
    let rgb = |v: [f32; 3]| FrozenTensor::new(Tensor::from_slice(&v).view([1, 3, 1, 1]).to_device(place.device));
    Ok(Arc::new(Nima {
        vgg: Vgg16::from_state_dict(&vgg, place)?,
        classifier: Linear::load(&ck, "classifier.2", (512, 10), true, place)?,
        mean: rgb([0.485, 0.456, 0.406]),
        std: rgb([0.229, 0.224, 0.225]),
    }))
}

struct Nima {
    vgg: Vgg16,
    classifier: Linear,
    mean: FrozenTensor,
    std: FrozenTensor,
}

/// torchvision's `center_crop` of a tensor at least `side` each way: the top-left corner at
/// round((h − side)/2), round((w − side)/2), Python's rounding (half to even).
fn center_crop(x: &Tensor, side: i64) -> Result<Tensor> {
    let (h, w) = (x.size()[2], x.size()[3]);
    let top = ((h - side) as f64 / 2.0).round_ties_even() as i64;
    let left = ((w - side) as f64 / 2.0).round_ties_even() as i64;
    Ok(x.f_narrow(2, top, side)?.f_narrow(3, left, side)?)
}

impl Model for Nima {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let x = center_crop(&resize_short_side(dist, SIDE, interpolate::Mode::BilinearAntialias)?, SIDE)?;
        let x = x.f_sub(&self.mean)?.f_div(&self.std)?;
        let last = self.vgg.taps(&x, Vgg16::max_pool)?.pop().expect("five taps");
        let pooled = Vgg16::max_pool(&last, 5)?.f_mean_dim([2i64, 3].as_slice(), false, None)?;
        let probabilities = self.classifier.forward(&pooled)?.f_softmax(-1, Kind::Float)?;
        let classes = Tensor::f_arange_start(1, 11, (Kind::Float, probabilities.device()))?;
        Ok(probabilities.f_mul(&classes)?.f_sum_dim_intlist([-1i64].as_slice(), false, None)?)
    }
}
