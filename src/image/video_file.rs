//! Video streams in: Y4M ([`Y4mReader`]) and raw .yuv ([`RawReader`]) read frame by frame from any
//! `std::io::Read` (a file, standard input, a byte slice), and [`open_video`] for a path or `-`.
//!
//! Nothing in a stream is trusted: sizes are checked against [`DECODE_LIMITS`] before anything is allocated,
//! a frame's buffer grows only as its bytes arrive (so a header claiming a huge frame over a short stream
//! allocates little), every FRAME marker is checked, and a short frame is an error. Every such error is
//! `Decode` and names the byte offset where the problem is.
use super::decode::DECODE_LIMITS;
use super::frame::{
    packed_frame_len, ChromaSiting, ColorMatrix, ColorRange, ColorSpec, Frame, FrameFormat, Subsampling,
};
use crate::error::{Error, ErrorKind, Result};
use std::io::{BufReader, Read};
use std::path::Path;

/// Longest header or FRAME line accepted, newline included.
const MAX_LINE: usize = 4096;

/// What a stream holds, the same for every frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Sample layout and bit depth.
    pub format: FrameFormat,
    /// How the samples map to RGB (from the header where it says, else from the caller's choice or default).
    pub color: ColorSpec,
    /// Frames per second as a fraction, where the stream states it.
    pub frame_rate: Option<(u32, u32)>,
}

/// A caller's choice of colour properties: `Some` wins over what a header says; `None` takes the header's
/// value, else the default ([`ColorSpec::default`]: BT.709, limited range, left siting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ColorChoice {
    /// Matrix (Y4M headers never state one).
    pub matrix: Option<ColorMatrix>,
    /// Range (Y4M: XCOLORRANGE).
    pub range: Option<ColorRange>,
    /// Chroma siting (Y4M: the 420jpeg / 420mpeg2 / 420paldv colour spaces).
    pub siting: Option<ChromaSiting>,
}

/// A source of frames in display order.
pub trait FrameReader {
    /// Size, format and colour of the stream's frames.
    fn info(&self) -> &VideoInfo;
    /// The next frame (valid until the next call), or `None` at the end of the stream.
    fn read_frame(&mut self) -> Result<Option<Frame<'_>>>;
    /// Frames read so far.
    fn frames_read(&self) -> u64;
}

/// The byte stream under a reader, with the offset of the next byte.
struct Input<R: Read> {
    inner: BufReader<R>,
    offset: u64,
}

fn decode(message: String) -> Error {
    Error::new(ErrorKind::Decode, message)
}

impl<R: Read> Input<R> {
    fn new(inner: R) -> Self {
        Input { inner: BufReader::with_capacity(1 << 16, inner), offset: 0 }
    }

    fn io_error(&self, what: &str, e: std::io::Error) -> Error {
        Error::new(ErrorKind::Io, format!("{what}: read error at byte {}: {e}", self.offset))
    }

    /// Reads up to `buf.len()` bytes (fewer only at the end of the stream); returns how many.
    fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => {
                    filled += n;
                    self.offset += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(what, e)),
            }
        }
        Ok(filled)
    }

    /// A line without its newline, or `None` when the stream ends before its first byte. A line longer than
    /// [`MAX_LINE`] or cut by the end of the stream is an error.
    fn line(&mut self, what: &str) -> Result<Option<Vec<u8>>> {
        let start = self.offset;
        let mut line = Vec::new();
        let mut byte = [0u8];
        loop {
            if self.fill(&mut byte, what)? == 0 {
                if line.is_empty() {
                    return Ok(None);
                }
                return Err(decode(format!(
                    "{what} at byte {start} is cut off by the end of the stream at byte {}",
                    self.offset
                )));
            }
            if byte[0] == b'\n' {
                return Ok(Some(line));
            }
            line.push(byte[0]);
            if line.len() >= MAX_LINE {
                return Err(decode(format!("{what} at byte {start} has no newline within {MAX_LINE} bytes")));
            }
        }
    }

    /// Reads exactly `len` bytes into `buf` (resized to `len`), growing it only as the bytes arrive. `Ok(false)`
    /// when the stream ends before the first byte; a stream ending inside is an error naming `what`.
    fn exact(&mut self, buf: &mut Vec<u8>, len: usize, what: &dyn Fn() -> String) -> Result<bool> {
        let start = self.offset;
        let mut filled = 0;
        while filled < len {
            if buf.len() <= filled {
                // Doubling what arrived (1 MiB at least) bounds the memory by twice the bytes really read.
                let grow = (len - filled).min(filled.max(1 << 20));
                buf.resize(filled + grow, 0);
            }
            let end = buf.len().min(len);
            let n = self.fill(&mut buf[filled..end], &what())?;
            if n == 0 {
                if filled == 0 {
                    return Ok(false);
                }
                return Err(decode(format!(
                    "{} starting at byte {start} is truncated: the stream ends at byte {} after {filled} of its \
                     {len} bytes",
                    what(),
                    self.offset
                )));
            }
            filled += n;
        }
        buf.truncate(len);
        Ok(true)
    }
}

