//! CLIP (Radford et al. 2021) as OpenAI's release lays it out and pyiqa's `clip_model` runs it: a text
//! transformer and an image encoder, either the modified ResNet (three-convolution stem, average pooling
//! before strided convolutions, attention pooling) or a vision transformer. The shapes are read off the state
//! dict as OpenAI's `build_model` reads them, so RN50 and ViT-B/32, B/16 and L/14 load through the same code.
//!
//! OpenAI's files are TorchScript archives whose linear, convolution and projection tensors are float16;
//! pyiqa casts the model to float32 on the CPU, and so does [`Checkpoint::get`].
use crate::error::{Error, ErrorKind, Result};
use crate::nn::backbones::{channels_last, Placement};
use crate::nn::layers::{Checkpoint, Conv2d, LayerNorm, Linear, MultiheadAttention};
use crate::tensor::FrozenTensor;
use tch::{Kind, Tensor};

fn weights_error(message: String) -> Error {
    Error::new(ErrorKind::Weights, message)
}

/// How many `{prefix}{n}{suffix}` keys the checkpoint has for n = 0, 1, ...
fn count(ck: &Checkpoint, prefix: &str, suffix: &str) -> usize {
    (0..).take_while(|n| ck.has(&format!("{prefix}{n}{suffix}"))).count()
}

fn shape(ck: &Checkpoint, key: &str) -> Result<Vec<i64>> {
    ck.shape(key).ok_or_else(|| weights_error(format!("'{}' lacks '{key}'", ck.source())))
}

/// Features divided by their Euclidean norm over the last dimension, as CLIP compares them.
pub fn unit(t: &Tensor) -> Result<Tensor> {
    Ok(t.f_div(&t.f_norm_scalaropt_dim(2, [-1i64].as_slice(), true)?)?)
}

/// Where CLIP reads a prompt: the position of its largest token id, the end-of-text token (the first such).
pub fn end_of_text(tokens: &[i64]) -> i64 {
    tokens.iter().enumerate().fold((0, i64::MIN), |best, (i, &t)| if t > best.1 { (i, t) } else { best }).0 as i64
}

/// `x·σ(1.702·x)`, CLIP's GELU.
fn quick_gelu(x: &Tensor) -> Result<Tensor> {
    Ok(x.f_mul(&x.f_mul_scalar(1.702)?.f_sigmoid()?)?)
}

/// A pre-norm transformer block: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`, the MLP `c_fc`, QuickGELU,
/// `c_proj`.
struct Block {
    ln_1: LayerNorm,
    attn: MultiheadAttention,
    ln_2: LayerNorm,
    c_fc: Linear,
    c_proj: Linear,
}

impl Block {
    fn load(ck: &Checkpoint, prefix: &str, width: i64, place: Placement) -> Result<Self> {
        let p = |s: &str| format!("{prefix}.{s}");
        Ok(Block {
            ln_1: LayerNorm::load(ck, &p("ln_1"), width, place)?,
            attn: MultiheadAttention::load(ck, &p("attn"), width, width / 64, place)?,
            ln_2: LayerNorm::load(ck, &p("ln_2"), width, place)?,
            c_fc: Linear::load(ck, &p("mlp.c_fc"), (width, 4 * width), true, place)?,
            c_proj: Linear::load(ck, &p("mlp.c_proj"), (4 * width, width), true, place)?,
        })
    }

    /// `x`: L×N×E; `causal`: each position attends to itself and those before it (the text encoder's mask).
    fn forward(&self, x: &Tensor, causal: bool) -> Result<Tensor> {
        let h = self.ln_1.forward(x)?;
        let x = x.f_add(&self.attn.forward_masked(&h, &h, &h, causal)?)?;
        let h = self.c_proj.forward(&quick_gelu(&self.c_fc.forward(&self.ln_2.forward(&x)?)?)?)?;
        Ok(x.f_add(&h)?)
    }
}

