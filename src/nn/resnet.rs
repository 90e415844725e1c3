//! ResNet-18/34/50 (He et al. 2016) in the layout torchvision and timm share, as the model zoo's checkpoints
//! store them under a prefix: `conv1`, `bn1`, `layer{1..4}.{j}.conv{1,2[,3]}`, `.bn{1,2[,3]}`,
//! `.downsample.{0,1}`. The stem is a 7×7/2 convolution, BatchNorm, ReLU and a 3×3/2 max-pool; the stride of a
//! stage sits on its first block's 3×3 convolution (ResNet v1.5). BatchNorm is folded into the convolutions.
//! A network kept as `nn.Sequential(*children)` (ARNIQA's encoder) numbers its children instead:
//! `0` (conv1), `1` (bn1), `4..7` (layer1..4).
use crate::error::Result;
use crate::nn::backbones::{channels_last, Placement};
use crate::nn::layers::{Checkpoint, Conv2d};
use tch::Tensor;

/// Which ResNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    R18,
    R34,
    R50,
}

impl Depth {
    fn blocks(self) -> [usize; 4] {
        match self {
            Depth::R18 => [2, 2, 2, 2],
            Depth::R34 | Depth::R50 => [3, 4, 6, 3],
        }
    }

    fn bottleneck(self) -> bool {
        self == Depth::R50
    }

    /// Channels of the five feature maps [`ResNet::features`] returns (stem, layer1..4).
    pub fn channels(self) -> [i64; 5] {
        if self.bottleneck() {
            [64, 256, 512, 1024, 2048]
        } else {
            [64, 64, 128, 256, 512]
        }
    }
}

/// A residual block: two 3×3 convolutions (basic) or 1×1, 3×3, 1×1 (bottleneck), with a projection shortcut
/// where the shape changes.
struct Block {
    convs: Vec<Conv2d>,
    downsample: Option<Conv2d>,
}

impl Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.shallow_clone();
        let last = self.convs.len() - 1;
        for conv in &self.convs[..last] {
            h = conv.forward_relu(&h)?;
        }
        let mut y = self.convs[last].forward(&h)?;
        let shortcut = match &self.downsample {
            Some(d) => d.forward(x)?,
            None => x.shallow_clone(),
        };
        let _ = y.f_add_(&shortcut)?;
        let _ = y.f_relu_()?;
        Ok(y)
    }
}

/// How the checkpoint names the stem and the stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// torchvision's and timm's attribute names: `conv1`, `bn1`, `layer1`..`layer4`.
    Named,
    /// `nn.Sequential` of the children: `0`, `1`, `4`..`7`.
    Sequential,
}

impl Layout {
    fn names(self, stage: usize) -> String {
        match self {
            Layout::Named => format!("layer{}", stage + 1),
            Layout::Sequential => format!("{}", stage + 4),
        }
    }
}

/// One stage: `blocks` residual blocks under `{prefix}.{j}` (basic or bottleneck), `width` channels inside
/// (four times that out of a bottleneck), the stride on the first block's 3×3 convolution (ResNet v1.5) and a
/// projection shortcut where the shape changes.
pub struct Stage {
    blocks: Vec<Block>,
}

/// The shape of a [`Stage`]: input channels, inner width, number of blocks, stride, bottleneck or basic.
#[derive(Debug, Clone, Copy)]
pub struct StageShape {
    pub cin: i64,
    pub width: i64,
    pub blocks: usize,
    pub stride: i64,
    pub bottleneck: bool,
}

impl StageShape {
    pub fn cout(self) -> i64 {
        if self.bottleneck {
            self.width * 4
        } else {
            self.width
        }
    }
}

impl Stage {
    pub fn load(ck: &Checkpoint, prefix: &str, shape: StageShape, place: Placement) -> Result<Self> {
        let (width, cout) = (shape.width, shape.cout());
        let mut cin = shape.cin;
        let mut blocks = Vec::with_capacity(shape.blocks);
        for j in 0..shape.blocks {
            let stride = if j == 0 { shape.stride } else { 1 };
            let p = format!("{prefix}.{j}");
            let folded = |k: usize, shape, stride, pad| {
                Conv2d::load_folded(ck, &format!("{p}.conv{k}"), &format!("{p}.bn{k}"), shape, stride, pad, place)
            };
            let convs = if shape.bottleneck {
                vec![
                    folded(1, (cin, width, 1), 1, 0)?,
                    folded(2, (width, width, 3), stride, 1)?,
                    folded(3, (width, cout, 1), 1, 0)?,
                ]
            } else {
                vec![folded(1, (cin, width, 3), stride, 1)?, folded(2, (width, width, 3), 1, 1)?]
            };
            let downsample = if stride != 1 || cin != cout {
                let (c, b) = (format!("{p}.downsample.0"), format!("{p}.downsample.1"));
                Some(Conv2d::load_folded(ck, &c, &b, (cin, cout, 1), stride, 0, place)?)
            } else {
                None
            };
            blocks.push(Block { convs, downsample });
            cin = cout;
        }
        Ok(Stage { blocks })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.shallow_clone();
        for block in &self.blocks {
            h = block.forward(&h)?;
        }
        Ok(h)
    }
}

pub struct ResNet {
    stem: Conv2d,
    stages: Vec<Stage>,
}

impl ResNet {
    /// The network under `prefix` (with its trailing dot, or "") of `ck`.
    pub fn load(ck: &Checkpoint, prefix: &str, layout: Layout, depth: Depth, place: Placement) -> Result<Self> {
        let (conv1, bn1) = match layout {
            Layout::Named => ("conv1", "bn1"),
            Layout::Sequential => ("0", "1"),
        };
        let stem =
            Conv2d::load_folded(ck, &format!("{prefix}{conv1}"), &format!("{prefix}{bn1}"), (3, 64, 7), 2, 3, place)?;
        let mut cin = 64;
        let mut stages = Vec::with_capacity(4);
        for (i, &blocks) in depth.blocks().iter().enumerate() {
            let stride = if i > 0 { 2 } else { 1 };
            let shape = StageShape { cin, width: 64 << i, blocks, stride, bottleneck: depth.bottleneck() };
            stages.push(Stage::load(ck, &format!("{prefix}{}", layout.names(i)), shape, place)?);
            cin = shape.cout();
        }
        Ok(ResNet { stem, stages })
    }

    /// The stem's ReLU output (stride 2) and the outputs of the four stages (strides 4, 8, 16, 32): timm's
    /// `features_only` maps. `x` is N×3×H×W, already normalised.
    pub fn features(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(5);
        let h = self.stem.forward_relu(&channels_last(x)?)?;
        let mut h2 = h.f_max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)?;
        out.push(h);
        for stage in &self.stages {
            h2 = stage.forward(&h2)?;
            out.push(h2.shallow_clone());
        }
        Ok(out)
    }

    /// The last stage's output averaged over space: N×C (torchvision's `avgpool` + flatten).
    pub fn pooled(&self, x: &Tensor) -> Result<Tensor> {
        let last = self.features(x)?.pop().expect("five feature maps");
        Ok(last.f_mean_dim([2i64, 3].as_slice(), false, None)?)
    }
}
