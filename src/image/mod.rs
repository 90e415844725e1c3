//! Pixels in: caller buffers in every supported format and decoded files, turned into the N×3×H×W float
//! tensor in [0,1] that every metric takes.
pub mod colour;
mod decode;
mod pixels;

pub use decode::{decode_file, DecodedImage, DECODE_LIMITS};
pub use pixels::{to_batch_tensor, Image, PixelFormat};
