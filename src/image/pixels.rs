//! Raw pixel buffers and their conversion to a float tensor in one pass.
use crate::error::{Error, Result};
use crate::tensor::FreshTensor;
use half::f16;
use tch::{Device, Tensor};

/// Layout of one pixel in a caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// 8-bit R, G, B.
    Rgb8,
    /// 8-bit R, G, B, A (alpha ignored).
    Rgba8,
    /// 8-bit B, G, R.
    Bgr8,
    /// 8-bit B, G, R, A (alpha ignored).
    Bgra8,
    /// 8-bit gray, replicated to three channels.
    Gray8,
    /// Native-endian u16 per channel, full range 0..65535.
    Rgb16,
    /// Interleaved f32 in 0..1.
    RgbF32,
    /// Interleaved IEEE half in 0..1.
    RgbF16,
    /// f32 gray in 0..1.
    GrayF32,
    /// f32 in 0..1 as three planes, R then G then B, each `height` rows of `width` values with `stride` bytes
    /// from one row to the next (also from a plane's last row to the next plane's first): plane c starts
    /// c × height × stride bytes after the first. A contiguous N×3×H×W float32 tensor holds N such images.
    RgbF32Planar,
}

impl PixelFormat {
    /// Bytes one pixel takes.
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Gray8 => 1,
            PixelFormat::Rgb8 | PixelFormat::Bgr8 => 3,
            PixelFormat::Rgba8 | PixelFormat::Bgra8 | PixelFormat::GrayF32 | PixelFormat::RgbF32Planar => 4,
            PixelFormat::Rgb16 | PixelFormat::RgbF16 => 6,
            PixelFormat::RgbF32 => 12,
        }
    }

    /// Planes the buffer holds: the rows of a planar format repeat once per channel.
    pub(crate) fn planes(self) -> usize {
        if self == PixelFormat::RgbF32Planar {
            3
        } else {
            1
        }
    }
}

/// A borrowed image: `height` rows of `width` pixels, each row starting `stride` bytes after the previous
/// (`3 × height` rows for [`PixelFormat::RgbF32Planar`]).
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    data: &'a [u8],
    width: u32,
    height: u32,
    stride: usize,
    format: PixelFormat,
}

/// Pixel values of float formats may stray this far outside [0,1] (pyiqa's own input check uses 1e-6).
const FLOAT_RANGE_SLACK: f32 = 1e-6;

impl<'a> Image<'a> {
    /// Bytes a buffer must hold for these dimensions (`stride` 0 = tightly packed), or why they are invalid.
    pub fn required_len(width: u32, height: u32, stride: usize, format: PixelFormat) -> Result<usize> {
        if width == 0 || height == 0 {
            return Err(Error::invalid(format!("image size {width}x{height} is empty")));
        }
        let row = (width as usize)
            .checked_mul(format.bytes_per_pixel())
            .ok_or_else(|| Error::invalid(format!("image width {width} overflows a row size")))?;
        let stride = if stride == 0 { row } else { stride };
        if stride < row {
            return Err(Error::invalid(format!(
                "stride {stride} bytes is shorter than one row ({width} pixels of {format:?} = {row} bytes)"
            )));
        }
        (height as usize)
            .checked_mul(format.planes())
            .and_then(|rows| (rows - 1).checked_mul(stride))
            .and_then(|n| n.checked_add(row))
            .ok_or_else(|| Error::invalid(format!("image of {width}x{height} with stride {stride} overflows memory")))
    }

