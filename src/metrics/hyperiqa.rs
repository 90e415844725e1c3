//! HyperIQA (Su et al. 2020) as pyiqa 0.1.16 runs it (`HyperNet`): 25 crops of 224×224 taken on a uniform
//! 5×5 grid (an image whose shorter side is at most 224 is first enlarged bilinearly by 225/side), each scored
//! on its own and the 25 scores averaged. Per crop, ImageNet-normalised, a ResNet-50: its four stages give
//! local distortion features (1×1 convolutions, 7×7/7 average pooling, linear layers: 16+16+16+176 = 224
//! values), and its last stage drives a hyper network (1×1 convolutions to 112 channels) whose 3×3
//! convolutions and pooled linear layers produce the weights and biases of a four-layer target network
//! (224 → 112 → 56 → 28 → 14 → 1, sigmoid between layers) that maps the local features to the score.
use crate::error::Result;
use crate::model::{MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::Placement;
use crate::nn::interpolate::uniform_crops;
use crate::nn::layers::{Checkpoint, Conv2d, Linear, Normalise};
use crate::nn::resnet::{Depth, Layout, ResNet};
use crate::weights::{self, files};
use std::sync::Arc;
use tch::{Kind, Tensor};

pub const METRICS: &[MetricSpec] = &[MetricSpec::new("hyperiqa", Mode::NoReference, false, (0.0, 1.0), build)
    .weights(&[&files::HYPERIQA_RESNET50_KONIQ])
    .reduced_precision()];

const CROP: i64 = 224;
const CROPS: i64 = 25;
/// Widths of the target network's layers.
const TARGET: [i64; 5] = [112, 56, 28, 14, 1];
const HYPER_IN: i64 = 112;

fn build(key: &ModelKey) -> Result<Arc<dyn Model>> {
    let place = Placement::new(key.device, key.precision);
    let file = &files::HYPERIQA_RESNET50_KONIQ;
    let ck = Checkpoint::unwrap(file.official_name, weights::load(file, &[])?, Some("params"));
    let conv = |p: &str, cin, cout, k, bias, pad| Conv2d::load(&ck, p, (cin, cout, k), bias, 1, pad, place);
    let linear = |p: &str, cin, cout| Linear::load(&ck, p, (cin, cout), true, place);
    // Local distortion features of layer1..3: 1×1 projection, 7×7 pooling, linear to 16.
    let lda = [(256, 16, 8), (512, 32, 4), (1024, 64, 2)]
        .iter()
        .enumerate()
        .map(|(i, &(cin, c, side))| {
            Ok((
                conv(&format!("lda_modules.{i}.0"), cin, c, 1, false, 0)?,
                linear(&format!("lda_modules.{i}.3"), c * side * side, 16)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    // The target network's weights: 3×3 convolutions over the 7×7 hyper features (layers 0..3), a pooled linear
    // layer (layer 4); its biases: pooled linear layers.
    let mut w_convs = Vec::new();
    let mut cin = CROP;
    for (i, &cout) in TARGET[..4].iter().enumerate() {
        w_convs.push(conv(&format!("fc_w_modules.{i}"), HYPER_IN, cin * cout / 49, 3, true, 1)?);
        cin = cout;
    }
    Ok(Arc::new(HyperIqa {
        backbone: ResNet::load(&ck, "base_model.", Layout::Named, Depth::R50, place)?,
        lda,
        lda_last: linear("lda_modules.3.2", 2048, CROP - 48)?,
        hyper: [
            conv("conv1.0", 2048, 1024, 1, true, 0)?,
            conv("conv1.2", 1024, 512, 1, true, 0)?,
            conv("conv1.4", 512, HYPER_IN, 1, true, 0)?,
        ],
        w_convs,
        w_last: linear("fc_w_modules.4.2", HYPER_IN, TARGET[3])?,
        biases: (0..5).map(|i| linear(&format!("fc_b_modules.{i}.2"), HYPER_IN, TARGET[i])).collect::<Result<_>>()?,
        normalise: Normalise::imagenet(place)?,
    }))
}

struct HyperIqa {
    backbone: ResNet,
    lda: Vec<(Conv2d, Linear)>,
    lda_last: Linear,
    hyper: [Conv2d; 3],
    w_convs: Vec<Conv2d>,
    w_last: Linear,
    biases: Vec<Linear>,
    normalise: Normalise,
}

impl HyperIqa {
    /// One score per 224×224 crop (B×3×224×224, in [0,1]).
    fn score_crops(&self, x: &Tensor) -> Result<Tensor> {
        let b = x.size()[0];
        let x = self.normalise.forward(x)?;
        let feats = self.backbone.features(&x)?;
        let pool = |t: &Tensor| -> Result<Tensor> { Ok(t.f_avg_pool2d([7, 7], [7, 7], [0, 0], false, true, None)?) };
        let mut local = Vec::with_capacity(4);
        for ((conv, lin), f) in self.lda.iter().zip(&feats[1..4]) {
            local.push(lin.forward(&pool(&conv.forward(f)?)?.f_flatten(1, -1)?)?);
        }
        local.push(self.lda_last.forward(&pool(&feats[4])?.f_flatten(1, -1)?)?);
        let mut h = feats[4].shallow_clone();
        for conv in &self.hyper {
            h = conv.forward_relu(&h)?;
        }
        let pooled = h.f_mean_dim([2i64, 3].as_slice(), false, None)?;
        let mut v = Tensor::f_cat(&local, 1)?.f_unsqueeze(1)?;
        for (i, (&width, bias)) in TARGET.iter().zip(&self.biases).enumerate() {
            let w = match self.w_convs.get(i) {
                Some(conv) => conv.forward(&h)?.f_reshape([b, width, -1])?,
                None => self.w_last.forward(&pooled)?.f_reshape([b, width, -1])?,
            };
            let bias = bias.forward(&pooled)?.f_unsqueeze(1)?;
            v = v.f_bmm(&w.f_transpose(1, 2)?)?.f_add(&bias)?;
            if i != 4 {
                v = v.f_sigmoid()?;
            }
        }
        Ok(v.f_view([b])?)
    }
}

impl Model for HyperIqa {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let mut scores = Vec::with_capacity(dist.size()[0] as usize);
        // One image's 25 crops at a time: a batch's memory stays that of one image.
        for i in 0..dist.size()[0] {
            let crops = uniform_crops(&dist.f_narrow(0, i, 1)?, CROP, CROPS)?;
            scores.push(self.score_crops(&crops)?.f_to_kind(Kind::Float)?.f_mean(None)?);
        }
        Ok(Tensor::f_stack(&scores, 0)?)
    }
}
