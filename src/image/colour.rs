//! Colour conversions as tensor ops on N×3×H×W batches, with pyiqa's coefficients and operation order.
use crate::error::Result;
use crate::tensor::{cpu_slice, FreshTensor};
use tch::{Device, Kind, Tensor};

/// RGB → YIQ matrix (rows: Y, I, Q), the conversion pyiqa's `to_y_channel` uses by default.
const RGB_TO_YIQ: [f32; 9] = [0.299, 0.587, 0.114, 0.5959, -0.2746, -0.3213, 0.2115, -0.5227, 0.3112];

/// One pixel's luma in float32, (r·kr + g·kg) + b·kb without fused multiply-adds: what libtorch's (MKL's) YIQ
/// matrix product computes for float32, bit for bit (tested below on all 2²⁴ 8-bit colours and random floats).
#[inline]
pub fn luma(r: f32, g: f32, b: f32) -> f32 {
    let [kr, kg, kb] = [RGB_TO_YIQ[0], RGB_TO_YIQ[1], RGB_TO_YIQ[2]];
    r * kr + g * kg + b * kb
}

/// Luma (the Y of YIQ) of an RGB batch, as N×1×H×W, scaled to `out_range`; rounded to integers when
/// `out_range >= 255`, which makes the values those of a MATLAB uint8 image.
/// Computed as pyiqa does, so that values on a rounding boundary fall the same way: float32 on the CPU in
/// [`rgb_to_y_cpu`], everything else as the full 3×3 matrix product in the input's dtype.
pub fn rgb_to_y(rgb: &Tensor, out_range: f64) -> Result<Tensor> {
    if rgb.device() == Device::Cpu && rgb.kind() == Kind::Float {
        rgb_to_y_cpu(rgb, out_range)
    } else {
        rgb_to_y_matmul(rgb, out_range)
    }
}

/// pyiqa's conversion: the 3×3 YIQ product, its Y plane kept.
fn rgb_to_y_matmul(rgb: &Tensor, out_range: f64) -> Result<Tensor> {
    let weights =
        Tensor::f_from_slice(&RGB_TO_YIQ)?.f_view([3, 3])?.f_tr()?.f_to_device(rgb.device())?.f_to_kind(rgb.kind())?;
    let yiq = rgb.f_permute([0, 2, 3, 1])?.f_matmul(&weights)?.f_permute([0, 3, 1, 2])?;
    let y = yiq.f_narrow(1, 0, 1)?.f_mul_scalar(out_range)?;
    Ok(if out_range >= 255.0 { y.f_round()? } else { y })
}

/// [`rgb_to_y_matmul`] for a float32 CPU batch in one pass of [`luma`]; the product, which also computes I and
/// Q, was a third of GMSD's time.
fn rgb_to_y_cpu(rgb: &Tensor, out_range: f64) -> Result<Tensor> {
    let (n, c, h, w) = rgb.size4()?;
    if c != 3 {
        return rgb_to_y_matmul(rgb, out_range);
    }
    let rgb = rgb.f_contiguous()?;
    let plane = (h * w) as usize;
    let input = cpu_slice::<f32>(&rgb)?;
    let mut out = FreshTensor::<f32>::empty(&[n, 1, h, w])?;
    let output = out.as_mut_slice();
    let scale = out_range as f32;
    let round = out_range >= 255.0;
    for (planes, y_plane) in input.chunks_exact(3 * plane).zip(output.chunks_exact_mut(plane)) {
        let (r, gb) = planes.split_at(plane);
        let (g, b) = gb.split_at(plane);
        for (((y, &r), &g), &b) in y_plane.iter_mut().zip(r).zip(g).zip(b) {
            let v = luma(r, g, b) * scale;
            *y = if round { round_ties_even(v) } else { v };
        }
    }
    Ok(out.into_tensor())
}

/// `f32::round_ties_even` (torch.round: halves to even) without the call to libm's `rintf` that it compiles
/// to on baseline x86-64 (a quarter of GMSD's luma pass): below 2^23, adding and subtracting 2^23 rounds to an
/// integer in the default rounding mode; larger values, infinities and NaN are returned as they are (they are
/// integers already or stay what they are). Tested equal on every float32 bit pattern.
#[inline(always)]
fn round_ties_even(v: f32) -> f32 {
    const TWO_23: f32 = 8_388_608.0;
    if v.abs() < TWO_23 {
        ((v.abs() + TWO_23) - TWO_23).copysign(v)
    } else {
        v
    }
}

/// pyiqa's `preprocess_rgb`: luma or all channels, scaled to `data_range` (rounded when 255), then `kind`.
pub fn preprocess(rgb: &Tensor, luma_only: bool, data_range: f64, kind: Kind) -> Result<Tensor> {
    let x = if luma_only {
        rgb_to_y(rgb, data_range)?
    } else {
        let x = rgb.f_mul_scalar(data_range)?;
        if data_range == 255.0 {
            x.f_round()?
        } else {
            x
        }
    };
    Ok(x.f_to_kind(kind)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every float32 bit pattern rounds as `f32::round_ties_even` does (NaN payloads aside: NaN stays NaN).
    #[test]
    fn inline_rounding_equals_round_ties_even() {
        let mismatches = (0..=u32::MAX)
            .map(f32::from_bits)
            .filter(|v| {
                let (a, b) = (round_ties_even(*v), v.round_ties_even());
                !(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()))
            })
            .count();
        assert_eq!(mismatches, 0);
    }

    fn assert_same_luma(rgb: &Tensor, what: &str) {
        for range in [1.0, 255.0] {
            let fast = Vec::<f32>::try_from(rgb_to_y_cpu(rgb, range).unwrap().flatten(0, -1)).unwrap();
            let product = Vec::<f32>::try_from(rgb_to_y_matmul(rgb, range).unwrap().flatten(0, -1)).unwrap();
            assert_eq!(fast.len(), product.len());
            let differing = fast.iter().zip(&product).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
            assert_eq!(differing, 0, "{what}, range {range}: {differing} of {} values differ", fast.len());
        }
    }

    /// The one-pass luma equals pyiqa's matrix product bit for bit: every 8-bit colour (one 4096×4096 image),
    /// random floats in [0,1] in a batch of 2, and sizes that exercise the product's edge cases.
    #[test]
    fn cpu_luma_equals_matrix_product() {
        let levels = Tensor::arange(256, (Kind::Float, Device::Cpu)) / 255.0;
        let r = levels.view([256, 1, 1]).expand([256, 256, 256], false).reshape([-1]);
        let g = levels.view([1, 256, 1]).expand([256, 256, 256], false).reshape([-1]);
        let b = levels.view([1, 1, 256]).expand([256, 256, 256], false).reshape([-1]);
        let every_colour = Tensor::stack(&[r, g, b], 0).view([1, 3, 4096, 4096]);
        assert_same_luma(&every_colour, "every 8-bit colour");
        tch::manual_seed(3);
        for (n, h, w) in [(2, 301, 257), (1, 1, 1), (3, 7, 5)] {
            assert_same_luma(&Tensor::rand([n, 3, h, w], (Kind::Float, Device::Cpu)), &format!("random {n}x{h}x{w}"));
        }
    }
}