    /// Checks sizes and stride against the buffer.
    pub fn new(data: &'a [u8], width: u32, height: u32, stride: usize, format: PixelFormat) -> Result<Self> {
        let needed = Self::required_len(width, height, stride, format)?;
        if data.len() < needed {
            return Err(Error::invalid(format!(
                "pixel buffer of {} bytes is too small for a {width}x{height} {format:?} image (needs {needed})",
                data.len()
            )));
        }
        let stride = if stride == 0 { width as usize * format.bytes_per_pixel() } else { stride };
        Ok(Image { data, width, height, stride, format })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// Layout of each pixel.
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// For 8-bit formats: bytes per pixel and the offsets of R, G and B within a pixel (gray: all 0), for
    /// metrics that read such buffers directly.
    pub(crate) fn rgb8_layout(&self) -> Option<(usize, [usize; 3])> {
        match self.format {
            PixelFormat::Rgb8 => Some((3, [0, 1, 2])),
            PixelFormat::Rgba8 => Some((4, [0, 1, 2])),
            PixelFormat::Bgr8 => Some((3, [2, 1, 0])),
            PixelFormat::Bgra8 => Some((4, [2, 1, 0])),
            PixelFormat::Gray8 => Some((1, [0, 0, 0])),
            _ => None,
        }
    }

    /// For float32 formats: row `y`'s channel values (3 per pixel for RGB, 1 for gray), checked as the
    /// conversion to tensors checks them, and the channels per pixel. The values are the buffer itself when it
    /// is aligned for f32, else copied into `scratch`. `None` for other formats.
    pub(crate) fn float_row<'s>(&'s self, y: usize, scratch: &'s mut Vec<f32>) -> Option<Result<(&'s [f32], usize)>> {
        let channels = match self.format {
            PixelFormat::RgbF32 => 3,
            PixelFormat::GrayF32 => 1,
            _ => return None,
        };
        let values = f32_values(self.row(y), scratch);
        if !all_in_range(values) {
            for (x, px) in values.chunks_exact(channels).enumerate() {
                let rgb = if channels == 3 { [px[0], px[1], px[2]] } else { [px[0]; 3] };
                if let Err(e) = check_float_pixel(x, y, rgb) {
                    return Some(Err(e));
                }
            }
        }
        Some(Ok((values, channels)))
    }

    /// Row `y`'s bytes (width × bytes per pixel, no padding); for a planar format, rows `height..` are the
    /// following planes'.
    pub(crate) fn row(&self, y: usize) -> &'a [u8] {
        let start = y * self.stride;
        &self.data[start..start + self.width as usize * self.format.bytes_per_pixel()]
    }

    /// Every row's bytes as one slice, where the rows are packed (no padding between them).
    pub(crate) fn packed_bytes(&self) -> Option<&'a [u8]> {
        let row = self.width as usize * self.format.bytes_per_pixel();
        let len = row * self.height as usize;
        (self.stride == row || self.height <= 1).then(|| &self.data[..len])
    }

    /// Writes this image as three planes (R, G, B) of width×height f32 values in [0,1].
    /// Gray is broadcast to three channels, as PIL's RGB conversion (which pyiqa uses) does.
    fn write_planes(&self, planes: &mut [f32]) -> Result<()> {
        let (w, h) = (self.width as usize, self.height as usize);
        let plane = w * h;
        let (r_plane, rest) = planes.split_at_mut(plane);
        let (g_plane, b_plane) = rest.split_at_mut(plane);
        // Division, not multiplication by 1/255: it is what torchvision's to_tensor does, bit for bit.
        let u8_lut: [f32; 256] = std::array::from_fn(|v| v as f32 / 255.0);
        let mut scratch = Vec::new();
        for y in 0..h {
            let row = self.row(y);
            let out = y * w..(y + 1) * w;
            let (r, g, b) = (&mut r_plane[out.clone()], &mut g_plane[out.clone()], &mut b_plane[out]);
            if let Some((step, [ri, gi, bi])) = self.rgb8_layout() {
                for (x, px) in row.chunks_exact(step).enumerate() {
                    (r[x], g[x], b[x]) = (u8_lut[px[ri] as usize], u8_lut[px[gi] as usize], u8_lut[px[bi] as usize]);
                }
            } else if self.format == PixelFormat::RgbF32Planar {
                for (c, out) in [r, g, b].into_iter().enumerate() {
                    let values = f32_values(self.row(c * h + y), &mut scratch);
                    if !all_in_range(values) {
                        for (x, &v) in values.iter().enumerate() {
                            let mut rgb = [0.0; 3];
                            rgb[c] = v;
                            check_float_pixel(x, y, rgb)?;
                        }
                    }
                    out.copy_from_slice(values);
                }
            } else if let Some(values) = self.float_row(y, &mut scratch) {
                let (values, channels) = values?;
                for (x, px) in values.chunks_exact(channels).enumerate() {
                    (r[x], g[x], b[x]) = if channels == 3 { (px[0], px[1], px[2]) } else { (px[0], px[0], px[0]) };
                }
            } else {
                match self.format {
                    PixelFormat::Rgb16 => {
                        for (x, px) in row.chunks_exact(6).enumerate() {
                            let c = |i: usize| u16::from_ne_bytes([px[2 * i], px[2 * i + 1]]) as f32 / 65535.0;
                            (r[x], g[x], b[x]) = (c(0), c(1), c(2));
                        }
                    }
                    PixelFormat::RgbF16 => {
                        for (x, px) in row.chunks_exact(6).enumerate() {
                            let c = |i: usize| f16::from_ne_bytes([px[2 * i], px[2 * i + 1]]).to_f32();
                            (r[x], g[x], b[x]) = (c(0), c(1), c(2));
                            check_float_pixel(x, y, [r[x], g[x], b[x]])?;
                        }
                    }
                    // Read above.
                    PixelFormat::Rgb8
                    | PixelFormat::Rgba8
                    | PixelFormat::Bgr8
                    | PixelFormat::Bgra8
                    | PixelFormat::Gray8
                    | PixelFormat::RgbF32
                    | PixelFormat::GrayF32
                    | PixelFormat::RgbF32Planar => {}
                }
            }
        }
        Ok(())
    }
}

