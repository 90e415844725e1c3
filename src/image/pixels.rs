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
}

impl PixelFormat {
    /// Bytes one pixel takes.
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Gray8 => 1,
            PixelFormat::Rgb8 | PixelFormat::Bgr8 => 3,
            PixelFormat::Rgba8 | PixelFormat::Bgra8 | PixelFormat::GrayF32 => 4,
            PixelFormat::Rgb16 | PixelFormat::RgbF16 => 6,
            PixelFormat::RgbF32 => 12,
        }
    }
}

/// A borrowed image: `height` rows of `width` pixels, each row starting `stride` bytes after the previous.
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
        (height as usize - 1)
            .checked_mul(stride)
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
        let bytes = self.row(y);
        // SAFETY: every bit pattern is a valid f32; align_to only yields the aligned middle part.
        let values: &[f32] = match unsafe { bytes.align_to::<f32>() } {
            ([], aligned, []) => aligned,
            _ => {
                scratch.clear();
                scratch.extend(bytes.chunks_exact(4).map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]])));
                scratch
            }
        };
        // One branch-free pass (NaN fails both comparisons); the pixel is looked up only on failure.
        let (lo, hi) = (-FLOAT_RANGE_SLACK, 1.0 + FLOAT_RANGE_SLACK);
        if values.iter().fold(false, |bad, &v| bad | !(v >= lo && v <= hi)) {
            for (x, px) in values.chunks_exact(channels).enumerate() {
                let rgb = if channels == 3 { [px[0], px[1], px[2]] } else { [px[0]; 3] };
                if let Err(e) = check_float_pixel(x, y, rgb) {
                    return Some(Err(e));
                }
            }
        }
        Some(Ok((values, channels)))
    }

    /// Row `y`'s bytes (width × bytes per pixel, no padding).
    pub(crate) fn row(&self, y: usize) -> &'a [u8] {
        let start = y * self.stride;
        &self.data[start..start + self.width as usize * self.format.bytes_per_pixel()]
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
                    | PixelFormat::GrayF32 => {}
                }
            }
        }
        Ok(())
    }
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
