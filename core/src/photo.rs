//! Photos: decode under strict limits, keep only the pixels, make a thumbnail, hash.
//!
//! A photo taken during an inspection is evidence, and it is also a liability. A camera
//! writes far more than pixels into the file: EXIF carries the GPS position of the ward,
//! the camera's serial number and the maker's notes; XMP can carry names and editing
//! history; most cameras embed a second, smaller JPEG (the EXIF thumbnail) that tools which
//! "remove metadata" often leave behind. And a file that arrives as a photo may be something
//! else: HTML renamed to `.jpg`, a JPEG with a ZIP appended (a polyglot), or a tiny PNG whose
//! header claims 60000 x 60000 pixels so that a naive decoder asks for 14 GB
//! (RELIABILITY B4, B5, B7).
//!
//! So this module never edits metadata out of a file, which fails open: whatever the editor
//! does not know about survives. It **decodes the pixels and encodes a new file from them**,
//! so nothing that is not a pixel can survive, whether or not we know what it was. EXIF
//! orientation is the one piece of metadata that changes what the photo shows, so it is
//! applied to the pixels first, and the new file carries no orientation tag.
//!
//! Decoding is where hostile input does its damage, so the order matters:
//!
//! 1. refuse input longer than [`Limits::max_input_bytes`] before looking at it;
//! 2. name the format from its magic bytes ([`sniff`]), never from a file name;
//! 3. read the width and height from the header alone (a few hundred bytes at most) and
//!    refuse what is over the limits before any decoder allocates a pixel buffer;
//! 4. decode with `image::Limits` (width, height, allocation) as a second line, after
//!    checking that the decoded buffer fits [`Limits::max_alloc`];
//! 5. apply the orientation; re-encode (JPEG in: JPEG out at [`JPEG_QUALITY`]; PNG in: PNG
//!    out; WebP in: JPEG, or PNG when it has alpha); make a JPEG thumbnail
//!    [`THUMBNAIL_LONG_SIDE`] px on its long side; hash the stored bytes.
//!
//! The SHA-256 of the stored bytes, in lowercase hex, is the photo's id: documents refer to
//! a photo by it and the server skips uploads it already holds. Encoding is deterministic,
//! so the same input always gives the same id. The server re-checks an upload with
//! [`verify`], which decodes it under the same limits and refuses anything not in the stored
//! form (metadata segments or chunks, bytes after the end of the image) without re-encoding
//! it, since re-encoding would change the id.
//!
//! Colour profiles (ICC) are dropped with the rest: photos from the cameras in use are sRGB,
//! and a profile can name the device that made it. An animated WebP or PNG is stored as its
//! first frame, a still like any other photo.
//!
//! Encoding a 12-megapixel JPEG is most of the time [`process`] takes, so a large JPEG is
//! encoded in strips on every core and the strips are joined with restart markers, a
//! standard baseline JPEG feature that every decoder reads. The strip height depends on the
//! image alone, so the bytes (and the id) do not depend on the machine.
//!
//! ```
//! use wardcheck_core::photo::{self, Limits};
//!
//! // A 640 x 480 PNG made in memory stands in for a photo from the camera.
//! let pixels = image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([x as u8, y as u8, 90]));
//! let mut png = Vec::new();
//! image::DynamicImage::ImageRgb8(pixels)
//!     .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
//!     .unwrap();
//!
//! let photo = photo::process(&png, &Limits::default()).unwrap();
//! assert_eq!((photo.width, photo.height, photo.mime), (640, 480, "image/png"));
//! assert_eq!((photo.thumb_width, photo.thumb_height), (320, 240));
//! assert_eq!(photo.id, photo::sha256_hex(&photo.bytes));
//! assert_eq!(photo::verify(&photo.bytes, &Limits::default()).unwrap(), (640, 480, "image/png"));
//! ```

use std::borrow::Cow;
use std::fmt;
use std::io::Cursor;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::error::LimitErrorKind;
use image::metadata::Orientation;
use image::{DynamicImage, ExtendedColorType, ImageDecoder, ImageError, ImageFormat, ImageReader};
use sha2::{Digest, Sha256};

/// Longest input accepted, in bytes. A 50-megapixel phone JPEG is 15-25 MB; 40 MiB leaves
/// room for a detailed PNG screenshot while bounding the copy the JPEG decoder makes of its
/// input and the time spent before we refuse a file (the server's body limit is set from it).
pub const MAX_INPUT_BYTES: usize = 40 * 1024 * 1024;

/// Widest and tallest image accepted, in pixels. Cameras in phones and tablets make images
/// up to about 8,200 px on the long side (50 MP at 4:3); 12,000 leaves room for a short
/// panorama. JPEG headers can claim 65,535 and WebP's 16 million, in a file of a few bytes.
pub const MAX_DIMENSION: u32 = 12_000;

/// Most pixels accepted: 50 megapixels, the full-resolution mode of the largest phone
/// sensors in use. It bounds a decoded RGBA image at 200 MB, so a 12,000 x 12,000 image
/// (144 MP) is refused even though each side is within [`MAX_DIMENSION`].
pub const MAX_PIXELS: u64 = 50_000_000;

/// Most memory one decode may allocate, in bytes: the decoded buffer is checked against it
/// before decoding, and it is passed to the decoders as `image::Limits::max_alloc` for what
/// they allocate inside (PNG text chunks, WebP frames). 256 MiB holds [`MAX_PIXELS`] at 8-bit
/// RGBA; a 50 MP PNG at 16 bits per channel (300 MB) is refused rather than risk running a
/// tablet out of memory in the middle of an inspection.
pub const MAX_ALLOC: u64 = 256 * 1024 * 1024;

/// JPEG quality of stored photos (1-100): at 85 small print on a screen or a label stays
/// legible, at about half the size of quality 95.
pub const JPEG_QUALITY: u8 = 85;

/// Long side of a thumbnail, in pixels: a cell of the app's photo grid (160 px) on a screen
/// at twice the density. Smaller images are not enlarged.
pub const THUMBNAIL_LONG_SIDE: u32 = 320;

/// JPEG quality of thumbnails: a thumbnail is for finding a photo, not for reading it.
pub const THUMBNAIL_QUALITY: u8 = 80;

