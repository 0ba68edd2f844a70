//! Peak memory of processing one 12-megapixel JPEG (ARCHITECTURE.md: under 300 MB).
//!
//! `cargo run --release -p wardcheck-core --example photo_peak [PATH [OUT]]`
//!
//! Without PATH it generates a 4000 x 3000 camera-like JPEG first. With OUT it writes the
//! stored image there, to check with other tools (`exiftool -a -G1 OUT`, `identify -verbose`). The peak is read from
//! VmHWM in /proc/self/status (Linux), after resetting it through /proc/self/clear_refs
//! once the input is ready, so it covers `process` alone. It then runs `process` five more
//! times and prints the median wall time and the CPU time per photo (all threads, from
//! /proc/self/stat), which does not depend on what else the machine is running.

use std::time::Instant;

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, Rgb, RgbImage};
use wardcheck_core::photo::{self, Limits};

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User plus system CPU time of the whole process so far, all threads, in clock ticks
/// (USER_HZ, 100 a second on Linux).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name, in parentheses, may hold spaces: count fields after it.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
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
    let mut args = std::env::args_os().skip(1);
    let input = match args.next() {
        Some(path) => std::fs::read(path).expect("read the photo"),
        None => camera_jpeg(),
    };
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = status_kib("VmRSS:");

    let start = Instant::now();
    let out = photo::process(&input, &Limits::default()).expect("the photo is accepted");
    let elapsed = start.elapsed();

    if let Some(path) = args.next() {
        std::fs::write(path, &out.bytes).expect("write the stored image");
    }
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

    const RUNS: u32 = 5;
    let cpu_before = cpu_ticks();
    let mut walls: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            photo::process(&input, &Limits::default()).expect("the photo is accepted");
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    walls.sort_by(f64::total_cmp);
    println!(
        "time:      {:.1} ms median wall of {RUNS} warm runs (min {:.1}), on {} threads",
        walls[walls.len() / 2],
        walls[0],
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if let (Some(a), Some(b)) = (cpu_before, cpu_ticks()) {
        println!(
            "cpu:       {:.0} ms per photo, all threads (user + system)",
            (b - a) as f64 * 10.0 / f64::from(RUNS)
        );
    }
}
