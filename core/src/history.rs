//! History anyone can read: every value a field of one item, finding or sampled device
//! has held, read from the document's changes (Automerge keeps every one).
//!
//! Each change is decoded and each of its operations placed by the path of the object
//! it writes in (objects are never deleted in an inspection document, so every object a
//! change wrote in is still in the document). A stamped value is listed as written; a
//! text (a note, a finding's text or recommendation) as it read right after the change.
//! The author a value names is the one the server checked against the change's actor
//! binding; the server adds the binding's user and device ([`Entry::actor`]).

use std::collections::{BTreeMap, HashMap};

use automerge::legacy::{Key, ObjectId, OpType};
use automerge::{AutoCommit, ObjId, Prop, ReadDoc, ScalarValue};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// An object, by its id's counter and actor.
type ObjKey = (u64, Vec<u8>);
/// A field's name, and what in it.
type Field = (&'static str, Option<String>);

/// What a history is of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A checklist item: its answer, note and photos, and the observations of it on
    /// sampled devices.
    Item(String),
    /// A finding: severity, text, recommendation, linked items.
    Finding(Uuid),
    /// A sampled device: hostname, build, observations.
    Device(Uuid),
}

/// One value a field held.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// `answer`, `note`, `photo`, `observation`, `severity`, `text`, `recommendation`,
    /// `link`, `hostname`, `build_seen`.
    pub field: &'static str,
    /// What in the field: a photo's hash, a linked item, the device (id) an observation
    /// is of, the item an observation answers.
    pub about: Option<String>,
    /// The value as written (stamped JSON), the text after the change, or null for a
    /// removal.
    pub value: serde_json::Value,
    /// The author the value (or the change) names.
    pub by: Option<String>,
    /// When: the value's stamp, or else the change's own time.
    pub at: DateTime<Utc>,
    /// The change's hash (hex).
    pub change: String,
    /// The change's actor (hex): the server looks up who it is bound to.
    pub actor: String,
}

/// Most changes one history reads: a document holds far fewer (a busy inspection a few
/// thousand); past it the answer says it is cut short.
pub const MAX_CHANGES: usize = 200_000;

/// Every value the fields of `subject` held, oldest first (in the causal order of the
/// changes), at most `max` of them; and whether there were more (or more changes than
/// [`MAX_CHANGES`] to read).
pub fn of(doc: &mut AutoCommit, subject: &Subject, max: usize) -> (Vec<Entry>, bool) {
    let mut changes = doc.get_changes(&[]);
    let cut = changes.len() > MAX_CHANGES;
    changes.truncate(MAX_CHANGES);
    let mut paths: HashMap<ObjKey, Option<Vec<String>>> = HashMap::new();
    let mut out = Vec::new();
    for change in &changes {
        let expanded = change.decode();
        // Core's changes carry seconds; a client that writes milliseconds is read as such.
        let t = change.timestamp();
        let at = if t.abs() > 100_000_000_000 {
            DateTime::<Utc>::from_timestamp_millis(t)
        } else {
            DateTime::<Utc>::from_timestamp(t, 0)
        }
        .unwrap_or_default();
        let by_message = change
            .message()
            .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
            .and_then(|v| v.get("by").and_then(|b| b.as_str()).map(str::to_owned));
        let hash = change.hash();
        let actor = change.actor_id().to_hex_string();
        // Texts this change edited: read once, after it.
        let mut texts: BTreeMap<ObjKey, Field> = BTreeMap::new();
        for op in &expanded.operations {
            let Some(path) = path_of(doc, &mut paths, &op.obj) else {
                continue;
            };
            let p: Vec<&str> = path.iter().map(String::as_str).collect();
            match &op.key {
                Key::Seq(_) => {
                    if let Some((field, about)) = text_field(subject, &p)
                        && let ObjectId::Id(id) = &op.obj
                    {
                        texts.insert(
                            (id.counter(), id.actor().to_bytes().to_vec()),
                            (field, about),
                        );
                    }
                }
                Key::Map(k) => {
                    let Some((field, about)) = map_field(subject, &p, k) else {
                        continue;
                    };
                    let value = match &op.action {
                        OpType::Put(ScalarValue::Str(s)) => serde_json::from_str(s)
                            .unwrap_or(serde_json::Value::String(s.to_string())),
                        OpType::Delete => serde_json::Value::Null,
                        _ => continue,
                    };
                    let by = value
                        .get("by")
                        .and_then(|b| b.as_str())
                        .map(str::to_owned)
                        .or_else(|| by_message.clone());
                    // The value's own stamp, to the sub-second, where it has one.
                    let at = value
                        .get("at")
                        .and_then(|a| serde_json::from_value::<DateTime<Utc>>(a.clone()).ok())
                        .unwrap_or(at);
                    out.push(Entry {
                        field,
                        about,
                        value,
                        by,
                        at,
                        change: hash.to_string(),
                        actor: actor.clone(),
                    });
                }
            }
        }
        for ((counter, a), (field, about)) in texts {
            let obj = ObjId::Id(counter, automerge::ActorId::from(a), 0);
            let text = doc.text_at(&obj, &[hash]).unwrap_or_default();
            out.push(Entry {
                field,
                about,
                value: serde_json::Value::String(text),
                by: by_message.clone(),
                at,
                change: hash.to_string(),
                actor: actor.clone(),
            });
        }
        if out.len() > max {
            out.truncate(max);
            return (out, true);
        }
    }
    (out, cut)
}

