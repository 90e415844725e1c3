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

    /// A packed copy of `image`'s pixels (its rows without padding), in its format.
    pub fn copy_of(image: &Image<'_>) -> DecodedImage {
        // Every row of every plane (a planar format's rows repeat once per channel).
        let rows = image.height() as usize * image.format().planes();
        let mut bytes = Vec::with_capacity(rows * image.row(0).len());
        (0..rows).for_each(|y| bytes.extend_from_slice(image.row(y)));
        DecodedImage { bytes, width: image.width(), height: image.height(), format: image.format() }
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
    if reader.format() == Some(ImageFormat::Bmp) {
        let data = std::fs::read(path)
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read image file '{shown}': {e}")))?;
        if let Some(img) = decode_bmp_rgb24(&data) {
            return Ok(img);
        }
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

/// [`decode_file`] of a distorted image and of its reference, if any, the two decoded side by side on the
/// worker threads: a pair of JPEGs at 512×384 is decoded in the time of one, which is most of scoring it from
/// files.
pub fn decode_pair(dist: &Path, reference: Option<&Path>) -> (Result<DecodedImage>, Option<Result<DecodedImage>>) {
    let paths = [Some(dist), reference];
    let mut decoded: [Option<Result<DecodedImage>>; 2] = [None, None];
    crate::runtime::for_each_piece(&mut decoded, 1, |i, slot| slot[0] = paths[i].map(decode_file));
    let [dist, reference] = decoded;
    (dist.expect("the distorted image is decoded"), reference)
}

/// The common BMP (uncompressed 24-bit, BITMAPINFOHEADER or its V4/V5 extensions, rows bottom-up or top-down)
/// read directly: rows copied with B and R swapped, which is what the image crate's decoder gives, 4× faster
/// (its per-pixel reader was most of a BMP pair's scoring time). `None` for anything else, or for a file whose
/// header or size does not add up: the image crate then decodes it or says what is wrong.
fn decode_bmp_rgb24(data: &[u8]) -> Option<DecodedImage> {
    let u32_at = |at: usize| Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?));
    let u16_at = |at: usize| Some(u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?));
    let (offset, header) = (u32_at(10)? as usize, u32_at(14)?);
    let (width, height) = (u32_at(18)? as i32, u32_at(22)? as i32);
    let (planes, bits, compression) = (u16_at(26)?, u16_at(28)?, u32_at(30)?);
    if !data.starts_with(b"BM") || !matches!(header, 40 | 108 | 124) || (planes, bits, compression) != (1, 24, 0) {
        return None;
    }
    let (w, h) = (width, height.checked_abs()?);
    if w <= 0 || h == 0 || w as u32 > DECODE_LIMITS.0 || h as u32 > DECODE_LIMITS.0 {
        return None;
    }
    let (w, h) = (w as usize, h as usize);
    if (w * h * 3) as u64 > DECODE_LIMITS.1 {
        return None;
    }
    let row_len = (w * 3).div_ceil(4) * 4;
    let pixels = data.get(offset..offset.checked_add(row_len.checked_mul(h)?)?)?;
    let mut bytes = vec![0u8; w * h * 3];
    for (y, out) in bytes.chunks_exact_mut(w * 3).enumerate() {
        // Positive heights are stored bottom-up.
        let stored = if height > 0 { h - 1 - y } else { y };
        bgr_to_rgb(&pixels[stored * row_len..][..w * 3], out);
    }
    Some(DecodedImage { bytes, width: w as u32, height: h as u32, format: PixelFormat::Rgb8 })
}

/// Copies packed 3-byte BGR pixels into `rgb` as RGB (SSSE3 byte shuffles where the CPU has them: the
/// per-pixel loop was most of a BMP's decoding time).
fn bgr_to_rgb(bgr: &[u8], rgb: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("ssse3") {
        // SAFETY: the CPU has SSSE3 (checked just above).
        return unsafe { bgr_to_rgb_ssse3(bgr, rgb) };
    }
    for (o, p) in rgb.chunks_exact_mut(3).zip(bgr.chunks_exact(3)) {
        o.copy_from_slice(&[p[2], p[1], p[0]]);
    }
}

