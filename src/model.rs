//! What every metric shares: its self-description ([`MetricSpec`]), the [`Model`] it builds, and the
//! [`ModelKey`] under which built models are cached. A leaf of the crate: it knows no metric.
use crate::error::{Error, Result};
use crate::image::{Frame, Image};
use crate::runtime::Precision;
use crate::weights::WeightFile;
use std::sync::Arc;
use tch::{Device, Tensor};

/// Full-reference (dist + ref) or no-reference (dist only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Scores a distorted image against its reference.
    FullReference,
    /// Scores an image alone.
    NoReference,
}

/// Everything that selects a built model; each field is part of the cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelKey {
    /// The metric name, or the name of a shared part ("backbone/vgg16") or module file.
    pub name: String,
    pub device: Device,
    pub precision: Precision,
}

/// Builds the model of one metric.
pub type Builder = fn(&ModelKey) -> Result<Arc<dyn Model>>;

/// A built-in metric, described in one place: its metric file's `METRICS` list, gathered by the registry.
#[derive(Debug, Clone, Copy)]
pub struct MetricSpec {
    /// pyiqa's name.
    pub name: &'static str,
    pub mode: Mode,
    pub lower_better: bool,
    /// Rough score range as pyiqa states it; NaN where it states none.
    pub score_range: (f64, f64),
    pub build: Builder,
    /// Whether fp16/bf16 are honoured: only where they move scores by less than 1e-3 (the FR distances,
    /// BENCHMARKS.md) or 1e-2 of the range (the model zoo's networks, tests/zoo.rs).
    pub reduced_precision: bool,
    /// Smallest (height, width) the metric accepts; smaller images are a shape error naming it.
    pub min_size: (u32, u32),
    /// Largest image (pixels) the metric scores, and why, for metrics whose peak memory would otherwise grow
    /// without bound; larger images are a shape error naming the limit.
    pub max_pixels: Option<(u64, &'static str)>,
    /// The pretrained files its model loads (what `metric_status` reports on).
    pub weights: &'static [&'static WeightFile],
    /// Whether it scores an image against a caption (clipscore) rather than alone or against a reference.
    pub captioned: bool,
}

impl MetricSpec {
    /// A spec with the defaults most metrics share (fp32 only, any size of at least 1×1).
    pub const fn new(
        name: &'static str,
        mode: Mode,
        lower_better: bool,
        score_range: (f64, f64),
        build: Builder,
    ) -> MetricSpec {
        MetricSpec {
            name,
            mode,
            lower_better,
            score_range,
            build,
            reduced_precision: false,
            min_size: (1, 1),
            max_pixels: None,
            weights: &[],
            captioned: false,
        }
    }

    /// The same spec scoring images against captions ([`Model::forward_captioned`]).
    pub const fn captioned(mut self) -> MetricSpec {
        self.captioned = true;
        self
    }

    /// The same spec with a minimum size (height, width).
    pub const fn min_size(mut self, height: u32, width: u32) -> MetricSpec {
        self.min_size = (height, width);
        self
    }

    /// The same spec with a pixel limit and the reason for it.
    pub const fn max_pixels(mut self, pixels: u64, why: &'static str) -> MetricSpec {
        self.max_pixels = Some((pixels, why));
        self
    }

    /// The same spec with the pretrained files its model loads.
    pub const fn weights(mut self, files: &'static [&'static WeightFile]) -> MetricSpec {
        self.weights = files;
        self
    }

    /// The same spec honouring fp16/bf16.
    pub const fn reduced_precision(mut self) -> MetricSpec {
        self.reduced_precision = true;
        self
    }

    /// The precision the metric really runs in on `device` when `requested`: fp32 unless it honours reduced
    /// precision, and fp16 on the CPU (no faster than fp32 there) as fp32.
    pub fn effective_precision(&self, device: Device, requested: Precision) -> Precision {
        match (self.reduced_precision, requested, device) {
            (false, _, _) | (true, Precision::Fp16, Device::Cpu) => Precision::Fp32,
            (true, p, _) => p,
        }
    }
}

/// A built metric, shared between handles and threads through the model cache.
pub trait Model: Send + Sync {
    /// Scores a batch: `dist` (and `reference` for FR metrics) are N×3×H×W float32 in [0,1] on the model's
    /// device, of equal shapes. Returns N scores.
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor>;

