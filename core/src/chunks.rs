//! Reading the change chunks a peer sends, under limits, before Automerge sees them.
//!
//! Automerge inflates a compressed change (or a document's compressed columns) in full
//! before it looks at it, and expands run-length encoded columns into one operation per
//! row. Half a megabyte on the wire can therefore become gigabytes in memory: one
//! compressed change that inflates to zeros took a server from 34 MB to 1.6 GB. So every
//! chunk is walked here first, by code that holds at most the budget:
//!
//! - a compressed change is inflated into a buffer that stops growing at the budget: a
//!   chunk that would inflate past it is refused while inflating, before it is held in
//!   full;
//! - a document chunk's deflated columns are inflated the same way, column by column;
//! - every column's rows are counted from its run-length headers without expanding them,
//!   so a run of a billion operations costs a few bytes to refuse;
//! - checksums are checked (Automerge drops a change whose checksum fails without an
//!   error, which would otherwise pass unnoticed).
//!
//! [`Budget`] is spent across all the chunks of one message. [`scan`] never panics and
//! never allocates more than the budget, whatever the bytes.
//!
//! # The format, as far as this needs it
//! A chunk is 4 magic bytes, a 4-byte checksum (the start of the SHA-256 of the type byte,
//! the LEB128 body length and the body), a type byte (0 a document, 1 a change, 2 a
//! compressed change, 3 a bundle), the body's length (LEB128) and the body. A change body:
//! dependencies, actor, seq, start op, time, message, other actors, then its operation
//! columns (a count, each column's spec and length, then the columns' bytes) and extra
//! bytes. A document body: actors, heads, change columns and operation columns (any of
//! which may be deflated: bit 3 of the spec), their bytes, then head indexes. A column's
//! type is the spec's low 3 bits: 0 group, 1 actor, 2 integer, 3 delta, 4 boolean,
//! 5 string, 6 value metadata, 7 raw values. All but booleans and raw values are
//! run-length encoded: a signed count, then one value repeated (count > 0), `-count`
//! literal values (count < 0), or an unsigned number of nulls (count = 0). Booleans are
//! alternating run lengths, starting with false. (automerge's `storage/` and
//! `columnar/encoding/`, and its storage format documentation.)

use std::borrow::Cow;

use sha2::{Digest, Sha256};

/// The magic bytes every chunk starts with.
pub const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

const TYPE_DOCUMENT: u8 = 0;
const TYPE_CHANGE: u8 = 1;
const TYPE_COMPRESSED: u8 = 2;

const COL_GROUP: u8 = 0;
const COL_ACTOR: u8 = 1;
const COL_INTEGER: u8 = 2;
const COL_DELTA: u8 = 3;
const COL_BOOLEAN: u8 = 4;
const COL_STRING: u8 = 5;
const COL_VALUE_METADATA: u8 = 6;
const COL_VALUE: u8 = 7;
const COL_DEFLATE: u32 = 0b1000;

/// What one message may cost once inflated and expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of chunks after inflation, all chunks of the message together.
    pub inflated_bytes: usize,
    /// Operations, all chunks together (rows of the longest column of each chunk).
    pub ops: u64,
    /// Changes, all chunks together.
    pub changes: u64,
}

/// What is left to spend on one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    limits: Limits,
    inflated: usize,
    ops: u64,
    changes: u64,
}

impl Budget {
    pub fn new(limits: Limits) -> Self {
        Budget {
            limits,
            inflated: 0,
            ops: 0,
            changes: 0,
        }
    }

    /// Bytes counted so far (chunks as they will be held, inflated).
    pub fn inflated(&self) -> usize {
        self.inflated
    }

