//! MANIQA (Yang et al. 2022) as pyiqa 0.1.16 runs it in eval mode. The image, normalised with mean = std = 0.5,
//! gives 20 crops of 224×224 (pyiqa's `uniform_crop`, [`uniform_crops`]). Each crop goes through ViT-B/8; the
//! patch tokens of its blocks 7 to 10 side by side (28×28 tokens × 3072) are the features. Two stages follow,
//! each: two transposed-attention blocks (attention between feature channels, over the 784 token positions, a
//! residual), a 1×1 convolution (3072 → 768, then 768 → 384), and a Swin stage of two layers (two window-4
//! blocks and a ReLU 3×3 convolution each), every layer added back at `scale` times its output. Per patch a
//! score head (ReLU output) and a weight head (sigmoid) give the image's score: the weighted mean of the
//! scores of all 20 × 784 patches.
//!
//! The crops go through the networks a few at a time: the same arithmetic per crop, with the peak memory of
//! five rather than twenty (a transposed-attention map is 3072×3072 per crop).
use crate::error::Result;
use crate::model::{Builder, MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::Placement;
use crate::nn::interpolate::uniform_crops;
use crate::nn::layers::{Checkpoint, Conv2d, Linear, Normalise};
use crate::nn::swin::{BlockConfig, SwinBlock};
use crate::nn::vit::{VisionTransformer, VIT_B8_224};
use crate::weights::{self, files, WeightFile};
use std::sync::Arc;
use tch::{Kind, Tensor};

const CROP: i64 = 224;
const CROPS: i64 = 20;
/// Crops run together through the networks.
const CHUNK: i64 = 5;
/// The ViT blocks whose outputs are the features (0-based), the last of them the last block run.
const TAPS: [usize; 4] = [6, 7, 8, 9];
const DIM: i64 = 768;
const GRID: i64 = 28;

#[derive(Debug, Clone, Copy)]
struct Variant {
    file: &'static WeightFile,
    /// The weight of each Swin layer's output against its input.
    scale: f64,
}

const KONIQ: Variant = Variant { file: &files::MANIQA_KONIQ, scale: 0.8 };
const KADID: Variant = Variant { file: &files::MANIQA_KADID, scale: 0.8 };
const PIPAL: Variant = Variant { file: &files::MANIQA_PIPAL, scale: 0.13 };

const fn spec(name: &'static str, v: &'static Variant, build: Builder) -> MetricSpec {
    MetricSpec::new(name, Mode::NoReference, false, (0.0, 1.0), build)
        .weights(std::slice::from_ref(&v.file))
        .reduced_precision()
}

pub const METRICS: &[MetricSpec] = &[
    spec("maniqa", &KONIQ, |k| build(k, KONIQ)),
    spec("maniqa-kadid", &KADID, |k| build(k, KADID)),
    spec("maniqa-pipal", &PIPAL, |k| build(k, PIPAL)),
];

fn build(key: &ModelKey, v: Variant) -> Result<Arc<dyn Model>> {
    let place = Placement::new(key.device, key.precision);
    // A plain state dict (pyiqa loads it with no wrapper key).
    let ck = Checkpoint::unwrap(v.file.official_name, weights::load(v.file, &[])?, None);
    let tokens = GRID * GRID;
    let tabs = |stage: usize| -> Result<Vec<TransposedAttention>> {
        (0..2).map(|i| TransposedAttention::load(&ck, &format!("tablock{stage}.{i}"), tokens, place)).collect()
    };
    let head = |name: &str| -> Result<[Linear; 2]> {
        Ok([
            Linear::load(&ck, &format!("{name}.0"), (DIM / 2, DIM / 2), true, place)?,
            Linear::load(&ck, &format!("{name}.3"), (DIM / 2, 1), true, place)?,
        ])
    };
    Ok(Arc::new(Maniqa {
        vit: VisionTransformer::load(&ck, "vit.", VIT_B8_224, TAPS[3] + 1, place)?,
        tablock1: tabs(1)?,
        conv1: Conv2d::load(&ck, "conv1", (4 * DIM, DIM, 1), true, 1, 0, place)?,
        swin1: SwinStage::load(&ck, "swintransformer1", DIM, v.scale, place)?,
        tablock2: tabs(2)?,
        conv2: Conv2d::load(&ck, "conv2", (DIM, DIM / 2, 1), true, 1, 0, place)?,
        swin2: SwinStage::load(&ck, "swintransformer2", DIM / 2, v.scale, place)?,
        fc_score: head("fc_score")?,
        fc_weight: head("fc_weight")?,
        normalise: Normalise::new([0.5; 3], [0.5; 3], place)?,
    }))
}

/// Attention between the rows of B×C×N (the channels), each row's N values projected to query, key and
/// value, scaled by N^−½; the result, transposed to B×N×C, is read back as B×C×N (pyiqa's reshape) and the
/// input added.
struct TransposedAttention {
    q: Linear,
    k: Linear,
    v: Linear,
}

impl TransposedAttention {
    fn load(ck: &Checkpoint, prefix: &str, n: i64, place: Placement) -> Result<Self> {
        let lin = |s: &str| Linear::load(ck, &format!("{prefix}.{s}"), (n, n), true, place);
        Ok(TransposedAttention { q: lin("c_q")?, k: lin("c_k")?, v: lin("c_v")? })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, n) = x.size3()?;
        let (q, k, v) = (self.q.forward(x)?, self.k.forward(x)?, self.v.forward(x)?);
        let attn = q.f_matmul(&k.f_transpose(-2, -1)?)?.f_mul_scalar((n as f64).powf(-0.5))?;
        let a = attn.f_softmax(-1, attn.kind())?.f_matmul(&v)?;
        Ok(a.f_transpose(1, 2)?.f_reshape([b, c, n])?.f_add(x)?)
    }
}

