//! The photo pipeline on a 12-megapixel camera JPEG: decode under limits, strip, thumbnail
//! and hash, which ARCHITECTURE.md holds to under 300 ms.
//!
//! `cargo bench -p wardcheck-core --bench photo -- --sample-size 10`
//!
//! Peak memory is measured by `cargo run --release -p wardcheck-core --example photo_peak`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, Rgb, RgbImage};
use wardcheck_core::photo::{self, Limits};

/// A 4000 x 3000 gradient with noise, encoded as a camera would (quality 92), so that it
/// does not compress trivially: about the size of a real 12 MP photo.
fn camera_jpeg(exif_orientation: Option<u16>) -> Vec<u8> {
    let (width, height) = (4000, 3000);
    let mut seed = 0x2545_F491u32;
    let pixels = RgbImage::from_fn(width, height, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let n = (seed >> 27) as u8; // 0..31
        let ripple = (((x / 7 + y / 11) % 32) as u8) * 2;
        Rgb([
            ((x * 200 / width) as u8).saturating_add(n),
            ((y * 200 / height) as u8).saturating_add(ripple),
            (((x + y) * 150 / (width + height)) as u8).saturating_add(n / 2 + ripple / 2),
        ])
    });
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, 92)
        .encode(pixels.as_raw(), width, height, ExtendedColorType::Rgb8)
        .unwrap();
    match exif_orientation {
        None => jpeg,
        Some(orientation) => {
            // APP1: "Exif\0\0", a little-endian TIFF header and IFD0 with one entry.
            let mut body = b"Exif\0\0II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
            body.extend_from_slice(&orientation.to_le_bytes());
            body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
            let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
            out.extend_from_slice(&(body.len() as u16 + 2).to_be_bytes());
            out.extend_from_slice(&body);
            out.extend_from_slice(&jpeg[2..]);
            out
        }
    }
}

fn bench_photo(c: &mut Criterion) {
    let limits = Limits::default();
    let upright = camera_jpeg(None);
    let turned = camera_jpeg(Some(6));
    eprintln!("input: 4000 x 3000 JPEG, {} bytes", upright.len());
    let out = photo::process(&upright, &limits).expect("the generated photo is accepted");
    eprintln!(
        "stored: {} bytes, thumbnail {} bytes",
        out.bytes.len(),
        out.thumbnail.len()
    );

    let mut group = c.benchmark_group("photo");
    group.bench_function("process_12mp_jpeg", |b| {
        b.iter(|| photo::process(black_box(&upright), &limits).unwrap())
    });
    group.bench_function("process_12mp_jpeg_exif_rotated", |b| {
        b.iter(|| photo::process(black_box(&turned), &limits).unwrap())
    });
    group.bench_function("verify_12mp_stored_jpeg", |b| {
        b.iter(|| photo::verify(black_box(&out.bytes), &limits).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_photo);
criterion_main!(benches);
