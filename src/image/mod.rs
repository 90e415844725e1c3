//! Pixels in: caller buffers in every supported format ([`Image`], [`PixelFormat`]), decoded files
//! ([`decode_file`]) and video frames ([`Frame`], read from Y4M and raw streams by [`open_video`]), turned into
//! the N×3×H×W float tensor with values in 0..1 that every metric takes.
pub(crate) mod colour;
mod decode;
mod frame;
mod pixels;
mod video_file;
mod yuv;

pub use decode::{decode_file, decode_pair, DecodedImage, DECODE_LIMITS, IMAGE_EXTENSIONS};
pub use frame::{
    packed_frame_len, ChromaSiting, ColorMatrix, ColorRange, ColorSpec, Frame, FrameBuf, FrameFormat, PlaneLayout,
    Subsampling,
};
pub(crate) use pixels::to_batch_tensor;
pub use pixels::{Image, PixelFormat};
pub use video_file::{open_video, ColorChoice, FrameReader, RawFormat, RawReader, VideoInfo, Y4mReader};
pub(crate) use yuv::{frames_to_batch_tensor, frames_to_staged_tensor, RowConverter};
