//! ImageNet backbones (torchvision's `features`), built once from state dicts with torchvision key names
//! (`features.N.weight`) and shared between metrics through the model cache: LPIPS-vgg and DISTS hold
//! one VGG16. Each exposes the activations the metrics tap.
use crate::cache;
use crate::error::{Error, ErrorKind, Result};
use crate::model::ModelKey;
use crate::runtime::Precision;
use crate::tensor::FrozenTensor;
use crate::weights;
use std::collections::HashMap;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// Where a backbone runs: its device and the dtype of its weights and activations (float32, or bfloat16 /
/// float16 for reduced precision). Its taps are always handed out as float32.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub device: Device,
    pub kind: Kind,
}

impl Placement {
    pub fn new(device: Device, precision: Precision) -> Self {
        let kind = match precision {
            Precision::Fp32 => Kind::Float,
            Precision::Fp16 => Kind::Half,
            Precision::Bf16 => Kind::BFloat16,
        };
        Placement { device, kind }
    }
}

/// A float32 view of a tap (no copy when the backbone runs in float32).
fn tap(h: &Tensor) -> Result<Tensor> {
    Ok(if h.kind() == Kind::Float { h.shallow_clone() } else { h.f_to_kind(Kind::Float)? })
}

/// `x` (N×C×H×W) with channels-last strides, the layout a backbone should run in on the CPU: oneDNN then
/// convolves without reordering every activation, and max-pooling runs its vectorised kernel (the NCHW one was
/// 14% of LPIPS' time). Every later layer keeps the layout. Convolution results move by ~1e-6 relative (another
/// oneDNN blocking), scores by less than 1e-6 (the tests against pyiqa hold at 1e-5).
pub fn channels_last(x: &Tensor) -> Result<Tensor> {
    Ok(x.f_permute([0, 2, 3, 1])?.f_contiguous()?.f_permute([0, 3, 1, 2])?)
}

/// A convolution with bias, weights frozen.
pub struct Conv {
    weight: FrozenTensor,
    bias: FrozenTensor,
    stride: i64,
    padding: i64,
}

impl Conv {
    /// `features.{index}` (or another prefix) from a state dict, checked against the expected shape.
    fn load(
        sd: &HashMap<String, Tensor>,
        prefix: &str,
        shape: [i64; 4],
        stride: i64,
        padding: i64,
        place: Placement,
    ) -> Result<Self> {
        let get = |suffix: &str, want: &[i64]| -> Result<FrozenTensor> {
            let key = format!("{prefix}.{suffix}");
            let t = sd.get(&key).ok_or_else(|| {
                Error::new(ErrorKind::Weights, format!("backbone weights lack '{key}' (expected shape {want:?})"))
            })?;
            if t.size() != want {
                return Err(Error::new(
                    ErrorKind::Weights,
                    format!("backbone weight '{key}' has shape {:?}, expected {want:?}", t.size()),
                ));
            }
            Ok(FrozenTensor::new(t.f_to_kind(place.kind)?.f_to_device(place.device)?))
        };
        Ok(Conv { weight: get("weight", &shape)?, bias: get("bias", &shape[..1])?, stride, padding })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (s, p) = (self.stride, self.padding);
        let x = if x.kind() == self.weight.kind() { x.shallow_clone() } else { x.f_to_kind(self.weight.kind())? };
        Ok(x.f_conv2d(&self.weight, Some(&*self.bias), [s, s], [p, p], [1, 1], 1)?)
    }

    fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        // In place: the convolution's output is fresh, and a second activation-sized buffer is a pass over
        // memory for nothing.
        let mut y = self.forward(x)?;
        let _ = y.f_relu_()?;
        Ok(y)
    }
}

fn max_pool(x: &Tensor, kernel: i64, stride: i64, ceil_mode: bool) -> Result<Tensor> {
    Ok(x.f_max_pool2d([kernel, kernel], [stride, stride], [0, 0], [1, 1], ceil_mode)?)
}

/// AlexNet features: five conv+ReLU layers, max-pooling after the first two.
pub struct AlexNet {
    convs: Vec<Conv>,
}

impl AlexNet {
    /// Channels of the five ReLU outputs.
    pub const CHANNELS: [i64; 5] = [64, 192, 384, 256, 256];

