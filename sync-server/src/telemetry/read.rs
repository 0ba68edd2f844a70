//! Reading a feed file record by record, in bounded memory: CSV with a header row
//! (through the `csv` crate) or JSON Lines (one object per line).
//!
//! Either way a record becomes its fields in the kind's column order, each checked to be
//! UTF-8 and at most [`limits::MAX_TELEMETRY_FIELD`] bytes, and handed to a [`Sink`] with
//! the line it starts on. What cannot become a record is handed over as a [`BadRow`].
//!
//! Memory stays bounded whatever the file holds: the CSV reader sits on a [`Tap`] that
//! refuses to read more than [`limits::MAX_TELEMETRY_RECORD`] bytes past the start of the
//! record being parsed, and JSON lines are read with a cap, the rest of an over-long
//! line skipped without being kept. An over-long JSON line is one bad row and reading
//! goes on at the next line; an over-long CSV record stops the reading (where its quoted
//! field ends cannot be known without reading it), reported as such.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::fields::shown;
use super::{BadRow, Format, TelemetryError};
use crate::limits;

/// The CSV reader's buffer.
const CSV_BUFFER: usize = 64 * 1024;
/// A UTF-8 byte-order mark, which some exporters (Excel among them) write first.
const BOM: &[u8] = b"\xEF\xBB\xBF";
/// How often, in records, the sink hears how far the reading has got.
const PROGRESS_EVERY: u64 = 16 * 1024;

/// Where records go.
pub(crate) trait Sink {
    /// A record whose fields are all readable, in the kind's column order.
    fn record(&mut self, line: u64, fields: &[&str]) -> Result<(), TelemetryError>;
    /// A row that could not be read.
    fn bad(&mut self, row: BadRow);
    /// Bytes of the file read so far.
    fn progress(&mut self, bytes: u64);
}

/// How the reading ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadEnd {
    /// The reading stopped before the end of the file (the rest was not looked at).
    pub stopped_early: bool,
    /// SHA-256 of every byte read, BOM included (complete only when not stopped early).
    pub sha256: [u8; 32],
    pub bytes: u64,
}

/// Reads the whole of `input` as `format`, for a kind with `columns`.
pub(crate) fn read(
    input: impl Read,
    format: Format,
    shape: &Shape,
    sink: &mut dyn Sink,
) -> Result<ReadEnd, TelemetryError> {
    let tap = Tap::new(input);
    let state = tap.state.clone();
    let stopped_early = match format {
        Format::Csv => read_csv(tap, shape, sink)?,
        Format::Jsonl => read_jsonl(tap, shape, sink)?,
        Format::Json => read_json_document(tap, shape, sink)?,
    };
    let bytes = state.read.get();
    sink.progress(bytes);
    let sha256 = state.hasher.take().finalize().into();
    Ok(ReadEnd {
        stopped_early,
        sha256,
        bytes,
    })
}

/// What the [`Tap`] shares with the reading code.
#[derive(Debug, Default)]
struct TapState {
    /// Bytes read from the file so far.
    read: Cell<u64>,
    /// The tap refuses to read past this many bytes (u64::MAX: no limit).
    limit: Cell<u64>,
    hasher: RefCell<Sha256>,
}

/// Wraps the file: counts and hashes what is read, and refuses to read past a limit that
/// the reading code moves forward record by record.
struct Tap<R> {
    inner: R,
    state: Rc<TapState>,
}

/// The error a [`Tap`] gives when asked to read past its limit.
#[derive(Debug)]
struct RecordTooLong;

impl std::fmt::Display for RecordTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("record too long")
    }
}

impl std::error::Error for RecordTooLong {}

impl<R: Read> Tap<R> {
    fn new(inner: R) -> Self {
        let state = TapState {
            limit: Cell::new(u64::MAX),
            ..TapState::default()
        };
        Tap {
            inner,
            state: Rc::new(state),
        }
    }
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let s = &self.state;
        if s.read.get() >= s.limit.get() {
            return Err(io::Error::other(RecordTooLong));
        }
        let n = self.inner.read(buf)?;
        s.read.set(s.read.get() + n as u64);
        s.hasher.borrow_mut().update(&buf[..n]);
        Ok(n)
    }
}

fn is_too_long(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<RecordTooLong>())
}

