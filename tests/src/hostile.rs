//! Hostile change chunks, made by hand: what an attacker holding a valid token sends in
//! place of an Automerge change. Used by the hostile-change test (`tests/sync_bombs.rs`)
//! and by `sync-bench --bombs`, which measures the server's memory under them.

/// The magic bytes that open every Automerge chunk.
pub const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// Appends `v` as unsigned LEB128.
pub fn uleb(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A compressed change chunk whose body inflates to `size` zero bytes (in MiB steps):
/// about a thousandth of that on the wire. Its checksum is not right: Automerge would
/// refuse it once inflated, which is the point of inflating nothing past a budget.
pub fn inflating_chunk(size: usize) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..size / zeros.len() {
        std::io::Write::write_all(&mut enc, &zeros).expect("deflating into memory");
    }
    let deflated = enc.finish().expect("deflating into memory");
    let mut out = MAGIC.to_vec();
    out.extend([0, 0, 0, 0]);
    out.push(2);
    uleb(deflated.len() as u64, &mut out);
    out.extend(&deflated);
    out
}