/// The field a put at `path.key` is, for `subject`.
fn map_field(subject: &Subject, p: &[&str], key: &str) -> Option<Field> {
    match (subject, p) {
        (Subject::Item(item), ["responses", i]) if i == item && key == "answer" => {
            Some(("answer", None))
        }
        (Subject::Item(item), ["responses", i, "photos"]) if i == item => {
            Some(("photo", Some(key.to_owned())))
        }
        (Subject::Item(item), ["devices", d, "observations"]) if key == item => {
            Some(("observation", Some((*d).to_owned())))
        }
        (Subject::Finding(f), ["findings", id]) if *id == f.to_string() && key == "severity" => {
            Some(("severity", None))
        }
        (Subject::Finding(f), ["findings", id, "items"]) if *id == f.to_string() => {
            Some(("link", Some(key.to_owned())))
        }
        (Subject::Device(d), ["devices", id])
            if *id == d.to_string() && (key == "hostname" || key == "build_seen") =>
        {
            Some((
                if key == "hostname" {
                    "hostname"
                } else {
                    "build_seen"
                },
                None,
            ))
        }
        (Subject::Device(d), ["devices", id, "observations"]) if *id == d.to_string() => {
            Some(("observation", Some(key.to_owned())))
        }
        _ => None,
    }
}

/// The text field an edit inside the text at `path` is, for `subject`.
fn text_field(subject: &Subject, p: &[&str]) -> Option<Field> {
    match (subject, p) {
        (Subject::Item(item), ["responses", i, "note"]) if i == item => Some(("note", None)),
        (Subject::Finding(f), ["findings", id, "text"]) if *id == f.to_string() => {
            Some(("text", None))
        }
        (Subject::Finding(f), ["findings", id, "recommendation"]) if *id == f.to_string() => {
            Some(("recommendation", None))
        }
        _ => None,
    }
}

/// The path of map keys from the root to an object, cached; `None` for an object inside a
/// list (there are none) or one the document does not hold.
fn path_of(
    doc: &AutoCommit,
    cache: &mut HashMap<ObjKey, Option<Vec<String>>>,
    obj: &ObjectId,
) -> Option<Vec<String>> {
    let id = match obj {
        ObjectId::Root => return Some(Vec::new()),
        ObjectId::Id(id) => id,
    };
    let key = (id.counter(), id.actor().to_bytes().to_vec());
    if let Some(p) = cache.get(&key) {
        return p.clone();
    }
    let ex = ObjId::Id(id.counter(), id.actor().clone(), 0);
    let found = doc.parents(&ex).ok().and_then(|parents| {
        let mut path = Vec::new();
        for p in parents {
            match p.prop {
                Prop::Map(k) => path.push(k),
                Prop::Seq(_) => return None,
            }
        }
        path.reverse();
        Some(path)
    });
    cache.insert(key, found.clone());
    found
}