/// Rows of pixels per strip when a large JPEG is encoded on several cores (a multiple of 8,
/// the JPEG block height). 256 rows make 12 strips of a 4000 x 3000 photo: enough to keep
/// every core busy to the end, while each restart marker between strips costs 2 bytes.
/// It depends on nothing but the image, so the stored bytes, and the id, are the same on
/// every machine whatever its number of cores.
pub const JPEG_STRIP_ROWS: u32 = 256;

/// The limits a photo is decoded under. [`Limits::default`] holds the named constants of
/// this module; tests and the server may tighten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest input, in bytes ([`MAX_INPUT_BYTES`]).
    pub max_input_bytes: usize,
    /// Widest image, in pixels ([`MAX_DIMENSION`]).
    pub max_width: u32,
    /// Tallest image, in pixels ([`MAX_DIMENSION`]).
    pub max_height: u32,
    /// Most pixels, width times height ([`MAX_PIXELS`]).
    pub max_pixels: u64,
    /// Most bytes one decode may allocate ([`MAX_ALLOC`]).
    pub max_alloc: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: MAX_INPUT_BYTES,
            max_width: MAX_DIMENSION,
            max_height: MAX_DIMENSION,
            max_pixels: MAX_PIXELS,
            max_alloc: MAX_ALLOC,
        }
    }
}

impl Limits {
    fn check_size(&self, width: u32, height: u32) -> Result<(), PhotoError> {
        let pixels = u64::from(width) * u64::from(height);
        if width > self.max_width || height > self.max_height || pixels > self.max_pixels {
            return Err(PhotoError::TooLarge { width, height });
        }
        Ok(())
    }

    /// The same limits in the form the `image` crate's decoders take.
    fn for_decoder(&self) -> image::Limits {
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(self.max_width);
        limits.max_image_height = Some(self.max_height);
        limits.max_alloc = Some(self.max_alloc);
        limits
    }
}

/// The image formats accepted, as told by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormatKind {
    /// JPEG/JFIF/EXIF: starts `FF D8 FF`.
    Jpeg,
    /// PNG: starts with the 8-byte PNG signature.
    Png,
    /// WebP: a RIFF container of form type `WEBP`.
    WebP,
}

impl ImageFormatKind {
    /// The format's short lowercase name, as used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            ImageFormatKind::Jpeg => "jpeg",
            ImageFormatKind::Png => "png",
            ImageFormatKind::WebP => "webp",
        }
    }

    /// The format's MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormatKind::Jpeg => "image/jpeg",
            ImageFormatKind::Png => "image/png",
            ImageFormatKind::WebP => "image/webp",
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            ImageFormatKind::Jpeg => ImageFormat::Jpeg,
            ImageFormatKind::Png => ImageFormat::Png,
            ImageFormatKind::WebP => ImageFormat::WebP,
        }
    }
}

