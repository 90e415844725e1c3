//! Video frames as engines hold them: YUV planes ([`Frame`], borrowed; [`FrameBuf`], owned) in a
//! [`FrameFormat`], with the [`ColorSpec`] that says how they map to RGB (the mapping itself is in
//! `image::yuv`). Every check happens when a frame is made, so a [`Frame`] is valid by construction.
use crate::error::{Error, Result};

/// How the chroma planes are subsampled relative to luma.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subsampling {
    /// 4:2:0: chroma at half the width and half the height.
    Yuv420,
    /// 4:2:2: chroma at half the width, full height.
    Yuv422,
    /// 4:4:4: chroma at full resolution.
    Yuv444,
    /// 4:1:1: chroma at a quarter of the width, full height (DV).
    Yuv411,
    /// Luma only (gray): converted as if both chroma planes held their neutral value.
    Mono,
}

impl Subsampling {
    /// log2 of the horizontal and vertical chroma subsampling factors.
    pub fn shifts(self) -> (u32, u32) {
        match self {
            Subsampling::Yuv420 => (1, 1),
            Subsampling::Yuv422 => (1, 0),
            Subsampling::Yuv444 | Subsampling::Mono => (0, 0),
            Subsampling::Yuv411 => (2, 0),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Subsampling::Yuv420 => "4:2:0",
            Subsampling::Yuv422 => "4:2:2",
            Subsampling::Yuv444 => "4:4:4",
            Subsampling::Yuv411 => "4:1:1",
            Subsampling::Mono => "gray",
        }
    }
}

/// How a frame's planes lie in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlaneLayout {
    /// One plane per component: Y, U (Cb), V (Cr); samples above 8 bits are little-endian u16 holding the value
    /// in their low bits (yuv420p10le).
    Planar,
    /// A Y plane, then one plane of interleaved U, V pairs (NV12); samples above 8 bits are little-endian u16
    /// holding the value in their high bits, the low bits zero (P010, P016).
    SemiPlanar,
}

/// The layout and bit depth of a frame's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameFormat {
    subsampling: Subsampling,
    bit_depth: u8,
    layout: PlaneLayout,
}

impl FrameFormat {
    /// 8-bit 4:2:0 planar (yuv420p).
    pub const I420: FrameFormat = FrameFormat::known(Subsampling::Yuv420, 8, PlaneLayout::Planar);
    /// 8-bit 4:2:0, interleaved chroma (nv12).
    pub const NV12: FrameFormat = FrameFormat::known(Subsampling::Yuv420, 8, PlaneLayout::SemiPlanar);
    /// 8-bit 4:2:2 planar (yuv422p).
    pub const I422: FrameFormat = FrameFormat::known(Subsampling::Yuv422, 8, PlaneLayout::Planar);
    /// 8-bit 4:4:4 planar (yuv444p).
    pub const I444: FrameFormat = FrameFormat::known(Subsampling::Yuv444, 8, PlaneLayout::Planar);
    /// 10-bit 4:2:0 planar, little-endian, low bits (yuv420p10le).
    pub const I420P10: FrameFormat = FrameFormat::known(Subsampling::Yuv420, 10, PlaneLayout::Planar);
    /// 10-bit 4:2:0, interleaved chroma, little-endian, high bits (p010le).
    pub const P010: FrameFormat = FrameFormat::known(Subsampling::Yuv420, 10, PlaneLayout::SemiPlanar);
    /// 10-bit 4:2:2 planar, little-endian, low bits (yuv422p10le).
    pub const I422P10: FrameFormat = FrameFormat::known(Subsampling::Yuv422, 10, PlaneLayout::Planar);
    /// 10-bit 4:4:4 planar, little-endian, low bits (yuv444p10le).
    pub const I444P10: FrameFormat = FrameFormat::known(Subsampling::Yuv444, 10, PlaneLayout::Planar);

    const fn known(subsampling: Subsampling, bit_depth: u8, layout: PlaneLayout) -> FrameFormat {
        FrameFormat { subsampling, bit_depth, layout }
    }