/// [`bgr_to_rgb`] five pixels per shuffle: each 16-byte window holds five pixels and the next one's first
/// byte, stored unchanged and then overwritten by the next window, 15 bytes on. Loads read only `bgr`, so no
/// load waits on a store.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
unsafe fn bgr_to_rgb_ssse3(bgr: &[u8], rgb: &mut [u8]) {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_setr_epi8, _mm_shuffle_epi8, _mm_storeu_si128};
    let len = bgr.len().min(rgb.len());
    let order = _mm_setr_epi8(2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9, 14, 13, 12, 15);
    let mut at = 0;
    while at + 16 <= len {
        let (from, to) = (bgr[at..at + 16].as_ptr() as *const __m128i, rgb[at..at + 16].as_mut_ptr() as *mut __m128i);
        // SAFETY: both 16-byte windows are inside their slices (the loop condition); unaligned accesses.
        unsafe { _mm_storeu_si128(to, _mm_shuffle_epi8(_mm_loadu_si128(from), order)) };
        at += 15;
    }
    for (o, p) in rgb[at..len].chunks_exact_mut(3).zip(bgr[at..len].chunks_exact(3)) {
        o.copy_from_slice(&[p[2], p[1], p[0]]);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A BMP of `w`×`height` 24-bit pixels (`height` < 0: top-down) with a DIB header of `header` bytes.
    fn bmp(w: usize, height: i32, header: u32, seed: usize) -> Vec<u8> {
        let row_len = (w * 3).div_ceil(4) * 4;
        let h = height.unsigned_abs() as usize;
        let offset = 14 + header as usize;
        let mut data = vec![0u8; offset + row_len * h];
        data[..2].copy_from_slice(b"BM");
        let len = data.len() as u32;
        data[2..6].copy_from_slice(&len.to_le_bytes());
        data[10..14].copy_from_slice(&(offset as u32).to_le_bytes());
        data[14..18].copy_from_slice(&header.to_le_bytes());
        data[18..22].copy_from_slice(&(w as i32).to_le_bytes());
        data[22..26].copy_from_slice(&height.to_le_bytes());
        data[26..28].copy_from_slice(&1u16.to_le_bytes());
        data[28..30].copy_from_slice(&24u16.to_le_bytes());
        for (i, v) in data[offset..].iter_mut().enumerate() {
            *v = (i * 31 + seed * 7 + i / 5) as u8;
        }
        data
    }

    /// The SSSE3 shuffle gives the per-pixel loop's bytes at every length (whole windows and the tail).
    #[test]
    fn bgr_to_rgb_equals_the_per_pixel_loop_at_every_length() {
        for pixels in 0..40 {
            let bgr: Vec<u8> = (0..pixels * 3).map(|i| (i * 37 + 11) as u8).collect();
            let mut fast = vec![0; bgr.len()];
            bgr_to_rgb(&bgr, &mut fast);
            let slow: Vec<u8> = bgr.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]).collect();
            assert_eq!(fast, slow, "{pixels} pixels");
        }
    }

    /// The direct reader gives the image crate's pixels for every row padding, both row orders and the three
    /// header versions, and declines what it does not read.
    #[test]
    fn direct_bmp_reader_equals_the_image_crate() {
        for w in 1..=7 {
            for height in [-3, -1, 1, 4] {
                for header in [40, 108, 124] {
                    let data = bmp(w, height, header, w);
                    let fast = decode_bmp_rgb24(&data).unwrap_or_else(|| panic!("{w}x{height} header {header}"));
                    let slow = image::load_from_memory(&data).unwrap().into_rgb8();
                    assert_eq!((fast.width, fast.height), slow.dimensions());
                    assert_eq!(fast.bytes, slow.into_raw(), "{w}x{height} header {header}");
                }
            }
        }
        let good = bmp(5, 2, 40, 0);
        let changed = |at: usize, bytes: &[u8]| {
            let mut d = good.clone();
            d[at..at + bytes.len()].copy_from_slice(bytes);
            d
        };
        for (what, data) in [
            ("32 bits", changed(28, &32u16.to_le_bytes())),
            ("RLE", changed(30, &1u32.to_le_bytes())),
            ("core header", changed(14, &12u32.to_le_bytes())),
            ("zero width", changed(18, &0i32.to_le_bytes())),
            ("offset past the end", changed(10, &1000u32.to_le_bytes())),
            ("truncated", good[..good.len() - 1].to_vec()),
            ("not BM", changed(0, b"XX")),
        ] {
            assert!(decode_bmp_rgb24(&data).is_none(), "{what}");
        }
    }

    /// Side by side, each file gives what it gives alone: pixels, or its own error; no reference, no result.
    #[test]
    fn decode_pair_gives_each_file_its_own_result() {
        let dir = std::env::temp_dir().join(format!("iqa-decode-pair-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b, broken) = (dir.join("a.bmp"), dir.join("b.bmp"), dir.join("broken.png"));
        std::fs::write(&a, bmp(5, 3, 40, 1)).unwrap();
        std::fs::write(&b, bmp(7, -2, 124, 2)).unwrap();
        std::fs::write(&broken, b"\x89PNG\r\n\x1a\n truncated").unwrap();
        let missing = dir.join("missing.png");
        let same = |path: &Path, together: &Result<DecodedImage>| match (decode_file(path), together) {
            (Ok(alone), Ok(together)) => {
                assert_eq!((alone.width, alone.height), (together.width, together.height));
                assert_eq!(alone.bytes, together.bytes, "{}", path.display());
            }
            (Err(alone), Err(together)) => {
                assert_eq!((alone.kind, alone.to_string()), (together.kind, together.to_string()))
            }
            (alone, together) => panic!("{}: alone {alone:?}, together {together:?}", path.display()),
        };
        for (dist, reference) in [(&a, Some(&b)), (&broken, Some(&a)), (&a, Some(&missing)), (&b, None), (&a, Some(&a))]
        {
            let (d, r) = decode_pair(dist, reference.map(|p| p.as_path()));
            same(dist, &d);
            assert_eq!(r.is_some(), reference.is_some());
            if let (Some(path), Some(r)) = (reference, &r) {
                same(path, r);
            }
        }
        assert_eq!(decode_pair(&broken, None).0.unwrap_err().kind, ErrorKind::Decode);
        assert_eq!(decode_pair(&a, Some(&missing)).1.unwrap().unwrap_err().kind, ErrorKind::Io);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
