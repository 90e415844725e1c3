//! The layers the model zoo is built of, each read from a pyiqa checkpoint by torch's own key names under a
//! prefix (`semantic_model.layer1.0.conv1.weight`), shape-checked, and kept frozen on the model's placement.
//! BatchNorm (eval mode) is folded into the convolution before it: one pass over each activation fewer, and
//! the same function to ~1e-7 relative.
use crate::error::{Error, ErrorKind, Result};
use crate::nn::backbones::Placement;
use crate::tensor::FrozenTensor;
use std::collections::HashMap;
use tch::{Kind, Tensor};

/// A checkpoint's tensors by key, after pyiqa's unwrapping; `source` names the file in messages.
pub struct Checkpoint {
    tensors: HashMap<String, Tensor>,
    source: String,
}

impl Checkpoint {
    /// The tensors of a file as pyiqa's `load_pretrained_network` reads them: `wrapper` (e.g. "params") is the
    /// dict the state dict sits under, where the file has one; "module." prefixes (DataParallel) are dropped.
    pub fn unwrap(source: &str, tensors: HashMap<String, Tensor>, wrapper: Option<&str>) -> Checkpoint {
        let prefix = wrapper.map(|w| format!("{w}."));
        let wrapped = prefix.as_deref().is_some_and(|p| tensors.keys().any(|k| k.starts_with(p)));
        let tensors = tensors
            .into_iter()
            .filter_map(|(k, v)| {
                let k = match (&prefix, wrapped) {
                    (Some(p), true) => k.strip_prefix(p.as_str())?.to_string(),
                    _ => k,
                };
                Some((k.strip_prefix("module.").map(str::to_string).unwrap_or(k), v))
            })
            .collect();
        Checkpoint { tensors, source: source.to_string() }
    }

    /// A checkpoint of tensors already renamed.
    pub fn new(source: &str, tensors: HashMap<String, Tensor>) -> Checkpoint {
        Checkpoint { tensors, source: source.to_string() }
    }

    /// The tensors whose keys start with `prefix`, with it removed (torchvision's `model.` in ARNIQA's file).
    pub fn sub(&self, prefix: &str) -> Checkpoint {
        let tensors = self
            .tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.shallow_clone())))
            .collect();
        Checkpoint { tensors, source: self.source.clone() }
    }

    /// The tensors whose keys `rename` maps to a new key, under it: a plain state dict for the ImageNet
    /// backbones of [`crate::nn::backbones`] (`features1.N.weight` → `features.N.weight`).
    pub fn renamed(&self, rename: impl Fn(&str) -> Option<String>) -> HashMap<String, Tensor> {
        self.tensors.iter().filter_map(|(k, v)| rename(k).map(|k| (k, v.shallow_clone()))).collect()
    }

    /// Whether the checkpoint has `key`.
    pub fn has(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    /// The shape of the tensor at `key`, for networks whose size the file decides (CLIP).
    pub fn shape(&self, key: &str) -> Option<Vec<i64>> {
        self.tensors.get(key).map(Tensor::size)
    }

    /// The file, as messages name it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The float32 CPU tensor at `key`, which must have `shape`.
    pub fn get(&self, key: &str, shape: &[i64]) -> Result<Tensor> {
        let t = self.tensors.get(key).ok_or_else(|| {
            Error::new(ErrorKind::Weights, format!("'{}' lacks '{key}' (expected shape {shape:?})", self.source))
        })?;
        if t.size() != shape {
            return Err(Error::new(
                ErrorKind::Weights,
                format!("'{}': '{key}' has shape {:?}, expected {shape:?}", self.source, t.size()),
            ));
        }
        Ok(t.f_to_kind(Kind::Float)?)
    }

    /// [`Checkpoint::get`] moved to the model's placement and frozen.
    pub fn frozen(&self, key: &str, shape: &[i64], place: Placement) -> Result<FrozenTensor> {
        place_frozen(self.get(key, shape)?, place)
    }
}

fn place_frozen(t: Tensor, place: Placement) -> Result<FrozenTensor> {
    Ok(FrozenTensor::new(t.f_to_kind(place.kind)?.f_to_device(place.device)?))
}

/// `x` in the dtype of `w` (no copy when it already is).
fn like(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    Ok(if x.kind() == w.kind() { x.shallow_clone() } else { x.f_to_kind(w.kind())? })
}