/// A row's f32 values: the bytes themselves when they are aligned for f32, else copied into `scratch`.
fn f32_values<'s>(bytes: &'s [u8], scratch: &'s mut Vec<f32>) -> &'s [f32] {
    // SAFETY: every bit pattern is a valid f32; align_to only yields the aligned middle part.
    match unsafe { bytes.align_to::<f32>() } {
        ([], aligned, []) => aligned,
        _ => {
            scratch.clear();
            scratch.extend(bytes.chunks_exact(4).map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]])));
            scratch
        }
    }
}

/// Whether every value is within [0,1] give or take the slack: one branch-free pass (NaN fails both
/// comparisons), so that the failing pixel is looked up only on failure.
fn all_in_range(values: &[f32]) -> bool {
    let (lo, hi) = (-FLOAT_RANGE_SLACK, 1.0 + FLOAT_RANGE_SLACK);
    !values.iter().fold(false, |bad, &v| bad | !(v >= lo && v <= hi))
}

/// A float pixel's channels must be finite and within [0,1] (give or take rounding): the error names the pixel.
fn check_float_pixel(x: usize, y: usize, rgb: [f32; 3]) -> Result<()> {
    let ok = |v: f32| (-FLOAT_RANGE_SLACK..=1.0 + FLOAT_RANGE_SLACK).contains(&v);
    if rgb.iter().all(|&v| ok(v)) {
        return Ok(());
    }
    let (name, v) = ["R", "G", "B"].into_iter().zip(rgb).find(|&(_, v)| !ok(v)).expect("one is out of range");
    let what = if v.is_nan() {
        "NaN"
    } else if v.is_infinite() {
        "infinite"
    } else {
        "outside [0,1]"
    };
    Err(Error::invalid(format!("float pixel ({x}, {y}) channel {name} is {what} ({v})")))
}