/// `input` with a leading byte-order mark skipped; whether there was one.
fn skip_bom<R: Read>(mut input: R) -> io::Result<(impl Read, bool)> {
    let mut head = [0u8; 3];
    let mut n = 0;
    while n < head.len() {
        match input.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let bom = &head[..n] == BOM;
    let kept = if bom { Vec::new() } else { head[..n].to_vec() };
    Ok((io::Cursor::new(kept).chain(input), bom))
}

/// Checks a field: at most the field limit, UTF-8; trimmed of surrounding blanks.
fn field<'a>(name: &str, bytes: &'a [u8]) -> Result<&'a str, String> {
    if bytes.len() > limits::MAX_TELEMETRY_FIELD {
        return Err(format!(
            "{name}: {} bytes, more than the {} a field may hold",
            bytes.len(),
            limits::MAX_TELEMETRY_FIELD
        ));
    }
    std::str::from_utf8(bytes).map(str::trim).map_err(|e| {
        format!(
            "{name}: not valid UTF-8 (at byte {} of the field)",
            e.valid_up_to()
        )
    })
}

/// What a kind's file may hold: its columns in order, other names a column goes by
/// (Defender for Endpoint's machine export), names read and not kept, and columns a file
/// may leave out (read as empty: "not known").
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub columns: &'static [&'static str],
    pub aliases: &'static [(&'static str, &'static str)],
    pub ignored: &'static [&'static str],
    pub optional: &'static [&'static str],
}

impl Shape {
    /// A kind with only its own columns, every one required.
    pub const fn strict(columns: &'static [&'static str]) -> Shape {
        Shape {
            columns,
            aliases: &[],
            ignored: &[],
            optional: &[],
        }
    }

    /// The column a name in a file stands for: itself, or what it is another name of;
    /// `None` for a name read and not kept.
    /// Other names match in any letter case (a CSV header's names are read in lower case).
    fn canonical<'a>(&self, name: &'a str) -> Option<&'a str> {
        if self.ignored.iter().any(|i| i.eq_ignore_ascii_case(name)) {
            return None;
        }
        Some(
            self.aliases
                .iter()
                .find(|(a, _)| a.eq_ignore_ascii_case(name))
                .map_or(name, |(_, c)| c),
        )
    }
}

/// Where each of the kind's columns is in the header (`None`: an optional column it
/// leaves out); a problem with the header is a bad row on line 1 and stops the reading.
fn header_order(names: &[String], shape: &Shape) -> Result<Vec<Option<usize>>, String> {
    let columns = shape.columns;
    let mut problems = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // Each header name as the column it stands for (`None`: read and not kept).
    let canonical: Vec<Option<&str>> = names.iter().map(|n| shape.canonical(n)).collect();
    for (n, c) in names.iter().zip(&canonical) {
        let Some(c) = c else { continue };
        if !seen.insert(*c) {
            problems.push(format!("column {} appears twice", shown(n)));
        } else if !columns.contains(c) {
            problems.push(format!("unknown column {}", shown(n)));
        }
    }
    let missing: Vec<&str> = columns
        .iter()
        .copied()
        .filter(|c| !shape.optional.contains(c) && !canonical.contains(&Some(c)))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("missing column(s): {}", missing.join(", ")));
    }
    if problems.is_empty() {
        Ok(columns
            .iter()
            .map(|c| canonical.iter().position(|n| *n == Some(c)))
            .collect())
    } else {
        Err(format!(
            "bad header row: {}; the columns are {}",
            problems.join("; "),
            columns.join(",")
        ))
    }
}