    /// A format, or why there is none: planar formats take 8 to 16 bits; semi-planar ones 8, 10, 12 or 16 bits
    /// and 4:2:0, 4:2:2 or 4:4:4 (nv12/nv16/nv24, p010/p210/p410, ...).
    pub fn new(subsampling: Subsampling, bit_depth: u8, layout: PlaneLayout) -> Result<FrameFormat> {
        let ok = match layout {
            PlaneLayout::Planar => (8..=16).contains(&bit_depth),
            PlaneLayout::SemiPlanar => {
                matches!(bit_depth, 8 | 10 | 12 | 16)
                    && matches!(subsampling, Subsampling::Yuv420 | Subsampling::Yuv422 | Subsampling::Yuv444)
            }
        };
        if !ok {
            return Err(Error::invalid(format!(
                "no {layout:?} {}-bit {} frame format (planar: 8 to 16 bits; semi-planar: 8, 10, 12 or 16 bits \
                 of 4:2:0, 4:2:2 or 4:4:4)",
                bit_depth,
                subsampling.label()
            )));
        }
        Ok(FrameFormat { subsampling, bit_depth, layout })
    }

    /// Chroma subsampling.
    pub fn subsampling(self) -> Subsampling {
        self.subsampling
    }
    /// Bits per sample value (8 to 16).
    pub fn bit_depth(self) -> u8 {
        self.bit_depth
    }
    /// Planar or semi-planar.
    pub fn layout(self) -> PlaneLayout {
        self.layout
    }

    /// Bytes one sample takes: 1 for 8 bits, else 2.
    pub fn bytes_per_sample(self) -> usize {
        if self.bit_depth > 8 {
            2
        } else {
            1
        }
    }

    /// Planes a frame of this format has: 1 (gray), 2 (semi-planar) or 3.
    pub fn plane_count(self) -> usize {
        match (self.subsampling, self.layout) {
            (Subsampling::Mono, _) => 1,
            (_, PlaneLayout::SemiPlanar) => 2,
            (_, PlaneLayout::Planar) => 3,
        }
    }