/// `transformer.resblocks.{n}` (text) or `visual.transformer.resblocks.{n}` (ViT) of `width` features.
fn blocks(ck: &Checkpoint, prefix: &str, width: i64, place: Placement) -> Result<Vec<Block>> {
    let n = count(ck, &format!("{prefix}.resblocks."), ".ln_1.weight");
    if n == 0 {
        return Err(weights_error(format!("'{}' has no {prefix}.resblocks", ck.source())));
    }
    (0..n).map(|i| Block::load(ck, &format!("{prefix}.resblocks.{i}"), width, place)).collect()
}

/// CLIP's text encoder: token and position embeddings, a causal transformer, the final LayerNorm and the
/// projection of the end-of-text position.
pub struct TextEncoder {
    /// (vocabulary, width), float32 on the CPU (looked up once per prompt).
    token_embedding: FrozenTensor,
    positional_embedding: FrozenTensor,
    blocks: Vec<Block>,
    ln_final: LayerNorm,
    projection: FrozenTensor,
    place: Placement,
}

impl TextEncoder {
    pub fn load(ck: &Checkpoint, place: Placement) -> Result<Self> {
        let [vocab, width] = shape(ck, "token_embedding.weight")?[..] else {
            return Err(weights_error(format!("'{}': token_embedding.weight is not 2-D", ck.source())));
        };
        let context = shape(ck, "positional_embedding")?.first().copied().unwrap_or(0);
        let embed = shape(ck, "text_projection")?.get(1).copied().unwrap_or(0);
        if width % 64 != 0 {
            return Err(weights_error(format!("'{}': text width {width} is not a multiple of 64", ck.source())));
        }
        Ok(TextEncoder {
            token_embedding: FrozenTensor::new(ck.get("token_embedding.weight", &[vocab, width])?),
            positional_embedding: ck.frozen("positional_embedding", &[context, width], place)?,
            blocks: blocks(ck, "transformer", width, place)?,
            ln_final: LayerNorm::load(ck, "ln_final", width, place)?,
            projection: ck.frozen("text_projection", &[width, embed], place)?,
            place,
        })
    }

    /// The width of token embeddings.
    pub fn width(&self) -> i64 {
        self.token_embedding.size()[1]
    }

    /// The context length (77).
    pub fn context(&self) -> i64 {
        self.positional_embedding.size()[0]
    }

    /// The token embeddings of `tokens` (each of [`Self::context`] ids), N×L×width, float32 on the CPU.
    pub fn embed(&self, tokens: &[Vec<i64>]) -> Result<Tensor> {
        let vocab = self.token_embedding.size()[0];
        let flat: Vec<i64> = tokens.iter().flatten().copied().collect();
        if tokens.iter().any(|t| t.len() as i64 != self.context()) || flat.iter().any(|&t| t < 0 || t >= vocab) {
            return Err(Error::new(ErrorKind::InvalidArgument, "token ids out of the vocabulary or context"));
        }
        let ids = Tensor::f_from_slice(&flat)?;
        Ok(self.token_embedding.f_index_select(0, &ids)?.f_view([tokens.len() as i64, self.context(), -1])?)
    }

    /// Text features (N×embed, float32) of prompt embeddings (N×L×width), each read at its end-of-text
    /// position `eot[n]`.
    pub fn encode_embeddings(&self, embeddings: &Tensor, eot: &[i64]) -> Result<Tensor> {
        // Attention is causal and only the end-of-text positions are read, so the positions after the last of
        // them change nothing: they are left out (a prompt of 4 tokens runs 4 positions, not 77).
        let used = eot.iter().max().map_or(0, |&e| e + 1).clamp(1, self.context());
        let x = embeddings.f_narrow(1, 0, used)?.f_to_device(self.place.device)?.f_to_kind(self.place.kind)?;
        let positions = self.positional_embedding.f_narrow(0, 0, used)?;
        let mut x = x.f_add(&positions)?.f_permute([1, 0, 2])?;
        for b in &self.blocks {
            x = b.forward(&x, true)?;
        }
        let x = self.ln_final.forward(&x.f_permute([1, 0, 2])?)?;
        let rows = Tensor::f_arange(eot.len() as i64, (Kind::Int64, x.device()))?;
        let at = Tensor::f_from_slice(eot)?.f_to_device(x.device())?;
        let picked = x.f_index(&[Some(rows), Some(at)])?;
        Ok(picked.f_matmul(&self.projection)?.f_to_kind(Kind::Float)?)
    }

