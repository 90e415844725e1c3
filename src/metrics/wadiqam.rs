//! WaDIQaM (Bosse et al. 2018) as pyiqa 0.1.16 runs it, full-reference (`wadiqam_fr`, trained on KADID) and
//! no-reference (`wadiqam_nr`, KonIQ): the image in [0,1] cut into non-overlapping 32×32 patches at rows and
//! columns 0, 32, … below side − 32 (pyiqa's loop, which leaves out a last patch that would end exactly at the
//! border), each through ten 3×3 conv+ReLU layers with 2×2 max-pooling after every second one (512 features;
//! FR concatenates reference, distorted and their difference), and two heads per patch: a quality and a
//! ReLU weight (plus 1e-8). The score is the weighted mean of the patch qualities.
use crate::error::Result;
use crate::model::{MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::{channels_last, Placement};
use crate::nn::layers::{Checkpoint, Conv2d, Linear};
use crate::weights::{self, files, WeightFile};
use std::sync::Arc;
use tch::{Kind, Tensor};

pub const METRICS: &[MetricSpec] = &[
    MetricSpec::new("wadiqam_fr", Mode::FullReference, false, (-1.0, 0.1), build_fr)
        .min_size(PATCH as u32 + 1, PATCH as u32 + 1)
        .weights(&[&files::WADIQAM_FR_KADID])
        .reduced_precision(),
    MetricSpec::new("wadiqam_nr", Mode::NoReference, false, (-1.0, 0.1), build_nr)
        .min_size(PATCH as u32 + 1, PATCH as u32 + 1)
        .weights(&[&files::WADIQAM_NR_KONIQ])
        .reduced_precision(),
];

const PATCH: i64 = 32;
const FEATURES: i64 = 512;
/// Patches through the network at once: bounds the activations (32 channels of 32×32 floats per patch).
const PATCH_CHUNK: i64 = 512;
/// pyiqa adds it to every patch weight.
const WEIGHT_EPS: f64 = 1e-8;

fn build_fr(key: &ModelKey) -> Result<Arc<dyn Model>> {
    build(key, &files::WADIQAM_FR_KADID, true)
}

fn build_nr(key: &ModelKey) -> Result<Arc<dyn Model>> {
    build(key, &files::WADIQAM_NR_KONIQ, false)
}

fn build(key: &ModelKey, file: &WeightFile, full_reference: bool) -> Result<Arc<dyn Model>> {
    let place = Placement::new(key.device, key.precision);
    let ck = Checkpoint::unwrap(file.official_name, weights::load(file, &[])?, Some("params"));
    // torchvision's numbering: conv at even indices, ReLU after each, a pool after every second conv.
    let widths = [32, 32, 64, 64, 128, 128, 256, 256, 512, 512];
    let mut convs = Vec::with_capacity(widths.len());
    let (mut index, mut cin) = (0, 3);
    for (i, &cout) in widths.iter().enumerate() {
        convs.push(Conv2d::load(&ck, &format!("features.{index}"), (cin, cout, 3), true, 1, 1, place)?);
        index += if i % 2 == 1 { 3 } else { 2 };
        cin = cout;
    }
    let fc_in = if full_reference { 3 * FEATURES } else { FEATURES };
    let head = |name: &str| -> Result<[Linear; 2]> {
        Ok([
            Linear::load(&ck, &format!("{name}.0"), (fc_in, 512), true, place)?,
            Linear::load(&ck, &format!("{name}.3"), (512, 1), true, place)?,
        ])
    };
    Ok(Arc::new(Wadiqam { convs, quality: head("fc_q")?, weight: head("fc_w")? }))
}

struct Wadiqam {
    convs: Vec<Conv2d>,
    quality: [Linear; 2],
    weight: [Linear; 2],
}

/// The patches of N×3×H×W, image by image and row-major within an image: (N·rows·cols)×3×32×32.
fn patches(x: &Tensor) -> Result<(Tensor, i64)> {
    let (n, c, h, w) = x.size4()?;
    let (rows, cols) = ((h - 1) / PATCH, (w - 1) / PATCH);
    let p = x
        .f_narrow(2, 0, rows * PATCH)?
        .f_narrow(3, 0, cols * PATCH)?
        .f_reshape([n, c, rows, PATCH, cols, PATCH])?
        .f_permute([0, 2, 4, 1, 3, 5])?
        .f_reshape([n * rows * cols, c, PATCH, PATCH])?;
    Ok((p, rows * cols))
}

impl Wadiqam {
    /// 512 features per patch: P×512.
    fn features(&self, patches: &Tensor) -> Result<Tensor> {
        let total = patches.size()[0];
        let mut out = Vec::new();
        for start in (0..total).step_by(PATCH_CHUNK as usize) {
            let mut h = channels_last(&patches.f_narrow(0, start, PATCH_CHUNK.min(total - start))?)?;
            for (i, conv) in self.convs.iter().enumerate() {
                h = conv.forward_relu(&h)?;
                if i % 2 == 1 {
                    h = h.f_max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)?;
                }
            }
            out.push(h.f_reshape([-1, FEATURES])?.f_to_kind(Kind::Float)?);
        }
        Ok(Tensor::f_cat(&out, 0)?)
    }
}

fn head(layers: &[Linear; 2], x: &Tensor) -> Result<Tensor> {
    let mut h = layers[0].forward(x)?;
    let _ = h.f_relu_()?;
    Ok(layers[1].forward(&h)?.f_to_kind(Kind::Float)?)
}

impl Model for Wadiqam {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let n = dist.size()[0];
        let (dist_patches, per_image) = patches(dist)?;
        let feat_dist = self.features(&dist_patches)?;
        let feat = match reference {
            Some(r) => {
                let feat_ref = self.features(&patches(r)?.0)?;
                let diff = feat_dist.f_sub(&feat_ref)?;
                Tensor::f_cat(&[feat_ref, feat_dist, diff], 1)?
            }
            None => feat_dist,
        };
        let quality = head(&self.quality, &feat)?.f_view([n, per_image])?;
        let mut weight = head(&self.weight, &feat)?;
        let _ = weight.f_relu_()?;
        let weight = weight.f_add_scalar(WEIGHT_EPS)?.f_view([n, per_image])?;
        let total = weight.f_sum_dim_intlist(1, false, None)?;
        Ok(quality.f_mul(&weight)?.f_sum_dim_intlist(1, false, None)?.f_div(&total)?)
    }
}