    /// The plane's name in messages: Y, U, V, or UV for the interleaved chroma plane.
    pub fn plane_name(self, plane: usize) -> &'static str {
        match (self.layout, plane) {
            (_, 0) => "Y",
            (PlaneLayout::SemiPlanar, _) => "UV",
            (PlaneLayout::Planar, 1) => "U",
            _ => "V",
        }
    }

    /// Width and height in samples of `plane` for a `width`×`height` frame, and the samples per position
    /// (2 for the interleaved UV plane).
    pub fn plane_size(self, plane: usize, width: u32, height: u32) -> (usize, usize, usize) {
        if plane == 0 {
            return (width as usize, height as usize, 1);
        }
        let (sx, sy) = self.subsampling.shifts();
        let per = if self.layout == PlaneLayout::SemiPlanar { 2 } else { 1 };
        ((width >> sx) as usize, (height >> sy) as usize, per)
    }

    /// Whether a `width`×`height` frame fits this format: not empty, divisible by the chroma subsampling
    /// factors.
    pub fn check_size(self, width: u32, height: u32) -> Result<()> {
        if width == 0 || height == 0 {
            return Err(Error::invalid(format!("frame size {width}x{height} is empty")));
        }
        let (sx, sy) = self.subsampling.shifts();
        for (what, size, shift) in [("width", width, sx), ("height", height, sy)] {
            if size % (1 << shift) != 0 {
                return Err(Error::invalid(format!(
                    "{what} {size} is not a multiple of {}: {} ({}) needs it",
                    1 << shift,
                    self.name(),
                    self.subsampling.label()
                )));
            }
        }
        Ok(())
    }

    /// Bytes the buffer of `plane` must hold for a `width`×`height` frame whose rows are `stride` bytes apart
    /// (0 = tightly packed), and the stride itself; or why the stride is invalid.
    pub fn plane_len(self, plane: usize, width: u32, height: u32, stride: usize) -> Result<(usize, usize)> {
        let name = self.plane_name(plane);
        let (w, h, per) = self.plane_size(plane, width, height);
        let row = w * per * self.bytes_per_sample();
        let stride = if stride == 0 { row } else { stride };
        if stride < row {
            return Err(Error::invalid(format!(
                "plane {name}: stride {stride} bytes is shorter than one row ({w} samples of {} = {row} bytes)",
                self.name()
            )));
        }
        let needed = (h - 1)
            .checked_mul(stride)
            .and_then(|n| n.checked_add(row))
            .ok_or_else(|| Error::invalid(format!("plane {name}: {h} rows {stride} bytes apart overflow memory")))?;
        Ok((needed, stride))
    }

    /// ffmpeg's name of this pixel format (yuv420p, nv12, yuv420p10le, p010le, gray, ...).
    pub fn name(self) -> String {
        let (s, b) = (self.subsampling, self.bit_depth);
        let le = if b > 8 { "le" } else { "" };
        match (self.layout, s) {
            (_, Subsampling::Mono) if b == 8 => "gray".into(),
            (_, Subsampling::Mono) => format!("gray{b}le"),
            (PlaneLayout::Planar, _) => {
                let depth = if b > 8 { format!("p{b}") } else { "p".into() };
                format!("yuv{}{depth}{le}", s.label().replace(':', ""))
            }
            (PlaneLayout::SemiPlanar, _) if b == 8 => {
                format!(
                    "nv{}",
                    match s {
                        Subsampling::Yuv420 => "12",
                        Subsampling::Yuv422 => "16",
                        _ => "24",
                    }
                )
            }
            (PlaneLayout::SemiPlanar, _) => {
                let digit = match s {
                    Subsampling::Yuv420 => 0,
                    Subsampling::Yuv422 => 2,
                    _ => 4,
                };
                format!("p{digit}{b:02}le")
            }
        }
    }

    /// Parses ffmpeg's pixel format names (see [`FrameFormat::name`]), case-insensitively, with `le` optional
    /// and the aliases i420, i422, i444, yuv420p10 (= yuv420p10le), p010, mono.
    pub fn parse(text: &str) -> Option<FrameFormat> {
        let text = text.trim().to_ascii_lowercase();
        let text = text.strip_suffix("le").unwrap_or(&text);
        let sub = |digits: &str| match digits {
            "420" => Some(Subsampling::Yuv420),
            "422" => Some(Subsampling::Yuv422),
            "444" => Some(Subsampling::Yuv444),
            "411" => Some(Subsampling::Yuv411),
            _ => None,
        };
        let bits = |digits: &str| digits.parse::<u8>().ok();
        let (subsampling, bit_depth, layout) = match text {
            "gray" | "mono" | "gray8" => (Subsampling::Mono, 8, PlaneLayout::Planar),
            "i420" => (Subsampling::Yuv420, 8, PlaneLayout::Planar),
            "i422" => (Subsampling::Yuv422, 8, PlaneLayout::Planar),
            "i444" => (Subsampling::Yuv444, 8, PlaneLayout::Planar),
            "nv12" => (Subsampling::Yuv420, 8, PlaneLayout::SemiPlanar),
            "nv16" => (Subsampling::Yuv422, 8, PlaneLayout::SemiPlanar),
            "nv24" => (Subsampling::Yuv444, 8, PlaneLayout::SemiPlanar),
            _ => {
                if let Some(depth) = text.strip_prefix("gray") {
                    (Subsampling::Mono, bits(depth)?, PlaneLayout::Planar)
                } else if let Some(rest) = text.strip_prefix("yuv") {
                    let (digits, depth) = rest.split_at(rest.len().min(3));
                    let depth = depth.strip_prefix('p')?;
                    (sub(digits)?, if depth.is_empty() { 8 } else { bits(depth)? }, PlaneLayout::Planar)
                } else if let Some(rest) = text.strip_prefix('p').filter(|r| r.len() == 3) {
                    let s = match &rest[..1] {
                        "0" => Subsampling::Yuv420,
                        "2" => Subsampling::Yuv422,
                        "4" => Subsampling::Yuv444,
                        _ => return None,
                    };
                    (s, bits(&rest[1..])?, PlaneLayout::SemiPlanar)
                } else {
                    return None;
                }
            }
        };
        FrameFormat::new(subsampling, bit_depth, layout).ok()
    }
}

/// The matrix coefficients (Kr, Kb) of Y'CbCr, non-constant luminance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ColorMatrix {
    /// ITU-R BT.709 (HD): Kr 0.2126, Kb 0.0722. The default.
    #[default]
    Bt709,
    /// ITU-R BT.601 (SD; also SMPTE 170M, BT.470 BG): Kr 0.299, Kb 0.114.
    Bt601,
    /// ITU-R BT.2020 non-constant luminance (UHD): Kr 0.2627, Kb 0.0593.
    Bt2020,
}

impl ColorMatrix {
    /// (Kr, Kb).
    pub fn coefficients(self) -> (f64, f64) {
        match self {
            ColorMatrix::Bt709 => (0.2126, 0.0722),
            ColorMatrix::Bt601 => (0.299, 0.114),
            ColorMatrix::Bt2020 => (0.2627, 0.0593),
        }
    }