impl fmt::Display for ImageFormatKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a photo was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PhotoError {
    /// The input is longer than [`Limits::max_input_bytes`]; nothing else was read.
    #[error("photo is {len} bytes, more than the {max} allowed")]
    InputTooLarge { len: usize, max: usize },
    /// The bytes are not JPEG, PNG or WebP; `looks_like` says what they seem to be
    /// ("html", "svg", "heic", "zip", "empty", "unknown"...).
    #[error("not a jpeg, png or webp image: the bytes look like {looks_like}")]
    UnsupportedFormat { looks_like: &'static str },
    /// The header declares more pixels than the limits allow; refused before decoding.
    #[error("image too large: {width} x {height} pixels")]
    TooLarge { width: u32, height: u32 },
    /// Decoding would allocate more than [`Limits::max_alloc`].
    #[error("image needs more than the {limit} bytes of memory a decode may use")]
    MemoryLimit { limit: u64 },
    /// The bytes start like `format` but do not decode: truncated, damaged or forged.
    #[error("corrupt {format} image: {reason}")]
    Corrupt {
        format: &'static str,
        reason: String,
    },
    /// A valid file using a feature the decoder does not support (e.g. arithmetic-coded JPEG).
    #[error("{format} image uses a feature that cannot be decoded: {detail}")]
    UnsupportedFeature {
        format: &'static str,
        detail: String,
    },
    /// [`verify`] only: the image decodes but is not in the form [`process`] stores.
    #[error("not a stored photo: {reason}")]
    NotStoredForm { reason: String },
    /// Encoding the stored image or thumbnail failed (a bug, not bad input).
    #[error("could not encode the {what}: {reason}")]
    Encode { what: &'static str, reason: String },
}

/// A photo ready to store: only pixels, orientation applied, with its thumbnail and id.
#[derive(Clone, PartialEq, Eq)]
pub struct ProcessedPhoto {
    /// SHA-256 of `bytes`, lowercase hex: the photo's id and storage key.
    pub id: String,
    /// MIME type of `bytes`: `image/jpeg` or `image/png`.
    pub mime: &'static str,
    /// The stored image, re-encoded from pixels.
    pub bytes: Vec<u8>,
    /// Width of the stored image, after orientation.
    pub width: u32,
    /// Height of the stored image, after orientation.
    pub height: u32,
    /// The thumbnail, a JPEG.
    pub thumbnail: Vec<u8>,
    /// Width of the thumbnail.
    pub thumb_width: u32,
    /// Height of the thumbnail.
    pub thumb_height: u32,
}

impl fmt::Debug for ProcessedPhoto {
    // Byte vectors of megabytes are left out: a failed assertion should stay readable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessedPhoto")
            .field("id", &self.id)
            .field("mime", &self.mime)
            .field("bytes", &format_args!("{} bytes", self.bytes.len()))
            .field("width", &self.width)
            .field("height", &self.height)
            .field("thumbnail", &format_args!("{} bytes", self.thumbnail.len()))
            .field("thumb_width", &self.thumb_width)
            .field("thumb_height", &self.thumb_height)
            .finish()
    }
}

/// Turns a photo as it came from the camera or a file into the form we store: decoded
/// under `limits`, orientation applied, re-encoded from pixels alone, with a thumbnail and
/// its id (the SHA-256 of the stored bytes).
pub fn process(bytes: &[u8], limits: &Limits) -> Result<ProcessedPhoto, PhotoError> {
    let Decoded {
        mut image,
        mut orientation,
        kind,
    } = decode(bytes, limits)?;

    // WebP is a delivery format, not one we serve: store it as JPEG, or PNG when it has
    // alpha so that transparent parts stay transparent.
    let stored_kind = match kind {
        ImageFormatKind::WebP if image.color().has_alpha() => ImageFormatKind::Png,
        ImageFormatKind::WebP => ImageFormatKind::Jpeg,
        kind => kind,
    };
    if stored_kind == ImageFormatKind::Png {
        // The PNG encoder takes the whole image: orient it first. (A JPEG is oriented strip
        // by strip as it is encoded, which saves a copy of the whole image.)
        image.apply_orientation(orientation);
        orientation = Orientation::NoTransforms;
    }
    let (width, height) = oriented_size(image.width(), image.height(), orientation);
    let (thumb_width, thumb_height) = thumbnail_size(width, height);

    // The thumbnail is made while the stored image is encoded.
    let (stored, thumbnail) = std::thread::scope(|scope| {
        let thumbnail =
            scope.spawn(|| encode_thumbnail(&image, orientation, thumb_width, thumb_height));
        let stored = match stored_kind {
            ImageFormatKind::Png => encode_png(&image),
            _ => encode_jpeg(&image, orientation, JPEG_QUALITY, "stored jpeg"),
        };
        let thumbnail = thumbnail.join().unwrap_or_else(|_| {
            Err(PhotoError::Encode {
                what: "thumbnail",
                reason: "the encoder panicked".into(),
            })
        });
        (stored, thumbnail)
    });
    let (stored, thumbnail) = (stored?, thumbnail?);

    Ok(ProcessedPhoto {
        id: sha256_hex(&stored),
        mime: stored_kind.mime(),
        bytes: stored,
        width,
        height,
        thumbnail,
        thumb_width,
        thumb_height,
    })
}

/// Checks an image already in stored form, as the server does with each upload: within
/// `limits`, JPEG or PNG, no metadata segments or chunks, nothing after the end of the
/// image, and every pixel decodes. Returns its width, height and MIME type.
///
/// It does not re-encode: the bytes are kept as they are, so their hash stays the id.
pub fn verify(bytes: &[u8], limits: &Limits) -> Result<(u32, u32, &'static str), PhotoError> {
    let (decoded, kind) = decode_stored(bytes, limits)?;
    Ok((decoded.image.width(), decoded.image.height(), kind.mime()))
}

/// A photo in stored form as the server gives it back (another device took it): checked
/// as [`verify`] checks it, kept byte for byte so that its hash stays its id, and given
/// a thumbnail.
pub fn from_stored(bytes: Vec<u8>, limits: &Limits) -> Result<ProcessedPhoto, PhotoError> {
    let (decoded, kind) = decode_stored(&bytes, limits)?;
    let (width, height) = oriented_size(
        decoded.image.width(),
        decoded.image.height(),
        decoded.orientation,
    );
    let (thumb_width, thumb_height) = thumbnail_size(width, height);
    let thumbnail = encode_thumbnail(
        &decoded.image,
        decoded.orientation,
        thumb_width,
        thumb_height,
    )?;
    Ok(ProcessedPhoto {
        id: sha256_hex(&bytes),
        mime: kind.mime(),
        bytes,
        width,
        height,
        thumbnail,
        thumb_width,
        thumb_height,
    })
}

/// The checks of [`verify`], and the decoded image.
fn decode_stored(bytes: &[u8], limits: &Limits) -> Result<(Decoded, ImageFormatKind), PhotoError> {
    check_input_len(bytes, limits)?;
    let kind = sniff(bytes).ok_or(PhotoError::UnsupportedFormat {
        looks_like: looks_like(bytes),
    })?;
    match kind {
        ImageFormatKind::Jpeg => jpeg_stored_form(bytes)?,
        ImageFormatKind::Png => png_stored_form(bytes)?,
        ImageFormatKind::WebP => {
            return Err(PhotoError::NotStoredForm {
                reason: "webp is re-encoded to jpeg or png before it is stored".into(),
            });
        }
    }
    Ok((decode(bytes, limits)?, kind))
}

/// Names the image format from its first bytes, or `None` when it is not one we accept.
/// File names and declared MIME types are never consulted: they are whatever the sender
/// says they are.
pub fn sniff(bytes: &[u8]) -> Option<ImageFormatKind> {
    const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormatKind::Jpeg)
    } else if bytes.starts_with(PNG_SIGNATURE) {
        Some(ImageFormatKind::Png)
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(ImageFormatKind::WebP)
    } else {
        None
    }
}

/// SHA-256 of `bytes` as 64 lowercase hex digits: a stored photo's id.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A decoded image as stored in the file, the orientation to apply to it, and the format
/// it came in.
struct Decoded {
    image: DynamicImage,
    orientation: Orientation,
    kind: ImageFormatKind,
}

fn check_input_len(bytes: &[u8], limits: &Limits) -> Result<(), PhotoError> {
    if bytes.len() > limits.max_input_bytes {
        return Err(PhotoError::InputTooLarge {
            len: bytes.len(),
            max: limits.max_input_bytes,
        });
    }
    Ok(())
}

/// Steps 1 to 4 of the module doc, and the orientation to apply (read, not yet applied).
fn decode(bytes: &[u8], limits: &Limits) -> Result<Decoded, PhotoError> {
    check_input_len(bytes, limits)?;
    let kind = sniff(bytes).ok_or(PhotoError::UnsupportedFormat {
        looks_like: looks_like(bytes),
    })?;

    let header = read_header(kind, bytes)?;
    limits.check_size(header.width, header.height)?;
    if !header.complete {
        // The JPEG decoder fills missing data with grey rather than failing; a half-grey
        // photo must not be stored as evidence.
        return Err(corrupt(
            kind,
            "the file ends before its end-of-image marker (truncated?)",
        ));
    }

    // The decoders are well fuzzed upstream, but this is the one place where bytes from
    // outside meet parsing code we do not own: a panic in a decoder becomes a refusal,
    // not a crashed app or server task. (The workspace builds with panic = "unwind".)
    let image_limits = limits.for_decoder();
    let (image, orientation) = catch_unwind(AssertUnwindSafe(|| {
        decode_pixels(kind, bytes, image_limits, limits, &header)
    }))
    .unwrap_or_else(|_| Err(corrupt(kind, "the decoder failed on this input")))?;
    Ok(Decoded {
        image,
        orientation,
        kind,
    })
}

