//! Inception-ResNet-v2 (Szegedy et al. 2017) in timm's layout (`features_only`, as NIMA holds it under a prefix):
//! every convolution is `NAME.conv` + `NAME.bn` (BatchNorm ε 1e-3, folded) + ReLU. The stem (`conv2d_1a` ..
//! `conv2d_4a` with two 3×3/2 max-pools), `mixed_5b`, ten 35×35 residual blocks (`repeat`, scale 0.17),
//! `mixed_6a`, twenty 17×17 blocks (`repeat_1`, 0.10), `mixed_7a`, nine 8×8 blocks (`repeat_2`, 0.20), a last
//! one without ReLU (`block8`) and `conv2d_7b` (1536 channels at stride 32). Residual blocks add their
//! branches' 1×1 projection (`conv2d`, with a bias, no BatchNorm) times the scale to their input.
use crate::error::Result;
use crate::nn::backbones::{channels_last, Placement};
use crate::nn::layers::{Checkpoint, Conv2d};
use tch::Tensor;

const EPS: f64 = 1e-3;

/// `{p}.conv` + `{p}.bn` as one convolution (followed by ReLU when run).
struct Unit(Conv2d);

impl Unit {
    fn load(
        ck: &Checkpoint,
        p: &str,
        (cin, cout): (i64, i64),
        k: [i64; 2],
        stride: i64,
        pad: [i64; 2],
        place: Placement,
    ) -> Result<Self> {
        let (conv, bn) = (format!("{p}.conv"), format!("{p}.bn"));
        Ok(Unit(Conv2d::load_folded_rect(ck, (&conv, &bn, EPS), (cin, cout, k), stride, pad, place)?))
    }

    fn square(
        ck: &Checkpoint,
        p: &str,
        (cin, cout): (i64, i64),
        k: i64,
        stride: i64,
        pad: i64,
        place: Placement,
    ) -> Result<Self> {
        Self::load(ck, p, (cin, cout), [k, k], stride, [pad, pad], place)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.0.forward_relu(x)
    }
}

fn chain(units: &[Unit], x: &Tensor) -> Result<Tensor> {
    let mut h = x.shallow_clone();
    for u in units {
        h = u.forward(&h)?;
    }
    Ok(h)
}

fn max_pool(x: &Tensor) -> Result<Tensor> {
    Ok(x.f_max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false)?)
}

/// A residual block: branches concatenated, projected back by `conv2d`, scaled, added to the input.
struct Residual {
    branches: Vec<Vec<Unit>>,
    project: Conv2d,
    scale: f64,
    relu: bool,
}

impl Residual {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let outs = self.branches.iter().map(|b| chain(b, x)).collect::<Result<Vec<_>>>()?;
        let mut y = self.project.forward(&Tensor::f_cat(&outs, 1)?)?.f_mul_scalar(self.scale)?;
        let _ = y.f_add_(x)?;
        if self.relu {
            let _ = y.f_relu_()?;
        }
        Ok(y)
    }
}

pub struct InceptionResnetV2 {
    stem: [Unit; 5],
    mixed_5b: [Vec<Unit>; 4],
    repeat: Vec<Residual>,
    mixed_6a: [Vec<Unit>; 2],
    repeat_1: Vec<Residual>,
    mixed_7a: [Vec<Unit>; 3],
    repeat_2: Vec<Residual>,
    conv2d_7b: Unit,
}

impl InceptionResnetV2 {
    /// Channels of the last feature map.
    pub const CHANNELS: i64 = 1536;