    pub fn from_state_dict(sd: &HashMap<String, Tensor>, place: Placement) -> Result<Self> {
        let layers = [(0, [64, 3, 11, 11], 4, 2), (3, [192, 64, 5, 5], 1, 2), (6, [384, 192, 3, 3], 1, 1)];
        let more = [(8, [256, 384, 3, 3], 1, 1), (10, [256, 256, 3, 3], 1, 1)];
        let convs = layers
            .iter()
            .chain(&more)
            .map(|&(i, shape, s, p)| Conv::load(sd, &format!("features.{i}"), shape, s, p, place))
            .collect::<Result<_>>()?;
        Ok(AlexNet { convs })
    }

    /// The ReLU outputs of the five convolutions (LPIPS' relu1..relu5).
    pub fn taps(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(5);
        let mut h = self.convs[0].forward_relu(x)?;
        out.push(tap(&h)?);
        h = self.convs[1].forward_relu(&max_pool(&h, 3, 2, false)?)?;
        out.push(tap(&h)?);
        h = max_pool(&h, 3, 2, false)?;
        for conv in &self.convs[2..] {
            h = conv.forward_relu(&h)?;
            out.push(tap(&h)?);
        }
        Ok(out)
    }

    /// Smallest input side with a non-empty output at every tap.
    pub const MIN_SIDE: i64 = 31;
}

/// VGG16 or VGG19 features: five stages of 3×3 conv+ReLU layers separated by 2×2 pooling.
pub struct Vgg {
    stages: Vec<Vec<Conv>>,
}

impl Vgg {
    /// Channels of the last ReLU of each stage (relu1_2, relu2_2, relu3_3|4, relu4_3|4, relu5_3|4).
    pub const CHANNELS: [i64; 5] = [64, 128, 256, 512, 512];

    /// VGG16: 2, 2, 3, 3, 3 convolutions per stage.
    pub fn vgg16(sd: &HashMap<String, Tensor>, place: Placement) -> Result<Self> {
        Self::from_state_dict(sd, [2, 2, 3, 3, 3], place)
    }

    /// VGG19: 2, 2, 4, 4, 4 convolutions per stage.
    pub fn vgg19(sd: &HashMap<String, Tensor>, place: Placement) -> Result<Self> {
        Self::from_state_dict(sd, [2, 2, 4, 4, 4], place)
    }

    /// torchvision's `features.N` numbering: each convolution and its ReLU take two indices, each pool one.
    fn from_state_dict(sd: &HashMap<String, Tensor>, convs: [usize; 5], place: Placement) -> Result<Self> {
        let mut index = 0;
        let mut cin = 3;
        let mut stages = Vec::with_capacity(5);
        for (&n, &cout) in convs.iter().zip(&Self::CHANNELS) {
            let mut stage = Vec::with_capacity(n);
            for _ in 0..n {
                stage.push(Conv::load(sd, &format!("features.{index}"), [cout, cin, 3, 3], 1, 1, place)?);
                index += 2;
                cin = cout;
            }
            stages.push(stage);
            index += 1;
        }
        Ok(Vgg { stages })
    }

    /// The last ReLU output of each stage; `pool(h, stage)` downsamples between stages (max-pooling for
    /// LPIPS, L2 pooling for DISTS), called before stages 1..4.
    pub fn taps(&self, x: &Tensor, pool: impl Fn(&Tensor, usize) -> Result<Tensor>) -> Result<Vec<Tensor>> {
        self.run(x, pool, true)
    }

    /// [`Vgg::taps`], except that the last stage's tap is its last convolution before the ReLU.
    pub fn taps_last_linear(&self, x: &Tensor, pool: impl Fn(&Tensor, usize) -> Result<Tensor>) -> Result<Vec<Tensor>> {
        self.run(x, pool, false)
    }

    fn run(&self, x: &Tensor, pool: impl Fn(&Tensor, usize) -> Result<Tensor>, last_relu: bool) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(5);
        let mut h = x.shallow_clone();
        let last = (self.stages.len() - 1, self.stages[self.stages.len() - 1].len() - 1);
        for (i, stage) in self.stages.iter().enumerate() {
            if i > 0 {
                h = pool(&h, i)?;
            }
            for (j, conv) in stage.iter().enumerate() {
                h = if last_relu || (i, j) != last { conv.forward_relu(&h)? } else { conv.forward(&h)? };
            }
            out.push(tap(&h)?);
        }
        Ok(out)
    }

    /// torchvision's 2×2 max-pooling between stages.
    pub fn max_pool(h: &Tensor, _stage: usize) -> Result<Tensor> {
        max_pool(h, 2, 2, false)
    }
}