    /// Text features of token sequences (end of text: the largest id, as CLIP finds it).
    pub fn encode(&self, tokens: &[Vec<i64>]) -> Result<Tensor> {
        let eot: Vec<i64> = tokens.iter().map(|t| end_of_text(t)).collect();
        self.encode_embeddings(&self.embed(tokens)?, &eot)
    }
}

/// `x` average-pooled over `k`×`k` windows (stride `k`, no padding): torch's `AvgPool2d(k)`.
fn avg_pool(x: &Tensor, k: i64) -> Result<Tensor> {
    Ok(x.f_avg_pool2d([k, k], [k, k], [0, 0], false, true, None::<i64>)?)
}

/// A bottleneck of the modified ResNet: 1×1, 3×3, then average pooling where the block strides, then 1×1;
/// the shortcut average-pools and projects (`downsample.0`/`.1`) where the shape changes.
struct Bottleneck {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    stride: i64,
    downsample: Option<Conv2d>,
}

impl Bottleneck {
    fn load(ck: &Checkpoint, p: &str, (cin, planes, stride): (i64, i64, i64), place: Placement) -> Result<Self> {
        let f = |c: &str, bn: &str, shape, pad| {
            Conv2d::load_folded(ck, &format!("{p}.{c}"), &format!("{p}.{bn}"), shape, 1, pad, place)
        };
        let downsample = if stride > 1 || cin != planes * 4 {
            Some(f("downsample.0", "downsample.1", (cin, planes * 4, 1), 0)?)
        } else {
            None
        };
        Ok(Bottleneck {
            conv1: f("conv1", "bn1", (cin, planes, 1), 0)?,
            conv2: f("conv2", "bn2", (planes, planes, 3), 1)?,
            conv3: f("conv3", "bn3", (planes, planes * 4, 1), 0)?,
            stride,
            downsample,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.conv2.forward_relu(&self.conv1.forward_relu(x)?)?;
        if self.stride > 1 {
            h = avg_pool(&h, self.stride)?;
        }
        let mut y = self.conv3.forward(&h)?;
        let shortcut = match &self.downsample {
            Some(d) if self.stride > 1 => d.forward(&avg_pool(x, self.stride)?)?,
            Some(d) => d.forward(x)?,
            None => x.shallow_clone(),
        };
        let _ = y.f_add_(&shortcut)?;
        let _ = y.f_relu_()?;
        Ok(y)
    }
}

/// How the image encoder adds its position embedding to the tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positions {
    /// None at all (pyiqa's `pos_embedding=False`, which the ResNet's attention pool allows at any size).
    Off,
    /// The embedding resized bicubically to the number of tokens (`pos_embedding=True`: pyiqa interpolates the
    /// tokens × width table as an image, so only the token axis changes).
    Resized,
}

/// The embedding table (tokens × width) resized to `tokens` rows as pyiqa does: `F.interpolate` of the table as
/// a 1×1×T×W image, bicubic, align_corners false.
fn resized_positions(table: &Tensor, tokens: i64) -> Result<Tensor> {
    let (t, w) = table.size2()?;
    if t == tokens {
        return Ok(table.shallow_clone());
    }
    let x = table.f_to_kind(Kind::Float)?.f_view([1, 1, t, w])?;
    Ok(x.f_upsample_bicubic2d([tokens, w], false, None, None)?.f_view([tokens, w])?.f_to_kind(table.kind())?)
}

/// The modified ResNet with its attention pool (`visual.*` of the RN CLIPs).
pub struct ModifiedResNet {
    stem: [Conv2d; 3],
    layers: Vec<Vec<Bottleneck>>,
    positional_embedding: FrozenTensor,
    q: Linear,
    k: Linear,
    v: Linear,
    c: Linear,
    heads: i64,
}

impl ModifiedResNet {
    fn load(ck: &Checkpoint, place: Placement) -> Result<Self> {
        let width = shape(ck, "visual.layer1.0.conv1.weight")?[0];
        let f = |c: &str, bn: &str, shape, stride| Conv2d::load_folded(ck, c, bn, shape, stride, 1, place);
        let stem = [
            f("visual.conv1", "visual.bn1", (3, width / 2, 3), 2)?,
            f("visual.conv2", "visual.bn2", (width / 2, width / 2, 3), 1)?,
            f("visual.conv3", "visual.bn3", (width / 2, width, 3), 1)?,
        ];
        let mut cin = width;
        let mut layers = Vec::with_capacity(4);
        for stage in 0..4 {
            let planes = width << stage;
            let n = count(ck, &format!("visual.layer{}.", stage + 1), ".conv1.weight");
            if n == 0 {
                return Err(weights_error(format!("'{}' has no visual.layer{}", ck.source(), stage + 1)));
            }
            let mut blocks = Vec::with_capacity(n);
            for j in 0..n {
                let stride = if stage > 0 && j == 0 { 2 } else { 1 };
                blocks.push(Bottleneck::load(
                    ck,
                    &format!("visual.layer{}.{j}", stage + 1),
                    (cin, planes, stride),
                    place,
                )?);
                cin = planes * 4;
            }
            layers.push(blocks);
        }
        let embed = width * 32;
        let output = shape(ck, "visual.attnpool.c_proj.weight")?[0];
        let tokens = shape(ck, "visual.attnpool.positional_embedding")?[0];
        let proj = |name: &str, out| Linear::load(ck, &format!("visual.attnpool.{name}"), (embed, out), true, place);
        Ok(ModifiedResNet {
            stem,
            layers,
            positional_embedding: ck.frozen("visual.attnpool.positional_embedding", &[tokens, embed], place)?,
            q: proj("q_proj", embed)?,
            k: proj("k_proj", embed)?,
            v: proj("v_proj", embed)?,
            c: proj("c_proj", output)?,
            heads: embed / 64,
        })
    }