/// Checks a frame size against the decoding limits and returns the bytes of one packed frame (plus
/// `extra_planes` luma-sized planes). Errors are `kind`: `Decode` for sizes a file states, `InvalidArgument`
/// for the caller's.
fn checked_frame_len(
    width: u32,
    height: u32,
    format: FrameFormat,
    extra_planes: usize,
    kind: ErrorKind,
) -> Result<usize> {
    let (max_side, max_bytes) = DECODE_LIMITS;
    if width > max_side || height > max_side {
        return Err(Error::new(
            kind,
            format!("frame size {width}x{height} exceeds the decoding limit of {max_side} pixels a side"),
        ));
    }
    let len = packed_frame_len(width, height, format).map_err(|e| Error::new(kind, e.message))?;
    let total = len + extra_planes * width as usize * height as usize * format.bytes_per_sample();
    if total as u64 > max_bytes {
        return Err(Error::new(
            kind,
            format!(
                "a {width}x{height} {} frame takes {total} bytes, over the decoding limit of {} MiB",
                format.name(),
                max_bytes >> 20
            ),
        ));
    }
    Ok(total)
}

/// A Y4M (YUV4MPEG2) stream: the stream header (W, H, F, I, A, C and X tags; unknown tags ignored) and
/// frames, each a FRAME line then the planes.
///
/// Colour spaces (C tag, else XYSCSS, else 420jpeg): 420jpeg and 420 (chroma centred), 420mpeg2 (left),
/// 420paldv (top-left), 411, 422, 444, 444alpha (alpha plane skipped), mono, 420p9 … 444p16 and mono9 …
/// mono16 (little-endian): everything ffmpeg's yuv4mpegpipe writes. XCOLORRANGE=FULL or LIMITED gives the
/// range. Interlacing p, t, b and ? are read as frames; m (mixed) is refused.
pub struct Y4mReader<R: Read> {
    input: Input<R>,
    info: VideoInfo,
    /// Bytes of the planes scored, and of the alpha plane after them (skipped).
    frame_len: usize,
    payload: usize,
    buffer: Vec<u8>,
    frames: u64,
}

/// What a Y4M colour space says: subsampling, bit depth, siting where it states one, alpha plane.
fn y4m_colorspace(name: &str) -> Option<(Subsampling, u8, Option<ChromaSiting>, bool)> {
    use Subsampling::*;
    let name = name.to_ascii_lowercase();
    Some(match name.as_str() {
        "420jpeg" | "420" => (Yuv420, 8, Some(ChromaSiting::Center), false),
        "420mpeg2" => (Yuv420, 8, Some(ChromaSiting::Left), false),
        "420paldv" => (Yuv420, 8, Some(ChromaSiting::TopLeft), false),
        "411" => (Yuv411, 8, None, false),
        "422" => (Yuv422, 8, None, false),
        "444" => (Yuv444, 8, None, false),
        "444alpha" => (Yuv444, 8, None, true),
        "mono" => (Mono, 8, None, false),
        _ => {
            if let Some(bits) = name.strip_prefix("mono") {
                let bits: u8 = bits.parse().ok().filter(|b| matches!(b, 9 | 10 | 12 | 16))?;
                (Mono, bits, None, false)
            } else {
                let (sub, bits) = name.split_once('p')?;
                let sub = match sub {
                    "420" => Yuv420,
                    "422" => Yuv422,
                    "444" => Yuv444,
                    _ => return None,
                };
                (sub, bits.parse().ok().filter(|b| matches!(b, 9 | 10 | 12 | 14 | 16))?, None, false)
            }
        }
    })
}

/// The value of a tag as a positive decimal integer.
fn positive(tag: &str, value: &str, at: u64) -> Result<u32> {
    value
        .parse::<u32>()
        .ok()
        .filter(|&v| v > 0 && value.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| decode(format!("y4m header at byte {at}: {tag}{value} is not a positive integer")))
}

/// Parsed header fields: size, colour space, range, frame rate.
struct Y4mHeader {
    width: u32,
    height: u32,
    colorspace: (Subsampling, u8, Option<ChromaSiting>, bool),
    range: Option<ColorRange>,
    frame_rate: Option<(u32, u32)>,
}