fn decode_pixels(
    kind: ImageFormatKind,
    bytes: &[u8],
    image_limits: image::Limits,
    limits: &Limits,
    header: &Header,
) -> Result<(DynamicImage, Orientation), PhotoError> {
    let map_err = |e| from_image_error(kind, e, header, limits);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), kind.image_format());
    reader.limits(image_limits);
    let mut decoder = reader.into_decoder().map_err(map_err)?;

    // Our header reading and the decoder's should agree; if they do not, the decoder's
    // is the one that will allocate, so it is checked too.
    let (width, height) = decoder.dimensions();
    limits.check_size(width, height)?;
    if decoder.total_bytes() > limits.max_alloc {
        return Err(PhotoError::MemoryLimit {
            limit: limits.max_alloc,
        });
    }

    // A damaged EXIF block should not cost the photo: its pixels are still good, and
    // without a readable orientation we show them as stored.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder).map_err(map_err)?;
    Ok((image, orientation))
}

fn corrupt(kind: ImageFormatKind, reason: impl Into<String>) -> PhotoError {
    PhotoError::Corrupt {
        format: kind.name(),
        reason: reason.into(),
    }
}

fn from_image_error(
    kind: ImageFormatKind,
    err: ImageError,
    header: &Header,
    limits: &Limits,
) -> PhotoError {
    match err {
        ImageError::Limits(e) => match e.kind() {
            LimitErrorKind::DimensionError => PhotoError::TooLarge {
                width: header.width,
                height: header.height,
            },
            _ => PhotoError::MemoryLimit {
                limit: limits.max_alloc,
            },
        },
        ImageError::Unsupported(e) => PhotoError::UnsupportedFeature {
            format: kind.name(),
            detail: e.to_string(),
        },
        // Input is in memory, so an I/O error means the decoder ran off the end.
        ImageError::IoError(e) => corrupt(kind, format!("the file ends too early ({e})")),
        other => corrupt(kind, other.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// Headers: width and height from the first bytes, before any decoder runs.

/// What the header says, read without touching pixel data.
struct Header {
    width: u32,
    height: u32,
    /// False when the file visibly ends early (a JPEG with no end-of-image marker).
    complete: bool,
}

fn read_header(kind: ImageFormatKind, bytes: &[u8]) -> Result<Header, PhotoError> {
    let (width, height, complete) = match kind {
        ImageFormatKind::Jpeg => jpeg_header(bytes)?,
        ImageFormatKind::Png => {
            let (w, h) = png_header(bytes)?;
            (w, h, true)
        }
        ImageFormatKind::WebP => {
            let (w, h) = webp_header(bytes)?;
            (w, h, true)
        }
    };
    if width == 0 || height == 0 {
        return Err(corrupt(
            kind,
            format!("the header declares {width} x {height} pixels"),
        ));
    }
    Ok(Header {
        width,
        height,
        complete,
    })
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn le16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn le24(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 3)?;
    Some(u32::from(b[0]) | (u32::from(b[1]) << 8) | (u32::from(b[2]) << 16))
}

/// JPEG markers that stand alone, with no length: TEM and RST0-7.
fn is_standalone_marker(marker: u8) -> bool {
    matches!(marker, 0x01 | 0xD0..=0xD7)
}

/// SOF0-SOF15 are frame headers, except DHT (C4), JPG (C8) and DAC (CC).
fn is_frame_marker(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

/// Walks a JPEG's marker segments to the first frame header (SOFn) and then to the first
/// scan (SOS). Returns the frame's width and height, and whether an end-of-image marker
/// follows the scan. As lenient as the decoder about stray bytes between segments.
fn jpeg_header(bytes: &[u8]) -> Result<(u32, u32, bool), PhotoError> {
    let kind = ImageFormatKind::Jpeg;
    let mut frame: Option<(u32, u32)> = None;
    let mut pos = 2; // after SOI
    loop {
        let Some(skip) = bytes[pos.min(bytes.len())..]
            .iter()
            .position(|&b| b == 0xFF)
        else {
            // Ran out before the first scan. A frame header already read still decides
            // TooLarge, so a forged size is reported as such even in a cut-off file.
            return match frame {
                Some((w, h)) => Ok((w, h, false)),
                None => Err(corrupt(
                    kind,
                    "no frame header (SOF) before the end of the file",
                )),
            };
        };
        pos += skip;
        while bytes.get(pos) == Some(&0xFF) {
            pos += 1; // fill bytes
        }
        let Some(&marker) = bytes.get(pos) else {
            continue; // the position() above then finds nothing and reports
        };
        pos += 1;
        if is_standalone_marker(marker) || marker == 0x00 {
            continue;
        }
        if matches!(marker, 0xD8 | 0xD9) {
            return Err(corrupt(
                kind,
                "no image data (SOS) before the end of the image",
            ));
        }
        let Some(len) = be16(bytes, pos).map(usize::from) else {
            pos = bytes.len();
            continue;
        };
        if len < 2 {
            return Err(corrupt(
                kind,
                format!("segment {marker:02X} has a length of {len}"),
            ));
        }
        let body = bytes.get(pos + 2..pos + len);
        if is_frame_marker(marker) && frame.is_none() {
            // precision (1), height (2), width (2)
            let size = body.and_then(|b| Some((be16(b, 3)?, be16(b, 1)?)));
            match size {
                Some((w, h)) => frame = Some((u32::from(w), u32::from(h))),
                None => return Err(corrupt(kind, "the frame header (SOF) is cut off")),
            }
        }
        pos += len;
        if marker == 0xDA {
            let Some((w, h)) = frame else {
                return Err(corrupt(
                    kind,
                    "image data (SOS) before the frame header (SOF)",
                ));
            };
            let rest = bytes.get(pos..).unwrap_or_default();
            // Inside entropy-coded data every FF is followed by 00 or an RST marker, so an
            // FF D9 after the first scan is the end of the image. Searched from the end,
            // where it is in a whole file.
            let complete = rest.windows(2).rev().any(|w| w == [0xFF, 0xD9]);
            return Ok((w, h, complete));
        }
    }
}

/// Width and height from the IHDR chunk, which the PNG standard puts first.
fn png_header(bytes: &[u8]) -> Result<(u32, u32), PhotoError> {
    let kind = ImageFormatKind::Png;
    if bytes.get(12..16) != Some(b"IHDR") {
        return Err(corrupt(kind, "the first chunk is not IHDR"));
    }
    match (be32(bytes, 16), be32(bytes, 20)) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err(corrupt(kind, "the IHDR chunk is cut off")),
    }
}

/// Width and height from the first chunk of a WebP: VP8 (lossy), VP8L (lossless) or VP8X
/// (extended: the canvas size).
fn webp_header(bytes: &[u8]) -> Result<(u32, u32), PhotoError> {
    let kind = ImageFormatKind::WebP;
    let cut = || corrupt(kind, "the first chunk is cut off");
    match bytes.get(12..16) {
        Some(b"VP8 ") => {
            // frame tag (3), start code 9D 01 2A, then 14-bit width and height
            if bytes.get(23..26) != Some(&[0x9D, 0x01, 0x2A]) {
                return Err(corrupt(kind, "the VP8 frame has no start code"));
            }
            let w = le16(bytes, 26).ok_or_else(cut)? & 0x3FFF;
            let h = le16(bytes, 28).ok_or_else(cut)? & 0x3FFF;
            Ok((u32::from(w), u32::from(h)))
        }
        Some(b"VP8L") => {
            if bytes.get(20) != Some(&0x2F) {
                return Err(corrupt(kind, "the VP8L chunk has no signature"));
            }
            let bits = bytes
                .get(21..25)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(cut)?;
            Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        Some(b"VP8X") => {
            let w = le24(bytes, 24).ok_or_else(cut)? + 1;
            let h = le24(bytes, 27).ok_or_else(cut)? + 1;
            Ok((w, h))
        }
        Some(other) => Err(corrupt(
            kind,
            format!(
                "unknown first chunk {:?}",
                String::from_utf8_lossy(other).escape_debug().to_string()
            ),
        )),
        None => Err(cut()),
    }
}

// ---------------------------------------------------------------------------------------
// The stored form, as `verify` checks it.

/// A stored JPEG is SOI, a plain JFIF APP0, tables, frame, scans and EOI as the last two
/// bytes: no APP1-APP15 (EXIF, XMP, ICC, MPF, IPTC...), no comments, no JFIF thumbnail,
/// nothing appended.
fn jpeg_stored_form(bytes: &[u8]) -> Result<(), PhotoError> {
    let kind = ImageFormatKind::Jpeg;
    let not_stored = |reason: String| PhotoError::NotStoredForm { reason };
    let truncated = || {
        corrupt(
            kind,
            "the file ends before its end-of-image marker (truncated?)",
        )
    };
    let mut pos = 2;
    loop {
        if bytes.get(pos) != Some(&0xFF) {
            return match bytes.get(pos) {
                None => Err(truncated()),
                Some(_) => Err(not_stored(format!("stray bytes at offset {pos}"))),
            };
        }
        let marker = *bytes.get(pos + 1).ok_or_else(truncated)?;
        pos += 2;
        match marker {
            0xFF => {
                pos -= 1; // a fill byte; the next FF starts the marker
                continue;
            }
            0xD9 if pos == bytes.len() => return Ok(()),
            0xD9 => {
                return Err(not_stored(format!(
                    "{} bytes after the end-of-image marker",
                    bytes.len() - pos
                )));
            }
            m if is_standalone_marker(m) => continue,
            _ => {}
        }
        let len = usize::from(be16(bytes, pos).ok_or_else(truncated)?);
        if len < 2 {
            return Err(corrupt(
                kind,
                format!("segment {marker:02X} has a length of {len}"),
            ));
        }
        let body = bytes.get(pos + 2..pos + len).ok_or_else(truncated)?;
        pos += len;
        match marker {
            // JFIF: "JFIF\0", version (2), units (1), density (4), thumbnail width and
            // height (1 each) which must be zero.
            0xE0 if body.starts_with(b"JFIF\0") && body.get(12..14) == Some(&[0, 0]) => {}
            0xE0 => {
                return Err(not_stored(
                    "an APP0 segment other than a plain JFIF header".into(),
                ));
            }
            0xE1..=0xEF => {
                let what = match marker {
                    0xE1 => "EXIF or XMP",
                    0xE2 => "ICC profile or MPF",
                    0xED => "IPTC",
                    _ => "application data",
                };
                return Err(not_stored(format!(
                    "an APP{} segment ({what})",
                    marker - 0xE0
                )));
            }
            0xFE => return Err(not_stored("a comment (COM) segment".into())),
            0xDA => {
                // Skip the entropy-coded data to the next marker: FF 00 is a stuffed FF,
                // FF D0-D7 a restart marker, FF FF fill.
                loop {
                    let skip = bytes[pos.min(bytes.len())..]
                        .iter()
                        .position(|&b| b == 0xFF)
                        .ok_or_else(truncated)?;
                    pos += skip;
                    match bytes.get(pos + 1) {
                        None => return Err(truncated()),
                        Some(0x00 | 0xD0..=0xD7) => pos += 2,
                        Some(0xFF) => pos += 1,
                        Some(_) => break,
                    }
                }
            }
            _ => {}
        }
    }
}

/// A stored PNG has only the chunks that describe pixels, and ends with IEND: no text
/// (tEXt, zTXt, iTXt), no eXIf, no iCCP, no time, no animation, nothing appended.
fn png_stored_form(bytes: &[u8]) -> Result<(), PhotoError> {
    const PIXEL_CHUNKS: [&[u8; 4]; 10] = [
        b"IHDR", b"PLTE", b"IDAT", b"tRNS", b"sRGB", b"gAMA", b"cHRM", b"sBIT", b"bKGD", b"pHYs",
    ];
    let kind = ImageFormatKind::Png;
    let mut pos = 8;
    loop {
        let len = be32(bytes, pos).ok_or_else(|| corrupt(kind, "the file ends before IEND"))?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| (pos + 12).checked_add(len))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| corrupt(kind, "a chunk runs past the end of the file"))?;
        let chunk_type = &bytes[pos + 4..pos + 8];
        if chunk_type == b"IEND" {
            return match bytes.len() - end {
                0 => Ok(()),
                extra => Err(PhotoError::NotStoredForm {
                    reason: format!("{extra} bytes after the IEND chunk"),
                }),
            };
        }
        if !PIXEL_CHUNKS.iter().any(|t| t[..] == *chunk_type) {
            return Err(PhotoError::NotStoredForm {
                reason: format!(
                    "a png {} chunk",
                    String::from_utf8_lossy(chunk_type).escape_debug()
                ),
            });
        }
        pos = end;
    }
}

// ---------------------------------------------------------------------------------------
// Encoding.

/// Encodes `image`, turned by `orientation`, as a baseline JPEG. A large image is cut into
/// strips of [`JPEG_STRIP_ROWS`] rows, each oriented and encoded on its own, on all cores
/// at once, and joined with restart markers ([`join_jpeg_strips`]); a small one is encoded
/// in one piece.
fn encode_jpeg(
    image: &DynamicImage,
    orientation: Orientation,
    quality: u8,
    what: &'static str,
) -> Result<Vec<u8>, PhotoError> {
    let converted;
    let (raw, color, channels) = match image {
        DynamicImage::ImageLuma8(gray) => (gray.as_raw(), ExtendedColorType::L8, 1),
        DynamicImage::ImageRgb8(rgb) => (rgb.as_raw(), ExtendedColorType::Rgb8, 3),
        other => {
            converted = other.to_rgb8();
            (converted.as_raw(), ExtendedColorType::Rgb8, 3)
        }
    };
    let source = Pixels {
        raw,
        width: image.width(),
        height: image.height(),
        channels,
    };
    let (width, height) = oriented_size(source.width, source.height, orientation);
    let strip_rows = jpeg_strip_rows(width);
    let strip = |i: u32| {
        let rows = i * strip_rows..height.min((i + 1) * strip_rows);
        let count = rows.len() as u32;
        (source.oriented_rows(orientation, rows), count)
    };
    let fail = |reason: String| PhotoError::Encode { what, reason };

    let strips = height.div_ceil(strip_rows);
    if strips == 1 {
        let (pixels, rows) = strip(0);
        return encode_jpeg_piece(&pixels, width, rows, color, quality)
            .map_err(|e| fail(e.to_string()));
    }
    let indices: Vec<u32> = (0..strips).collect();
    let encoded = encode_in_parallel(&indices, |&i| {
        let (pixels, rows) = strip(i);
        encode_jpeg_piece(&pixels, width, rows, color, quality).map_err(|e| e.to_string())
    })
    .map_err(fail)?;
    join_jpeg_strips(&encoded, width, height, strip_rows)
        .ok_or_else(|| fail("the encoder wrote a layout the strip joiner does not know".into()))
}

/// Width and height after `orientation` is applied.
fn oriented_size(width: u32, height: u32, orientation: Orientation) -> (u32, u32) {
    match orientation {
        Orientation::Rotate90
        | Orientation::Rotate270
        | Orientation::Rotate90FlipH
        | Orientation::Rotate270FlipH => (height, width),
        _ => (width, height),
    }
}

/// 8-bit pixels, row by row, `channels` bytes each.
struct Pixels<'a> {
    raw: &'a [u8],
    width: u32,
    height: u32,
    channels: usize,
}

impl Pixels<'_> {
    /// Rows `rows` of the image as it looks once `orientation` is applied: borrowed when
    /// there is nothing to turn, otherwise copied pixel by pixel from where they are.
    fn oriented_rows(&self, orientation: Orientation, rows: Range<u32>) -> Cow<'_, [u8]> {
        let (w, h, ch) = (self.width as usize, self.height as usize, self.channels);
        if orientation == Orientation::NoTransforms {
            return Cow::Borrowed(
                &self.raw[rows.start as usize * w * ch..rows.end as usize * w * ch],
            );
        }
        let (out_width, _) = oriented_size(self.width, self.height, orientation);
        let out_width = out_width as usize;
        // Where the pixel shown at (x, y) is stored, as image's `apply_orientation` turns it,
        // and how far the source moves (dx, dy) for each step right in the result.
        let source = |x: usize, y: usize| -> (usize, usize) {
            match orientation {
                Orientation::NoTransforms => (x, y),
                Orientation::FlipHorizontal => (w - 1 - x, y),
                Orientation::FlipVertical => (x, h - 1 - y),
                Orientation::Rotate180 => (w - 1 - x, h - 1 - y),
                Orientation::Rotate90 => (y, h - 1 - x),
                Orientation::Rotate270 => (w - 1 - y, x),
                Orientation::Rotate90FlipH => (y, x),
                Orientation::Rotate270FlipH => (w - 1 - y, h - 1 - x),
            }
        };
        let (dx, dy): (isize, isize) = match orientation {
            Orientation::NoTransforms | Orientation::FlipVertical => (1, 0),
            Orientation::FlipHorizontal | Orientation::Rotate180 => (-1, 0),
            Orientation::Rotate90 | Orientation::Rotate270FlipH => (0, -1),
            Orientation::Rotate270 | Orientation::Rotate90FlipH => (0, 1),
        };
        let step = (dy * w as isize + dx) * ch as isize;

        let mut out = vec![0u8; rows.len() * out_width * ch];
        let first = |y: u32| {
            let (sx, sy) = source(0, y as usize);
            ((sy * w + sx) * ch) as isize
        };
        // Pixel sizes known at compile time turn each pixel's copy into a move, not a call.
        match ch {
            1 => turn::<1>(self.raw, &mut out, out_width, rows, first, step),
            2 => turn::<2>(self.raw, &mut out, out_width, rows, first, step),
            3 => turn::<3>(self.raw, &mut out, out_width, rows, first, step),
            4 => turn::<4>(self.raw, &mut out, out_width, rows, first, step),
            other => unreachable!("{other}-byte pixels are never encoded"),
        }
        Cow::Owned(out)
    }
}