    /// Operations counted so far.
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// Changes counted so far.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    fn spend_bytes(&mut self, n: usize) -> Result<(), ChunkError> {
        self.inflated = self.inflated.saturating_add(n);
        if self.inflated > self.limits.inflated_bytes {
            return Err(ChunkError::TooLarge {
                max: self.limits.inflated_bytes,
            });
        }
        Ok(())
    }

    fn room(&self) -> usize {
        self.limits.inflated_bytes.saturating_sub(self.inflated)
    }

    fn spend_ops(&mut self, n: u64) -> Result<(), ChunkError> {
        self.ops = self.ops.saturating_add(n);
        if self.ops > self.limits.ops {
            return Err(ChunkError::TooManyOps {
                max: self.limits.ops,
            });
        }
        Ok(())
    }

    fn spend_changes(&mut self, n: u64) -> Result<(), ChunkError> {
        self.changes = self.changes.saturating_add(n);
        if self.changes > self.limits.changes {
            return Err(ChunkError::TooManyChanges {
                max: self.limits.changes,
            });
        }
        Ok(())
    }

    fn ops_left(&self) -> u64 {
        self.limits.ops.saturating_sub(self.ops)
    }
}

/// Why a chunk was refused. Each says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("the changes would inflate past {max} bytes")]
    TooLarge { max: usize },
    #[error("the changes hold more than {max} operations")]
    TooManyOps { max: u64 },
    #[error("the message holds more than {max} changes")]
    TooManyChanges { max: u64 },
    #[error("chunk type {0} is not accepted (changes and documents only)")]
    Unsupported(u8),
    #[error("a chunk is malformed: {0}")]
    Malformed(&'static str),
}

fn malformed(what: &'static str) -> ChunkError {
    ChunkError::Malformed(what)
}

/// A cursor over bytes whose every read is checked.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn rest(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], ChunkError> {
        let n = usize::try_from(n).map_err(|_| malformed("a length is out of range"))?;
        if n > self.rest() {
            return Err(malformed("it is shorter than its lengths say"));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, ChunkError> {
        Ok(self.take(1)?[0])
    }

    fn uleb(&mut self) -> Result<u64, ChunkError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let b = self.byte()?;
            let part = u64::from(b & 0x7f);
            if i == 9 && part > 1 {
                return Err(malformed("a number is out of range"));
            }
            value |= part << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("a number is out of range"))
    }

    fn sleb(&mut self) -> Result<i64, ChunkError> {
        let mut value: i64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            if shift >= 64 {
                return Err(malformed("a number is out of range"));
            }
            value |= i64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                if shift < 64 && b & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Ok(value);
            }
        }
    }

    /// A count of items each at least `min_size` bytes long: refused when the bytes left
    /// could not hold them, so no count from a peer sizes anything on its own.
    fn count(&mut self, min_size: u64) -> Result<u64, ChunkError> {
        let n = self.uleb()?;
        if n.saturating_mul(min_size.max(1)) > self.rest() as u64 {
            return Err(malformed("a count is larger than the bytes that follow"));
        }
        Ok(n)
    }

    fn skip_prefixed(&mut self) -> Result<(), ChunkError> {
        let len = self.uleb()?;
        self.take(len)?;
        Ok(())
    }
}

/// One chunk's header: its type, checksum and body.
struct Chunk<'a> {
    typ: u8,
    checksum: [u8; 4],
    body: &'a [u8],
}

fn next_chunk<'a>(r: &mut Reader<'a>) -> Result<Chunk<'a>, ChunkError> {
    let magic = r.take(4)?;
    if magic != MAGIC {
        return Err(malformed("it does not start with the chunk magic bytes"));
    }
    let checksum: [u8; 4] = r.take(4)?.try_into().expect("4 bytes");
    let typ = r.byte()?;
    let len = r.uleb()?;
    let body = r.take(len)?;
    Ok(Chunk {
        typ,
        checksum,
        body,
    })
}