/// Converts equally sized images into one N×3×H×W float32 tensor in [0,1] on `device`: a single pass over the
/// pixels into the tensor's own memory (plus the host→device transfer when `device` is a GPU).
pub fn to_batch_tensor(images: &[Image<'_>], device: Device) -> Result<Tensor> {
    let first = images.first().ok_or_else(|| Error::invalid("no images given"))?;
    let (w, h) = (first.width, first.height);
    if let Some(other) = images.iter().find(|i| (i.width, i.height) != (w, h)) {
        return Err(Error::shape(format!(
            "images in one batch must have one size: {w}x{h} and {}x{}",
            other.width, other.height
        )));
    }
    let per_image = 3 * w as usize * h as usize;
    let mut fresh = FreshTensor::<f32>::empty(&[images.len() as i64, 3, h as i64, w as i64])?;
    for (image, planes) in images.iter().zip(fresh.as_mut_slice().chunks_exact_mut(per_image)) {
        image.write_planes(planes)?;
    }
    let mut host = fresh.into_tensor();
    if device != Device::Cpu {
        host = host.f_to_device(device)?;
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_ne_bytes()).collect()
    }

    /// A 5×3 image's R, G, B values: distinct, in [0,1].
    fn channel(c: usize, x: usize, y: usize) -> f32 {
        (c * 100 + y * 10 + x) as f32 / 300.0
    }

    fn tensor_values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
    }

    #[test]
    fn planar_f32_reads_like_interleaved_f32_with_and_without_padding() {
        let (w, h) = (5usize, 3usize);
        let interleaved: Vec<f32> =
            (0..h).flat_map(|y| (0..w).flat_map(move |x| (0..3).map(move |c| channel(c, x, y)))).collect();
        let want = tensor_values(
            &to_batch_tensor(
                &[Image::new(&f32_bytes(&interleaved), 5, 3, 0, PixelFormat::RgbF32).unwrap()],
                Device::Cpu,
            )
            .unwrap(),
        );
        for pad in [0usize, 2] {
            // Rows of w values then `pad` values of garbage (NaN: never read), planes back to back.
            let row_len = w + pad;
            let mut planar = vec![f32::NAN; 3 * h * row_len];
            for c in 0..3 {
                for y in 0..h {
                    for x in 0..w {
                        planar[(c * h + y) * row_len + x] = channel(c, x, y);
                    }
                }
            }
            let mut bytes = f32_bytes(&planar);
            // The last row's padding is not part of the image.
            bytes.truncate(bytes.len() - pad * 4);
            let stride = if pad == 0 { 0 } else { row_len * 4 };
            assert_eq!(Image::required_len(5, 3, stride, PixelFormat::RgbF32Planar).unwrap(), bytes.len());
            let image = Image::new(&bytes, 5, 3, stride, PixelFormat::RgbF32Planar).unwrap();
            let got = tensor_values(&to_batch_tensor(&[image], Device::Cpu).unwrap());
            assert_eq!(got, want, "padding {pad}");
            // Unaligned: the same bytes one byte into a buffer.
            let mut shifted = vec![0u8; bytes.len() + 1];
            shifted[1..].copy_from_slice(&bytes);
            let image = Image::new(&shifted[1..], 5, 3, stride, PixelFormat::RgbF32Planar).unwrap();
            assert_eq!(
                tensor_values(&to_batch_tensor(&[image], Device::Cpu).unwrap()),
                want,
                "unaligned, padding {pad}"
            );
        }
    }

    #[test]
    fn planar_f32_sizes_are_checked() {
        let planar = PixelFormat::RgbF32Planar;
        assert_eq!(Image::required_len(5, 3, 0, planar).unwrap(), 3 * 3 * 5 * 4);
        assert_eq!(Image::required_len(5, 3, 28, planar).unwrap(), 8 * 28 + 20);
        let e = Image::required_len(5, 3, 16, planar).unwrap_err();
        assert!(e.message.contains("stride 16 bytes is shorter than one row"), "{}", e.message);
        let e = Image::new(&[0u8; 179], 5, 3, 0, planar).unwrap_err();
        assert!(e.message.contains("needs 180"), "{}", e.message);
        // 3 × height rows of the stride overflow where height rows alone would not.
        let stride = usize::MAX / 2;
        assert!(Image::required_len(1, 2, stride, PixelFormat::GrayF32).is_ok());
        let e = Image::required_len(1, 2, stride, planar).unwrap_err();
        assert!(e.message.contains("overflows memory"), "{}", e.message);
    }

    #[test]
    fn planar_f32_out_of_range_values_name_pixel_and_channel() {
        let mut values = vec![0.5f32; 3 * 3 * 5];
        values[2 * 15 + 5 + 4] = f32::NAN; // B plane, row 1, column 4
        let bytes = f32_bytes(&values);
        let image = Image::new(&bytes, 5, 3, 0, PixelFormat::RgbF32Planar).unwrap();
        let e = to_batch_tensor(&[image], Device::Cpu).unwrap_err();
        assert_eq!(e.message, "float pixel (4, 1) channel B is NaN (NaN)");
        values[2 * 15 + 5 + 4] = 0.5;
        values[15 + 2] = 1.5; // G plane, row 0, column 2
        let bytes = f32_bytes(&values);
        let image = Image::new(&bytes, 5, 3, 0, PixelFormat::RgbF32Planar).unwrap();
        let e = to_batch_tensor(&[image], Device::Cpu).unwrap_err();
        assert_eq!(e.message, "float pixel (2, 0) channel G is outside [0,1] (1.5)");
    }
}