/// Parses a Y4M stream header line (without its newline), the first byte of the stream being at `at`.
fn parse_y4m_header(line: &[u8], at: u64) -> Result<Y4mHeader> {
    let bad = |what: String| decode(format!("y4m header at byte {at}: {what}"));
    // ASCII, not only UTF-8: tags are split after their first byte.
    let text = std::str::from_utf8(line).ok().filter(|t| t.is_ascii()).ok_or_else(|| bad("not ASCII text".into()))?;
    let mut tokens = text.split(' ').filter(|t| !t.is_empty());
    if tokens.next() != Some("YUV4MPEG2") {
        let shown: String = text.chars().take(16).collect();
        return Err(bad(format!("no YUV4MPEG2 signature (starts with {shown:?})")));
    }
    let (mut width, mut height, mut colorspace, mut alternative, mut range, mut frame_rate) =
        (None, None, None, None, None, None);
    for token in tokens {
        let (tag, value) = token.split_at(1);
        match tag {
            "W" => width = Some(positive("W", value, at)?),
            "H" => height = Some(positive("H", value, at)?),
            "C" => {
                colorspace = Some(y4m_colorspace(value).ok_or_else(|| {
                    bad(format!(
                        "unsupported colour space C{value} (supported: 420jpeg, 420mpeg2, 420paldv, 420, 411, 422, \
                         444, 444alpha, mono, mono9/10/12/16, 420p9/10/12/14/16, 422p…, 444p…)"
                    ))
                })?)
            }
            "F" => {
                let rate = value.split_once(':').and_then(|(n, d)| Some((n.parse().ok()?, d.parse().ok()?)));
                let (n, d): (u32, u32) = rate.ok_or_else(|| bad(format!("frame rate F{value} is not N:D")))?;
                frame_rate = (n > 0 && d > 0).then_some((n, d));
            }
            "I" => match value {
                "p" | "t" | "b" | "?" => {}
                "m" => return Err(bad("mixed interlacing (Im) is not supported".into())),
                _ => return Err(bad(format!("interlacing I{value} is not p, t, b, m or ?"))),
            },
            "X" => {
                if let Some(r) = value.strip_prefix("COLORRANGE=") {
                    range = Some(match r {
                        "FULL" => ColorRange::Full,
                        "LIMITED" => ColorRange::Limited,
                        _ => return Err(bad(format!("XCOLORRANGE={r} is not FULL or LIMITED"))),
                    });
                } else if let Some(name) = value.strip_prefix("YSCSS=") {
                    alternative = y4m_colorspace(name);
                }
            }
            // A (aspect) and unknown tags carry nothing a score depends on.
            _ => {}
        }
    }
    let missing = |tag: &str| bad(format!("no {tag} tag"));
    Ok(Y4mHeader {
        width: width.ok_or_else(|| missing("W (width)"))?,
        height: height.ok_or_else(|| missing("H (height)"))?,
        colorspace: colorspace.or(alternative).unwrap_or((Subsampling::Yuv420, 8, Some(ChromaSiting::Center), false)),
        range,
        frame_rate,
    })
}

impl<R: Read> Y4mReader<R> {
    /// Reads and checks the stream header; `choice` overrides or completes its colour properties.
    pub fn new(source: R, choice: ColorChoice) -> Result<Self> {
        let mut input = Input::new(source);
        let line =
            input.line("y4m header")?.ok_or_else(|| decode("y4m stream is empty (no YUV4MPEG2 header)".into()))?;
        let header = parse_y4m_header(&line, 0)?;
        let (subsampling, bits, siting, alpha) = header.colorspace;
        let format = FrameFormat::new(subsampling, bits, super::frame::PlaneLayout::Planar)
            .map_err(|e| decode(format!("y4m header: {}", e.message)))?;
        let color = ColorSpec {
            matrix: choice.matrix.unwrap_or_default(),
            range: choice.range.or(header.range).unwrap_or_default(),
            siting: choice.siting.or(siting).unwrap_or_default(),
        };
        let (width, height) = (header.width, header.height);
        let in_header = |e: Error| e.context("y4m header");
        let frame_len = checked_frame_len(width, height, format, 0, ErrorKind::Decode).map_err(in_header)?;
        let payload = checked_frame_len(width, height, format, alpha as usize, ErrorKind::Decode).map_err(in_header)?;
        let info = VideoInfo { width, height, format, color, frame_rate: header.frame_rate };
        Ok(Y4mReader { input, info, frame_len, payload, buffer: Vec::new(), frames: 0 })
    }
}

impl<R: Read> FrameReader for Y4mReader<R> {
    fn info(&self) -> &VideoInfo {
        &self.info
    }