/// A 2-D convolution: a square stride, a kernel and padding of their own height and width.
pub struct Conv2d {
    weight: FrozenTensor,
    bias: Option<FrozenTensor>,
    stride: i64,
    padding: [i64; 2],
}

/// BatchNorm's ε: torch's default; timm's Inception-ResNet-v2 uses 1e-3.
pub const BN_EPS: f64 = 1e-5;

impl Conv2d {
    /// `{prefix}.weight` of (cout, cin, k, k) and, with `bias`, `{prefix}.bias`.
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        ck: &Checkpoint,
        prefix: &str,
        (cin, cout, k): (i64, i64, i64),
        bias: bool,
        stride: i64,
        padding: i64,
        place: Placement,
    ) -> Result<Self> {
        let weight = ck.frozen(&format!("{prefix}.weight"), &[cout, cin, k, k], place)?;
        let bias = if bias { Some(ck.frozen(&format!("{prefix}.bias"), &[cout], place)?) } else { None };
        Ok(Conv2d { weight, bias, stride, padding: [padding, padding] })
    }

    /// A convolution `conv` (with or without a bias) followed by the eval-mode BatchNorm `bn` (ε = [`BN_EPS`]),
    /// as one convolution: weight·γ/√(var+ε) and bias β + (b − mean)·γ/√(var+ε), computed in float32
    /// on the CPU.
    pub fn load_folded(
        ck: &Checkpoint,
        conv: &str,
        bn: &str,
        (cin, cout, k): (i64, i64, i64),
        stride: i64,
        padding: i64,
        place: Placement,
    ) -> Result<Self> {
        Self::load_folded_rect(ck, (conv, bn, BN_EPS), (cin, cout, [k, k]), stride, [padding, padding], place)
    }

    /// [`Conv2d::load_folded`] with a kernel of (height, width), padding (height, width) and BatchNorm's ε.
    pub fn load_folded_rect(
        ck: &Checkpoint,
        (conv, bn, eps): (&str, &str, f64),
        (cin, cout, [kh, kw]): (i64, i64, [i64; 2]),
        stride: i64,
        padding: [i64; 2],
        place: Placement,
    ) -> Result<Self> {
        let w = ck.get(&format!("{conv}.weight"), &[cout, cin, kh, kw])?;
        let v = |name: &str| ck.get(&format!("{bn}.{name}"), &[cout]);
        let scale = v("weight")?.f_div(&v("running_var")?.f_add_scalar(eps)?.f_sqrt()?)?;
        let mut centred = v("running_mean")?.f_neg()?;
        if ck.has(&format!("{conv}.bias")) {
            centred = centred.f_add(&ck.get(&format!("{conv}.bias"), &[cout])?)?;
        }
        let bias = v("bias")?.f_add(&centred.f_mul(&scale)?)?;
        let weight = w.f_mul(&scale.f_view([cout, 1, 1, 1])?)?;
        Ok(Conv2d { weight: place_frozen(weight, place)?, bias: Some(place_frozen(bias, place)?), stride, padding })
    }

    /// A convolution of a weight (cout, cin, kh, kw) computed elsewhere (MUSIQ's standardised weights).
    pub fn from_tensors(
        weight: Tensor,
        bias: Option<Tensor>,
        stride: i64,
        padding: [i64; 2],
        place: Placement,
    ) -> Result<Self> {
        let bias = bias.map(|b| place_frozen(b, place)).transpose()?;
        Ok(Conv2d { weight: place_frozen(weight, place)?, bias, stride, padding })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = self.stride;
        Ok(like(x, &self.weight)?.f_conv2d(&self.weight, self.bias.as_deref(), [s, s], self.padding, [1, 1], 1)?)
    }

    /// The convolution followed by ReLU (in place: the output is fresh).
    pub fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = self.forward(x)?;
        let _ = y.f_relu_()?;
        Ok(y)
    }
}

/// Per-channel normalisation of N×3×H×W images, `(x − mean) / std`, in float32 on the model's device (as
/// pyiqa normalises before the network, whatever the network's precision).
pub struct Normalise {
    mean: FrozenTensor,
    std: FrozenTensor,
}