/// Fills `out`, rows `rows` of a turned image `out_width` pixels wide, from `raw`: the
/// source of each row starts at byte `first(y)` and moves `step` bytes for each pixel.
fn turn<const CH: usize>(
    raw: &[u8],
    out: &mut [u8],
    out_width: usize,
    rows: Range<u32>,
    first: impl Fn(u32) -> isize,
    step: isize,
) {
    // Tiles of 256 columns, so that when a row of the result is a column of the source
    // the source rows being read stay in cache from one output row to the next.
    const TILE: usize = 256;
    let row_len = out_width * CH;
    for x0 in (0..out_width).step_by(TILE) {
        let x1 = (x0 + TILE).min(out_width);
        for (row, y) in rows.clone().enumerate() {
            let out_row = &mut out[row * row_len..(row + 1) * row_len];
            let mut from = first(y) + x0 as isize * step;
            for pixel in out_row[x0 * CH..x1 * CH].chunks_exact_mut(CH) {
                let at = from as usize;
                let src: &[u8; CH] = raw[at..at + CH].try_into().expect("CH bytes");
                pixel.copy_from_slice(src);
                from += step;
            }
        }
    }
}

fn encode_jpeg_piece(
    raw: &[u8],
    width: u32,
    height: u32,
    color: ExtendedColorType,
    quality: u8,
) -> Result<Vec<u8>, ImageError> {
    // A JPEG of a photo is rarely more than half a byte per pixel at these qualities.
    let mut out = Vec::with_capacity(width as usize * height as usize / 2);
    // `encode` on a raw buffer rather than the generic `encode_image`, so that the encoder
    // is the copy compiled (and optimised) inside the image crate.
    JpegEncoder::new_with_quality(&mut out, quality).encode(raw, width, height, color)?;
    Ok(out)
}