fn checksum_of(typ: u8, body: &[u8]) -> [u8; 4] {
    let mut len = Vec::with_capacity(10);
    write_uleb(&mut len, body.len() as u64);
    let mut h = Sha256::new();
    h.update([typ]);
    h.update(&len);
    h.update(body);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn write_uleb(out: &mut Vec<u8>, mut v: u64) {
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

/// Inflates raw DEFLATE data into a buffer that never grows past what the budget leaves.
fn inflate(data: &[u8], budget: &Budget) -> Result<Vec<u8>, ChunkError> {
    use flate2::{Decompress, FlushDecompress, Status};
    let cap = budget.room();
    let mut out: Vec<u8> = Vec::with_capacity(data.len().saturating_mul(4).min(cap).max(64));
    let mut d = Decompress::new(false);
    loop {
        if out.len() == out.capacity() {
            if out.len() >= cap {
                return Err(ChunkError::TooLarge {
                    max: budget.limits.inflated_bytes,
                });
            }
            let grow = out.len().max(4096).min(cap - out.len());
            out.reserve_exact(grow);
        }
        let consumed = d.total_in() as usize;
        let before_out = out.len();
        let status = d
            .decompress_vec(
                &data[consumed.min(data.len())..],
                &mut out,
                FlushDecompress::Finish,
            )
            .map_err(|_| malformed("its compressed data does not inflate"))?;
        match status {
            Status::StreamEnd => break,
            Status::Ok | Status::BufError => {
                let stalled = d.total_in() as usize == consumed && out.len() == before_out;
                if stalled && out.len() < out.capacity() {
                    return Err(malformed("its compressed data ends early"));
                }
            }
        }
    }
    if (d.total_in() as usize) != data.len() {
        return Err(malformed("bytes follow its compressed data"));
    }
    Ok(out)
}

/// A column: its spec and its bytes.
struct Column<'a> {
    spec: u32,
    data: &'a [u8],
}

/// Reads column metadata (count, then spec and length of each) and returns the specs
/// with their lengths.
fn column_meta(r: &mut Reader<'_>) -> Result<Vec<(u32, u64)>, ChunkError> {
    let n = r.count(2)?;
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let spec = u32::try_from(r.uleb()?).map_err(|_| malformed("a column spec"))?;
        let len = r.uleb()?;
        out.push((spec, len));
    }
    Ok(out)
}

fn column_data<'a>(r: &mut Reader<'a>, meta: &[(u32, u64)]) -> Result<Vec<Column<'a>>, ChunkError> {
    meta.iter()
        .map(|&(spec, len)| {
            Ok(Column {
                spec,
                data: r.take(len)?,
            })
        })
        .collect()
}

/// Rows of one (inflated) column, counted from its run headers; for a group column,
/// also the sum of its values (the rows of the columns it groups).
fn rows(col_type: u8, data: &[u8], max: u64) -> Result<(u64, u64), ChunkError> {
    let mut r = Reader::new(data);
    let mut rows: u64 = 0;
    let mut grouped: u64 = 0;
    let over = |n: u64| n > max;
    let too_many = || ChunkError::TooManyOps { max };
    match col_type {
        COL_VALUE => return Ok((0, 0)),
        COL_BOOLEAN => {
            while !r.done() {
                rows = rows.saturating_add(r.uleb()?);
                if over(rows) {
                    return Err(too_many());
                }
            }
            return Ok((rows, 0));
        }
        _ => {}
    }
    // Skips one value of the column's type; returns it when it is a number.
    let value = |r: &mut Reader<'_>| -> Result<u64, ChunkError> {
        match col_type {
            COL_DELTA => r.sleb().map(|_| 0),
            COL_STRING => r.skip_prefixed().map(|_| 0),
            COL_GROUP | COL_ACTOR | COL_INTEGER | COL_VALUE_METADATA => r.uleb(),
            _ => Err(malformed("an unknown column type")),
        }
    };
    while !r.done() {
        let count = r.sleb()?;
        if count > 0 {
            let n = count as u64;
            let v = value(&mut r)?;
            rows = rows.saturating_add(n);
            if col_type == COL_GROUP {
                grouped = grouped.saturating_add(n.saturating_mul(v));
            }
        } else if count < 0 {
            let n = count.unsigned_abs();
            // Each literal is at least one byte: a count beyond the bytes left is a lie.
            if n > r.rest() as u64 {
                return Err(malformed("a literal run is longer than its column"));
            }
            for _ in 0..n {
                let v = value(&mut r)?;
                if col_type == COL_GROUP {
                    grouped = grouped.saturating_add(v);
                }
            }
            rows = rows.saturating_add(n);
        } else {
            rows = rows.saturating_add(r.uleb()?);
        }
        if over(rows) || (col_type == COL_GROUP && over(grouped)) {
            return Err(too_many());
        }
    }
    Ok((rows, grouped))
}

