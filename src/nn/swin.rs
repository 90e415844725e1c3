//! Swin Transformer blocks (Liu et al. 2021) as pyiqa's copies define them: multi-head self-attention within
//! square windows of a token grid, a learned bias per relative position and head, every second block's windows
//! shifted by half a window (torch.roll) with the wrapped-around regions masked apart (−100), pre-norm
//! LayerNorms (ε 1e-5) and a GELU MLP.
use crate::error::Result;
use crate::nn::backbones::Placement;
use crate::nn::layers::{gelu, Checkpoint, LayerNorm, Linear};
use crate::tensor::FrozenTensor;
use tch::Tensor;

/// The geometry of a block: the token grid's side, the window's side, the shift, heads and the MLP's width.
#[derive(Debug, Clone, Copy)]
pub struct BlockConfig {
    pub dim: i64,
    pub resolution: i64,
    pub window: i64,
    pub shift: i64,
    pub heads: i64,
    pub mlp: i64,
}

pub struct SwinBlock {
    norm1: LayerNorm,
    qkv: Linear,
    proj: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    /// heads × N × N, N = window².
    position_bias: FrozenTensor,
    /// windows × N × N of 0 and −100, for shifted blocks.
    mask: Option<FrozenTensor>,
    config: BlockConfig,
}

/// For each pair of positions in a window (row-major), the row of the relative-position bias table:
/// (Δrow + w − 1)·(2w − 1) + (Δcol + w − 1).
fn relative_position_index(window: i64) -> Vec<i64> {
    let n = window * window;
    let mut index = Vec::with_capacity((n * n) as usize);
    for i in 0..n {
        for j in 0..n {
            let (dr, dc) = (i / window - j / window, i % window - j % window);
            index.push((dr + window - 1) * (2 * window - 1) + dc + window - 1);
        }
    }
    index
}

/// The shifted windows' mask: the grid cut into three bands each way (before the last window, the window
/// minus the shift, the shift), labelled 0..9; within a window, positions of different labels get −100.
fn shift_mask(resolution: i64, window: i64, shift: i64) -> Result<Tensor> {
    let band = |p: i64| {
        if p < resolution - window {
            0
        } else if p < resolution - shift {
            1
        } else {
            2
        }
    };
    let per_side = resolution / window;
    let n = window * window;
    let mut mask = Vec::with_capacity((per_side * per_side * n * n) as usize);
    for wr in 0..per_side {
        for wc in 0..per_side {
            let labels: Vec<i64> =
                (0..n).map(|i| 3 * band(wr * window + i / window) + band(wc * window + i % window)).collect();
            for &a in &labels {
                for &b in &labels {
                    mask.push(if a == b { 0f32 } else { -100f32 });
                }
            }
        }
    }
    Ok(Tensor::f_from_slice(&mask)?.f_view([per_side * per_side, n, n])?)
}

impl SwinBlock {
    pub fn load(ck: &Checkpoint, prefix: &str, config: BlockConfig, place: Placement) -> Result<Self> {
        let p = |s: &str| format!("{prefix}.{s}");
        let (d, w, h) = (config.dim, config.window, config.heads);
        let n = w * w;
        let table = ck.get(&p("attn.relative_position_bias_table"), &[(2 * w - 1) * (2 * w - 1), h])?;
        let index = Tensor::f_from_slice(&relative_position_index(w))?;
        let bias = table.f_index_select(0, &index)?.f_view([n, n, h])?.f_permute([2, 0, 1])?.f_contiguous()?;
        let frozen = |t: Tensor| -> Result<FrozenTensor> {
            Ok(FrozenTensor::new(t.f_to_kind(place.kind)?.f_to_device(place.device)?))
        };
        let mask = if config.shift > 0 { Some(frozen(shift_mask(config.resolution, w, config.shift)?)?) } else { None };
        Ok(SwinBlock {
            norm1: LayerNorm::load(ck, &p("norm1"), d, place)?,
            qkv: Linear::load(ck, &p("attn.qkv"), (d, 3 * d), true, place)?,
            proj: Linear::load(ck, &p("attn.proj"), (d, d), true, place)?,
            norm2: LayerNorm::load(ck, &p("norm2"), d, place)?,
            fc1: Linear::load(ck, &p("mlp.fc1"), (d, config.mlp), true, place)?,
            fc2: Linear::load(ck, &p("mlp.fc2"), (config.mlp, d), true, place)?,
            position_bias: frozen(bias)?,
            mask,
            config,
        })
    }