    fn forward(&self, x: &Tensor, positions: Positions) -> Result<Tensor> {
        let mut h = channels_last(x)?;
        for conv in &self.stem {
            h = conv.forward_relu(&h)?;
        }
        h = avg_pool(&h, 2)?;
        for block in self.layers.iter().flatten() {
            h = block.forward(&h)?;
        }
        // Attention pooling: the mean token, then every position, attended from the mean token (only its output
        // is kept, so only its query is computed).
        let (n, c, hh, ww) = h.size4()?;
        let tokens = h.f_flatten(2, 3)?.f_permute([0, 2, 1])?;
        let mut seq = Tensor::f_cat(&[tokens.f_mean_dim([1i64].as_slice(), true, None)?, tokens], 1)?;
        if positions == Positions::Resized {
            seq = seq.f_add(&resized_positions(&self.positional_embedding, hh * ww + 1)?)?;
        }
        let heads = self.heads;
        let split = |t: Tensor, len: i64| -> Result<Tensor> {
            Ok(t.f_view([n, len, heads, c / heads])?.f_permute([0, 2, 1, 3])?)
        };
        let q = split(self.q.forward(&seq.f_narrow(1, 0, 1)?)?, 1)?;
        let k = split(self.k.forward(&seq)?, hh * ww + 1)?;
        let v = split(self.v.forward(&seq)?, hh * ww + 1)?;
        let a = Tensor::f_scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, false, None, false)?;
        self.c.forward(&a.f_permute([0, 2, 1, 3])?.f_reshape([n, c])?)
    }
}

/// CLIP's vision transformer (`visual.*` of the ViT CLIPs): patch convolution, class token, position
/// embedding, `ln_pre`, transformer, `ln_post` of the class token, projection.
pub struct VisionTransformer {
    patch: Conv2d,
    class_embedding: FrozenTensor,
    positional_embedding: FrozenTensor,
    ln_pre: LayerNorm,
    blocks: Vec<Block>,
    ln_post: LayerNorm,
    proj: FrozenTensor,
}