/// The most rows any column of a set holds (the number of operations or changes they
/// describe), each column and each group held to `max`.
fn max_rows(columns: &[(u32, &[u8])], max: u64) -> Result<u64, ChunkError> {
    let mut most = 0;
    for (spec, data) in columns {
        let (n, grouped) = rows((spec & 0b111) as u8, data, max)?;
        most = most.max(n).max(grouped);
    }
    Ok(most)
}

fn scan_change(body: &[u8], budget: &mut Budget) -> Result<(), ChunkError> {
    let mut r = Reader::new(body);
    let deps = r.count(32)?;
    r.take(deps * 32)?;
    r.skip_prefixed()?; // actor
    r.uleb()?; // seq
    r.uleb()?; // start op
    r.sleb()?; // time
    r.skip_prefixed()?; // message
    let others = r.count(1)?;
    for _ in 0..others {
        r.skip_prefixed()?;
    }
    let meta = column_meta(&mut r)?;
    if meta.iter().any(|(spec, _)| spec & COL_DEFLATE != 0) {
        return Err(malformed("a change's columns may not be deflated"));
    }
    let cols = column_data(&mut r, &meta)?;
    let cols: Vec<(u32, &[u8])> = cols.iter().map(|c| (c.spec, c.data)).collect();
    let ops = max_rows(&cols, budget.ops_left())?;
    budget.spend_ops(ops)?;
    budget.spend_changes(1)
}

fn scan_document(body: &[u8], budget: &mut Budget) -> Result<(), ChunkError> {
    let mut r = Reader::new(body);
    let actors = r.count(1)?;
    for _ in 0..actors {
        r.skip_prefixed()?;
    }
    let heads = r.count(32)?;
    r.take(heads * 32)?;
    let change_meta = column_meta(&mut r)?;
    let op_meta = column_meta(&mut r)?;
    let change_cols = column_data(&mut r, &change_meta)?;
    let op_cols = column_data(&mut r, &op_meta)?;
    // What follows (head indexes) is small and left to Automerge.
    let changes = expand(&change_cols, budget)?;
    let ops = expand(&op_cols, budget)?;
    let left = budget.limits.changes.saturating_sub(budget.changes);
    let n_changes = max_rows(&as_refs(&changes), left).map_err(|e| match e {
        ChunkError::TooManyOps { .. } => ChunkError::TooManyChanges {
            max: budget.limits.changes,
        },
        other => other,
    })?;
    budget.spend_changes(n_changes)?;
    let n_ops = max_rows(&as_refs(&ops), budget.ops_left())?;
    budget.spend_ops(n_ops)
}

/// A column's spec and its bytes, inflated if they were deflated.
type Expanded<'a> = (u32, Cow<'a, [u8]>);

/// A document's columns as they will be read: deflated ones inflated (within the budget).
fn expand<'a>(cols: &[Column<'a>], budget: &mut Budget) -> Result<Vec<Expanded<'a>>, ChunkError> {
    let mut out = Vec::with_capacity(cols.len());
    for c in cols {
        if c.spec & COL_DEFLATE != 0 {
            let data = inflate(c.data, budget)?;
            budget.spend_bytes(data.len())?;
            out.push((c.spec, Cow::Owned(data)));
        } else {
            out.push((c.spec, Cow::Borrowed(c.data)));
        }
    }
    Ok(out)
}