impl Normalise {
    pub fn new(mean: [f32; 3], std: [f32; 3], place: Placement) -> Result<Self> {
        let rgb = |v: [f32; 3]| -> Result<FrozenTensor> {
            Ok(FrozenTensor::new(Tensor::f_from_slice(&v)?.f_view([1, 3, 1, 1])?.f_to_device(place.device)?))
        };
        Ok(Normalise { mean: rgb(mean)?, std: rgb(std)? })
    }

    /// torchvision's ImageNet statistics.
    pub fn imagenet(place: Placement) -> Result<Self> {
        Self::new([0.485, 0.456, 0.406], [0.229, 0.224, 0.225], place)
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_sub(&self.mean)?.f_div(&self.std)?)
    }
}

/// A fully connected layer, `x·Wᵀ + b` over the last dimension.
pub struct Linear {
    weight: FrozenTensor,
    bias: Option<FrozenTensor>,
}

impl Linear {
    /// `{prefix}.weight` of (out, in) and, with `bias`, `{prefix}.bias`.
    pub fn load(ck: &Checkpoint, prefix: &str, (cin, cout): (i64, i64), bias: bool, place: Placement) -> Result<Self> {
        let weight = ck.frozen(&format!("{prefix}.weight"), &[cout, cin], place)?;
        let bias = if bias { Some(ck.frozen(&format!("{prefix}.bias"), &[cout], place)?) } else { None };
        Ok(Linear { weight, bias })
    }

    /// A layer from tensors already read (TorchScript modules, split projections).
    pub fn from_tensors(weight: Tensor, bias: Option<Tensor>, place: Placement) -> Result<Self> {
        Ok(Linear { weight: place_frozen(weight, place)?, bias: bias.map(|b| place_frozen(b, place)).transpose()? })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(like(x, &self.weight)?.f_linear(&self.weight, self.bias.as_deref())?)
    }
}

/// An eval-mode `BatchNorm1d` over N×C (eps 1e-5): `x·scale + shift`, folded from its four tensors.
pub struct BatchNorm1d {
    scale: FrozenTensor,
    shift: FrozenTensor,
}

impl BatchNorm1d {
    pub fn load(ck: &Checkpoint, prefix: &str, dim: i64, place: Placement) -> Result<Self> {
        let v = |name: &str| ck.get(&format!("{prefix}.{name}"), &[dim]);
        let scale = v("weight")?.f_div(&v("running_var")?.f_add_scalar(1e-5)?.f_sqrt()?)?;
        let shift = v("bias")?.f_sub(&v("running_mean")?.f_mul(&scale)?)?;
        Ok(BatchNorm1d { scale: place_frozen(scale, place)?, shift: place_frozen(shift, place)? })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(like(x, &self.scale)?.f_mul(&self.scale)?.f_add(&self.shift)?)
    }
}

/// Layer normalisation over the last dimension (ε 1e-5, torch's default, unless [`LayerNorm::eps`] says).
pub struct LayerNorm {
    weight: FrozenTensor,
    bias: FrozenTensor,
    dim: i64,
    eps: f64,
}

impl LayerNorm {
    pub fn load(ck: &Checkpoint, prefix: &str, dim: i64, place: Placement) -> Result<Self> {
        Ok(LayerNorm {
            weight: ck.frozen(&format!("{prefix}.weight"), &[dim], place)?,
            bias: ck.frozen(&format!("{prefix}.bias"), &[dim], place)?,
            dim,
            eps: 1e-5,
        })
    }

    /// The same layer with ε = `eps` (timm's and MUSIQ's 1e-6).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(like(x, &self.weight)?.f_layer_norm([self.dim], Some(&*self.weight), Some(&*self.bias), self.eps, false)?)
    }
}

/// Group normalisation of N×C×H×W over `groups` groups of channels, with ε and an affine map per channel.
pub struct GroupNorm {
    weight: FrozenTensor,
    bias: FrozenTensor,
    groups: i64,
    eps: f64,
}