/// Returns whether the reading stopped early.
fn read_csv<R: Read>(
    tap: Tap<R>,
    shape: &Shape,
    sink: &mut dyn Sink,
) -> Result<bool, TelemetryError> {
    let columns = shape.columns;
    let state = tap.state.clone();
    let (input, bom) = skip_bom(tap).map_err(TelemetryError::Io)?;
    // `position()` counts from after the BOM; the tap counts the file's bytes.
    let skipped = if bom { BOM.len() as u64 } else { 0 };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        // A record with the wrong number of fields is reported here, not refused by the
        // reader (which would stop at the first).
        .flexible(true)
        .buffer_capacity(CSV_BUFFER)
        .from_reader(input);
    let mut rec = csv::ByteRecord::new();
    let mut records = 0u64;
    let mut order: Option<Vec<Option<usize>>> = None;
    let mut header_len = 0;
    loop {
        let start = rdr.position().clone();
        // The reader may already hold up to a buffer beyond `start`; past that, the
        // record may take at most the record limit.
        state
            .limit
            .set(start.byte() + skipped + (CSV_BUFFER + limits::MAX_TELEMETRY_RECORD) as u64);
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = start.line();
                return match e.into_kind() {
                    csv::ErrorKind::Io(io) if is_too_long(&io) => {
                        sink.bad(BadRow {
                            line,
                            reason: format!(
                                "a record longer than {} bytes (a field this large is refused); \
                                 the rest of the file was not read",
                                limits::MAX_TELEMETRY_RECORD
                            ),
                        });
                        Ok(true)
                    }
                    csv::ErrorKind::Io(io) => Err(TelemetryError::Io(io)),
                    other => {
                        sink.bad(BadRow {
                            line,
                            reason: format!(
                                "the CSV could not be read here ({other:?}); the rest of the \
                                 file was not read"
                            ),
                        });
                        Ok(true)
                    }
                };
            }
        }
        let line = rec.position().map_or(start.line(), |p| p.line());
        let Some(order) = &order else {
            // The header.
            let mut names = Vec::with_capacity(rec.len());
            for (i, name) in rec.iter().enumerate() {
                match field("the header", name) {
                    Ok(n) => names.push(n.to_ascii_lowercase()),
                    Err(_) => {
                        sink.bad(BadRow {
                            line,
                            reason: format!(
                                "the header's column {} is not valid UTF-8 or too long; \
                                 nothing else was read",
                                i + 1
                            ),
                        });
                        return Ok(true);
                    }
                }
            }
            match header_order(&names, shape) {
                Ok(o) => {
                    header_len = rec.len();
                    order = Some(o);
                    continue;
                }
                Err(reason) => {
                    sink.bad(BadRow { line, reason });
                    return Ok(true);
                }
            }
        };
        records += 1;
        if records.is_multiple_of(PROGRESS_EVERY) {
            sink.progress(state.read.get());
        }
        if rec.len() != header_len {
            sink.bad(BadRow {
                line,
                reason: format!("{} field(s) where the header has {header_len}", rec.len()),
            });
            continue;
        }
        let mut fields = Vec::with_capacity(columns.len());
        let mut problems = Vec::new();
        for (name, &at) in columns.iter().zip(order) {
            let bytes: &[u8] = match at {
                Some(at) => &rec[at],
                None => b"",
            };
            match field(name, bytes) {
                Ok(f) => fields.push(f),
                Err(p) => problems.push(p),
            }
        }
        if problems.is_empty() {
            sink.record(line, &fields)?;
        } else {
            sink.bad(BadRow {
                line,
                reason: problems.join("; "),
            });
        }
    }
    if order.is_none() {
        sink.bad(BadRow {
            line: 1,
            reason: format!(
                "the file is empty: expected a header row with the columns {}",
                columns.join(",")
            ),
        });
        return Ok(true);
    }
    Ok(false)
}

/// One line read with a cap.
enum Line {
    /// The line (without its line break) is in the buffer.
    Read,
    /// The line was longer than the cap: its start was dropped and the rest skipped.
    TooLong,
    End,
}

/// Reads one line into `buf`, keeping at most `cap` bytes of it.
fn read_line_capped(r: &mut impl BufRead, buf: &mut Vec<u8>, cap: usize) -> io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        any = true;
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if !too_long {
            if buf.len() + part.len() > cap {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(part);
            }
        }
        let used = done.unwrap_or(chunk.len());
        r.consume(used);
        if done.is_some() {
            break;
        }
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(match (any, too_long) {
        (false, _) => Line::End,
        (true, true) => Line::TooLong,
        (true, false) => Line::Read,
    })
}

/// A JSON value as field text: strings as they are, numbers and booleans as written,
/// null as empty (no value).
fn json_text<'a>(name: &str, v: &'a serde_json::Value) -> Result<Cow<'a, str>, String> {
    use serde_json::Value;
    Ok(match v {
        Value::String(s) => Cow::Borrowed(s.as_str()),
        Value::Null => Cow::Borrowed(""),
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Value::Number(n) => Cow::Owned(n.to_string()),
        // The machine export's `machineTags`, a list of strings: `;`-separated.
        Value::Array(items)
            if name == "machine_tags" && items.iter().all(|i| matches!(i, Value::String(_))) =>
        {
            Cow::Owned(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(";"),
            )
        }
        Value::Array(_) | Value::Object(_) => {
            return Err(format!("{name}: a list or object where a value belongs"));
        }
    })
}