/// Checks one part of a sync message's changes (one or more chunks back to back): every
/// chunk is a change, a compressed change or a document, its checksum holds, and all of
/// them together stay within `budget`. Nothing larger than the budget is ever held.
pub fn scan(part: &[u8], budget: &mut Budget) -> Result<(), ChunkError> {
    if part.is_empty() {
        return Err(malformed("it is empty"));
    }
    let mut r = Reader::new(part);
    while !r.done() {
        let chunk = next_chunk(&mut r)?;
        match chunk.typ {
            TYPE_CHANGE => {
                if checksum_of(TYPE_CHANGE, chunk.body) != chunk.checksum {
                    return Err(malformed("its checksum does not match"));
                }
                budget.spend_bytes(chunk.body.len())?;
                scan_change(chunk.body, budget)?;
            }
            TYPE_COMPRESSED => {
                let body = inflate(chunk.body, budget)?;
                // The checksum of a compressed change is that of its inflated form.
                if checksum_of(TYPE_CHANGE, &body) != chunk.checksum {
                    return Err(malformed("its checksum does not match"));
                }
                budget.spend_bytes(body.len())?;
                scan_change(&body, budget)?;
            }
            TYPE_DOCUMENT => {
                if checksum_of(TYPE_DOCUMENT, chunk.body) != chunk.checksum {
                    return Err(malformed("its checksum does not match"));
                }
                budget.spend_bytes(chunk.body.len())?;
                scan_document(chunk.body, budget)?;
            }
            other => return Err(ChunkError::Unsupported(other)),
        }
    }
    Ok(())
}

/// The change chunks (plain or compressed) of one part of a sync message, each as its
/// own bytes, in order; document chunks are left out. A part may hold several chunks
/// back to back (Automerge's own messages join every change into one part). Only the
/// headers are read: [`scan`] the part first.
pub fn changes_in(part: &[u8]) -> Result<Vec<&[u8]>, ChunkError> {
    let mut r = Reader::new(part);
    let mut out = Vec::new();
    while !r.done() {
        let start = r.pos;
        let chunk = next_chunk(&mut r)?;
        if matches!(chunk.typ, TYPE_CHANGE | TYPE_COMPRESSED) {
            out.push(&part[start..r.pos]);
        }
    }
    Ok(out)
}