    /// `x`: B×(R·R)×C tokens of the R×R grid, row-major.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let BlockConfig { dim: c, resolution: r, window: w, shift, heads, .. } = self.config;
        let b = x.size()[0];
        let (per_side, n) = (r / w, w * w);
        let windows = b * per_side * per_side;
        let mut h = self.norm1.forward(x)?.f_view([b, r, r, c])?;
        if shift > 0 {
            h = h.f_roll([-shift, -shift], [1, 2])?;
        }
        // Window partition: B×R×R×C → (B·windows)×N×C, windows row-major.
        let h =
            h.f_view([b, per_side, w, per_side, w, c])?.f_permute([0, 1, 3, 2, 4, 5])?.f_reshape([windows, n, c])?;
        let qkv = self.qkv.forward(&h)?.f_view([windows, n, 3, heads, c / heads])?.f_permute([2, 0, 3, 1, 4])?;
        let scale = ((c / heads) as f64).powf(-0.5);
        let q = qkv.f_select(0, 0)?.f_mul_scalar(scale)?;
        let (k, v) = (qkv.f_select(0, 1)?, qkv.f_select(0, 2)?);
        let mut attn = q.f_matmul(&k.f_transpose(-2, -1)?)?.f_add(&self.position_bias.f_unsqueeze(0)?)?;
        if let Some(mask) = &self.mask {
            attn = attn.f_view([b, per_side * per_side, heads, n, n])?.f_add(&mask.f_unsqueeze(1)?.f_unsqueeze(0)?)?;
            attn = attn.f_view([windows, heads, n, n])?;
        }
        let a = attn.f_softmax(-1, attn.kind())?.f_matmul(&v)?.f_transpose(1, 2)?.f_reshape([windows, n, c])?;
        let a = self.proj.forward(&a)?;
        // Window reverse.
        let mut a =
            a.f_view([b, per_side, per_side, w, w, c])?.f_permute([0, 1, 3, 2, 4, 5])?.f_reshape([b, r, r, c])?;
        if shift > 0 {
            a = a.f_roll([shift, shift], [1, 2])?;
        }
        let x = x.f_add(&a.f_view([b, r * r, c])?)?;
        let m = self.fc2.forward(&gelu(&self.fc1.forward(&self.norm2.forward(&x)?)?)?)?;
        Ok(x.f_add(&m)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables pyiqa builds with meshgrid and broadcasting, for a 2×2 window shifted by 1 on a 4×4 grid.
    #[test]
    fn index_and_mask_are_pyiqas() {
        assert_eq!(relative_position_index(2), [4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4]);
        let m = shift_mask(4, 2, 1).unwrap();
        assert_eq!(m.size(), [4, 4, 4]);
        let values: Vec<f32> = Vec::try_from(m.f_flatten(0, -1).unwrap()).unwrap();
        // Window 0 (rows 0-1, cols 0-1) lies in band 0 each way: no mask.
        assert!(values[..16].iter().all(|&v| v == 0.0));
        // Window 3 (rows 2-3, cols 2-3): labels 4, 5, 7, 8, all different.
        let last: Vec<f32> = values[48..].to_vec();
        let want: Vec<f32> = (0..16).map(|k| if k / 4 == k % 4 { 0.0 } else { -100.0 }).collect();
        assert_eq!(last, want);
        // Window 1 (rows 0-1, cols 2-3): labels 1, 2, 1, 2.
        let alternate: Vec<f32> = (0..16).map(|k| if (k / 4 + k % 4) % 2 == 0 { 0.0 } else { -100.0 }).collect();
        assert_eq!(values[16..32], alternate);
    }
}
