//! Peak memory of processing one 12-megapixel JPEG (ARCHITECTURE.md: under 300 MB).
//!
//! `cargo run --release -p wardcheck-core --example photo_peak [PATH]`
//!
//! Without PATH it generates a 4000 x 3000 camera-like JPEG first. The peak is read from
//! VmHWM in /proc/self/status (Linux), after resetting it through /proc/self/clear_refs
//! once the input is ready, so it covers `process` alone.

use std::time::Instant;

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, Rgb, RgbImage};
use wardcheck_core::photo::{self, Limits};

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("unknown".into(), |k| {
        format!("{:.1} MiB", k as f64 / 1024.0)
    })
}

/// The same 4000 x 3000 gradient with noise as the benchmark, at camera quality.
fn camera_jpeg() -> Vec<u8> {
    let (width, height) = (4000, 3000);
    let mut seed = 0x2545_F491u32;
    let pixels = RgbImage::from_fn(width, height, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let n = (seed >> 27) as u8;
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
    jpeg
}

fn main() {
    let input = match std::env::args_os().nth(1) {
        Some(path) => std::fs::read(path).expect("read the photo"),
        None => camera_jpeg(),
    };
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = status_kib("VmRSS:");

    let start = Instant::now();
    let out = photo::process(&input, &Limits::default()).expect("the photo is accepted");
    let elapsed = start.elapsed();

    println!("input:     {} bytes", input.len());
    println!(
        "stored:    {} x {}, {} bytes, {}",
        out.width,
        out.height,
        out.bytes.len(),
        out.mime
    );
    println!(
        "thumbnail: {} x {}, {} bytes",
        out.thumb_width,
        out.thumb_height,
        out.thumbnail.len()
    );
    println!(
        "time:      {:.1} ms (one run, cold)",
        elapsed.as_secs_f64() * 1000.0
    );
    println!("rss before process: {}", mib(before));
    if reset {
        println!(
            "peak rss during process (VmHWM, reset before): {}",
            mib(status_kib("VmHWM:"))
        );
    } else {
        println!(
            "peak rss of the whole run, input generation included (VmHWM): {}",
            mib(status_kib("VmHWM:"))
        );
    }
}
