//! MATLAB's `imresize` with the bicubic kernel (antialiased when shrinking), as pyiqa 0.1.16's
//! `matlab_utils.resize` computes it: one dimension at a time (height, then width), each output sample a
//! weighted sum of `kernel_size` input samples found by index (MATLAB's 'symmetric' padding, where the edge
//! sample is repeated), in float32 whatever the input's dtype — pyiqa casts every input to float32 (its dtype
//! check is always true) and casts the result back. The weights and the gather/multiply/sum are the same
//! tensor ops pyiqa runs, so the results are those of pyiqa bit for bit on the CPU.
use crate::error::{Error, Result};
use tch::{Device, Kind, Tensor};

/// Bicubic kernel of Keys with a = −0.5 (MATLAB's `cubic`), evaluated elementwise in the tensor's dtype.
fn cubic(x: &Tensor) -> Result<Tensor> {
    const A: f64 = -0.5;
    let ax = x.f_abs()?;
    let ax2 = ax.f_mul(&ax)?;
    let ax3 = ax.f_mul(&ax2)?;
    let range_01 = ax.f_le(1.0)?.f_to_kind(x.kind())?;
    let range_12 = ax.f_gt(1.0)?.f_logical_and(&ax.f_le(2.0)?)?.f_to_kind(x.kind())?;
    let inner = ax3.f_mul_scalar(A + 2.0)?.f_sub(&ax2.f_mul_scalar(A + 3.0)?)?.f_add_scalar(1.0)?.f_mul(&range_01)?;
    let outer = ax3
        .f_mul_scalar(A)?
        .f_sub(&ax2.f_mul_scalar(5.0 * A)?)?
        .f_add(&ax.f_mul_scalar(8.0 * A)?)?
        .f_sub_scalar(4.0 * A)?
        .f_mul(&range_12)?;
    Ok(inner.f_add(&outer)?)
}

/// Where each output sample along one dimension reads from: for `size` outputs from `input` samples at
/// `scale`, the (kernel_size × size) float32 weights and the (kernel_size·size) input indices, k-major.
fn contributions(input: i64, size: i64, scale: f64, antialiasing: bool) -> Result<(Tensor, Vec<i64>, i64)> {
    let cpu = (Kind::Float, Device::Cpu);
    let (factor, mut kernel_size) =
        if antialiasing && scale < 1.0 { (scale, (4.0 / scale).ceil() as i64) } else { (1.0, 4) };
    kernel_size += 2; // a margin on both sides
    let pos = Tensor::f_linspace(0.0, (size - 1) as f64, size, cpu)?
        .f_add_scalar(0.5)?
        .f_div_scalar(scale)?
        .f_sub_scalar(0.5)?;
    let base = pos.f_floor()?.f_sub_scalar((kernel_size / 2) as f64)?.f_add_scalar(1.0)?;
    let dist = pos.f_sub(&base)?;
    let offsets = Tensor::f_arange(kernel_size, cpu)?.f_unsqueeze(1)?;
    let mut weight = cubic(&dist.f_unsqueeze(0)?.f_sub(&offsets)?.f_mul_scalar(factor)?)?;
    weight = weight.f_div(&weight.f_sum_dim_intlist([0i64].as_slice(), true, None::<Kind>)?)?;

    let base: Vec<i64> = Vec::<f32>::try_from(&base)?.into_iter().map(|b| b as i64).collect();
    let r_min = *base.iter().min().unwrap_or(&0);
    let pad_pre = if r_min <= 0 { -r_min } else { 0 };
    // Index of the input sample at padded position p: the edge sample is mirrored including itself.
    let source = |p: i64| -> Result<i64> {
        let s = p - pad_pre;
        let s = if s < 0 {
            -s - 1
        } else if s >= input {
            2 * input - 1 - s
        } else {
            s
        };
        if (0..input).contains(&s) {
            Ok(s)
        } else {
            Err(Error::shape(format!("imresize: {input} samples are too few to resize to {size}")))
        }
    };
    let mut index = Vec::with_capacity((kernel_size * size) as usize);
    for k in 0..kernel_size {
        for b in &base {
            index.push(source(b + pad_pre + k)?);
        }
    }
    Ok((weight, index, kernel_size))
}

