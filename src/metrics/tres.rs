//! TReS (Golestaneh et al. 2022) as pyiqa 0.1.16 runs it in eval mode: the image normalised with ImageNet's
//! statistics gives 50 crops of 224×224 (pyiqa's `uniform_crop`, [`uniform_crops`]); each goes through
//! torchvision's ResNet-50. The four stages' outputs, each unit-normalised over its channels, L2-pooled (3×3 Hann
//! window, stride 1) and average-pooled to 7×7, are stacked (3840 channels) and run through a two-layer
//! pre-norm transformer encoder (16 heads, feed-forward width 64, DETR's normalised sine position embedding,
//! a final LayerNorm). Its 7×7 mean through a linear layer (3840 → 2048), beside the 7×7 mean of the last
//! stage, gives the crop's score through one more linear layer; the image's score is the mean over its crops.
//!
//! pyiqa also runs every crop flipped left-right for a self-consistency loss that only training reads; iqa
//! leaves that pass out, which changes no score.
use crate::error::Result;
use crate::model::{Builder, MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::Placement;
use crate::nn::interpolate::uniform_crops;
use crate::nn::layers::{hann_l2_pool, Checkpoint, LayerNorm, Linear, MultiheadAttention, Normalise};
use crate::nn::resnet::{Depth, Layout, ResNet};
use crate::tensor::FrozenTensor;
use crate::weights::{self, files, WeightFile};
use std::sync::Arc;
use tch::{Kind, Tensor};

const CROP: i64 = 224;
const CROPS: i64 = 50;
/// Crops run together through the networks (the same arithmetic per crop, a tenth of the peak memory).
const CHUNK: i64 = 10;
/// Channels of the stacked stages: 256 + 512 + 1024 + 2048.
const DIM: i64 = 3840;
const HEADS: i64 = 16;
const FEED_FORWARD: i64 = 64;
const LAYERS: usize = 2;
/// The side of the stacked feature maps.
const SIDE: i64 = 7;

const fn spec(name: &'static str, file: &'static &'static WeightFile, build: Builder) -> MetricSpec {
    MetricSpec::new(name, Mode::NoReference, false, (0.0, 100.0), build).weights(std::slice::from_ref(file))
}

const KONIQ: &WeightFile = &files::TRES_KONIQ;
const FLIVE: &WeightFile = &files::TRES_FLIVE;

pub const METRICS: &[MetricSpec] =
    &[spec("tres", &KONIQ, |k| build(k, KONIQ)), spec("tres-flive", &FLIVE, |k| build(k, FLIVE))];

fn build(key: &ModelKey, file: &'static WeightFile) -> Result<Arc<dyn Model>> {
    let place = Placement::new(key.device, key.precision);
    // A plain state dict (pyiqa loads it with no wrapper key).
    let ck = Checkpoint::unwrap(file.official_name, weights::load(file, &[])?, None);
    let layers = (0..LAYERS)
        .map(|i| EncoderLayer::load(&ck, &format!("transformer.encoder.layers.{i}"), place))
        .collect::<Result<_>>()?;
    Ok(Arc::new(Tres {
        backbone: ResNet::load(&ck, "model.", Layout::Named, Depth::R50, place)?,
        layers,
        norm: LayerNorm::load(&ck, "transformer.encoder.norm", DIM, place)?,
        position: FrozenTensor::new(sine_positions()?.f_to_kind(place.kind)?.f_to_device(place.device)?),
        fc2: Linear::load(&ck, "fc2", (DIM, 2048), true, place)?,
        fc: Linear::load(&ck, "fc", (2 * 2048, 1), true, place)?,
        normalise: Normalise::imagenet(place)?,
    }))
}

/// DETR's sine position embedding of the 7×7 grid, normalised (positions 1..=7 scaled to (0, 2π]), as
/// (7·7)×1×3840 sequence-first: for each of the row and the column, 1920 features alternating sin and cos of
/// position / 10000^(2⌊i/2⌋/1920); rows first. Computed with pyiqa's float32 operations.
fn sine_positions() -> Result<Tensor> {
    let feats = DIM / 2;
    let cpu = (Kind::Float, tch::Device::Cpu);
    let steps = Tensor::f_arange_start(1, SIDE + 1, cpu)?;
    // pyiqa divides by the last position plus 1e-6 as a float32 tensor.
    let last = Tensor::f_full([1], SIDE as f64, cpu)?.f_add_scalar(1e-6)?;
    let embed = steps.f_div(&last)?.f_mul_scalar(2.0 * std::f64::consts::PI)?;
    let i = Tensor::f_arange(feats, cpu)?;
    let dim_t = Tensor::f_full([feats], 10000.0, cpu)?
        .f_pow(&i.f_div_scalar_mode(2, "trunc")?.f_mul_scalar(2.0)?.f_div_scalar(feats as f64)?)?;
    // One axis: SIDE×feats, sin at even features and cos at odd ones, interleaved.
    let axis = |e: &Tensor| -> Result<Tensor> {
        let p = e.f_view([SIDE, 1])?.f_div(&dim_t.f_view([1, feats])?)?;
        let sin = p.f_slice(1, 0, feats, 2)?.f_sin()?;
        let cos = p.f_slice(1, 1, feats, 2)?.f_cos()?;
        Ok(Tensor::f_stack(&[sin, cos], 2)?.f_flatten(1, 2)?)
    };
    let (y, x) = (axis(&embed)?, axis(&embed)?);
    // (row, col) → [y(row), x(col)].
    let y = y.f_view([SIDE, 1, feats])?.f_expand([SIDE, SIDE, feats], false)?;
    let x = x.f_view([1, SIDE, feats])?.f_expand([SIDE, SIDE, feats], false)?;
    Ok(Tensor::f_cat(&[y, x], 2)?.f_reshape([SIDE * SIDE, 1, DIM])?)
}

/// A pre-norm encoder layer: `x + attn(q = k = norm1(x) + pos, v = norm1(x))`, then
/// `x + linear2(relu(linear1(norm2(x))))`.
struct EncoderLayer {
    norm1: LayerNorm,
    attn: MultiheadAttention,
    norm2: LayerNorm,
    linear1: Linear,
    linear2: Linear,
}

impl EncoderLayer {
    fn load(ck: &Checkpoint, prefix: &str, place: Placement) -> Result<Self> {
        let p = |s: &str| format!("{prefix}.{s}");
        Ok(EncoderLayer {
            norm1: LayerNorm::load(ck, &p("norm1"), DIM, place)?,
            attn: MultiheadAttention::load(ck, &p("self_attn"), DIM, HEADS, place)?,
            norm2: LayerNorm::load(ck, &p("norm2"), DIM, place)?,
            linear1: Linear::load(ck, &p("linear1"), (DIM, FEED_FORWARD), true, place)?,
            linear2: Linear::load(ck, &p("linear2"), (FEED_FORWARD, DIM), true, place)?,
        })
    }

    /// `x`: L×N×E, `pos`: L×1×E.
    fn forward(&self, x: &Tensor, pos: &Tensor) -> Result<Tensor> {
        let h = self.norm1.forward(x)?;
        let qk = h.f_add(pos)?;
        let x = x.f_add(&self.attn.forward(&qk, &qk, &h)?)?;
        let h = self.linear2.forward(&self.linear1.forward(&self.norm2.forward(&x)?)?.f_relu()?)?;
        Ok(x.f_add(&h)?)
    }
}

struct Tres {
    backbone: ResNet,
    layers: Vec<EncoderLayer>,
    norm: LayerNorm,
    position: FrozenTensor,
    fc2: Linear,
    fc: Linear,
    normalise: Normalise,
}

impl Tres {
    /// One score per normalised 224×224 crop (B×3×224×224).
    fn score_crops(&self, crops: &Tensor) -> Result<Tensor> {
        let b = crops.size()[0];
        let stages = self.backbone.features(crops)?;
        let mut pooled = Vec::with_capacity(4);
        for stage in &stages[1..] {
            let unit = stage.f_div(&stage.f_norm_scalaropt_dim(2, [1i64].as_slice(), true)?.f_clamp_min(1e-12)?)?;
            let h = hann_l2_pool(&unit, 1)?;
            let k = h.size()[2] / SIDE;
            pooled.push(if k > 1 { h.f_avg_pool2d([k, k], [k, k], [0, 0], false, true, None)? } else { h });
        }
        // B×3840×7×7 → (7·7)×B×3840.
        let src = Tensor::f_cat(&pooled, 1)?.f_flatten(2, -1)?.f_permute([2, 0, 1])?;
        let mut x = src;
        for layer in &self.layers {
            x = layer.forward(&x, &self.position)?;
        }
        let x = self.norm.forward(&x)?;
        let transformer = self.fc2.forward(&x.f_mean_dim([0i64].as_slice(), false, None)?)?;
        let last = stages[4].f_mean_dim([2i64, 3].as_slice(), false, None)?;
        Ok(self.fc.forward(&Tensor::f_cat(&[transformer, last], 1)?)?.f_view([b])?)
    }
}

impl Model for Tres {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let x = self.normalise.forward(dist)?;
        let mut scores = Vec::with_capacity(x.size()[0] as usize);
        for i in 0..x.size()[0] {
            let crops = uniform_crops(&x.f_narrow(0, i, 1)?, CROP, CROPS)?;
            let mut per_crop = Vec::with_capacity(CROPS as usize);
            for chunk in 0..CROPS / CHUNK {
                per_crop.push(self.score_crops(&crops.f_narrow(0, chunk * CHUNK, CHUNK)?)?);
            }
            scores.push(Tensor::f_cat(&per_crop, 0)?.f_to_kind(Kind::Float)?.f_mean(Kind::Float)?);
        }
        Ok(Tensor::f_stack(&scores, 0)?)
    }
}
