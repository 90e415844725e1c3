//! NIMA (Talebi & Milanfar 2018) as pyiqa 0.1.16 runs it: the shorter side resized to the backbone's input
//! size (bilinear, antialiased) and the centre square cropped (torchvision's `center_crop`: offsets rounded half
//! to even), normalised as timm's backbone expects, the backbone's last feature map (timm's `features_only`),
//! its global average and one linear layer. With ten classes (AVA aesthetics) a softmax whose mean class
//! (1..10) is the score; with one (KonIQ, SPAQ) the output itself.
//!
//! Backbones: Inception-ResNet-v2 (`nima`, `nima-koniq`, `nima-spaq`: 299×299, mean = std = 0.5) and VGG16
//! through its last max-pool (`nima-vgg16-ava`: 224×224, ImageNet mean and std).
use crate::error::Result;
use crate::model::{Builder, MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::{Placement, Vgg};
use crate::nn::inception_resnet::InceptionResnetV2;
use crate::nn::interpolate::{self, center_crop, resize_short_side};
use crate::nn::layers::{dist_to_mos, Checkpoint, Linear, Normalise};
use crate::weights::{self, files, WeightFile};
use std::sync::Arc;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Net {
    InceptionResnetV2,
    Vgg16,
}

#[derive(Debug, Clone, Copy)]
struct Variant {
    net: Net,
    file: &'static WeightFile,
    classes: i64,
}

const AVA: Variant = Variant { net: Net::InceptionResnetV2, file: &files::NIMA_INCEPTION_AVA, classes: 10 };
const KONIQ: Variant = Variant { net: Net::InceptionResnetV2, file: &files::NIMA_KONIQ, classes: 1 };
const SPAQ: Variant = Variant { net: Net::InceptionResnetV2, file: &files::NIMA_SPAQ, classes: 1 };
const VGG_AVA: Variant = Variant { net: Net::Vgg16, file: &files::NIMA_VGG16_AVA, classes: 10 };

const fn spec(name: &'static str, v: &'static Variant, range: (f64, f64), build: Builder) -> MetricSpec {
    // bf16 moves every variant's scores by less than 1e-2 of its range (tests/zoo.rs).
    MetricSpec::new(name, Mode::NoReference, false, range, build)
        .weights(std::slice::from_ref(&v.file))
        .reduced_precision()
}

pub const METRICS: &[MetricSpec] = &[
    spec("nima", &AVA, (0.0, 10.0), |k| build(k, AVA)),
    spec("nima-koniq", &KONIQ, (0.0, 1.0), |k| build(k, KONIQ)),
    spec("nima-spaq", &SPAQ, (0.0, 1.0), |k| build(k, SPAQ)),
    spec("nima-vgg16-ava", &VGG_AVA, (0.0, 10.0), |k| build(k, VGG_AVA)),
];

enum Backbone {
    InceptionResnetV2(Box<InceptionResnetV2>),
    Vgg16(Vgg),
}

fn build(key: &ModelKey, v: Variant) -> Result<Arc<dyn Model>> {
    let place = Placement::new(key.device, key.precision);
    let ck = Checkpoint::unwrap(v.file.official_name, weights::load(v.file, &[])?, Some("params"));
    let (backbone, channels, side, mean, std) = match v.net {
        Net::InceptionResnetV2 => (
            Backbone::InceptionResnetV2(Box::new(InceptionResnetV2::load(&ck, "base_model.", place)?)),
            InceptionResnetV2::CHANNELS,
            299,
            [0.5; 3],
            [0.5; 3],
        ),
        Net::Vgg16 => {
            // timm's features_only network names VGG's `features.N` as `features_N`.
            let vgg = ck.renamed(|k| k.strip_prefix("base_model.features_").map(|rest| format!("features.{rest}")));
            (Backbone::Vgg16(Vgg::vgg16(&vgg, place)?), 512, 224, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        }
    };
    Ok(Arc::new(Nima {
        backbone,
        classifier: Linear::load(&ck, "classifier.2", (channels, v.classes), true, place)?,
        side,
        normalise: Normalise::new(mean, std, place)?,
    }))
}

struct Nima {
    backbone: Backbone,
    classifier: Linear,
    side: i64,
    normalise: Normalise,
}

impl Model for Nima {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let x = resize_short_side(dist, self.side, interpolate::Mode::BilinearAntialias)?;
        let x = self.normalise.forward(&center_crop(&x, self.side)?)?;
        let last = match &self.backbone {
            Backbone::InceptionResnetV2(net) => net.last_features(&x)?,
            Backbone::Vgg16(net) => Vgg::max_pool(&net.taps(&x, Vgg::max_pool)?.pop().expect("five taps"), 5)?,
        };
        let out = self.classifier.forward(&last.f_mean_dim([2i64, 3].as_slice(), false, None)?)?;
        dist_to_mos(&out.f_to_kind(Kind::Float)?)
    }
}