/// Resizes dimension `dim` (2: height, 3: width) of a float32 B×1×H×W tensor to `size` samples.
fn resize_1d(x: &Tensor, dim: i64, size: i64, scale: f64, antialiasing: bool) -> Result<Tensor> {
    if scale == 1.0 {
        return Ok(x.shallow_clone());
    }
    let (b, _, h, w) = x.size4()?;
    let input = if dim == 2 { h } else { w };
    let (weight, index, k) = contributions(input, size, scale, antialiasing)?;
    let device = x.device();
    let weight = weight.f_to_device(device)?;
    let index = Tensor::f_from_slice(&index)?.f_to_device(device)?;
    let gathered = x.f_index_select(dim, &index)?;
    let (sample, weight) = if dim == 2 {
        (gathered.f_view([b, k, size, w])?, weight.f_view([1, k, size, 1])?)
    } else {
        let s = gathered.f_view([b, h, k, size])?.f_permute([0, 2, 1, 3])?.f_contiguous()?;
        (s, weight.f_view([1, k, 1, size])?)
    };
    Ok(sample.f_mul(&weight)?.f_sum_dim_intlist([1i64].as_slice(), true, None::<Kind>)?)
}

/// `imresize(x, [out_h out_w])` (bicubic) of every channel of an N×C×H×W tensor; computed in float32,
/// returned in `x`'s dtype.
pub fn imresize_to(x: &Tensor, out_h: i64, out_w: i64, antialiasing: bool) -> Result<Tensor> {
    let (_, _, h, w) = x.size4()?;
    resize(x, (out_h, out_w), (out_h as f64 / h as f64, out_w as f64 / w as f64), antialiasing)
}

/// `imresize(x, scale)` (bicubic): output sides are ceil(side·scale), as in MATLAB.
pub fn imresize_scale(x: &Tensor, scale: f64, antialiasing: bool) -> Result<Tensor> {
    let (_, _, h, w) = x.size4()?;
    let sizes = ((h as f64 * scale).ceil() as i64, (w as f64 * scale).ceil() as i64);
    resize(x, sizes, (scale, scale), antialiasing)
}

fn resize(x: &Tensor, sizes: (i64, i64), scales: (f64, f64), antialiasing: bool) -> Result<Tensor> {
    let (n, c, h, w) = x.size4()?;
    let kind = x.kind();
    let planes = x.f_reshape([n * c, 1, h, w])?.f_to_kind(Kind::Float)?;
    let y = resize_1d(&planes, 2, sizes.0, scales.0, antialiasing)?;
    let y = resize_1d(&y, 3, sizes.1, scales.1, antialiasing)?;
    Ok(y.f_reshape([n, c, sizes.0, sizes.1])?.f_to_kind(kind)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(&t.f_flatten(0, -1).unwrap()).unwrap()
    }

    /// Values of pyiqa 0.1.16's `imresize` (float32, bit for bit) on small ramps: shrinking to a size, by 0.5,
    /// and by 0.5 with odd sides (outputs ceil(side/2)).
    #[test]
    fn matches_pyiqa_on_ramps() {
        let ramp = |h: i64, w: i64| Tensor::f_arange(h * w, (Kind::Float, Device::Cpu)).unwrap().view([1, 1, h, w]);
        let sized = imresize_to(&ramp(4, 4), 3, 3, true).unwrap();
        assert_eq!(
            values(&sized),
            [0.7505518, 2.1004415, 3.4503307, 6.1501102, 7.5000005, 8.849889, 11.549667, 12.899557, 14.249447]
        );
        assert_eq!(
            values(&imresize_scale(&ramp(4, 4), 0.5, true).unwrap()),
            [2.3046875, 4.3828125, 10.6171875, 12.6953125]
        );
        let odd = imresize_scale(&ramp(5, 7), 0.5, true).unwrap();
        assert_eq!(odd.size(), [1, 1, 3, 4]);
        assert_eq!(
            values(&odd),
            [
                3.59375, 5.6328125, 7.7148438, 9.128906, 18.359375, 20.398438, 22.480469, 23.894531, 28.339844,
                30.378906, 32.460938, 33.875
            ]
        );
    }

    /// Float64 input is resized in float32 (as pyiqa does) and returned as float64; batches and channels are
    /// independent planes.
    #[test]
    fn keeps_dtype_and_planes() {
        let x = Tensor::f_rand([2, 3, 9, 11], (Kind::Double, Device::Cpu)).unwrap();
        let y = imresize_scale(&x, 0.5, true).unwrap();
        assert_eq!((y.kind(), y.size()), (Kind::Double, vec![2, 3, 5, 6]));
        let single = imresize_scale(&x.narrow(0, 1, 1).narrow(1, 2, 1), 0.5, true).unwrap();
        assert!(y.narrow(0, 1, 1).narrow(1, 2, 1).equal(&single));
    }
}