impl VisionTransformer {
    fn load(ck: &Checkpoint, place: Placement) -> Result<Self> {
        let w = shape(ck, "visual.conv1.weight")?;
        let (width, patch) = (w[0], w[3]);
        let tokens = shape(ck, "visual.positional_embedding")?[0];
        let output = shape(ck, "visual.proj")?.get(1).copied().unwrap_or(0);
        if width % 64 != 0 {
            return Err(weights_error(format!("'{}': vision width {width} is not a multiple of 64", ck.source())));
        }
        Ok(VisionTransformer {
            patch: Conv2d::load(ck, "visual.conv1", (3, width, patch), false, patch, 0, place)?,
            class_embedding: ck.frozen("visual.class_embedding", &[width], place)?,
            positional_embedding: ck.frozen("visual.positional_embedding", &[tokens, width], place)?,
            ln_pre: LayerNorm::load(ck, "visual.ln_pre", width, place)?,
            blocks: blocks(ck, "visual.transformer", width, place)?,
            ln_post: LayerNorm::load(ck, "visual.ln_post", width, place)?,
            proj: ck.frozen("visual.proj", &[width, output], place)?,
        })
    }

    fn forward(&self, x: &Tensor, positions: Positions) -> Result<Tensor> {
        let h = self.patch.forward(x)?;
        let (n, width, _, _) = h.size4()?;
        let tokens = h.f_flatten(2, 3)?.f_permute([0, 2, 1])?;
        let class = self.class_embedding.f_view([1, 1, width])?.f_expand([n, 1, width], false)?;
        let mut seq = Tensor::f_cat(&[class.f_to_kind(tokens.kind())?, tokens], 1)?;
        let len = seq.size()[1];
        seq = match positions {
            Positions::Resized => seq.f_add(&resized_positions(&self.positional_embedding, len)?)?,
            Positions::Off => seq,
        };
        let mut seq = self.ln_pre.forward(&seq)?.f_permute([1, 0, 2])?;
        for b in &self.blocks {
            seq = b.forward(&seq, false)?;
        }
        let class = self.ln_post.forward(&seq.f_select(0, 0)?)?;
        Ok(class.f_matmul(&self.proj)?)
    }
}

/// The image encoder of a CLIP file.
pub enum ImageEncoder {
    ResNet(Box<ModifiedResNet>),
    Vit(Box<VisionTransformer>),
}

impl ImageEncoder {
    /// Whichever the file holds (`visual.proj` marks a ViT, as in OpenAI's `build_model`).
    pub fn load(ck: &Checkpoint, place: Placement) -> Result<Self> {
        Ok(if ck.has("visual.proj") {
            ImageEncoder::Vit(Box::new(VisionTransformer::load(ck, place)?))
        } else {
            ImageEncoder::ResNet(Box::new(ModifiedResNet::load(ck, place)?))
        })
    }

    /// Image features (N×embed, float32) of CLIP-normalised N×3×H×W images.
    pub fn forward(&self, x: &Tensor, positions: Positions) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let y = match self {
            ImageEncoder::ResNet(net) => net.forward(x, positions)?,
            ImageEncoder::Vit(net) => net.forward(x, positions)?,
        };
        Ok(y.f_to_kind(Kind::Float)?)
    }
}

/// A whole CLIP model: both encoders and the logit scale.
pub struct Clip {
    pub image: ImageEncoder,
    pub text: TextEncoder,
    /// exp(`logit_scale`).
    pub logit_scale: f64,
}

/// OpenAI's image normalisation (`OPENAI_CLIP_MEAN`, `OPENAI_CLIP_STD`).
pub const MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
pub const STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

impl Clip {
    pub fn load(ck: &Checkpoint, place: Placement) -> Result<Self> {
        let scale = ck.get("logit_scale", &[])?.f_double_value(&[])?;
        Ok(Clip {
            image: ImageEncoder::load(ck, place)?,
            text: TextEncoder::load(ck, place)?,
            logit_scale: scale.exp(),
        })
    }

    /// `logit_scale · cos(image, text)` for every pair: N×T.
    pub fn logits(&self, image_features: &Tensor, text_features: &Tensor) -> Result<Tensor> {
        let (i, t) = (unit(image_features)?, unit(&text_features.f_to_device(image_features.device())?)?);
        Ok(i.f_matmul(&t.f_transpose(0, 1)?)?.f_mul_scalar(self.logit_scale)?)
    }
}