    fn read_frame(&mut self) -> Result<Option<Frame<'_>>> {
        let index = self.frames;
        let at = self.input.offset;
        let Some(line) = self.input.line(&format!("y4m frame {index} header"))? else { return Ok(None) };
        if line.split(|&b| b == b' ').next() != Some(b"FRAME") {
            let shown: String = String::from_utf8_lossy(&line).chars().take(16).collect();
            return Err(decode(format!("y4m frame {index}: expected FRAME at byte {at}, found {shown:?}")));
        }
        let data_at = self.input.offset;
        let what = || format!("y4m frame {index}");
        if !self.input.exact(&mut self.buffer, self.payload, &what)? {
            return Err(decode(format!(
                "y4m frame {index}: the stream ends at byte {data_at} right after its FRAME line"
            )));
        }
        self.frames += 1;
        let info = &self.info;
        Frame::packed(&self.buffer[..self.frame_len], info.width, info.height, info.format, info.color)
            .map(Some)
            .map_err(|e| decode(format!("y4m frame {index} (samples from byte {data_at}): {}", e.message)))
    }

    fn frames_read(&self) -> u64 {
        self.frames
    }
}

/// Raw frames with no header: planes tightly packed, one frame after the other, in a size and format the
/// caller states (as `ffmpeg -f rawvideo` writes them).
pub struct RawReader<R: Read> {
    input: Input<R>,
    info: VideoInfo,
    frame_len: usize,
    buffer: Vec<u8>,
    frames: u64,
}

impl<R: Read> RawReader<R> {
    /// A reader of `width`×`height` frames of `format`, mapped to RGB as `color` says.
    pub fn new(source: R, width: u32, height: u32, format: FrameFormat, color: ColorSpec) -> Result<Self> {
        let frame_len = checked_frame_len(width, height, format, 0, ErrorKind::InvalidArgument)
            .map_err(|e| e.context("raw video"))?;
        let info = VideoInfo { width, height, format, color, frame_rate: None };
        Ok(RawReader { input: Input::new(source), info, frame_len, buffer: Vec::new(), frames: 0 })
    }
}

impl<R: Read> FrameReader for RawReader<R> {
    fn info(&self) -> &VideoInfo {
        &self.info
    }

    fn read_frame(&mut self) -> Result<Option<Frame<'_>>> {
        let (index, at) = (self.frames, self.input.offset);
        let what = || format!("raw frame {index}");
        if !self.input.exact(&mut self.buffer, self.frame_len, &what)? {
            return Ok(None);
        }
        self.frames += 1;
        let info = &self.info;
        Frame::packed(&self.buffer, info.width, info.height, info.format, info.color)
            .map(Some)
            .map_err(|e| decode(format!("raw frame {index} (from byte {at}): {}", e.message)))
    }

    fn frames_read(&self) -> u64 {
        self.frames
    }
}

/// Size and format of a raw .yuv stream, which has no header to say them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFormat {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Sample layout.
    pub format: FrameFormat,
}

/// Opens a video: a file, or standard input for `-`. A stream that starts with `YUV4MPEG2` is read as Y4M;
/// anything else as raw frames of `raw`'s size and format (an error when `raw` is `None`). `choice` sets or
/// completes the colour properties.
pub fn open_video(path: &Path, raw: Option<RawFormat>, choice: ColorChoice) -> Result<Box<dyn FrameReader + Send>> {
    let shown = path.display().to_string();
    let source: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        let file = std::fs::File::open(path)
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot open video file '{shown}': {e}")))?;
        Box::new(file)
    };
    let mut source = source;
    let mut signature = [0u8; 9];
    let mut got = 0;
    while got < signature.len() {
        match source.read(&mut signature[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::new(ErrorKind::Io, format!("cannot read video '{shown}': {e}"))),
        }
    }
    let whole = std::io::Cursor::new(signature[..got].to_vec()).chain(source);
    let in_context = |e: Error| e.context(format_args!("'{shown}'"));
    if &signature[..got] == b"YUV4MPEG2" {
        return Ok(Box::new(Y4mReader::new(whole, choice).map_err(in_context)?));
    }
    let raw = raw.ok_or_else(|| {
        Error::invalid(format!(
            "'{shown}' is not a Y4M stream (no YUV4MPEG2 signature): give its size and pixel format to read it as \
             raw frames"
        ))
    })?;
    let color = ColorSpec {
        matrix: choice.matrix.unwrap_or_default(),
        range: choice.range.unwrap_or_default(),
        siting: choice.siting.unwrap_or_default(),
    };
    Ok(Box::new(RawReader::new(whole, raw.width, raw.height, raw.format, color).map_err(in_context)?))
}