    /// Parses bt709, bt601, bt2020 and ffmpeg's colorspace names (smpte170m, bt470bg, bt2020nc), any case.
    pub fn parse(text: &str) -> Option<ColorMatrix> {
        match text.trim().to_ascii_lowercase().replace(['.', '-', '_'], "").as_str() {
            "bt709" | "709" => Some(ColorMatrix::Bt709),
            "bt601" | "601" | "smpte170m" | "bt470bg" => Some(ColorMatrix::Bt601),
            "bt2020" | "2020" | "bt2020nc" => Some(ColorMatrix::Bt2020),
            _ => None,
        }
    }
}

/// Which code values span black to white.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ColorRange {
    /// Limited ("TV", "MPEG"): Y 16..235 and chroma 16..240, scaled by 2^(bits−8). The default.
    #[default]
    Limited,
    /// Full ("PC", "JPEG"): 0..2^bits−1.
    Full,
}

impl ColorRange {
    /// Parses limited/tv/mpeg and full/pc/jpeg, any case.
    pub fn parse(text: &str) -> Option<ColorRange> {
        match text.trim().to_ascii_lowercase().as_str() {
            "limited" | "tv" | "mpeg" => Some(ColorRange::Limited),
            "full" | "pc" | "jpeg" => Some(ColorRange::Full),
            _ => None,
        }
    }
}

/// Where chroma samples sit relative to luma (for subsampled formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChromaSiting {
    /// Horizontally with the left luma sample of each pair, vertically between rows: MPEG-2, H.264, HEVC's
    /// default (chroma_sample_loc_type 0, Y4M 420mpeg2). The default.
    #[default]
    Left,
    /// Centred between luma samples both ways: JPEG, MPEG-1 (type 1, Y4M 420jpeg).
    Center,
    /// With the top-left luma sample (type 2: BT.2020 and DV PAL, Y4M 420paldv).
    TopLeft,
}

impl ChromaSiting {
    /// Parses left (mpeg2), center (jpeg) and topleft (paldv), any case.
    pub fn parse(text: &str) -> Option<ChromaSiting> {
        match text.trim().to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "left" | "mpeg2" => Some(ChromaSiting::Left),
            "center" | "centre" | "jpeg" => Some(ChromaSiting::Center),
            "topleft" | "paldv" => Some(ChromaSiting::TopLeft),
            _ => None,
        }
    }

    /// Position of chroma sample 0 in luma samples (horizontally, vertically) for subsampling factors
    /// 2^shift: co-sited is 0, centred is (factor − 1)/2.
    pub fn offsets(self, (sx, sy): (u32, u32)) -> (f64, f64) {
        let centred = |shift: u32| ((1u32 << shift) as f64 - 1.0) / 2.0;
        match self {
            ChromaSiting::Left => (0.0, centred(sy)),
            ChromaSiting::Center => (centred(sx), centred(sy)),
            ChromaSiting::TopLeft => (0.0, 0.0),
        }
    }
}

/// How a frame's values map to RGB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ColorSpec {
    /// Matrix coefficients.
    pub matrix: ColorMatrix,
    /// Code value range.
    pub range: ColorRange,
    /// Chroma siting (ignored for 4:4:4 and gray).
    pub siting: ChromaSiting,
}

/// A borrowed video frame: its planes (Y, then U and V, or the interleaved UV plane), each row `stride` bytes
/// after the previous, checked when made: sizes divisible by the subsampling, strides and buffers long enough,
/// sample values within the bit depth.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    planes: [&'a [u8]; 3],
    strides: [usize; 3],
    width: u32,
    height: u32,
    format: FrameFormat,
    color: ColorSpec,
}

impl<'a> Frame<'a> {
    /// Checks a frame: `planes` and `strides` hold one entry per plane of `format` (stride 0 = tightly
    /// packed). Errors are `InvalidArgument` naming the plane and the value at fault.
    pub fn new(
        planes: &[&'a [u8]],
        strides: &[usize],
        width: u32,
        height: u32,
        format: FrameFormat,
        color: ColorSpec,
    ) -> Result<Frame<'a>> {
        let frame = Frame::with_geometry(planes, strides, width, height, format, color)?;
        frame.check_samples()?;
        Ok(frame)
    }