impl GroupNorm {
    pub fn load(
        ck: &Checkpoint,
        prefix: &str,
        (channels, groups): (i64, i64),
        eps: f64,
        place: Placement,
    ) -> Result<Self> {
        Ok(GroupNorm {
            weight: ck.frozen(&format!("{prefix}.weight"), &[channels], place)?,
            bias: ck.frozen(&format!("{prefix}.bias"), &[channels], place)?,
            groups,
            eps,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(like(x, &self.weight)?.f_group_norm(self.groups, Some(&*self.weight), Some(&*self.bias), self.eps, false)?)
    }
}

/// torch's `nn.MultiheadAttention` (sequence-first: L×N×E), eval mode: packed input projection
/// (`in_proj_weight` (3E, E), `in_proj_bias`), `heads` heads, output projection `out_proj`.
pub struct MultiheadAttention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: i64,
}

impl MultiheadAttention {
    pub fn load(ck: &Checkpoint, prefix: &str, dim: i64, heads: i64, place: Placement) -> Result<Self> {
        if dim % heads != 0 {
            return Err(Error::new(ErrorKind::Weights, format!("{dim} features do not split into {heads} heads")));
        }
        let w = ck.get(&format!("{prefix}.in_proj_weight"), &[3 * dim, dim])?;
        let b = ck.get(&format!("{prefix}.in_proj_bias"), &[3 * dim])?;
        let part = |i: i64| -> Result<Linear> {
            Linear::from_tensors(w.f_narrow(0, i * dim, dim)?, Some(b.f_narrow(0, i * dim, dim)?), place)
        };
        Ok(MultiheadAttention {
            q: part(0)?,
            k: part(1)?,
            v: part(2)?,
            out: Linear::load(ck, &format!("{prefix}.out_proj"), (dim, dim), true, place)?,
            heads,
        })
    }

    /// Attention of `query` (L×N×E) over `key`/`value` (S×N×E); returns L×N×E.
    pub fn forward(&self, query: &Tensor, key: &Tensor, value: &Tensor) -> Result<Tensor> {
        self.forward_masked(query, key, value, false)
    }

    /// [`Self::forward`], with `causal`: query i attends to keys 0..=i only (torch's additive mask of −∞ above
    /// the diagonal).
    pub fn forward_masked(&self, query: &Tensor, key: &Tensor, value: &Tensor, causal: bool) -> Result<Tensor> {
        let (l, n, e) = query.size3()?;
        let s = key.size()[0];
        let h = self.heads;
        // (len, N, E) → (N, heads, len, E/heads)
        let split =
            |t: Tensor, len: i64| -> Result<Tensor> { Ok(t.f_view([len, n, h, e / h])?.f_permute([1, 2, 0, 3])?) };
        let q = split(self.q.forward(query)?, l)?;
        let k = split(self.k.forward(key)?, s)?;
        let v = split(self.v.forward(value)?, s)?;
        let a = Tensor::f_scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, causal, None, false)?;
        self.out.forward(&a.f_permute([2, 0, 1, 3])?.f_contiguous()?.f_view([l, n, e])?)
    }
}

/// L2 pooling (DISTS, TReS): √(hann ∗ x² + 1e−12) per channel, with the 3×3 Hann window (numpy's hanning(5)
/// without its zero ends, outer product, normalised), padding 1, at `stride`.
pub fn hann_l2_pool(x: &Tensor, stride: i64) -> Result<Tensor> {
    let a = [0.5f32, 1.0, 0.5];
    let taps: Vec<f32> = (0..9).map(|i| a[i / 3] * a[i % 3] / 4.0).collect();
    let c = x.size()[1];
    let window = Tensor::f_from_slice(&taps)?.f_to_kind(x.kind())?.f_to_device(x.device())?.f_view([1, 1, 3, 3])?;
    let pooled = x.f_square()?.f_conv2d(
        &window.f_expand([c, 1, 3, 3], false)?,
        None::<Tensor>,
        [stride, stride],
        [1, 1],
        [1, 1],
        c,
    )?;
    Ok(pooled.f_add_scalar(1e-12)?.f_sqrt()?)
}

/// A head's N×classes float32 output as one score per image, as pyiqa's `dist_to_mos` reads it: with several
/// classes, the mean class (1..=classes) of their softmax; with one, the output itself.
pub fn dist_to_mos(out: &Tensor) -> Result<Tensor> {
    let classes = out.size()[1];
    if classes == 1 {
        return Ok(out.f_view([-1])?);
    }
    let labels = Tensor::f_arange_start(1, classes + 1, (Kind::Float, out.device()))?;
    Ok(out.f_softmax(-1, Kind::Float)?.f_mul(&labels)?.f_sum_dim_intlist([-1i64].as_slice(), false, None)?)
}

/// torch's exact GELU (erf).
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    Ok(x.f_gelu("none")?)
}