/// Rows per strip for an image `width` wide: [`JPEG_STRIP_ROWS`], or fewer when a strip
/// would hold more 8 x 8 blocks than a restart interval can count (65,535).
fn jpeg_strip_rows(width: u32) -> u32 {
    let blocks_per_row = width.div_ceil(8).max(1);
    let max_rows = (u32::from(u16::MAX) / blocks_per_row).max(1) * 8;
    JPEG_STRIP_ROWS.min(max_rows)
}

/// Runs `job` on every item, on as many threads as there are cores (the calling thread is
/// one of them), and returns the results in the order of `items`.
fn encode_in_parallel<T: Sync, R: Send>(
    items: &[T],
    job: impl Fn(&T) -> Result<R, String> + Sync,
) -> Result<Vec<R>, String> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            done.push((i, job(item)));
        }
        done
    };
    let mut results: Vec<(usize, Result<R, String>)> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut all = work();
        for helper in helpers {
            match helper.join() {
                Ok(done) => all.extend(done),
                Err(_) => all.push((usize::MAX, Err("an encoder thread panicked".into()))),
            }
        }
        all
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Joins JPEGs of consecutive strips (same width and tables, each `strip_rows` rows but the
/// last) into one JPEG of `height` rows: the first strip's headers with the full height, a
/// DRI segment declaring one restart interval per strip, then each strip's scan data with
/// RST0-RST7 markers between them. A restart resets what the decoder carries from one block
/// to the next, so strips encoded on their own decode as one image.
fn join_jpeg_strips(
    strips: &[Vec<u8>],
    width: u32,
    height: u32,
    strip_rows: u32,
) -> Option<Vec<u8>> {
    let (sof, sos, _) = jpeg_encoder_layout(strips.first()?)?;
    let first = &strips[0];
    let interval = u16::try_from(width.div_ceil(8) * (strip_rows / 8)).ok()?;

    let mut out =
        Vec::with_capacity(strips.iter().map(Vec::len).sum::<usize>() + 6 + strips.len() * 2);
    out.extend_from_slice(&first[..sos]);
    // SOF: FF C0, length (2), precision (1), height (2)
    out.get_mut(sof + 5..sof + 7)?
        .copy_from_slice(&u16::try_from(height).ok()?.to_be_bytes());
    out.extend_from_slice(&[0xFF, 0xDD, 0x00, 0x04]);
    out.extend_from_slice(&interval.to_be_bytes());
    let (_, _, scan) = jpeg_encoder_layout(first)?;
    out.extend_from_slice(&first[sos..scan]);
    for (i, strip) in strips.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(&[0xFF, 0xD0 + ((i - 1) % 8) as u8]);
        }
        let (_, _, scan) = jpeg_encoder_layout(strip)?;
        // The scan data runs to the EOI marker the encoder ends with.
        out.extend_from_slice(strip.get(scan..strip.len().checked_sub(2)?)?);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    Some(out)
}