    /// Everything but the sample values checked (buffers already checked, e.g. copied from a checked frame).
    fn with_geometry(
        planes: &[&'a [u8]],
        strides: &[usize],
        width: u32,
        height: u32,
        format: FrameFormat,
        color: ColorSpec,
    ) -> Result<Frame<'a>> {
        let count = format.plane_count();
        let name = format.name();
        if planes.len() != count || strides.len() != count {
            return Err(Error::invalid(format!(
                "{name} has {count} plane(s); got {} plane buffer(s) and {} stride(s)",
                planes.len(),
                strides.len()
            )));
        }
        format.check_size(width, height)?;
        let mut frame = Frame { planes: [&[]; 3], strides: [0; 3], width, height, format, color };
        for (p, (&data, &stride)) in planes.iter().zip(strides).enumerate() {
            let (needed, stride) = format.plane_len(p, width, height, stride)?;
            if data.len() < needed {
                let (_, h, _) = format.plane_size(p, width, height);
                return Err(Error::invalid(format!(
                    "plane {}: buffer of {} bytes is too small for {h} rows {stride} bytes apart (needs {needed})",
                    format.plane_name(p),
                    data.len()
                )));
            }
            frame.planes[p] = data;
            frame.strides[p] = stride;
        }
        Ok(frame)
    }

    /// Every sample within the bit depth: planar values at most 2^bits − 1; semi-planar values (in the high
    /// bits) with their low bits zero.
    fn check_samples(&self) -> Result<()> {
        let bits = self.format.bit_depth as u32;
        if bits == 8 || bits == 16 {
            return Ok(());
        }
        let semi = self.format.layout == PlaneLayout::SemiPlanar;
        // Planar: the bits above the value; semi-planar: the bits below it.
        let bad_bits: u16 = if semi { (1 << (16 - bits)) - 1 } else { !((1u16 << bits) - 1) };
        for p in 0..self.format.plane_count() {
            for y in 0..self.plane_rows(p) {
                let row = self.row(p, y);
                let any = row.chunks_exact(2).fold(0u16, |acc, s| acc | (u16::from_le_bytes([s[0], s[1]]) & bad_bits));
                if any == 0 {
                    continue;
                }
                let (x, value) = row
                    .chunks_exact(2)
                    .map(|s| u16::from_le_bytes([s[0], s[1]]))
                    .enumerate()
                    .find(|&(_, v)| v & bad_bits != 0)
                    .expect("a bad sample is in the row");
                let plane = self.format.plane_name(p);
                let name = self.format.name();
                return Err(Error::invalid(if semi {
                    let (x, component) = if p == 0 { (x, "") } else { (x / 2, ["U ", "V "][x % 2]) };
                    format!(
                        "plane {plane}: {component}sample at ({x}, {y}) is {value:#06x}, whose low {} bits are not \
                         zero ({name} holds {bits}-bit values in the high bits)",
                        16 - bits
                    )
                } else {
                    format!(
                        "plane {plane}: sample at ({x}, {y}) is {value}, above {} (the largest {bits}-bit value of \
                         {name})",
                        (1u32 << bits) - 1
                    )
                }));
            }
        }
        Ok(())
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// Layout and bit depth.
    pub fn format(&self) -> FrameFormat {
        self.format
    }
    /// How the values map to RGB.
    pub fn color(&self) -> ColorSpec {
        self.color
    }

    /// Rows of plane `p`.
    pub(crate) fn plane_rows(&self, p: usize) -> usize {
        self.format.plane_size(p, self.width, self.height).1
    }

    /// Row `y` of plane `p`: its samples' bytes, without padding.
    pub(crate) fn row(&self, p: usize, y: usize) -> &'a [u8] {
        let (w, _, per) = self.format.plane_size(p, self.width, self.height);
        let start = y * self.strides[p];
        &self.planes[p][start..start + w * per * self.format.bytes_per_sample()]
    }

    /// A frame whose planes lie tightly packed one after the other in `data` (as in Y4M and raw .yuv files),
    /// checked as [`Frame::new`] checks one.
    pub fn packed(data: &'a [u8], width: u32, height: u32, format: FrameFormat, color: ColorSpec) -> Result<Self> {
        let frame = packed_planes(data, width, height, format, color)?;
        frame.check_samples()?;
        Ok(frame)
    }

