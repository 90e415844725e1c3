//! Pixels in: caller buffers in every supported format ([`Image`], [`PixelFormat`]) and decoded files
//! ([`decode_file`]), turned into the N×3×H×W float tensor with values in 0..1 that every metric takes.
pub(crate) mod colour;
mod decode;
mod pixels;

pub use decode::{decode_file, DecodedImage, DECODE_LIMITS, IMAGE_EXTENSIONS};
pub(crate) use pixels::to_batch_tensor;
pub use pixels::{Image, PixelFormat};
