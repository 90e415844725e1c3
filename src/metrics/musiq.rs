//! MUSIQ (Ke et al. 2021) as pyiqa 0.1.16 runs it. The image, mapped to [−1, 1], is seen at three scales: its
//! longer side resized to 224 and to 384 (aspect kept, sides rounded half to even, bicubic without
//! antialiasing) and as it is. Each scale is cut into 32×32 patches after TensorFlow's "SAME" zero padding.
//! Every patch goes through a small stem (a weight-standardised 7×7 stride-2 convolution, GroupNorm, ReLU,
//! a "SAME" 3×3 stride-2 max-pool and one bottleneck of weight-standardised convolutions and GroupNorms),
//! its 8×8×256 map flattened channel-last into one token. Each token gets the hashed spatial embedding of its
//! patch (the patch grid mapped onto a 10×10 grid by nearest-neighbour) and the embedding of its scale; a class
//! token goes first and fourteen pre-norm transformer blocks follow. The class token's output, through a
//! linear head, is the score: directly (KonIQ, SPAQ, PaQ-2-PiQ), or as the mean class of a ten-way softmax
//! (AVA).
//!
//! pyiqa pads the 224 and 384 scales to 49 and 144 tokens with masked tokens; a masked logit is −1000, whose
//! weight in the softmax is exactly zero in float32, so iqa leaves those tokens out.
use crate::error::{Error, Result};
use crate::model::{Builder, MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::Placement;
use crate::nn::interpolate;
use crate::nn::layers::{dist_to_mos, gelu, Checkpoint, Conv2d, GroupNorm, LayerNorm, Linear};
use crate::tensor::FrozenTensor;
use crate::weights::{self, files, WeightFile};
use std::sync::Arc;
use tch::{Kind, Tensor};

const PATCH: i64 = 32;
/// The hashed spatial embedding's grid side.
const GRID: i64 = 10;
/// The longer sides of the resized scales; the image as it is comes after them.
const LONGER_SIDES: [i64; 2] = [224, 384];
const STEM: i64 = 64;
const HIDDEN: i64 = 384;
const MLP: i64 = 1152;
const HEADS: i64 = 6;
const LAYERS: usize = 14;

#[derive(Debug, Clone, Copy)]
struct Variant {
    file: &'static WeightFile,
    classes: i64,
}

const KONIQ: Variant = Variant { file: &files::MUSIQ_KONIQ, classes: 1 };
const AVA: Variant = Variant { file: &files::MUSIQ_AVA, classes: 10 };
const PAQ2PIQ: Variant = Variant { file: &files::MUSIQ_PAQ2PIQ, classes: 1 };
const SPAQ: Variant = Variant { file: &files::MUSIQ_SPAQ, classes: 1 };

const fn spec(name: &'static str, v: &'static Variant, range: (f64, f64), build: Builder) -> MetricSpec {
    MetricSpec::new(name, Mode::NoReference, false, range, build)
        .weights(std::slice::from_ref(&v.file))
        .reduced_precision()
}

pub const METRICS: &[MetricSpec] = &[
    spec("musiq", &KONIQ, (0.0, 100.0), |k| build(k, KONIQ)),
    spec("musiq-ava", &AVA, (1.0, 10.0), |k| build(k, AVA)),
    spec("musiq-paq2piq", &PAQ2PIQ, (0.0, 100.0), |k| build(k, PAQ2PIQ)),
    spec("musiq-spaq", &SPAQ, (0.0, 100.0), |k| build(k, SPAQ)),
];

fn build(key: &ModelKey, v: Variant) -> Result<Arc<dyn Model>> {
    let place = Placement::new(key.device, key.precision);
    // A plain state dict (pyiqa loads it with no wrapper key).
    let ck = Checkpoint::unwrap(v.file.official_name, weights::load(v.file, &[])?, None);
    let enc = |s: &str| format!("transformer_encoder.{s}");
    let head = if v.classes > 1 { "head.0" } else { "head" };
    Ok(Arc::new(Musiq {
        conv_root: StdConv::load(&ck, "conv_root", (3, STEM, 7), 2, place)?,
        gn_root: GroupNorm::load(&ck, "gn_root", (STEM, 32), 1e-6, place)?,
        block1: Bottleneck::load(&ck, "block1", (STEM, 4 * STEM), place)?,
        embedding: Linear::load(&ck, "embedding", (4 * STEM * (PATCH / 4) * (PATCH / 4), HIDDEN), true, place)?,
        position_emb: ck.frozen(&enc("posembed_input.position_emb"), &[1, GRID * GRID, HIDDEN], place)?,
        scale_emb: ck.frozen(&enc("scaleembed_input.scale_emb"), &[LONGER_SIDES.len() as i64 + 1, HIDDEN], place)?,
        cls: ck.frozen(&enc("cls"), &[1, 1, HIDDEN], place)?,
        blocks: (0..LAYERS)
            .map(|i| Block::load(&ck, &enc(&format!("transformer.encoderblock_{i}")), place))
            .collect::<Result<_>>()?,
        encoder_norm: LayerNorm::load(&ck, &enc("encoder_norm"), HIDDEN, place)?.eps(1e-6),
        head: Linear::load(&ck, head, (HIDDEN, v.classes), true, place)?,
    }))
}

/// A convolution whose weight is standardised per output channel, (w − mean) / (std + 1e−5) with the
/// unbiased std, after TensorFlow's "SAME" zero padding. The weight is standardised once, at load.
struct StdConv {
    conv: Conv2d,
    kernel: i64,
    stride: i64,
}

impl StdConv {
    fn load(
        ck: &Checkpoint,
        prefix: &str,
        (cin, cout, k): (i64, i64, i64),
        stride: i64,
        place: Placement,
    ) -> Result<Self> {
        let w = ck.get(&format!("{prefix}.weight"), &[cout, cin, k, k])?;
        let dims = [1i64, 2, 3];
        let centred = w.f_sub(&w.f_mean_dim(dims.as_slice(), true, None)?)?;
        let std = w.f_std_dim(dims.as_slice(), true, true)?;
        let weight = centred.f_div(&std.f_add_scalar(1e-5)?)?;
        Ok(StdConv { conv: Conv2d::from_tensors(weight, None, stride, [0, 0], place)?, kernel: k, stride })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.conv.forward(&same_padding(x, self.kernel, self.stride)?)
    }
}

/// TensorFlow's "SAME" zero padding for a `kernel` at `stride`: ⌈side/stride⌉ outputs, the odd pixel of
/// padding at the end.
fn same_padding(x: &Tensor, kernel: i64, stride: i64) -> Result<Tensor> {
    let pad = |side: i64| ((side + stride - 1) / stride - 1) * stride + kernel - side;
    let (rows, cols) = (pad(x.size()[2]).max(0), pad(x.size()[3]).max(0));
    if rows == 0 && cols == 0 {
        return Ok(x.shallow_clone());
    }
    Ok(x.f_constant_pad_nd([cols / 2, cols - cols / 2, rows / 2, rows - rows / 2])?)
}

/// The stem's bottleneck: 1×1, 3×3 and 1×1 weight-standardised convolutions with GroupNorms (ε 1e−4) and a
/// projected shortcut.
struct Bottleneck {
    convs: [StdConv; 3],
    norms: [GroupNorm; 3],
    conv_proj: StdConv,
    gn_proj: GroupNorm,
}

impl Bottleneck {
    fn load(ck: &Checkpoint, prefix: &str, (cin, cout): (i64, i64), place: Placement) -> Result<Self> {
        let p = |s: &str| format!("{prefix}.{s}");
        let gn = |s: &str, c: i64| GroupNorm::load(ck, &p(s), (c, 32), 1e-4, place);
        Ok(Bottleneck {
            convs: [
                StdConv::load(ck, &p("conv1"), (cin, cin, 1), 1, place)?,
                StdConv::load(ck, &p("conv2"), (cin, cin, 3), 1, place)?,
                StdConv::load(ck, &p("conv3"), (cin, cout, 1), 1, place)?,
            ],
            norms: [gn("gn1", cin)?, gn("gn2", cin)?, gn("gn3", cout)?],
            conv_proj: StdConv::load(ck, &p("conv_proj"), (cin, cout, 1), 1, place)?,
            gn_proj: gn("gn_proj", cout)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let identity = self.gn_proj.forward(&self.conv_proj.forward(x)?)?;
        let mut h = x.shallow_clone();
        for (i, (conv, norm)) in self.convs.iter().zip(&self.norms).enumerate() {
            h = norm.forward(&conv.forward(&h)?)?;
            if i < 2 {
                let _ = h.f_relu_()?;
            }
        }
        Ok(h.f_add(&identity)?.f_relu()?)
    }
}

/// A pre-norm transformer block (LayerNorm ε 1e−6): separate query, key and value projections with biases,
/// six heads, then an MLP with GELU.
struct Block {
    norm1: LayerNorm,
    qkv: [Linear; 3],
    out: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl Block {
    fn load(ck: &Checkpoint, prefix: &str, place: Placement) -> Result<Self> {
        let p = |s: &str| format!("{prefix}.{s}");
        let lin = |s: &str, shape| Linear::load(ck, &p(s), shape, true, place);
        Ok(Block {
            norm1: LayerNorm::load(ck, &p("norm1"), HIDDEN, place)?.eps(1e-6),
            qkv: [
                lin("attention.query", (HIDDEN, HIDDEN))?,
                lin("attention.key", (HIDDEN, HIDDEN))?,
                lin("attention.value", (HIDDEN, HIDDEN))?,
            ],
            out: lin("attention.out", (HIDDEN, HIDDEN))?,
            norm2: LayerNorm::load(ck, &p("norm2"), HIDDEN, place)?.eps(1e-6),
            fc1: lin("mlp.fc1", (HIDDEN, MLP))?,
            fc2: lin("mlp.fc2", (MLP, HIDDEN))?,
        })
    }

    /// `x`: N×L×E.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (n, l, e) = x.size3()?;
        let y = self.norm1.forward(x)?;
        let heads = |lin: &Linear| -> Result<Tensor> {
            Ok(lin.forward(&y)?.f_view([n, l, HEADS, e / HEADS])?.f_permute([0, 2, 1, 3])?)
        };
        let [q, k, v] = [heads(&self.qkv[0])?, heads(&self.qkv[1])?, heads(&self.qkv[2])?];
        let a = Tensor::f_scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, false, None, false)?;
        let a = self.out.forward(&a.f_permute([0, 2, 1, 3])?.f_contiguous()?.f_view([n, l, e])?)?;
        let x = x.f_add(&a)?;
        let h = self.fc2.forward(&gelu(&self.fc1.forward(&self.norm2.forward(&x)?)?)?)?;
        Ok(x.f_add(&h)?)
    }
}

struct Musiq {
    conv_root: StdConv,
    gn_root: GroupNorm,
    block1: Bottleneck,
    embedding: Linear,
    position_emb: FrozenTensor,
    scale_emb: FrozenTensor,
    cls: FrozenTensor,
    blocks: Vec<Block>,
    encoder_norm: LayerNorm,
    head: Linear,
}

/// The hashed spatial position of each patch of a `rows`×`cols` grid, row-major: torch's nearest-neighbour
/// resize of 0..10 to each side (its float32 index rule, run by libtorch itself), row·10 + column.
fn hashed_positions(rows: i64, cols: i64, device: tch::Device) -> Result<Tensor> {
    let grid = Tensor::f_arange(GRID, (Kind::Float, device))?.f_view([1, 1, GRID])?;
    let along = |count: i64| -> Result<Tensor> { Ok(grid.f_upsample_nearest1d([count], None)?.f_view([count])?) };
    let (r, c) = (along(rows)?, along(cols)?);
    Ok(r.f_view([rows, 1])?
        .f_mul_scalar(GRID)?
        .f_add(&c.f_view([1, cols])?)?
        .f_view([rows * cols])?
        .f_to_kind(Kind::Int64)?)
}

impl Musiq {
    /// The tokens of one scale of `x` (N×3×H×W in [−1, 1]): N×P×E embedded patches with their spatial and
    /// scale embeddings added.
    fn scale_tokens(&self, x: &Tensor, scale: i64) -> Result<Tensor> {
        let (n, h, w) = (x.size()[0], x.size()[2], x.size()[3]);
        let (rows, cols) = ((h + PATCH - 1) / PATCH, (w + PATCH - 1) / PATCH);
        let x = same_padding(x, PATCH, PATCH)?;
        let patches = x.f_view([n, 3, rows, PATCH, cols, PATCH])?.f_permute([0, 2, 4, 1, 3, 5])?.f_reshape([
            n * rows * cols,
            3,
            PATCH,
            PATCH,
        ])?;
        let mut h = self.gn_root.forward(&self.conv_root.forward(&patches)?)?;
        let _ = h.f_relu_()?;
        let h = same_padding(&h, 3, 2)?.f_max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false)?;
        let h = self.block1.forward(&h)?;
        // TensorFlow's channel-last order.
        let h = h.f_permute([0, 2, 3, 1])?.f_reshape([n, rows * cols, -1])?;
        let tokens = self.embedding.forward(&h)?;
        let spatial =
            self.position_emb.f_select(0, 0)?.f_index_select(0, &hashed_positions(rows, cols, x.device())?)?;
        let scale = self.scale_emb.f_narrow(0, scale, 1)?;
        Ok(tokens.f_add(&spatial.f_unsqueeze(0)?)?.f_add(&scale)?)
    }
}

impl Model for Musiq {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let x = dist.f_sub_scalar(0.5)?.f_mul_scalar(2.0)?;
        let (n, h, w) = (x.size()[0], x.size()[2], x.size()[3]);
        let mut tokens = vec![self.cls.f_expand([n, 1, HIDDEN], false)?];
        for (scale, &longer) in LONGER_SIDES.iter().enumerate() {
            let ratio = longer as f64 / h.max(w) as f64;
            // Python's round(): half to even.
            let side = |s: i64| (s as f64 * ratio).round_ties_even() as i64;
            if side(h.min(w)) == 0 {
                return Err(Error::shape(format!(
                    "MUSIQ resizes the longer side to {longer}: a {w}x{h} image's shorter side would vanish \
                     (the longer side must be less than {} times the shorter)",
                    2 * longer
                )));
            }
            let resized = interpolate::resize(&x, (side(h), side(w)), interpolate::Mode::Bicubic)?;
            tokens.push(self.scale_tokens(&resized, scale as i64)?);
        }
        tokens.push(self.scale_tokens(&x, LONGER_SIDES.len() as i64)?);
        let mut x = Tensor::f_cat(&tokens, 1)?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        let cls = self.encoder_norm.forward(&x.f_select(1, 0)?)?;
        dist_to_mos(&self.head.forward(&cls)?.f_to_kind(Kind::Float)?)
    }
}
