//! timm's VisionTransformer as pyiqa's metrics load it (`vit_base_patch8_224` in MANIQA): a patch-embedding
//! convolution, a class token, a learned position embedding for the model's own input size, and pre-norm
//! blocks (LayerNorm ε 1e-6, fused qkv, torch's scaled-dot-product attention, GELU MLP). The metrics read the
//! hidden states of some blocks, so only the blocks up to the last one read are loaded and run.
use crate::error::Result;
use crate::nn::backbones::Placement;
use crate::nn::layers::{gelu, Checkpoint, Conv2d, LayerNorm, Linear};
use crate::tensor::FrozenTensor;
use tch::Tensor;

/// The size of a ViT: feature width, heads, patch side and tokens per side of its input.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub dim: i64,
    pub heads: i64,
    pub patch: i64,
    pub grid: i64,
}

/// ViT-B/8 at 224×224: 768 features, 12 heads, 28×28 patches.
pub const VIT_B8_224: Config = Config { dim: 768, heads: 12, patch: 8, grid: 28 };

struct Block {
    norm1: LayerNorm,
    qkv: Linear,
    proj: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    heads: i64,
}

impl Block {
    fn load(ck: &Checkpoint, prefix: &str, c: Config, place: Placement) -> Result<Self> {
        let p = |s: &str| format!("{prefix}.{s}");
        let d = c.dim;
        Ok(Block {
            norm1: LayerNorm::load(ck, &p("norm1"), d, place)?.eps(1e-6),
            qkv: Linear::load(ck, &p("attn.qkv"), (d, 3 * d), true, place)?,
            proj: Linear::load(ck, &p("attn.proj"), (d, d), true, place)?,
            norm2: LayerNorm::load(ck, &p("norm2"), d, place)?.eps(1e-6),
            fc1: Linear::load(ck, &p("mlp.fc1"), (d, 4 * d), true, place)?,
            fc2: Linear::load(ck, &p("mlp.fc2"), (4 * d, d), true, place)?,
            heads: c.heads,
        })
    }

    /// `x`: N×L×E.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (n, l, e) = x.size3()?;
        let qkv = self.qkv.forward(&self.norm1.forward(x)?)?.f_view([n, l, 3, self.heads, e / self.heads])?;
        let qkv = qkv.f_permute([2, 0, 3, 1, 4])?;
        let (q, k, v) = (qkv.f_select(0, 0)?, qkv.f_select(0, 1)?, qkv.f_select(0, 2)?);
        let a = Tensor::f_scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, false, None, false)?;
        let x = x.f_add(&self.proj.forward(&a.f_transpose(1, 2)?.f_reshape([n, l, e])?)?)?;
        let h = self.fc2.forward(&gelu(&self.fc1.forward(&self.norm2.forward(&x)?)?)?)?;
        Ok(x.f_add(&h)?)
    }
}

pub struct VisionTransformer {
    patch_embed: Conv2d,
    cls_token: FrozenTensor,
    pos_embed: FrozenTensor,
    blocks: Vec<Block>,
    config: Config,
}

impl VisionTransformer {
    /// The network under `prefix` (e.g. "vit.") with its first `blocks` blocks.
    pub fn load(ck: &Checkpoint, prefix: &str, config: Config, blocks: usize, place: Placement) -> Result<Self> {
        let p = |s: &str| format!("{prefix}{s}");
        let (d, tokens) = (config.dim, config.grid * config.grid + 1);
        Ok(VisionTransformer {
            patch_embed: Conv2d::load(ck, &p("patch_embed.proj"), (3, d, config.patch), true, config.patch, 0, place)?,
            cls_token: ck.frozen(&p("cls_token"), &[1, 1, d], place)?,
            pos_embed: ck.frozen(&p("pos_embed"), &[1, tokens, d], place)?,
            blocks: (0..blocks)
                .map(|i| Block::load(ck, &p(&format!("blocks.{i}")), config, place))
                .collect::<Result<_>>()?,
            config,
        })
    }

    /// The output of every loaded block (N×(1+grid²)×E each, class token first) for N×3×S×S images of the
    /// model's size S = patch·grid.
    pub fn hidden_states(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let n = x.size()[0];
        let tokens = self.patch_embed.forward(x)?.f_flatten(2, -1)?.f_transpose(1, 2)?;
        let cls = self.cls_token.f_expand([n, 1, self.config.dim], false)?;
        let mut h = Tensor::f_cat(&[cls, tokens], 1)?.f_add(&self.pos_embed)?;
        let mut states = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            h = block.forward(&h)?;
            states.push(h.shallow_clone());
        }
        Ok(states)
    }
}