/// Offsets in a JPEG written by our encoder: the SOF0 marker, the SOS marker, and the
/// first byte of scan data.
fn jpeg_encoder_layout(jpeg: &[u8]) -> Option<(usize, usize, usize)> {
    let mut sof = None;
    let mut pos = 2;
    loop {
        if *jpeg.get(pos)? != 0xFF {
            return None;
        }
        let marker = *jpeg.get(pos + 1)?;
        let len = usize::from(be16(jpeg, pos + 2)?);
        match marker {
            0xC0 => sof = Some(pos),
            0xDA => return Some((sof?, pos, pos + 2 + len)),
            _ => {}
        }
        pos += 2 + len;
    }
}

fn encode_png(image: &DynamicImage) -> Result<Vec<u8>, PhotoError> {
    let mut out = Vec::new();
    image
        .write_with_encoder(PngEncoder::new(&mut out))
        .map_err(|e| PhotoError::Encode {
            what: "stored png",
            reason: e.to_string(),
        })?;
    Ok(out)
}

/// The thumbnail's size: [`THUMBNAIL_LONG_SIDE`] on the long side, the short side in
/// proportion (at least 1 px); an image already smaller is kept at its size.
fn thumbnail_size(width: u32, height: u32) -> (u32, u32) {
    let long = u64::from(width.max(height));
    let target = u64::from(THUMBNAIL_LONG_SIDE);
    if long <= target {
        return (width, height);
    }
    let scale = |side: u32| {
        let scaled = (u64::from(side) * target + long / 2) / long;
        u32::try_from(scaled.max(1)).unwrap_or(THUMBNAIL_LONG_SIDE)
    };
    (scale(width), scale(height))
}

fn encode_thumbnail(
    image: &DynamicImage,
    orientation: Orientation,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, PhotoError> {
    // `thumbnail_exact` averages boxes of source pixels in one pass: far faster than a
    // filtered resize, and as good when shrinking by a factor of ten or more. It shrinks
    // the image as stored, and the small result is then turned.
    let (w, h) = oriented_size(width, height, orientation);
    let mut small = image.thumbnail_exact(w, h);
    small.apply_orientation(orientation);
    let small = if small.color().has_alpha() {
        // JPEG has no alpha: lay the image on white, as the app shows it.
        let mut rgba = small.to_rgba8();
        for p in rgba.pixels_mut() {
            let a = u16::from(p[3]);
            for c in &mut p.0[..3] {
                *c = ((u16::from(*c) * a + 255 * (255 - a) + 127) / 255) as u8;
            }
        }
        DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(rgba).to_rgb8())
    } else {
        small
    };
    encode_jpeg(
        &small,
        Orientation::NoTransforms,
        THUMBNAIL_QUALITY,
        "thumbnail",
    )
}

