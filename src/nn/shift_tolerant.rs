//! The shift-tolerant AlexNet and VGG16 of ST-LPIPS (Ghildyal and Liu 2022), as pyiqa 0.1.16 builds them
//! (`variant='shift_tolerant'`): every stride-2 step is a blur pool (reflection padding of 2, a 3×3 binomial
//! filter [1 2 1]ᵀ[1 2 1]/16 per channel, stride 2), max-pools run at stride 1 before it, and AlexNet's first
//! convolution runs at stride 1 with its blur pool before the ReLU. Weights are read from the ST-LPIPS file
//! under `net.slice{1..5}.{index}` (the blur filters are fixed, not read).
use crate::error::Result;
use crate::nn::backbones::Placement;
use crate::nn::layers::{Checkpoint, Conv2d};
use crate::tensor::FrozenTensor;
use tch::Tensor;

/// Blur pooling of C channels: reflection padding 2, the binomial 3×3 filter, stride 2.
struct BlurPool {
    filter: FrozenTensor,
    channels: i64,
}

impl BlurPool {
    fn new(channels: i64, place: Placement) -> Result<Self> {
        let taps = [1.0f32, 2.0, 1.0];
        let values: Vec<f32> = taps.iter().flat_map(|a| taps.iter().map(move |b| a * b / 16.0)).collect();
        let filter = Tensor::f_from_slice(&values)?
            .f_view([1, 1, 3, 3])?
            .f_repeat([channels, 1, 1, 1])?
            .f_to_kind(place.kind)?
            .f_to_device(place.device)?;
        Ok(BlurPool { filter: FrozenTensor::new(filter), channels })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let padded = x.f_reflection_pad2d([2, 2, 2, 2])?;
        Ok(padded.f_conv2d(&self.filter, None::<Tensor>, [2, 2], [0, 0], [1, 1], self.channels)?)
    }
}

fn max_pool_stride1(x: &Tensor, kernel: i64) -> Result<Tensor> {
    Ok(x.f_max_pool2d([kernel, kernel], [1, 1], [0, 0], [1, 1], false)?)
}

/// Shift-tolerant AlexNet: five taps (relu1..relu5, 64/192/384/256/256 channels, strides 2, 4, 8, 8, 8).
pub struct ShiftTolerantAlexNet {
    convs: [Conv2d; 5],
    blurs: [BlurPool; 3],
}

impl ShiftTolerantAlexNet {
    pub const CHANNELS: [i64; 5] = [64, 192, 384, 256, 256];
    pub const TAP_STRIDES: [i64; 5] = [2, 4, 8, 8, 8];

    /// From `{prefix}slice1.0`, `slice2.5`, `slice3.9`, `slice4.11`, `slice5.13` (weight and bias each).
    pub fn load(ck: &Checkpoint, prefix: &str, place: Placement) -> Result<Self> {
        let conv =
            |key: &str, shape, padding| Conv2d::load(ck, &format!("{prefix}{key}"), shape, true, 1, padding, place);
        Ok(ShiftTolerantAlexNet {
            convs: [
                conv("slice1.0", (3, 64, 11), 2)?,
                conv("slice2.5", (64, 192, 5), 2)?,
                conv("slice3.9", (192, 384, 3), 1)?,
                conv("slice4.11", (384, 256, 3), 1)?,
                conv("slice5.13", (256, 256, 3), 1)?,
            ],
            blurs: [BlurPool::new(64, place)?, BlurPool::new(64, place)?, BlurPool::new(192, place)?],
        })
    }

    pub fn taps(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut h = self.blurs[0].forward(&self.convs[0].forward(x)?)?;
        let _ = h.f_relu_()?;
        let mut out = vec![h.shallow_clone()];
        h = self.convs[1].forward_relu(&self.blurs[1].forward(&max_pool_stride1(&h, 3)?)?)?;
        out.push(h.shallow_clone());
        h = self.convs[2].forward_relu(&self.blurs[2].forward(&max_pool_stride1(&h, 3)?)?)?;
        out.push(h.shallow_clone());
        for conv in &self.convs[3..] {
            h = conv.forward_relu(&h)?;
            out.push(h.shallow_clone());
        }
        Ok(out)
    }
}

/// Shift-tolerant VGG16: five taps (relu1_2 … relu5_3, strides 1, 2, 4, 8, 16); between stages a 2×2 max-pool
/// at stride 1 and a blur pool.
pub struct ShiftTolerantVgg16 {
    stages: Vec<Vec<Conv2d>>,
    blurs: Vec<BlurPool>,
}

impl ShiftTolerantVgg16 {
    pub const CHANNELS: [i64; 5] = [64, 128, 256, 512, 512];
    pub const TAP_STRIDES: [i64; 5] = [1, 2, 4, 8, 16];

    /// pyiqa's `make_layers` numbering: a convolution and its ReLU take two indices, each max-pool and blur pool
    /// one; slices start at 0, 4, 10, 18, 26.
    pub fn load(ck: &Checkpoint, prefix: &str, place: Placement) -> Result<Self> {
        let plan: [&[usize]; 5] = [&[0, 2], &[6, 8], &[12, 14, 16], &[20, 22, 24], &[28, 30, 32]];
        let mut cin = 3;
        let mut stages = Vec::with_capacity(5);
        let mut blurs = Vec::with_capacity(4);
        for (s, (indices, &cout)) in plan.iter().zip(&Self::CHANNELS).enumerate() {
            if s > 0 {
                blurs.push(BlurPool::new(cin, place)?);
            }
            let mut stage = Vec::with_capacity(indices.len());
            for &i in indices.iter() {
                let key = format!("{prefix}slice{}.{i}", s + 1);
                stage.push(Conv2d::load(ck, &key, (cin, cout, 3), true, 1, 1, place)?);
                cin = cout;
            }
            stages.push(stage);
        }
        Ok(ShiftTolerantVgg16 { stages, blurs })
    }

    pub fn taps(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(5);
        let mut h = x.shallow_clone();
        for (s, stage) in self.stages.iter().enumerate() {
            if s > 0 {
                h = self.blurs[s - 1].forward(&max_pool_stride1(&h, 2)?)?;
            }
            for conv in stage {
                h = conv.forward_relu(&h)?;
            }
            out.push(h.shallow_clone());
        }
        Ok(out)
    }
}
