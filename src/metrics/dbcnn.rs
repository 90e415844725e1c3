//! DBCNN (Zhang et al. 2020) as pyiqa 0.1.16 runs it: two streams over the ImageNet-normalised image — VGG16's
//! convolutions up to relu5_3 (512 channels at stride 16) and the S-CNN (nine 3×3 convolutions with BatchNorm
//! and ReLU, four of stride 2: 128 channels) — the S-CNN map
//! resized to the VGG map's size where the two differ (bilinear, corners aligned), bilinear pooling (the
//! 512×128 mean outer product over positions), signed square root (√(x + 1e-8): the products of ReLU maps are
//! never negative), L2 normalisation and one linear layer.
use crate::error::Result;
use crate::model::{MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::{Placement, Vgg};
use crate::nn::layers::{Checkpoint, Conv2d, Linear, Normalise};
use crate::weights::{self, files};
use std::sync::Arc;
use tch::{Kind, Tensor};

/// VGG16's relu5_3 needs 16 pixels each way.
pub const METRICS: &[MetricSpec] = &[MetricSpec::new("dbcnn", Mode::NoReference, false, (0.0, 1.0), build)
    .min_size(16, 16)
    .weights(&[&files::DBCNN_KONIQ])
    .reduced_precision()];

/// The S-CNN's convolutions: (input channels, output channels, stride); each is 3×3 with padding 1.
const SCNN: [(i64, i64, i64); 9] = [
    (3, 48, 1),
    (48, 48, 2),
    (48, 64, 1),
    (64, 64, 2),
    (64, 64, 1),
    (64, 64, 2),
    (64, 128, 1),
    (128, 128, 1),
    (128, 128, 2),
];

fn build(key: &ModelKey) -> Result<Arc<dyn Model>> {
    let place = Placement::new(key.device, key.precision);
    let file = &files::DBCNN_KONIQ;
    let ck = Checkpoint::unwrap(file.official_name, weights::load(file, &[])?, Some("params"));
    let vgg = ck.renamed(|k| k.strip_prefix("features1.").map(|rest| format!("features.{rest}")));
    let scnn = SCNN
        .iter()
        .enumerate()
        .map(|(i, &(cin, cout, stride))| {
            let (conv, bn) = (format!("features2.{}", 3 * i), format!("features2.{}", 3 * i + 1));
            Conv2d::load_folded(&ck, &conv, &bn, (cin, cout, 3), stride, 1, place)
        })
        .collect::<Result<_>>()?;
    Ok(Arc::new(Dbcnn {
        vgg: Vgg::vgg16(&vgg, place)?,
        scnn,
        fc: Linear::load(&ck, "fc", (512 * 128, 1), true, place)?,
        normalise: Normalise::imagenet(place)?,
    }))
}

struct Dbcnn {
    vgg: Vgg,
    scnn: Vec<Conv2d>,
    fc: Linear,
    normalise: Normalise,
}

impl Model for Dbcnn {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let x = self.normalise.forward(dist)?;
        let x1 = self.vgg.taps(&x, Vgg::max_pool)?.pop().expect("five taps");
        let mut x2 = x.shallow_clone();
        for conv in &self.scnn {
            x2 = conv.forward_relu(&x2)?;
        }
        let (n, h, w) = (x1.size()[0], x1.size()[2], x1.size()[3]);
        if x2.size()[2..] != [h, w] {
            x2 = x2.f_upsample_bilinear2d([h, w], true, None, None)?;
        }
        // Pooled in float32 (the VGG taps are) even when the networks run in reduced precision.
        let x1 = x1.f_reshape([n, 512, h * w])?;
        let x2 = x2.f_to_kind(x1.kind())?.f_reshape([n, 128, h * w])?;
        let pooled = x1.f_bmm(&x2.f_transpose(1, 2)?)?.f_div_scalar((h * w) as f64)?.f_reshape([n, 512 * 128])?;
        let pooled = pooled.f_add_scalar(1e-8)?.f_sqrt()?;
        let norm = pooled.f_norm_scalaropt_dim(2, [1i64].as_slice(), true)?.f_clamp_min(1e-12)?;
        Ok(self.fc.forward(&pooled.f_div(&norm)?)?.f_to_kind(Kind::Float)?.f_view([-1])?)
    }
}
