//! Search (issue 14, item 6): words across inspections (trust code and name, sites,
//! notes on answers), findings, comments and corrective actions, within what the caller
//! may see (`GET /api/v1/search?q=`).
//!
//! Nothing is indexed apart from the record: each search reads the views of the
//! inspections the caller may read, as the inspection page does (the comments a trust lead
//! reads are the released ones only), newest first and at most
//! [`limits::SEARCH_INSPECTIONS`] of them, and the actions the caller may see
//! (`super::actions::visible_actions`). So a search can never find what a page would not
//! show the same caller. Matching ignores letter case. At most [`limits::SEARCH_HITS`]
//! hits come back; `truncated` says when there were more (or inspections left unread).
//!
//! Who: reviewers, inspectors, trust leads; admins hold no document rights (403). The
//! query is 2 to 100 characters (else 400 `bad_query`). At most
//! [`limits::SEARCHES_AT_ONCE`] searches run at once (another waits, then gets 429);
//! documents are read for at most [`limits::SEARCH_DEADLINE`], the newest
//! [`limits::SEARCH_ACTIONS`] actions at most, and the text is matched on the blocking
//! pool. Each search is audited (`search`, with the number of hits; the words themselves
//! are not written to the log), and so is each document a hit came from (`doc_read` or
//! `action` with the outcome `search`), as a page's read is.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use wardcheck_core::actions::Step;

use super::actions::visible_actions;
use super::inspections::all_visible;
use super::{Acting, Input, blocking};
use crate::access;
use crate::error::AppError;
use crate::limits;
use crate::storage::{InspectionRecord, Role};
use crate::telemetry::TelemetryStore;

/// `GET /api/v1/search?q=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    q: String,
}

/// What a hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HitKind {
    /// The inspection itself: its trust (code or name) or a site.
    Inspection,
    /// A note on an answer.
    Note,
    Finding,
    Comment,
    Action,
}