/// MANIQA's Swin stage on the 28×28 grid: layers of two blocks (window 4, the second shifted by 2, 4 heads,
/// MLP width 768) and a 3×3 convolution with ReLU, each layer's output added to its input at `scale`.
struct SwinStage {
    layers: Vec<(Vec<SwinBlock>, Conv2d)>,
    dim: i64,
    scale: f64,
}

impl SwinStage {
    fn load(ck: &Checkpoint, prefix: &str, dim: i64, scale: f64, place: Placement) -> Result<Self> {
        let layers = (0..2)
            .map(|l| {
                let p = format!("{prefix}.layers.{l}");
                let blocks = (0..2)
                    .map(|i| {
                        let config =
                            BlockConfig { dim, resolution: GRID, window: 4, shift: 2 * (i % 2), heads: 4, mlp: DIM };
                        SwinBlock::load(ck, &format!("{p}.blocks.{i}"), config, place)
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok((blocks, Conv2d::load(ck, &format!("{p}.conv"), (dim, dim, 3), true, 1, 1, place)?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SwinStage { layers, dim, scale })
    }

    /// B×C×28×28 → B×C×28×28.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let b = x.size()[0];
        let mut x = x.f_flatten(2, -1)?.f_transpose(1, 2)?;
        for (blocks, conv) in &self.layers {
            let mut h = x.shallow_clone();
            for block in blocks {
                h = block.forward(&h)?;
            }
            let h = conv.forward_relu(&h.f_transpose(1, 2)?.f_reshape([b, self.dim, GRID, GRID])?)?;
            let h = h.f_flatten(2, -1)?.f_transpose(1, 2)?;
            x = h.f_mul_scalar(self.scale)?.f_add(&x)?;
        }
        Ok(x.f_transpose(1, 2)?.f_reshape([b, self.dim, GRID, GRID])?)
    }
}

struct Maniqa {
    vit: VisionTransformer,
    tablock1: Vec<TransposedAttention>,
    conv1: Conv2d,
    swin1: SwinStage,
    tablock2: Vec<TransposedAttention>,
    conv2: Conv2d,
    swin2: SwinStage,
    fc_score: [Linear; 2],
    fc_weight: [Linear; 2],
    normalise: Normalise,
}

impl Maniqa {
    /// The (weighted score, weight) sums over the patches of B normalised 224×224 crops.
    fn weighted_sums(&self, crops: &Tensor) -> Result<(Tensor, Tensor)> {
        let b = crops.size()[0];
        let states = self.vit.hidden_states(crops)?;
        let taps = TAPS.iter().map(|&i| states[i].f_narrow(1, 1, GRID * GRID)).collect::<Result<Vec<_>, _>>()?;
        drop(states);
        let mut x = Tensor::f_cat(&taps, 2)?.f_transpose(1, 2)?;
        for tab in &self.tablock1 {
            x = tab.forward(&x)?;
        }
        let x = self.conv1.forward(&x.f_reshape([b, 4 * DIM, GRID, GRID])?)?;
        let mut x = self.swin1.forward(&x)?.f_flatten(2, -1)?;
        for tab in &self.tablock2 {
            x = tab.forward(&x)?;
        }
        let x = self.conv2.forward(&x.f_reshape([b, DIM, GRID, GRID])?)?;
        let x = self.swin2.forward(&x)?.f_flatten(2, -1)?.f_transpose(1, 2)?;
        let head = |[a, b]: &[Linear; 2]| -> Result<Tensor> { b.forward(&a.forward(&x)?.f_relu()?) };
        let score = head(&self.fc_score)?.f_relu()?.f_to_kind(Kind::Float)?;
        let weight = head(&self.fc_weight)?.f_sigmoid()?.f_to_kind(Kind::Float)?;
        Ok((score.f_mul(&weight)?.f_sum(Kind::Float)?, weight.f_sum(Kind::Float)?))
    }
}

impl Model for Maniqa {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let x = self.normalise.forward(dist)?;
        let mut scores = Vec::with_capacity(x.size()[0] as usize);
        for i in 0..x.size()[0] {
            let crops = uniform_crops(&x.f_narrow(0, i, 1)?, CROP, CROPS)?;
            let (mut weighted, mut weights) = (Vec::new(), Vec::new());
            for chunk in 0..CROPS / CHUNK {
                let (s, w) = self.weighted_sums(&crops.f_narrow(0, chunk * CHUNK, CHUNK)?)?;
                weighted.push(s);
                weights.push(w);
            }
            let total = |parts: &[Tensor]| Tensor::f_stack(parts, 0)?.f_sum(Kind::Float);
            scores.push(total(&weighted)?.f_div(&total(&weights)?.f_add_scalar(1e-8)?)?);
        }
        Ok(Tensor::f_stack(&scores, 0)?)
    }
}