/// One JSON object as a record: its keys as the shape's columns (another name for a
/// column is read as it; a name read and not kept is skipped; any other is a problem).
fn json_object(
    line: u64,
    object: &serde_json::Map<String, serde_json::Value>,
    shape: &Shape,
    sink: &mut dyn Sink,
) -> Result<(), TelemetryError> {
    let columns = shape.columns;
    let mut problems = Vec::new();
    let mut by_column: Vec<Option<&serde_json::Value>> = vec![None; columns.len()];
    for (k, v) in object {
        match shape.canonical(k) {
            None => {}
            Some(c) => match columns.iter().position(|n| *n == c) {
                Some(i) if by_column[i].is_none() => by_column[i] = Some(v),
                Some(_) => problems.push(format!("field {} appears twice", shown(k))),
                None => problems.push(format!("unknown field {}", shown(k))),
            },
        }
    }
    let mut texts = Vec::with_capacity(columns.len());
    for (name, v) in columns.iter().zip(&by_column) {
        match v.map_or(Ok(Cow::Borrowed("")), |v| json_text(name, v)) {
            Ok(t) => texts.push(t),
            Err(p) => {
                problems.push(p);
                texts.push(Cow::Borrowed(""));
            }
        }
    }
    let mut fields = Vec::with_capacity(columns.len());
    for (name, t) in columns.iter().zip(&texts) {
        match field(name, t.as_bytes()) {
            Ok(f) => fields.push(f),
            Err(p) => problems.push(p),
        }
    }
    if problems.is_empty() {
        sink.record(line, &fields)
    } else {
        sink.bad(BadRow {
            line,
            reason: problems.join("; "),
        });
        Ok(())
    }
}

/// A JSON document as Defender for Endpoint's API returns machines: an object whose
/// `value` is the list of records (`{"@odata.context": ..., "value": [{...}, ...]}`), or
/// a bare list. Read as a stream, one record at a time: the `line` of a record is its
/// position in the list (1 for the first). A record larger than the record limit stops
/// the reading, reported as such.
fn read_json_document<R: Read>(
    tap: Tap<R>,
    shape: &Shape,
    sink: &mut dyn Sink,
) -> Result<bool, TelemetryError> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    let state = tap.state.clone();
    let (input, _) = skip_bom(tap).map_err(TelemetryError::Io)?;

    /// Reads the list, handing each record to the sink; a sink error is kept and stops
    /// the reading.
    struct Records<'s, 'k> {
        shape: &'s Shape,
        sink: &'s mut dyn Sink,
        state: Rc<TapState>,
        failed: &'k mut Option<TelemetryError>,
        seen: &'k mut bool,
    }
    impl<'de> Visitor<'de> for Records<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object with a \"value\" list of records, or a list of records")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            *self.seen = true;
            let mut n = 0u64;
            loop {
                // Room for one record, and the reader's buffer, past what is read.
                let s = &self.state;
                s.limit.set(
                    s.read.get() + limits::MAX_TELEMETRY_RECORD as u64 + 2 * CSV_BUFFER as u64,
                );
                let Some(v) = seq.next_element::<serde_json::Value>()? else {
                    break;
                };
                n += 1;
                if n.is_multiple_of(PROGRESS_EVERY) {
                    self.sink.progress(s.read.get());
                }
                match v {
                    serde_json::Value::Object(o) => {
                        if let Err(e) = json_object(n, &o, self.shape, self.sink) {
                            *self.failed = Some(e);
                            return Err(serde::de::Error::custom("the import stopped"));
                        }
                    }
                    _ => self.sink.bad(BadRow {
                        line: n,
                        reason: "not a JSON object".into(),
                    }),
                }
            }
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let state = self.state.clone();
            // Every key is read whole: a key (or a value read whole) is bounded as a
            // record is.
            let bound = || {
                state.limit.set(
                    state.read.get() + limits::MAX_TELEMETRY_RECORD as u64 + 2 * CSV_BUFFER as u64,
                )
            };
            let mut this = Some(self);
            bound();
            while let Some(key) = map.next_key::<String>()? {
                match key.as_str() {
                    "value" => match this.take() {
                        Some(v) => map.next_value_seed(v)?,
                        None => {
                            return Err(serde::de::Error::custom(
                                "\"value\" appears twice: which list is the day's?",
                            ));
                        }
                    },
                    // The API pages its results: a document that names a next page is
                    // one page, not the day's estate.
                    "@odata.nextLink" => {
                        return Err(serde::de::Error::custom(
                            "the document is one page of several (it has @odata.nextLink): \
                             fetch every page and import them as one file",
                        ));
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                bound();
            }
            Ok(())
        }
    }
    impl<'de> DeserializeSeed<'de> for Records<'_, '_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    // The whole document is read under a bound that moves with each record and key; a
    // scalar or key larger than a record stops the reading.
    state
        .limit
        .set(state.read.get() + limits::MAX_TELEMETRY_RECORD as u64 + 2 * CSV_BUFFER as u64);
    let mut failed = None;
    let mut seen = false;
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(CSV_BUFFER, input));
    let r = Records {
        shape,
        sink,
        state: state.clone(),
        failed: &mut failed,
        seen: &mut seen,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    let too_long = state.read.get() >= state.limit.get();
    state.limit.set(u64::MAX);
    if let Some(e) = failed {
        return Err(e);
    }
    match r {
        Ok(()) if seen => Ok(false),
        Ok(()) => {
            sink.bad(BadRow {
                line: 1,
                reason: "no \"value\" list of records in the document".into(),
            });
            Ok(true)
        }
        Err(e) => {
            sink.bad(BadRow {
                line: 1,
                reason: if too_long {
                    format!(
                        "a record longer than {} bytes; nothing after it was read",
                        limits::MAX_TELEMETRY_RECORD
                    )
                } else {
                    format!("not a JSON document of records: {e}; nothing after it was read")
                },
            });
            Ok(true)
        }
    }
}