fn as_refs<'b>(v: &'b [Expanded<'_>]) -> Vec<(u32, &'b [u8])> {
    v.iter().map(|(s, d)| (*s, d.as_ref())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType};

    #[test]
    fn a_part_of_several_changes_splits_into_each_change() {
        let mut doc = AutoCommit::new();
        for i in 0..3 {
            doc.put(automerge::ROOT, "k", i).unwrap();
            doc.commit();
        }
        let changes = doc.get_changes(&[]);
        let joined: Vec<u8> = changes
            .iter()
            .flat_map(|c| c.raw_bytes().to_vec())
            .collect();
        let split = changes_in(&joined).unwrap();
        assert_eq!(split.len(), 3);
        for (c, bytes) in changes.iter().zip(split) {
            assert_eq!(automerge::Change::try_from(bytes).unwrap().hash(), c.hash());
        }
        // A document chunk is not a change.
        assert!(changes_in(&doc.save()).unwrap().is_empty());
        assert!(changes_in(&joined[..joined.len() - 1]).is_err());
    }

    fn limits() -> Limits {
        Limits {
            inflated_bytes: 1 << 20,
            ops: 100_000,
            changes: 10_000,
        }
    }

    fn chunk(typ: u8, body: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend(checksum_of(
            if typ == TYPE_COMPRESSED {
                TYPE_CHANGE
            } else {
                typ
            },
            body,
        ));
        out.push(typ);
        write_uleb(&mut out, body.len() as u64);
        out.extend(body);
        out
    }

    fn sample() -> AutoCommit {
        let mut doc = AutoCommit::new();
        let m = doc.put_object(automerge::ROOT, "m", ObjType::Map).unwrap();
        let t = doc.put_object(&m, "t", ObjType::Text).unwrap();
        doc.splice_text(&t, 0, 0, &"hello world ".repeat(200))
            .unwrap();
        doc.commit();
        doc.put(&m, "k", "v").unwrap();
        doc.commit();
        doc
    }

    #[test]
    fn real_changes_and_documents_pass_and_are_counted() {
        let mut doc = sample();
        let mut b = Budget::new(limits());
        for mut c in doc.get_changes(&[]) {
            scan(&c.bytes(), &mut b).unwrap();
            scan(c.raw_bytes(), &mut b).unwrap();
        }
        assert_eq!(b.changes(), 4);
        assert!(
            b.ops() >= 2 * 2400,
            "the text's characters are operations: {}",
            b.ops()
        );
        let mut b = Budget::new(limits());
        scan(&doc.save(), &mut b).unwrap();
        assert_eq!(b.changes(), 2);
        assert!(b.ops() >= 2400, "{}", b.ops());
        let mut b = Budget::new(limits());
        scan(&doc.save_nocompress(), &mut b).unwrap();
        let mut b = Budget::new(limits());
        scan(&doc.save_after(&[]), &mut b).unwrap();
    }

    #[test]
    fn a_chunk_that_inflates_past_the_budget_is_refused() {
        // 16 MiB of zeros deflates to a few KB.
        let zeros = vec![0u8; 16 << 20];
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut enc, &zeros).unwrap();
        let deflated = enc.finish().unwrap();
        assert!(deflated.len() < 64 * 1024);
        let mut out = MAGIC.to_vec();
        out.extend([0, 0, 0, 0]);
        out.push(TYPE_COMPRESSED);
        write_uleb(&mut out, deflated.len() as u64);
        out.extend(&deflated);
        let e = scan(&out, &mut Budget::new(limits())).unwrap_err();
        assert_eq!(e, ChunkError::TooLarge { max: 1 << 20 });
    }

    #[test]
    fn a_run_of_a_billion_operations_is_refused_from_its_header() {
        let mut body = Vec::new();
        write_uleb(&mut body, 0); // deps
        write_uleb(&mut body, 16);
        body.extend([7u8; 16]); // actor
        write_uleb(&mut body, 1); // seq
        write_uleb(&mut body, 1); // start op
        body.push(0); // time
        write_uleb(&mut body, 0); // message
        write_uleb(&mut body, 0); // other actors
        // One column, the action column (id 4, integer): a run of 10^9 'put'.
        let mut col = Vec::new();
        let mut n = Vec::new();
        // sLEB of 10^9
        let mut v: i64 = 1_000_000_000;
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 && b & 0x40 == 0 {
                n.push(b);
                break;
            }
            n.push(b | 0x80);
        }
        col.extend(&n);
        col.push(1);
        write_uleb(&mut body, 1);
        write_uleb(&mut body, (4 << 4) | 2);
        write_uleb(&mut body, col.len() as u64);
        body.extend(&col);
        let e = scan(&chunk(TYPE_CHANGE, &body), &mut Budget::new(limits())).unwrap_err();
        assert_eq!(e, ChunkError::TooManyOps { max: 100_000 });
    }

    #[test]
    fn any_bytes_give_an_answer_never_a_panic() {
        let mut doc = sample();
        let mut c = doc.get_changes(&[])[0].clone();
        let base = c.bytes().into_owned();
        let saved = doc.save();
        for source in [&base, &saved] {
            for i in 0..source.len().min(400) {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut m = source.clone();
                    m[i] ^= flip;
                    let _ = scan(&m, &mut Budget::new(limits()));
                }
                let _ = scan(&source[..i], &mut Budget::new(limits()));
            }
        }
        assert!(scan(&[], &mut Budget::new(limits())).is_err());
        assert!(matches!(
            scan(&chunk(3, b"bundle"), &mut Budget::new(limits())),
            Err(ChunkError::Unsupported(3))
        ));
    }
}
