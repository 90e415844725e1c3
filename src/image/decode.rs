//! Image files (PNG, JPEG, BMP, TIFF, WebP) decoded with limits into pixels that `Image` borrows.
use super::pixels::{Image, PixelFormat};
use crate::error::{Error, ErrorKind, Result};
use image::{DynamicImage, ImageError, ImageFormat, ImageReader, Limits};
use std::path::Path;

/// Largest image dimension accepted from a file, and the most memory a decoder may allocate. A file claiming
/// more (a decompression bomb) is `Decode`, not an out-of-memory abort.
pub const DECODE_LIMITS: (u32, u64) = (65_535, 2 << 30);

/// File extensions (lowercase) of the formats [`decode_file`] reads.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp"];

/// Pixels decoded from a file, owned.
#[derive(Debug, Clone)]
pub struct DecodedImage {
    bytes: Vec<u8>,
    width: u32,
    height: u32,
    format: PixelFormat,
}

impl DecodedImage {
    /// The pixel bytes, rows tightly packed in `format`.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Layout of the pixels: RGB8, or RGB16 for 16-bit files.
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// The pixels as an [`Image`] to score.
    pub fn as_image(&self) -> Image<'_> {
        Image::new(&self.bytes, self.width, self.height, 0, self.format).expect("decoded buffer matches its size")
    }
}

/// Decodes a file the way pyiqa sees it (PIL `convert('RGB')`: gray replicated, alpha dropped), except that
/// 16-bit files keep their 16 bits, where PIL would clip them to 8.
pub fn decode_file(path: &Path) -> Result<DecodedImage> {
    let shown = path.display();
    let reader = ImageReader::open(path)
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot open image file '{shown}': {e}")))?;
    let mut reader = reader
        .with_guessed_format()
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read image file '{shown}': {e}")))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(DECODE_LIMITS.0);
    limits.max_image_height = Some(DECODE_LIMITS.0);
    limits.max_alloc = Some(DECODE_LIMITS.1);
    reader.limits(limits);
    if reader.format().is_none() {
        return Err(Error::new(
            ErrorKind::Decode,
            format!("'{shown}' is not an image in a supported format (PNG, JPEG, BMP, TIFF, WebP)"),
        ));
    }
    if reader.format() == Some(ImageFormat::Jpeg) {
        if let Some(img) = decode_jpeg_like_pil(path)? {
            return Ok(img);
        }
    }
    let decoded = reader.decode().map_err(|e| decode_error(&shown.to_string(), e))?;
    let (width, height) = (decoded.width(), decoded.height());
    let (bytes, format) = match decoded {
        DynamicImage::ImageLuma8(img) => (img.into_raw(), PixelFormat::Gray8),
        img @ (DynamicImage::ImageLuma16(_)
        | DynamicImage::ImageLumaA16(_)
        | DynamicImage::ImageRgb16(_)
        | DynamicImage::ImageRgba16(_)) => {
            let raw = img.into_rgb16().into_raw();
            (raw.iter().flat_map(|v| v.to_ne_bytes()).collect(), PixelFormat::Rgb16)
        }
        img @ (DynamicImage::ImageRgb32F(_) | DynamicImage::ImageRgba32F(_)) => {
            let raw = img.into_rgb32f().into_raw();
            (raw.iter().flat_map(|v| v.to_ne_bytes()).collect(), PixelFormat::RgbF32)
        }
        img => (img.into_rgb8().into_raw(), PixelFormat::Rgb8),
    };
    Ok(DecodedImage { bytes, width, height, format })
}

fn decode_error(shown: &str, e: ImageError) -> Error {
    let what = match &e {
        ImageError::Limits(_) => format!(
            "'{shown}' exceeds the decoding limits ({0}x{0} pixels, {1} MiB): {e}",
            DECODE_LIMITS.0,
            DECODE_LIMITS.1 >> 20
        ),
        ImageError::Unsupported(_) => format!("'{shown}' uses an unsupported image feature: {e}"),
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            format!("'{shown}' is truncated: {e}")
        }
        _ => format!("'{shown}' is corrupt or truncated: {e}"),
    };
    Error::new(ErrorKind::Decode, what)
}

/// Decodes a YCbCr or grayscale JPEG with libjpeg-turbo's decoder and PIL's settings (accurate integer IDCT,
/// fancy upsampling), giving exactly PIL's pixels. `None` for other colour spaces (CMYK, YCCK), which the
/// image crate decodes instead.
fn decode_jpeg_like_pil(path: &Path) -> Result<Option<DecodedImage>> {
    let shown = path.display().to_string();
    let data =
        std::fs::read(path).map_err(|e| Error::new(ErrorKind::Io, format!("cannot read image file '{shown}': {e}")))?;
    let corrupt = |what: String| Error::new(ErrorKind::Decode, format!("'{shown}' is corrupt or truncated: {what}"));
    // libjpeg reports errors by unwinding out of its error handler (mozjpeg's "unwinding" error manager).
    let decoded = std::panic::catch_unwind(|| -> Result<Option<DecodedImage>> {
        let mut jpeg = mozjpeg::Decompress::new_mem(&data).map_err(|e| corrupt(e.to_string()))?;
        let (width, height) = (jpeg.width() as u64, jpeg.height() as u64);
        if width > DECODE_LIMITS.0 as u64 || height > DECODE_LIMITS.0 as u64 || width * height * 3 > DECODE_LIMITS.1 {
            return Err(Error::new(
                ErrorKind::Decode,
                format!(
                    "'{shown}' ({width}x{height}) exceeds the decoding limits ({0}x{0} pixels, {1} MiB)",
                    DECODE_LIMITS.0,
                    DECODE_LIMITS.1 >> 20
                ),
            ));
        }
        let gray = match jpeg.color_space() {
            mozjpeg::ColorSpace::JCS_GRAYSCALE => true,
            mozjpeg::ColorSpace::JCS_YCbCr | mozjpeg::ColorSpace::JCS_RGB => false,
            _ => return Ok(None),
        };
        jpeg.dct_method(mozjpeg::DctMethod::IntegerSlow);
        jpeg.do_fancy_upsampling(true);
        let mut started = if gray { jpeg.grayscale() } else { jpeg.rgb() }.map_err(|e| corrupt(e.to_string()))?;
        let bytes = started.read_scanlines::<u8>().map_err(|e| corrupt(e.to_string()))?;
        started.finish().map_err(|e| corrupt(e.to_string()))?;
        let format = if gray { PixelFormat::Gray8 } else { PixelFormat::Rgb8 };
        Ok(Some(DecodedImage { bytes, width: width as u32, height: height as u32, format }))
    });
    decoded.unwrap_or_else(|panic| {
        let msg = panic.downcast_ref::<String>().cloned().unwrap_or_else(|| "libjpeg error".into());
        Err(corrupt(msg))
    })
}