/// Returns whether the reading stopped early (never, for JSON lines).
fn read_jsonl<R: Read>(
    tap: Tap<R>,
    shape: &Shape,
    sink: &mut dyn Sink,
) -> Result<bool, TelemetryError> {
    let state = tap.state.clone();
    let (input, _) = skip_bom(tap).map_err(TelemetryError::Io)?;
    let mut r = BufReader::with_capacity(CSV_BUFFER, input);
    let mut buf = Vec::new();
    let mut line = 0u64;
    let mut records = 0u64;
    loop {
        line += 1;
        match read_line_capped(&mut r, &mut buf, limits::MAX_TELEMETRY_RECORD)
            .map_err(TelemetryError::Io)?
        {
            Line::End => break,
            Line::TooLong => {
                sink.bad(BadRow {
                    line,
                    reason: format!(
                        "a line longer than {} bytes (a field this large is refused)",
                        limits::MAX_TELEMETRY_RECORD
                    ),
                });
                continue;
            }
            Line::Read => {}
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        records += 1;
        if records.is_multiple_of(PROGRESS_EVERY) {
            sink.progress(state.read.get());
        }
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t,
            Err(e) => {
                sink.bad(BadRow {
                    line,
                    reason: format!("not valid UTF-8 (at byte {} of the line)", e.valid_up_to()),
                });
                continue;
            }
        };
        let object: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(text) {
            Ok(o) => o,
            Err(e) => {
                sink.bad(BadRow {
                    line,
                    reason: format!("not a JSON object: {e}"),
                });
                continue;
            }
        };
        json_object(line, &object, shape, sink)?;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        rows: Vec<(u64, Vec<String>)>,
        bad: Vec<BadRow>,
    }

    impl Sink for Collect {
        fn record(&mut self, line: u64, fields: &[&str]) -> Result<(), TelemetryError> {
            self.rows
                .push((line, fields.iter().map(|s| s.to_string()).collect()));
            Ok(())
        }
        fn bad(&mut self, row: BadRow) {
            self.bad.push(row);
        }
        fn progress(&mut self, _: u64) {}
    }

    const COLS: &[&str] = &["a", "b"];

    fn csv(text: &[u8]) -> (Collect, ReadEnd) {
        let mut c = Collect::default();
        let end = read(text, Format::Csv, &Shape::strict(COLS), &mut c).unwrap();
        (c, end)
    }

    #[test]
    fn csv_maps_columns_by_name_and_strips_a_bom() {
        let (c, end) = csv(b"\xEF\xBB\xBFb,A\n2,1\n\"4\",\"3\"\n");
        assert!(c.bad.is_empty(), "{:?}", c.bad);
        assert_eq!(c.rows[0], (2, vec!["1".into(), "2".into()]));
        assert_eq!(c.rows[1], (3, vec!["3".into(), "4".into()]));
        assert!(!end.stopped_early);
        assert_eq!(end.bytes, 19);
    }

    #[test]
    fn quoted_line_breaks_keep_line_numbers_on_the_record_start() {
        let (c, _) = csv(b"a,b\n\"x\ny\nz\",1\n2,3\n");
        assert_eq!(c.rows[0].0, 2);
        assert_eq!(c.rows[0].1[0], "x\ny\nz");
        assert_eq!(c.rows[1].0, 5, "the next record starts on line 5");
    }

    #[test]
    fn every_bad_row_is_reported() {
        let (c, _) = csv(b"a,b\n1\n1,2,3\n\xff,2\n5,6\n");
        let lines: Vec<u64> = c.bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, [2, 3, 4], "{:?}", c.bad);
        assert!(
            c.bad[0]
                .reason
                .contains("1 field(s) where the header has 2")
        );
        assert!(c.bad[2].reason.contains("a: not valid UTF-8"));
        assert_eq!(c.rows.len(), 1);
    }

    #[test]
    fn a_bad_header_stops_the_reading() {
        let (c, end) = csv(b"a,c\n1,2\n");
        assert!(end.stopped_early);
        assert_eq!(c.bad.len(), 1);
        assert!(
            c.bad[0].reason.contains("unknown column \"c\""),
            "{:?}",
            c.bad
        );
        assert!(
            c.bad[0].reason.contains("missing column(s): b"),
            "{:?}",
            c.bad
        );
        let (c, _) = csv(b"");
        assert!(c.bad[0].reason.contains("empty"), "{:?}", c.bad);
    }

    #[test]
    fn a_huge_csv_field_is_refused_in_bounded_memory() {
        // An endless quoted field: if the reader tried to hold it, this would not end.
        let endless = io::repeat(b'x');
        let input = io::Cursor::new(b"a,b\n1,2\n3,\"".to_vec()).chain(endless);
        let mut c = Collect::default();
        let end = read(input, Format::Csv, &Shape::strict(COLS), &mut c).unwrap();
        assert!(end.stopped_early);
        assert_eq!(c.rows.len(), 1);
        assert_eq!(c.bad[0].line, 3, "{:?}", c.bad);
        assert!(
            end.bytes < 4 * limits::MAX_TELEMETRY_RECORD as u64,
            "read {}",
            end.bytes
        );
    }

    #[test]
    fn a_field_over_the_limit_is_a_bad_row() {
        let big = "y".repeat(limits::MAX_TELEMETRY_FIELD + 1);
        let (c, _) = csv(format!("a,b\n1,{big}\n2,3\n").as_bytes());
        assert_eq!(c.bad.len(), 1);
        assert!(c.bad[0].reason.starts_with("b: 4097 bytes"), "{:?}", c.bad);
        assert_eq!(c.rows.len(), 1);
    }

    #[test]
    fn json_lines() {
        let huge = format!("{{\"a\":\"{}\"}}", "z".repeat(limits::MAX_TELEMETRY_RECORD));
        let text = format!(
            "\u{feff}{{\"a\":1,\"b\":true}}\n\n{{\"a\":\"x\",\"c\":2}}\n{huge}\n[1]\n{{\"b\":null,\"a\":\"q\"}}\r\n"
        );
        let mut c = Collect::default();
        read(text.as_bytes(), Format::Jsonl, &Shape::strict(COLS), &mut c).unwrap();
        assert_eq!(c.rows[0], (1, vec!["1".into(), "true".into()]));
        assert_eq!(c.rows[1], (6, vec!["q".into(), "".into()]));
        let bad: Vec<(u64, &str)> = c.bad.iter().map(|b| (b.line, b.reason.as_str())).collect();
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert_eq!(bad[0].0, 3);
        assert!(bad[0].1.contains("unknown field \"c\""));
        assert_eq!(bad[1].0, 4);
        assert!(bad[1].1.contains("a line longer than"));
        assert_eq!(bad[2].0, 5);
        assert!(bad[2].1.contains("not a JSON object"));
    }

    #[test]
    fn the_hash_covers_every_byte() {
        let text = b"\xEF\xBB\xBFa,b\n1,2\n";
        let (_, end) = csv(text);
        assert_eq!(end.sha256, <[u8; 32]>::from(Sha256::digest(text)));
    }
}
