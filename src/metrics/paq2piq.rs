//! PaQ-2-PiQ (Ying et al. 2020) as pyiqa 0.1.16 runs it, image score only: a ResNet-18 body on the image in
//! [0,1] (no normalisation), torchvision's RoIPool of the whole-image box into 2×2 bins at stride 32, the
//! maximum and the mean of the four bins side by side, and a head of BatchNorm, linear (1024 → 512), ReLU,
//! BatchNorm and linear (512 → 1).
use crate::error::Result;
use crate::model::{MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::Placement;
use crate::nn::layers::{BatchNorm1d, Checkpoint, Linear};
use crate::nn::resnet::{Depth, Layout, ResNet};
use crate::weights::{self, files};
use std::sync::Arc;
use tch::{Kind, Tensor};

pub const METRICS: &[MetricSpec] = &[MetricSpec::new("paq2piq", Mode::NoReference, false, (0.0, 100.0), build)
    .weights(&[&files::PAQ2PIQ_ROIPOOL])
    .reduced_precision()];

fn build(key: &ModelKey) -> Result<Arc<dyn Model>> {
    let place = Placement::new(key.device, key.precision);
    let file = &files::PAQ2PIQ_ROIPOOL;
    // A plain state dict (pyiqa loads it with no wrapper key).
    let ck = Checkpoint::unwrap(file.official_name, weights::load(file, &[])?, None);
    Ok(Arc::new(Paq2piq {
        body: ResNet::load(&ck, "body.", Layout::Sequential, Depth::R18, place)?,
        bn1: BatchNorm1d::load(&ck, "head.2", 1024, place)?,
        fc1: Linear::load(&ck, "head.4", (1024, 512), true, place)?,
        bn2: BatchNorm1d::load(&ck, "head.6", 512, place)?,
        fc2: Linear::load(&ck, "head.8", (512, 1), true, place)?,
    }))
}

struct Paq2piq {
    body: ResNet,
    bn1: BatchNorm1d,
    fc1: Linear,
    bn2: BatchNorm1d,
    fc2: Linear,
}

/// The [start, end) rows (or columns) of RoIPool's two bins over a box of `side` input pixels on a feature map
/// of `features` rows at `1/32` scale: the box ends at round(side/32) (half away from zero), spans that + 1
/// cells, and each bin runs from ⌊i·span/2⌋ to ⌈(i+1)·span/2⌉, clipped to the map.
fn roi_bins(side: i64, features: i64) -> [(i64, i64); 2] {
    let end = (side as f64 * (1.0 / 32.0)).round() as i64;
    let bin = (end + 1).max(1) as f32 / 2.0;
    let clip = |v: i64| v.clamp(0, features);
    [0, 1].map(|i| (clip((i as f32 * bin).floor() as i64), clip(((i + 1) as f32 * bin).ceil() as i64)))
}

impl Model for Paq2piq {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let (height, width) = (dist.size()[2], dist.size()[3]);
        let feats = self.body.features(dist)?.pop().expect("five feature maps");
        let (fh, fw) = (feats.size()[2], feats.size()[3]);
        let mut bins = Vec::with_capacity(4);
        for (h0, h1) in roi_bins(height, fh) {
            for (w0, w1) in roi_bins(width, fw) {
                bins.push(if h1 <= h0 || w1 <= w0 {
                    // An empty bin is 0 in RoIPool.
                    Tensor::f_zeros([feats.size()[0], feats.size()[1]], (feats.kind(), feats.device()))?
                } else {
                    feats.f_narrow(2, h0, h1 - h0)?.f_narrow(3, w0, w1 - w0)?.f_amax([2i64, 3].as_slice(), false)?
                });
            }
        }
        let bins = Tensor::f_stack(&bins, 2)?;
        let (max, _) = bins.f_max_dim(2, false)?;
        let mean = bins.f_mean_dim([2i64].as_slice(), false, None)?;
        let h = self.bn1.forward(&Tensor::f_cat(&[max, mean], 1)?)?;
        let mut h = self.fc1.forward(&h)?;
        let _ = h.f_relu_()?;
        let h = self.bn2.forward(&h)?;
        Ok(self.fc2.forward(&h)?.f_to_kind(Kind::Float)?.f_view([-1])?)
    }
}