    /// Scores a batch of images against one caption each (metrics whose spec is `captioned`); N scores.
    fn forward_captioned(&self, _dist: &Tensor, _captions: &[&str]) -> Result<Tensor> {
        Err(Error::invalid("takes no caption"))
    }

    /// Scores caller buffers directly on the CPU where that is cheaper than building tensors (PSNR: the
    /// conversion cost more than the metric). `None`: not supported for these images; `forward` is used.
    fn score_pixels(&self, _dists: &[Image<'_>], _refs: Option<&[Image<'_>]>) -> Option<Result<Vec<f64>>> {
        None
    }

    /// Scores video frames directly on the CPU where that is cheaper than converting them into tensors first
    /// (PSNR: writing and reading back the RGB planes cost more than the metric). The score is the one of the
    /// frames' RGB conversion, as through `forward`. `None`: not supported; the frames are converted.
    fn score_frames(&self, _dists: &[Frame<'_>], _refs: Option<&[Frame<'_>]>) -> Option<Result<Vec<f64>>> {
        None
    }

    /// Whether [`Model::prepare`] may keep work of the reference (then the reference is converted to a tensor
    /// for it).
    fn prepares_references(&self) -> bool {
        false
    }

    /// The reference's share of the work (a 1×3×H×W tensor as `forward` takes it), done once for many
    /// distorted images. `None` (the default): nothing is worth keeping, and each pair is scored as given.
    fn prepare(&self, _reference: &Tensor) -> Result<Option<Prepared>> {
        Ok(None)
    }

    /// `forward` of a batch against the reference that [`Model::prepare`] of this model prepared: the scores
    /// `forward` gives with that reference beside each image.
    fn forward_prepared(&self, _dist: &Tensor, _prepared: &Prepared) -> Result<Tensor> {
        Err(crate::error::Error::new(crate::error::ErrorKind::Runtime, "internal: this metric prepares nothing"))
    }

    /// [`Model::score_pixels`] against a prepared reference: caller buffers scored directly on the CPU where that
    /// is cheaper than building tensors. `None`: not supported for these images; `forward_prepared` is used.
    fn score_pixels_prepared(&self, _dists: &[Image<'_>], _prepared: &Prepared) -> Option<Result<Vec<f64>>> {
        None
    }

    /// The metric's per-pixel map, for metrics that define one.
    fn distance_map(&self) -> Option<&dyn DistanceMap> {
        None
    }
}

/// What [`Model::prepare`] keeps of a reference (a deep metric's backbone activations, SSIM's moments, MAD's
/// maps): only the kind of model
/// that made it reads it back.
pub struct Prepared(pub Box<dyn std::any::Any + Send + Sync>);

impl Prepared {
    /// The kept value as the type its model stored, or an internal error.
    pub fn get<T: 'static>(&self) -> Result<&T> {
        self.0.downcast_ref().ok_or_else(|| {
            crate::error::Error::new(
                crate::error::ErrorKind::Runtime,
                "internal: a reference prepared by another model",
            )
        })
    }
}

/// A capability of FR metrics that define a per-pixel map of a pair. Each metric says how its map relates to
/// its score (the LPIPS family: a distance, its mean close to the score; ssim: the SSIM index, its mean is the
/// score; psnr: the squared error, its mean is the MSE; gmsd: the gradient magnitude similarity, whose standard
/// deviation is the score).
pub trait DistanceMap {
    /// N×1×h×w for N×3×H×W inputs, (h, w) = [`DistanceMap::map_size`] of (H, W).
    fn map(&self, dist: &Tensor, reference: &Tensor) -> Result<Tensor>;

    /// The map's (height, width) for an image of (height, width): the image's own unless the metric filters
    /// without padding or downsamples first.
    fn map_size(&self, height: i64, width: i64) -> (i64, i64) {
        (height, width)
    }
}

/// The reference tensor of an FR metric (presence is checked by the API before any model runs).
pub fn require_ref(reference: Option<&Tensor>) -> Result<&Tensor> {
    reference.ok_or_else(|| crate::error::Error::invalid("full-reference metric called without a reference"))
}
