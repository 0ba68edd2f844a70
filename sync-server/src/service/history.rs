//! An inspection's history: every value a field of one item, finding or
//! sampled device has held ([`wardcheck_core::history`]), each with its author (the user
//! the change's actor is bound to, not what the value says), the device it was made on
//! and the time.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use wardcheck_core::history::{self, Subject};
use wardcheck_core::inspection::MAX_SHORT_CHARS;

use super::documents::read_failure;
use super::{Acting, blocking};
use crate::error::AppError;
use crate::storage::SERVER_AUTHOR;

/// Most entries one answer lists (the oldest first).
pub const MAX_ENTRIES: usize = 2_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    item: Option<String>,
    finding: Option<Uuid>,
    device: Option<Uuid>,
}

#[derive(Debug, Serialize)]
pub struct HistoryEntry {
    field: &'static str,
    about: Option<String>,
    value: serde_json::Value,
    /// The user the change's actor is bound to; `-` when it is bound to no one (changes
    /// from before actors were bound).
    author: String,
    /// The device the actor is bound to, by name, when known.
    device: Option<String>,
    at: chrono::DateTime<chrono::Utc>,
    change: String,
}

#[derive(Debug, Serialize)]
pub struct History {
    entries: Vec<HistoryEntry>,
    truncated: bool,
}

impl Acting<'_> {
    /// The history of one item, finding or sampled device of inspection `id`, for whoever
    /// may read the inspection document; which device each change was made on is left out
    /// for a trust's lead.
    pub async fn history(&self, id: &str, q: HistoryQuery) -> Result<History, AppError> {
        let state = self.state;
        let record = self.readable(id).await?;
        let subject = match (q.item, q.finding, q.device) {
            (Some(i), None, None) if !i.is_empty() && i.chars().count() <= MAX_SHORT_CHARS => {
                Subject::Item(i)
            }
            (None, Some(f), None) => Subject::Finding(f),
            (None, None, Some(d)) => Subject::Device(d),
            _ => {
                return Err(AppError::bad_request(
                    "bad_query",
                    "name exactly one of item (a checklist item id), finding or device (a UUID)",
                ));
            }
        };
        let handle = state.docs.hold(record.id);
        let (entries, truncated) = state
            .docs
            .read(&handle, move |doc| history::of(doc, &subject, MAX_ENTRIES))
            .await
            .map_err(read_failure)?;
        drop(handle);
        let storage = state.storage.clone();
        // Which device an inspector used is the inspection team's business, not the trust's.
        let devices_shown = !matches!(self.caller.user.role, crate::storage::Role::TrustLead(_));
        let entries = blocking(move || {
            let devices: HashMap<i64, String> = if entries.is_empty() || !devices_shown {
                HashMap::new()
            } else {
                storage
                    .list_devices()?
                    .into_iter()
                    .map(|d| (d.id, d.name))
                    .collect()
            };
            let mut bound: HashMap<String, (String, Option<String>)> = HashMap::new();
            let mut out = Vec::with_capacity(entries.len());
            for e in entries {
                if !bound.contains_key(&e.actor) {
                    let bytes = hex_bytes(&e.actor);
                    let who = match storage.actor_binding(&bytes)? {
                        Some(b) => (b.user, b.device.and_then(|d| devices.get(&d).cloned())),
                        None => ("-".to_owned(), None),
                    };
                    bound.insert(e.actor.clone(), who);
                }
                let (author, device) = bound[&e.actor].clone();
                let device = device.filter(|_| devices_shown);
                let author = if author == "-" && e.by.as_deref() == Some(SERVER_AUTHOR) {
                    SERVER_AUTHOR.to_owned()
                } else {
                    author
                };
                out.push(HistoryEntry {
                    field: e.field,
                    about: e.about,
                    value: e.value,
                    author,
                    device,
                    at: e.at,
                    change: e.change,
                });
            }
            Ok(out)
        })
        .await?;
        self.audit("history_read", &record.id.to_string(), "ok")
            .await;
        Ok(History { entries, truncated })
    }
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}
