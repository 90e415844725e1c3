//! `entropy` (NR): Shannon entropy in bits of the 256-bin histogram of the luma rounded to 0..255
//! (MATLAB's `entropy` on the uint8 gray image), as pyiqa computes it with eps 1e-8 inside the log.
use crate::error::Result;
use crate::image::colour::rgb_to_y;
use crate::model::{MetricSpec, Mode, Model};
use std::sync::Arc;
use tch::{Kind, Tensor};

pub const METRICS: &[MetricSpec] =
    &[MetricSpec::new("entropy", Mode::NoReference, false, (0.0, 8.0), |_| Ok(Arc::new(Entropy)))];

const BINS: i64 = 256;
const EPS: f64 = 1e-8;

pub struct Entropy;

impl Model for Entropy {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let n = dist.size()[0];
        let levels = rgb_to_y(dist, 255.0)?.f_to_kind(Kind::Int64)?.f_reshape([n, -1])?;
        // One bincount for the whole batch: image i's values are offset into bins [256·i, 256·(i+1)).
        let offsets = Tensor::f_arange_start_step(0, n * BINS, BINS, (Kind::Int64, dist.device()))?.f_unsqueeze(1)?;
        let counts = levels.f_add(&offsets)?.f_reshape([-1])?.f_bincount(None::<Tensor>, n * BINS)?;
        let hist = counts.f_reshape([n, BINS])?.f_to_kind(Kind::Double)?;
        let p = hist.f_div(&hist.f_sum_dim_intlist(1, true, None)?)?;
        Ok(p.f_mul(&p.f_add_scalar(EPS)?.f_log2()?)?.f_sum_dim_intlist(1, false, None)?.f_neg()?)
    }
}