/// A SqueezeNet Fire module: squeeze 1×1, then expand 1×1 and 3×3 concatenated, each with ReLU.
struct Fire {
    squeeze: Conv,
    expand1: Conv,
    expand3: Conv,
}

impl Fire {
    fn load(
        sd: &HashMap<String, Tensor>,
        index: i64,
        cin: i64,
        squeeze: i64,
        expand: i64,
        place: Placement,
    ) -> Result<Self> {
        let p = format!("features.{index}");
        Ok(Fire {
            squeeze: Conv::load(sd, &format!("{p}.squeeze"), [squeeze, cin, 1, 1], 1, 0, place)?,
            expand1: Conv::load(sd, &format!("{p}.expand1x1"), [expand, squeeze, 1, 1], 1, 0, place)?,
            expand3: Conv::load(sd, &format!("{p}.expand3x3"), [expand, squeeze, 3, 3], 1, 1, place)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = self.squeeze.forward_relu(x)?;
        Ok(Tensor::f_cat(&[self.expand1.forward_relu(&s)?, self.expand3.forward_relu(&s)?], 1)?)
    }
}

/// SqueezeNet 1.1 features.
pub struct SqueezeNet11 {
    conv0: Conv,
    fires: Vec<Fire>,
}

impl SqueezeNet11 {
    /// Channels of LPIPS' seven taps.
    pub const CHANNELS: [i64; 7] = [64, 128, 256, 384, 384, 512, 512];

    pub fn from_state_dict(sd: &HashMap<String, Tensor>, place: Placement) -> Result<Self> {
        let plan = [(3, 64, 16, 64), (4, 128, 16, 64), (6, 128, 32, 128), (7, 256, 32, 128)];
        let more = [(9, 256, 48, 192), (10, 384, 48, 192), (11, 384, 64, 256), (12, 512, 64, 256)];
        Ok(SqueezeNet11 {
            conv0: Conv::load(sd, "features.0", [64, 3, 3, 3], 2, 0, place)?,
            fires: plan
                .iter()
                .chain(&more)
                .map(|&(i, cin, s, e)| Fire::load(sd, i, cin, s, e, place))
                .collect::<Result<_>>()?,
        })
    }

    /// LPIPS' seven taps: relu of conv0, then after fires 4, 7, 9, 10, 11, 12 (ceil-mode 3×3/2 max-pools
    /// before fires 3, 6 and 9).
    pub fn taps(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(7);
        let mut h = self.conv0.forward_relu(x)?;
        out.push(tap(&h)?);
        let f = &self.fires;
        h = f[1].forward(&f[0].forward(&max_pool(&h, 3, 2, true)?)?)?;
        out.push(tap(&h)?);
        h = f[3].forward(&f[2].forward(&max_pool(&h, 3, 2, true)?)?)?;
        out.push(tap(&h)?);
        h = f[4].forward(&max_pool(&h, 3, 2, true)?)?;
        out.push(tap(&h)?);
        for fire in &f[5..] {
            h = fire.forward(&h)?;
            out.push(tap(&h)?);
        }
        Ok(out)
    }
}

/// The backbone `net` ("alex", "vgg", "squeeze") on `place`, loaded once and shared by every metric that
/// uses it while any of them is alive.
fn shared<T: Send + Sync + 'static>(
    net: &str,
    device: Device,
    precision: Precision,
    build: impl FnOnce(&HashMap<String, Tensor>, Placement) -> Result<T>,
) -> Result<Arc<T>> {
    let file = weights::files::backbone(net).expect("known backbone");
    let key = ModelKey { name: format!("backbone/{net}"), device, precision };
    cache::acquire(&key, cache::Kind::SharedPart, || {
        Ok(Arc::new(build(&weights::load(file, &[])?, Placement::new(device, precision))?))
    })
}

pub fn shared_alexnet(device: Device, precision: Precision) -> Result<Arc<AlexNet>> {
    shared("alex", device, precision, AlexNet::from_state_dict)
}

pub fn shared_vgg16(device: Device, precision: Precision) -> Result<Arc<Vgg>> {
    shared("vgg", device, precision, Vgg::vgg16)
}

pub fn shared_vgg19(device: Device, precision: Precision) -> Result<Arc<Vgg>> {
    shared("vgg19", device, precision, Vgg::vgg19)
}

pub fn shared_squeezenet(device: Device, precision: Precision) -> Result<Arc<SqueezeNet11>> {
    shared("squeeze", device, precision, SqueezeNet11::from_state_dict)
}