    pub fn load(ck: &Checkpoint, prefix: &str, place: Placement) -> Result<Self> {
        let u = |name: &str, c: (i64, i64), k: i64, s: i64, p: i64| {
            Unit::square(ck, &format!("{prefix}{name}"), c, k, s, p, place)
        };
        let r = |name: &str, c: (i64, i64), k: [i64; 2], p: [i64; 2]| {
            Unit::load(ck, &format!("{prefix}{name}"), c, k, 1, p, place)
        };
        let stem = [
            u("conv2d_1a", (3, 32), 3, 2, 0)?,
            u("conv2d_2a", (32, 32), 3, 1, 0)?,
            u("conv2d_2b", (32, 64), 3, 1, 1)?,
            u("conv2d_3b", (64, 80), 1, 1, 0)?,
            u("conv2d_4a", (80, 192), 3, 1, 0)?,
        ];
        let mixed_5b = [
            vec![u("mixed_5b.branch0", (192, 96), 1, 1, 0)?],
            vec![u("mixed_5b.branch1.0", (192, 48), 1, 1, 0)?, u("mixed_5b.branch1.1", (48, 64), 5, 1, 2)?],
            vec![
                u("mixed_5b.branch2.0", (192, 64), 1, 1, 0)?,
                u("mixed_5b.branch2.1", (64, 96), 3, 1, 1)?,
                u("mixed_5b.branch2.2", (96, 96), 3, 1, 1)?,
            ],
            // After a 3×3 average pool (stride 1, padding 1, padding not counted).
            vec![u("mixed_5b.branch3.1", (192, 64), 1, 1, 0)?],
        ];
        let project = |name: String, cin: i64, cout: i64| {
            Conv2d::load(ck, &format!("{prefix}{name}"), (cin, cout, 1), true, 1, 0, place)
        };
        let repeat = (0..10)
            .map(|i| {
                let b = |s: &str| format!("repeat.{i}.{s}");
                Ok(Residual {
                    branches: vec![
                        vec![u(&b("branch0"), (320, 32), 1, 1, 0)?],
                        vec![u(&b("branch1.0"), (320, 32), 1, 1, 0)?, u(&b("branch1.1"), (32, 32), 3, 1, 1)?],
                        vec![
                            u(&b("branch2.0"), (320, 32), 1, 1, 0)?,
                            u(&b("branch2.1"), (32, 48), 3, 1, 1)?,
                            u(&b("branch2.2"), (48, 64), 3, 1, 1)?,
                        ],
                    ],
                    project: project(b("conv2d"), 128, 320)?,
                    scale: 0.17,
                    relu: true,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mixed_6a = [
            vec![u("mixed_6a.branch0", (320, 384), 3, 2, 0)?],
            vec![
                u("mixed_6a.branch1.0", (320, 256), 1, 1, 0)?,
                u("mixed_6a.branch1.1", (256, 256), 3, 1, 1)?,
                u("mixed_6a.branch1.2", (256, 384), 3, 2, 0)?,
            ],
        ];
        let repeat_1 = (0..20)
            .map(|i| {
                let b = |s: &str| format!("repeat_1.{i}.{s}");
                Ok(Residual {
                    branches: vec![
                        vec![u(&b("branch0"), (1088, 192), 1, 1, 0)?],
                        vec![
                            u(&b("branch1.0"), (1088, 128), 1, 1, 0)?,
                            r(&b("branch1.1"), (128, 160), [1, 7], [0, 3])?,
                            r(&b("branch1.2"), (160, 192), [7, 1], [3, 0])?,
                        ],
                    ],
                    project: project(b("conv2d"), 384, 1088)?,
                    scale: 0.10,
                    relu: true,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mixed_7a = [
            vec![u("mixed_7a.branch0.0", (1088, 256), 1, 1, 0)?, u("mixed_7a.branch0.1", (256, 384), 3, 2, 0)?],
            vec![u("mixed_7a.branch1.0", (1088, 256), 1, 1, 0)?, u("mixed_7a.branch1.1", (256, 288), 3, 2, 0)?],
            vec![
                u("mixed_7a.branch2.0", (1088, 256), 1, 1, 0)?,
                u("mixed_7a.branch2.1", (256, 288), 3, 1, 1)?,
                u("mixed_7a.branch2.2", (288, 320), 3, 2, 0)?,
            ],
        ];
        let block8 = |p: String, scale: f64, relu: bool| -> Result<Residual> {
            let b = |s: &str| format!("{p}.{s}");
            Ok(Residual {
                branches: vec![
                    vec![u(&b("branch0"), (2080, 192), 1, 1, 0)?],
                    vec![
                        u(&b("branch1.0"), (2080, 192), 1, 1, 0)?,
                        r(&b("branch1.1"), (192, 224), [1, 3], [0, 1])?,
                        r(&b("branch1.2"), (224, 256), [3, 1], [1, 0])?,
                    ],
                ],
                project: project(b("conv2d"), 448, 2080)?,
                scale,
                relu,
            })
        };
        let mut repeat_2 = (0..9).map(|i| block8(format!("repeat_2.{i}"), 0.20, true)).collect::<Result<Vec<_>>>()?;
        repeat_2.push(block8("block8".to_string(), 1.0, false)?);
        Ok(InceptionResnetV2 {
            stem,
            mixed_5b,
            repeat,
            mixed_6a,
            repeat_1,
            mixed_7a,
            repeat_2,
            conv2d_7b: u("conv2d_7b", (2080, Self::CHANNELS), 1, 1, 0)?,
        })
    }

    /// The last feature map (`conv2d_7b`), N×1536×h×w, of a normalised N×3×H×W image.
    pub fn last_features(&self, x: &Tensor) -> Result<Tensor> {
        let s = &self.stem;
        let h = s[2].forward(&s[1].forward(&s[0].forward(&channels_last(x)?)?)?)?;
        let h = s[4].forward(&s[3].forward(&max_pool(&h)?)?)?;
        let h = max_pool(&h)?;
        let pooled = h.f_avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None)?;
        let m = &self.mixed_5b;
        let mut h =
            Tensor::f_cat(&[chain(&m[0], &h)?, chain(&m[1], &h)?, chain(&m[2], &h)?, chain(&m[3], &pooled)?], 1)?;
        for block in &self.repeat {
            h = block.forward(&h)?;
        }
        let m = &self.mixed_6a;
        h = Tensor::f_cat(&[chain(&m[0], &h)?, chain(&m[1], &h)?, max_pool(&h)?], 1)?;
        for block in &self.repeat_1 {
            h = block.forward(&h)?;
        }
        let m = &self.mixed_7a;
        h = Tensor::f_cat(&[chain(&m[0], &h)?, chain(&m[1], &h)?, chain(&m[2], &h)?, max_pool(&h)?], 1)?;
        for block in &self.repeat_2 {
            h = block.forward(&h)?;
        }
        self.conv2d_7b.forward(&h)
    }
}