    /// The frame converted to RGB as `image::yuv` documents: height×width×3 interleaved f32 in [0,1], the
    /// values every metric scores ([`crate::PixelFormat::RgbF32`] reads them back unchanged).
    pub fn to_rgb_f32(&self) -> Vec<f32> {
        let plane = self.width as usize * self.height as usize;
        let mut planes = vec![0f32; 3 * plane];
        super::yuv::write_planes(self, &mut planes);
        let (r, gb) = planes.split_at(plane);
        let (g, b) = gb.split_at(plane);
        r.iter().zip(g).zip(b).flat_map(|((&r, &g), &b)| [r, g, b]).collect()
    }

    /// The same conversion written as three planes (R, then G, then B) of height×width f32 into the first
    /// 3·width·height values of `out` (the layout of a 3×H×W tensor); `out` shorter than that is an error.
    pub fn write_rgb_planes(&self, out: &mut [f32]) -> Result<()> {
        let needed = 3 * self.width as usize * self.height as usize;
        if out.len() < needed {
            return Err(Error::invalid(format!(
                "output of {} values is too small for the planes of a {}x{} frame ({needed})",
                out.len(),
                self.width,
                self.height
            )));
        }
        super::yuv::write_planes(self, out);
        Ok(())
    }
}

/// An owned copy of a frame, its planes packed in one buffer that is reused from frame to frame.
#[derive(Debug, Clone)]
pub struct FrameBuf {
    data: Vec<u8>,
    width: u32,
    height: u32,
    format: FrameFormat,
    color: ColorSpec,
}

impl FrameBuf {
    /// A packed copy of `frame`, reusing this buffer's memory.
    pub fn copy_from(&mut self, frame: &Frame<'_>) {
        self.data.clear();
        // Sized once: growing by doubling would copy a fresh buffer's bytes several times.
        let planes = 0..frame.format.plane_count();
        let (format, bytes) = (frame.format, frame.format.bytes_per_sample());
        let plane_len = |p| {
            let (w, rows, per) = format.plane_size(p, frame.width, frame.height);
            w * per * bytes * rows
        };
        self.data.reserve(planes.clone().map(plane_len).sum());
        for p in planes {
            for y in 0..frame.plane_rows(p) {
                self.data.extend_from_slice(frame.row(p, y));
            }
        }
        (self.width, self.height, self.format, self.color) = (frame.width, frame.height, frame.format, frame.color);
    }

    /// An empty buffer to [`FrameBuf::copy_from`] into.
    pub fn new() -> FrameBuf {
        FrameBuf { data: Vec::new(), width: 0, height: 0, format: FrameFormat::I420, color: ColorSpec::default() }
    }

    /// The frame this buffer holds (`None` before the first copy).
    pub fn as_frame(&self) -> Option<Frame<'_>> {
        packed_planes(&self.data, self.width, self.height, self.format, self.color).ok()
    }
}

impl Default for FrameBuf {
    fn default() -> Self {
        FrameBuf::new()
    }
}

/// Bytes of one frame with its planes tightly packed one after the other, or why the size is invalid (as
/// [`Frame::new`] would refuse it).
pub fn packed_frame_len(width: u32, height: u32, format: FrameFormat) -> Result<usize> {
    format.check_size(width, height)?;
    let mut total = 0usize;
    for p in 0..format.plane_count() {
        let (w, h, per) = format.plane_size(p, width, height);
        total = w
            .checked_mul(h)
            .and_then(|n| n.checked_mul(per * format.bytes_per_sample()))
            .and_then(|n| total.checked_add(n))
            .ok_or_else(|| Error::invalid(format!("a {width}x{height} {} frame overflows memory", format.name())))?;
    }
    Ok(total)
}

/// The frame of a packed buffer (see [`packed_frame_len`]), its samples not checked.
fn packed_planes(data: &[u8], width: u32, height: u32, format: FrameFormat, color: ColorSpec) -> Result<Frame<'_>> {
    let len = packed_frame_len(width, height, format)?;
    if data.len() != len {
        return Err(Error::invalid(format!(
            "a packed {width}x{height} {} frame is {len} bytes; got {}",
            format.name(),
            data.len()
        )));
    }
    let mut planes: [&[u8]; 3] = [&[]; 3];
    let mut rest = data;
    let count = format.plane_count();
    for (p, plane) in planes.iter_mut().enumerate().take(count) {
        let (w, h, per) = format.plane_size(p, width, height);
        (*plane, rest) = rest.split_at(w * h * per * format.bytes_per_sample());
    }
    Frame::with_geometry(&planes[..count], &[0; 3][..count], width, height, format, color)
}
