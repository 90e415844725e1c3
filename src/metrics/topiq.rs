//! TOPIQ (Chen et al. 2024, pyiqa's `CFANet`) on its ResNet-50 backbone, as pyiqa 0.1.16 runs it.
//!
//! The five ResNet feature maps (stem, layer1..4) are pooled locally — no-reference: a gated convolution
//! (GELU of one half of a 1×1 projection, weighted by a sigmoid map from the other half); full-reference: the
//! distorted and reference maps and their distance √((d−r)²+1e−12), weighted by a sigmoid map of the
//! distance —
//! averaged down to the last map's size where both sides are larger, reduced to `inter_dim` channels, given a
//! bicubically resized 32×32 position embedding, and passed through one self-attention layer each. Cross-scale
//! attention then runs from the coarsest map down to the finest, an attention-pooling layer and an MLP read the
//! mean token: one score, or for the aesthetic variant a softmax over ten classes whose mean class is the score.
//! Inputs are ImageNet-normalised; `topiq_nr-flive` and `topiq_iaa_res50` first resize the shorter side to
//! 384 (bilinear, antialiased). The face variants (facexlib face alignment) and the Swin-backbone variants are
//! not built in.
use crate::error::Result;
use crate::model::{require_ref, MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::Placement;
use crate::nn::interpolate::{self, resize_short_side};
use crate::nn::layers::{dist_to_mos, gelu, Checkpoint, Conv2d, LayerNorm, Linear, MultiheadAttention};
use crate::nn::resnet::{Depth, Layout, ResNet};
use crate::tensor::FrozenTensor;
use crate::weights::{self, files, WeightFile};
use std::sync::Arc;
use tch::{Kind, Tensor};

/// One TOPIQ variant: its checkpoint and pyiqa's options for it.
#[derive(Debug, Clone, Copy)]
struct Variant {
    file: &'static WeightFile,
    full_reference: bool,
    inter_dim: i64,
    heads: i64,
    classes: i64,
    /// Shorter side resized to this first.
    test_size: Option<i64>,
}

const fn variant(file: &'static WeightFile, full_reference: bool, test_size: Option<i64>) -> Variant {
    Variant { file, full_reference, inter_dim: 256, heads: 4, classes: 1, test_size }
}

const NR_KONIQ: Variant = variant(&files::CFANET_NR_KONIQ_RES50, false, None);
const NR_FLIVE: Variant = variant(&files::CFANET_NR_FLIVE_RES50, false, Some(384));
const NR_SPAQ: Variant = variant(&files::CFANET_NR_SPAQ_RES50, false, None);
const FR_KADID: Variant = variant(&files::CFANET_FR_KADID_RES50, true, None);
const FR_PIPAL: Variant = variant(&files::CFANET_FR_PIPAL_RES50, true, None);
const IAA_RES50: Variant =
    Variant { inter_dim: 512, heads: 8, classes: 10, ..variant(&files::CFANET_IAA_AVA_RES50, false, Some(384)) };

const fn spec(name: &'static str, v: &'static Variant, range: (f64, f64), build: crate::model::Builder) -> MetricSpec {
    let mode = if v.full_reference { Mode::FullReference } else { Mode::NoReference };
    // bf16 moves every variant's scores by less than 1e-2 of its range (tests/zoo.rs).
    MetricSpec::new(name, mode, false, range, build).weights(std::slice::from_ref(&v.file)).reduced_precision()
}

pub const METRICS: &[MetricSpec] = &[
    spec("topiq_nr", &NR_KONIQ, (0.0, 1.0), |k| build(k, NR_KONIQ)),
    spec("topiq_nr-flive", &NR_FLIVE, (0.0, 1.0), |k| build(k, NR_FLIVE)),
    spec("topiq_nr-spaq", &NR_SPAQ, (0.0, 1.0), |k| build(k, NR_SPAQ)),
    spec("topiq_fr", &FR_KADID, (0.0, 1.0), |k| build(k, FR_KADID)),
    spec("topiq_fr-pipal", &FR_PIPAL, (0.0, 1.0), |k| build(k, FR_PIPAL)),
    spec("topiq_iaa_res50", &IAA_RES50, (1.0, 10.0), |k| build(k, IAA_RES50)),
];

fn build(key: &ModelKey, v: Variant) -> Result<Arc<dyn Model>> {
    let place = Placement::new(key.device, key.precision);
    let ck = Checkpoint::unwrap(v.file.official_name, weights::load(v.file, &[])?, Some("params"));
    Ok(Arc::new(Topiq::load(&ck, v, place)?))
}

/// pyiqa's pre-norm `TransformerEncoderLayer` (self-attention, GELU feed-forward) and, with `cross`, its
/// `TransformerDecoderLayer` (attention of the query over a normalised memory; the decoder's self-attention is
/// stored but never run).
struct AttentionLayer {
    attn: MultiheadAttention,
    norm1: LayerNorm,
    norm2: LayerNorm,
    /// The decoder's third norm (feed-forward input); `None` for encoder layers.
    norm3: Option<LayerNorm>,
    linear1: Linear,
    linear2: Linear,
}

impl AttentionLayer {
    fn load(ck: &Checkpoint, p: &str, dim: i64, heads: i64, cross: bool, place: Placement) -> Result<Self> {
        let ff = (4 * dim).min(2048);
        let attn = if cross { "multihead_attn" } else { "self_attn" };
        Ok(AttentionLayer {
            attn: MultiheadAttention::load(ck, &format!("{p}.{attn}"), dim, heads, place)?,
            norm1: LayerNorm::load(ck, &format!("{p}.norm1"), dim, place)?,
            norm2: LayerNorm::load(ck, &format!("{p}.norm2"), dim, place)?,
            norm3: if cross { Some(LayerNorm::load(ck, &format!("{p}.norm3"), dim, place)?) } else { None },
            linear1: Linear::load(ck, &format!("{p}.linear1"), (dim, ff), true, place)?,
            linear2: Linear::load(ck, &format!("{p}.linear2"), (ff, dim), true, place)?,
        })
    }

    fn feed_forward(&self, x: &Tensor, norm: &LayerNorm) -> Result<Tensor> {
        let h = self.linear2.forward(&gelu(&self.linear1.forward(&norm.forward(x)?)?)?)?;
        Ok(x.f_add(&h)?)
    }

    /// Encoder: `x + attn(n1(x))`, then `+ ff(n2(·))`.
    fn encode(&self, x: &Tensor) -> Result<Tensor> {
        let n = self.norm1.forward(x)?;
        let x = x.f_add(&self.attn.forward(&n, &n, &n)?)?;
        self.feed_forward(&x, &self.norm2)
    }

    /// Decoder: `q + attn(n1(q), n2(memory))`, then `+ ff(n3(·))`.
    fn decode(&self, query: &Tensor, memory: &Tensor) -> Result<Tensor> {
        let m = self.norm2.forward(memory)?;
        let q = query.f_add(&self.attn.forward(&self.norm1.forward(query)?, &m, &m)?)?;
        self.feed_forward(&q, self.norm3.as_ref().expect("decoder layers have norm3"))
    }
}

/// The local pooling of one feature map.
enum LocalPool {
    /// NR: `splitconv` (1×1, C → 2C); GELU(first half) × `weight_blk`(second half).
    Gated { split: Conv2d, weight: [Conv2d; 3] },
    /// FR: [d, r, |d−r|] × the sigmoid map of |d−r|.
    Difference { weight: [Conv2d; 3] },
}

/// The three convolutions of a sigmoid weight map: 1×1 C → 64, GELU, 3×3 64 → 64, GELU, 3×3 64 → 1, sigmoid.
fn weight_convs(ck: &Checkpoint, p: &str, c: i64, place: Placement) -> Result<[Conv2d; 3]> {
    Ok([
        Conv2d::load(ck, &format!("{p}.0"), (c, 64, 1), true, 1, 0, place)?,
        Conv2d::load(ck, &format!("{p}.2"), (64, 64, 3), true, 1, 1, place)?,
        Conv2d::load(ck, &format!("{p}.4"), (64, 1, 3), true, 1, 1, place)?,
    ])
}

fn weight_map(convs: &[Conv2d; 3], x: &Tensor) -> Result<Tensor> {
    let h = gelu(&convs[0].forward(x)?)?;
    let h = gelu(&convs[1].forward(&h)?)?;
    Ok(convs[2].forward(&h)?.f_sigmoid()?)
}

struct Level {
    pool: LocalPool,
    reduce: Conv2d,
    attention: AttentionLayer,
}

pub struct Topiq {
    backbone: ResNet,
    levels: Vec<Level>,
    cross: Vec<AttentionLayer>,
    attn_pool: AttentionLayer,
    /// score_linear: LayerNorm, Linear, GELU, LayerNorm, Linear, GELU, Linear.
    head: (LayerNorm, Linear, LayerNorm, Linear, Linear),
    /// The 32×32 position embedding, 1×inter_dim×32×32: h_emb repeated along x beside w_emb along y.
    pos_emb: FrozenTensor,
    mean: FrozenTensor,
    std: FrozenTensor,
    v: Variant,
}

impl Topiq {
    fn load(ck: &Checkpoint, v: Variant, place: Placement) -> Result<Self> {
        let d = v.inter_dim;
        let backbone = ResNet::load(ck, "semantic_model.", Layout::Named, Depth::R50, place)?;
        let fusion = if v.full_reference { 3 } else { 1 };
        let levels = Depth::R50
            .channels()
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let pool = if v.full_reference {
                    LocalPool::Difference { weight: weight_convs(ck, &format!("weight_pool.{i}"), c, place)? }
                } else {
                    let p = format!("weight_pool.{i}");
                    LocalPool::Gated {
                        split: Conv2d::load(ck, &format!("{p}.splitconv"), (c, 2 * c, 1), true, 1, 0, place)?,
                        weight: weight_convs(ck, &format!("{p}.weight_blk"), c, place)?,
                    }
                };
                Ok(Level {
                    pool,
                    reduce: Conv2d::load(ck, &format!("dim_reduce.{i}.0"), (c * fusion, d, 1), true, 1, 0, place)?,
                    attention: AttentionLayer::load(
                        ck,
                        &format!("sa_attn_blks.{i}.layers.0"),
                        d,
                        v.heads,
                        false,
                        place,
                    )?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let cross = (0..4)
            .map(|i| AttentionLayer::load(ck, &format!("attn_blks.{i}.layers.0"), d, v.heads, true, place))
            .collect::<Result<Vec<_>>>()?;
        let h_emb = ck.get("h_emb", &[1, d / 2, 32, 1])?;
        let w_emb = ck.get("w_emb", &[1, d / 2, 1, 32])?;
        let pos_emb = Tensor::f_cat(&[h_emb.f_repeat([1, 1, 1, 32])?, w_emb.f_repeat([1, 1, 32, 1])?], 1)?;
        let frozen = |t: Tensor| -> Result<FrozenTensor> {
            Ok(FrozenTensor::new(t.f_to_kind(place.kind)?.f_to_device(place.device)?))
        };
        let rgb = |v: [f32; 3]| frozen(Tensor::from_slice(&v).view([1, 3, 1, 1]));
        Ok(Topiq {
            backbone,
            levels,
            cross,
            attn_pool: AttentionLayer::load(ck, "attn_pool", d, v.heads, false, place)?,
            head: (
                LayerNorm::load(ck, "score_linear.0", d, place)?,
                Linear::load(ck, "score_linear.1", (d, d), true, place)?,
                LayerNorm::load(ck, "score_linear.3", d, place)?,
                Linear::load(ck, "score_linear.4", (d, d), true, place)?,
                Linear::load(ck, "score_linear.6", (d, v.classes), true, place)?,
            ),
            pos_emb: frozen(pos_emb)?,
            mean: rgb([0.485, 0.456, 0.406])?,
            std: rgb([0.229, 0.224, 0.225])?,
            v,
        })
    }

    fn normalise(&self, x: &Tensor) -> Result<Tensor> {
        let x = match self.v.test_size {
            Some(s) => resize_short_side(x, s, interpolate::Mode::BilinearAntialias)?,
            None => x.shallow_clone(),
        };
        Ok(x.f_to_kind(self.mean.kind())?.f_sub(&self.mean)?.f_div(&self.std)?)
    }

    /// The tokens of one level (L×N×inter_dim) from its distorted (and reference) feature map.
    fn tokens(&self, level: &Level, dist: &Tensor, reference: Option<&Tensor>, (th, tw): (i64, i64)) -> Result<Tensor> {
        let mut feat = match (&level.pool, reference) {
            (LocalPool::Gated { split, weight }, _) => {
                let halves = split.forward(dist)?.f_chunk(2, 1)?;
                gelu(&halves[0])?.f_mul(&weight_map(weight, &halves[1])?)?
            }
            (LocalPool::Difference { weight }, r) => {
                let r = require_ref(r)?;
                let diff = dist.f_sub(r)?.f_square()?.f_add_scalar(1e-12)?.f_sqrt()?;
                let w = weight_map(weight, &diff)?;
                Tensor::f_cat(&[dist, r, &diff], 1)?.f_mul(&w)?
            }
        };
        let (h, w) = (feat.size()[2], feat.size()[3]);
        if h > th && w > tw {
            feat = feat.f_adaptive_avg_pool2d([th, tw])?;
        }
        let (h, w) = (feat.size()[2], feat.size()[3]);
        let pos = interpolate::resize(&self.pos_emb, (h, w), interpolate::Mode::Bicubic)?;
        let pos = pos.f_flatten(2, 3)?.f_permute([2, 0, 1])?;
        let mut reduced = level.reduce.forward(&feat)?;
        reduced = gelu(&reduced)?;
        let tokens = reduced.f_flatten(2, 3)?.f_permute([2, 0, 1])?.f_add(&pos)?;
        level.attention.encode(&tokens)
    }
}

impl Model for Topiq {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let dist_feats = self.backbone.features(&self.normalise(dist)?)?;
        let ref_feats = match (self.v.full_reference, reference) {
            (true, r) => Some(self.backbone.features(&self.normalise(require_ref(r)?)?)?),
            (false, _) => None,
        };
        let last = &dist_feats[4];
        let (th, tw) = (last.size()[2], last.size()[3]);
        let mut tokens = Vec::with_capacity(5);
        for i in (0..5).rev() {
            let r = ref_feats.as_ref().map(|f| &f[i]);
            tokens.push(self.tokens(&self.levels[i], &dist_feats[i], r, (th, tw))?);
        }
        let mut query = tokens[0].shallow_clone();
        for (layer, memory) in self.cross.iter().zip(&tokens[1..]) {
            query = layer.decode(&query, memory)?;
        }
        let pooled = self.attn_pool.encode(&query)?.f_mean_dim([0i64].as_slice(), false, None)?;
        let (n1, l1, n2, l2, l3) = &self.head;
        let h = gelu(&l1.forward(&n1.forward(&pooled)?)?)?;
        let h = gelu(&l2.forward(&n2.forward(&h)?)?)?;
        dist_to_mos(&l3.forward(&h)?.f_to_kind(Kind::Float)?)
    }
}