#[derive(Debug, Serialize)]
pub struct Hit {
    pub kind: HitKind,
    pub inspection: Uuid,
    pub trust: String,
    /// The finding, comment or action; the item of a note; null for the inspection.
    pub target: Option<String>,
    /// Up to [`limits::SEARCH_SNIPPET_CHARS`] characters around the first match.
    pub snippet: String,
    /// When the inspection was created (hits come newest inspection first).
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct SearchResults {
    pub hits: Vec<Hit>,
    /// More hits than were sent, or inspections not read.
    pub truncated: bool,
}

/// `text` lowered a character at a time (one character for one, so positions match).
fn lower(text: &str) -> Vec<char> {
    text.chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

/// Where `needle` (lowered) first occurs in `text`, by character.
fn find(text: &[char], needle: &[char]) -> Option<usize> {
    if needle.is_empty() || needle.len() > text.len() {
        return None;
    }
    (0..=text.len() - needle.len()).find(|&i| text[i..i + needle.len()] == *needle)
}

/// The snippet of `text` around its first match of `needle`, if any.
fn matched(text: &str, needle: &[char]) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let at = find(&lower(text), needle)?;
    let room = limits::SEARCH_SNIPPET_CHARS.saturating_sub(needle.len()) / 2;
    let from = at.saturating_sub(room);
    let to = (at + needle.len() + room).min(chars.len());
    let mut s: String = chars[from..to].iter().collect();
    s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if from > 0 {
        s.insert(0, '…');
    }
    if to < chars.len() {
        s.push('…');
    }
    Some(s)
}

impl Acting<'_> {
    /// See the module doc.
    pub async fn search(&self, q: impl Input<SearchQuery>) -> Result<SearchResults, AppError> {
        if matches!(self.caller.user.role, Role::Admin) {
            return Err(self.forbidden("search", "search inspections").await);
        }
        let SearchQuery { q } = q()?;
        let q = q.trim().to_owned();
        let n = q.chars().count();
        if !(2..=limits::SEARCH_MAX_CHARS).contains(&n) {
            return Err(AppError::bad_request(
                "bad_query",
                format!(
                    "q: search for 2 to {} characters, not {n}",
                    limits::SEARCH_MAX_CHARS
                ),
            ));
        }
        // A few searches at a time, whoever asks: each reads documents.
        let _turn = match tokio::time::timeout(
            limits::SEARCH_WAIT,
            self.state.searches.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            _ => return Err(AppError::rate_limited(limits::SEARCH_WAIT.as_secs())),
        };
        let (storage, telemetry) = (self.state.storage.clone(), self.state.telemetry.clone());
        let user = self.caller.user.clone();
        let (mut inspections, mut actions, names) = blocking(move || {
            let inspections = all_visible(&*storage, &user, None)?;
            let actions = visible_actions(&*storage, &user, None)?;
            let names: std::collections::HashMap<String, String> = telemetry
                .trusts()?
                .into_iter()
                .map(|t| (t.ods_code, t.name))
                .collect();
            Ok((inspections, actions, names))
        })
        .await?;
        inspections.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        actions.sort_by_key(|a| std::cmp::Reverse(a.raised_at));
        let mut truncated = inspections.len() > limits::SEARCH_INSPECTIONS
            || actions.len() > limits::SEARCH_ACTIONS;
        inspections.truncate(limits::SEARCH_INSPECTIONS);
        actions.truncate(limits::SEARCH_ACTIONS);

        // The views, read within the deadline (what is left unread sets `truncated`).
        let deadline = tokio::time::Instant::now() + limits::SEARCH_DEADLINE;
        let mut views = Vec::with_capacity(inspections.len());
        for rec in &inspections {
            if !access::can_read_view(&self.caller.user, rec) {
                views.push(None);
                continue;
            }
            if tokio::time::Instant::now() > deadline {
                truncated = true;
                views.push(None);
                continue;
            }
            match self.inspection_view(rec).await {
                Ok(v) => views.push(Some(v)),
                Err(e) => {
                    tracing::warn!(inspection = %rec.id, "search: not read: {e:?}");
                    truncated = true;
                    views.push(None);
                }
            }
        }

        // The matching, on the blocking pool.
        let needle = lower(&q);
        let (mut hits, more) = blocking(move || {
            let mut hits = Vec::new();
            let hit = |kind, rec: &InspectionRecord, target: Option<String>, snippet| Hit {
                kind,
                inspection: rec.id,
                trust: rec.trust.clone(),
                target,
                snippet,
                created_at: rec.created_at,
            };
            for (rec, view) in inspections.iter().zip(&views) {
                let name = names.get(&rec.trust).cloned().unwrap_or_default();
                let about = format!("{} {} {}", rec.trust, name, rec.sites.join(" "));
                if let Some(s) = matched(&about, &needle) {
                    hits.push(hit(HitKind::Inspection, rec, None, s));
                }
                let Some(view) = view else { continue };
                for (item, r) in &view.responses {
                    if let Some(s) = matched(&r.note, &needle) {
                        hits.push(hit(HitKind::Note, rec, Some(item.clone()), s));
                    }
                }
                for f in &view.findings {
                    let text = format!("{} {}", f.text, f.recommendation);
                    if let Some(s) = matched(&text, &needle) {
                        hits.push(hit(HitKind::Finding, rec, Some(f.id.to_string()), s));
                    }
                }
                for c in &view.comments {
                    if let Some(s) = matched(&c.text, &needle) {
                        hits.push(hit(HitKind::Comment, rec, Some(c.id.to_string()), s));
                    }
                }
            }
            for a in &actions {
                let mut text = a.what.clone();
                for t in &a.steps {
                    let more = match &t.step {
                        Step::Propose(p) => Some(format!("{} {}", p.steps, p.owner_role)),
                        Step::Progress(p) => Some(p.text.clone()),
                        Step::Accept { note } => note.clone(),
                        Step::SendBack { note }
                        | Step::Close { note }
                        | Step::Check { note, .. } => Some(note.clone()),
                        Step::Raise(_) => None,
                    };
                    if let Some(m) = more {
                        text.push(' ');
                        text.push_str(&m);
                    }
                }
                if let Some(s) = matched(&text, &needle) {
                    let created_at = inspections
                        .iter()
                        .find(|r| r.id == a.inspection)
                        .map_or(a.raised_at, |r| r.created_at);
                    hits.push(Hit {
                        kind: HitKind::Action,
                        inspection: a.inspection,
                        trust: a.trust.clone(),
                        target: Some(a.id.to_string()),
                        snippet: s,
                        created_at,
                    });
                }
            }
            hits.sort_by_key(|h| std::cmp::Reverse(h.created_at));
            let more = hits.len() > limits::SEARCH_HITS;
            hits.truncate(limits::SEARCH_HITS);
            Ok((hits, more))
        })
        .await?;
        truncated |= more;
        // Each document a hit came from is read, and audited as read, as a page read is.
        let mut read: Vec<(Uuid, HitKind, Option<String>)> = Vec::new();
        for h in &hits {
            let key = if h.kind == HitKind::Action {
                (h.inspection, HitKind::Action, h.target.clone())
            } else {
                (h.inspection, HitKind::Inspection, None)
            };
            if !read.contains(&key) {
                read.push(key);
            }
        }
        for (id, kind, target) in read {
            match (kind, target) {
                (HitKind::Action, Some(a)) => {
                    self.audit("action", &format!("action:{a}"), "search").await
                }
                _ => self.audit("doc_read", &super::target(id), "search").await,
            }
        }
        self.audit("search", "search", &format!("{} hits", hits.len()))
            .await;
        hits.shrink_to_fit();
        Ok(SearchResults { hits, truncated })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_match_ignores_case_and_its_snippet_is_bounded() {
        let needle = lower("FIRE door");
        let s = matched("The fire doors of the server room do not close.", &needle).unwrap();
        assert!(s.contains("fire doors"), "{s}");
        assert!(matched("Nothing here", &needle).is_none());
        let long = format!("{}fire door{}", "a ".repeat(500), " b".repeat(500));
        let s = matched(&long, &needle).unwrap();
        assert!(
            s.chars().count() <= limits::SEARCH_SNIPPET_CHARS + 2,
            "{}",
            s.len()
        );
        assert!(s.starts_with('…') && s.ends_with('…'));
        assert!(matched("Ünïcödé FIRE DOOR", &needle).is_some());
    }
}