// ---------------------------------------------------------------------------------------
// Naming what we refuse.

/// A short name for what unsupported bytes look like, for the error message.
fn looks_like(bytes: &[u8]) -> &'static str {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if bytes.is_empty() {
        return "empty";
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return "gif";
    }
    if starts(b"II*\0") || starts(b"MM\0*") {
        return "tiff";
    }
    if bytes.get(4..8) == Some(b"ftyp") {
        return match bytes.get(8..12) {
            Some(b"avif" | b"avis") => "avif",
            Some(b"heic" | b"heix" | b"hevc" | b"heim" | b"heis" | b"mif1" | b"msf1") => "heic",
            _ => "mp4 or quicktime video",
        };
    }
    if starts(b"%PDF-") {
        return "pdf";
    }
    if starts(b"PK\x03\x04") {
        return "zip";
    }
    if starts(b"MZ") {
        return "windows executable";
    }
    if starts(b"\x7fELF") {
        return "elf executable";
    }
    if starts(b"RIFF") {
        return "riff (not webp)";
    }
    if starts(b"BM") {
        return "bmp";
    }
    if starts(b"\xFF\xD8") || starts(b"\x89PNG") {
        return "damaged jpeg or png signature";
    }
    looks_like_text(bytes)
}

fn looks_like_text(bytes: &[u8]) -> &'static str {
    let head = &bytes[..bytes.len().min(1024)];
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let head = head.trim_ascii_start().to_ascii_lowercase();
    let contains = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    let html_start = [
        &b"<!doctype html"[..],
        b"<html",
        b"<head",
        b"<body",
        b"<script",
    ];
    if html_start.iter().any(|s| head.starts_with(s)) || contains(b"<html") {
        return "html";
    }
    if contains(b"<svg") {
        return "svg";
    }
    if head.starts_with(b"<?xml") {
        return "xml";
    }
    let printable = head
        .iter()
        .all(|&b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r'));
    if printable && (std::str::from_utf8(&head).is_ok() || head.len() == 1024) {
        return "text";
    }
    "unknown"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnail_size_keeps_the_long_side_at_the_target() {
        assert_eq!(thumbnail_size(4000, 3000), (320, 240));
        assert_eq!(thumbnail_size(3000, 4000), (240, 320));
        assert_eq!(
            thumbnail_size(10000, 3),
            (320, 1),
            "short side never below 1 px"
        );
        assert_eq!(
            thumbnail_size(200, 100),
            (200, 100),
            "small images are not enlarged"
        );
    }

    #[test]
    fn oriented_rows_match_image_apply_orientation() {
        let all = [
            Orientation::NoTransforms,
            Orientation::Rotate90,
            Orientation::Rotate180,
            Orientation::Rotate270,
            Orientation::FlipHorizontal,
            Orientation::FlipVertical,
            Orientation::Rotate90FlipH,
            Orientation::Rotate270FlipH,
        ];
        let image = image::RgbImage::from_fn(301, 7, |x, y| {
            image::Rgb([
                x as u8,
                (x >> 8) as u8 * 16 + y as u8,
                (x * 7 + y * 13) as u8,
            ])
        });
        let pixels = Pixels {
            raw: image.as_raw(),
            width: 301,
            height: 7,
            channels: 3,
        };
        for orientation in all {
            let mut expected = DynamicImage::ImageRgb8(image.clone());
            expected.apply_orientation(orientation);
            let (w, h) = oriented_size(301, 7, orientation);
            assert_eq!(
                (w, h),
                (expected.width(), expected.height()),
                "{orientation:?}: size"
            );
            // In two uneven pieces, as strips are made.
            let cut = h / 3;
            let mut rows = pixels.oriented_rows(orientation, 0..cut).into_owned();
            rows.extend_from_slice(&pixels.oriented_rows(orientation, cut..h));
            assert!(
                rows == expected.to_rgb8().into_raw(),
                "{orientation:?}: pixels should match"
            );
        }
    }

    #[test]
    fn strip_rows_keep_a_restart_interval_countable() {
        assert_eq!(
            jpeg_strip_rows(4000),
            JPEG_STRIP_ROWS,
            "500 blocks a row x 32 rows fits"
        );
        // 8192 blocks a row: at most 7 block rows (57,344 blocks) in one interval.
        assert_eq!(
            jpeg_strip_rows(65_535),
            56,
            "very wide images get shorter strips"
        );
        for width in [1u32, 8, 4000, 12_000, 65_535] {
            let blocks = width.div_ceil(8) * (jpeg_strip_rows(width) / 8);
            assert!(
                blocks <= u32::from(u16::MAX),
                "{width}: {blocks} blocks in an interval"
            );
        }
    }

    #[test]
    fn looks_like_names_common_impostors() {
        assert_eq!(looks_like(b"<!DOCTYPE html><html>"), "html");
        assert_eq!(looks_like(b"\xEF\xBB\xBF  <html>"), "html");
        assert_eq!(
            looks_like(b"<?xml version='1.0'?><svg onload='x()'>"),
            "svg"
        );
        assert_eq!(looks_like(b"\0\0\0\x18ftypheic\0\0\0\0"), "heic");
        assert_eq!(looks_like(b"PK\x03\x04rest"), "zip");
        assert_eq!(looks_like(b"MZ\x90\0"), "windows executable");
        assert_eq!(looks_like(b""), "empty");
        assert_eq!(looks_like(&[0x00, 0x9F, 0x13]), "unknown");
    }

    #[test]
    fn webp_headers_give_their_sizes() {
        let mut vp8l = b"RIFF\0\0\0\0WEBPVP8L\0\0\0\0\x2F".to_vec();
        let bits: u32 = (640 - 1) | ((480 - 1) << 14);
        vp8l.extend_from_slice(&bits.to_le_bytes());
        assert_eq!(webp_header(&vp8l).unwrap(), (640, 480));

        let mut vp8x = b"RIFF\0\0\0\0WEBPVP8X\0\0\0\0\0\0\0\0".to_vec();
        vp8x.extend_from_slice(&[0x5F, 0xEA, 0x00, 0x5F, 0xEA, 0x00]); // 59999 + 1
        assert_eq!(webp_header(&vp8x).unwrap(), (60000, 60000));
    }
}
