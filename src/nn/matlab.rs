//! MATLAB-compatible filtering pieces as tensor ops on N×C×H×W batches: `padarray(…, 'symmetric')` and
//! matlabPyrTools' `corrDn` (correlation with reflected borders, then downsampling), as the classical metrics
//! use them (pyiqa ports them the same way).
use crate::error::Result;
use tch::{Kind, Tensor};

/// Indices into `0..len` for `before` + `len` + `after` samples with symmetric borders (the edge sample is
/// repeated: `… 1 0 | 0 1 … len−1 | len−1 len−2 …`), folding again for pads longer than the signal.
fn symmetric_indices(len: i64, before: i64, after: i64) -> Vec<i64> {
    (-before..len + after)
        .map(|i| {
            let m = i.rem_euclid(2 * len);
            if m < len {
                m
            } else {
                2 * len - 1 - m
            }
        })
        .collect()
}

/// MATLAB's `padarray(x, …, 'symmetric')` on the last two dimensions, any pad length (`[left, right, top,
/// bottom]`, like `F.pad`).
pub fn pad_symmetric(x: &Tensor, [left, right, top, bottom]: [i64; 4]) -> Result<Tensor> {
    let (h, w) = (x.size()[2], x.size()[3]);
    let rows = Tensor::f_from_slice(&symmetric_indices(h, top, bottom))?.f_to_device(x.device())?;
    let cols = Tensor::f_from_slice(&symmetric_indices(w, left, right))?.f_to_device(x.device())?;
    Ok(x.f_index_select(2, &rows)?.f_index_select(3, &cols)?)
}

/// matlabPyrTools' `corrDn(x, filt, 'reflect1', step, start)` for odd square kernels: `x` padded by reflection
/// without repeating the edge sample ((k−1)/2 on each side, which needs sides longer than that), correlated
/// with `weight` (a conv2d weight, `groups` as in conv2d), and sampled at `start + i·step` for every position
/// inside the image: ⌈(H − start)/step⌉ × ⌈(W − start)/step⌉ outputs. The samples not kept are never
/// computed.
pub fn corr_dn(x: &Tensor, weight: &Tensor, groups: i64, step: i64, start: (i64, i64)) -> Result<Tensor> {
    let p = (weight.size()[2] - 1) / 2;
    let padded = x.f_pad([p, p, p, p], "reflect", None)?;
    let (hp, wp) = (padded.size()[2], padded.size()[3]);
    let shifted = padded.f_narrow(2, start.0, hp - start.0)?.f_narrow(3, start.1, wp - start.1)?;
    Ok(shifted.f_conv2d(weight, None::<&Tensor>, [step, step], [0, 0], [1, 1], groups)?)
}

/// A k×k kernel from its row-major taps (given in float64, stored as `kind`), as a 1×1×k×k conv weight.
pub fn kernel(taps: &[f64], kind: Kind) -> Result<Tensor> {
    let k = (taps.len() as f64).sqrt() as i64;
    assert_eq!((k * k) as usize, taps.len(), "kernel taps must be square");
    Ok(Tensor::f_from_slice(taps)?.f_to_kind(kind)?.f_view([1, 1, k, k])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_padding_repeats_the_edge_and_folds_long_pads() {
        assert_eq!(symmetric_indices(3, 2, 2), vec![1, 0, 0, 1, 2, 2, 1]);
        assert_eq!(symmetric_indices(1, 2, 2), vec![0; 5]);
        assert_eq!(symmetric_indices(2, 4, 0), vec![0, 1, 1, 0, 0, 1]);
    }

    #[test]
    fn corr_dn_keeps_the_samples_of_the_full_correlation() -> Result<()> {
        let x = Tensor::f_arange(7 * 8, (Kind::Double, tch::Device::Cpu))?.f_view([1, 1, 7, 8])?;
        let w = Tensor::f_arange(9, (Kind::Double, tch::Device::Cpu))?.f_view([1, 1, 3, 3])?;
        let full = corr_dn(&x, &w, 1, 1, (0, 0))?;
        let sampled = corr_dn(&x, &w, 1, 3, (1, 2))?;
        let want = full.f_slice(2, 1, 7, 3)?.f_slice(3, 2, 8, 3)?;
        assert_eq!(sampled.size(), vec![1, 1, 2, 2]);
        assert_eq!(f64::try_from(sampled.f_sub(&want)?.f_abs()?.f_max()?)?, 0.0);
        Ok(())
    }
}
