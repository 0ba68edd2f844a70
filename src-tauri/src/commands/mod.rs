//! The Tauri commands of docs/APP-IPC.md, registered in one list in `lib.rs`.
//!
//! Each one takes its arguments, calls one method of the service ([`App`]) and returns
//! its result or an [`AppError`]. Methods that touch the store (SQLite, fsync) or decode
//! a photo run on the blocking pool, so the IPC thread never waits on a disk.

use tauri::State;
use tauri::ipc::{InvokeBody, Request};
use uuid::Uuid;
use wardcheck_core::actions::Outcome;
use wardcheck_core::checklist::Severity;
use wardcheck_core::inspection::{Answer, CommentTarget, FieldRef, InspectionView};

use crate::error::AppError;
use crate::service::actions::Carried;
use crate::service::status::SyncStatus;
use crate::service::views::{AppStatus, InspectionSummary, OpenInspection, PhotoAdded};
use crate::service::{self, App};

/// Runs `f` on the blocking pool with its own handle on the app.
async fn blocking<T: Send + 'static>(
    app: &State<'_, App>,
    f: impl FnOnce(App) -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    let app = app.inner().clone();
    tauri::async_runtime::spawn_blocking(move || f(app))
        .await
        .map_err(AppError::internal)?
}

#[tauri::command]
pub async fn app_status(app: State<'_, App>) -> Result<AppStatus, AppError> {
    Ok(app.app_status())
}

#[tauri::command]
pub async fn sign_in(
    app: State<'_, App>,
    server: String,
    user: String,
    password: String,
) -> Result<AppStatus, AppError> {
    app.sign_in(&server, &user, &password).await
}

/// `force` (optional, default false): sign out even with changes or photos not yet on
/// the server.
#[tauri::command]
pub async fn sign_out(app: State<'_, App>, force: Option<bool>) -> Result<AppStatus, AppError> {
    blocking(&app, move |app| app.sign_out(force.unwrap_or(false))).await
}

#[tauri::command]
pub async fn list_inspections(app: State<'_, App>) -> Result<Vec<InspectionSummary>, AppError> {
    blocking(&app, |app| app.list_inspections()).await
}

/// The open actions of earlier visits carried over to inspection `id`.
#[tauri::command]
pub async fn carried_actions(app: State<'_, App>, id: Uuid) -> Result<Carried, AppError> {
    blocking(&app, move |app| app.carried_actions(id)).await
}

/// The inspector's check on site of a carried-over action, kept and sent when online.
#[tauri::command]
pub async fn check_action(
    app: State<'_, App>,
    id: Uuid,
    action: Uuid,
    outcome: Outcome,
    note: String,
) -> Result<Carried, AppError> {
    blocking(&app, move |app| {
        app.check_action(id, action, outcome, &note)
    })
    .await
}

#[tauri::command]
pub async fn open_inspection(app: State<'_, App>, id: Uuid) -> Result<OpenInspection, AppError> {
    blocking(&app, move |app| app.open_inspection(id)).await
}

#[tauri::command]
pub async fn set_answer(
    app: State<'_, App>,
    id: Uuid,
    item: String,
    answer: Answer,
) -> Result<InspectionView, AppError> {
    blocking(&app, move |app| app.set_answer(id, &item, answer)).await
}

#[tauri::command]
pub async fn edit_note(
    app: State<'_, App>,
    id: Uuid,
    item: String,
    text: String,
) -> Result<InspectionView, AppError> {
    blocking(&app, move |app| app.edit_note(id, &item, &text)).await
}

/// `add_photo` takes the photo as the raw body with the other arguments in the headers
/// `wardcheck-id`, `wardcheck-item` and `wardcheck-name` (percent-encoded). The JSON
/// form (`bytes` as an array of numbers) is gone: it made a number array of up to 25
/// million elements before any size check could run.
#[tauri::command]
pub async fn add_photo(app: State<'_, App>, request: Request<'_>) -> Result<PhotoAdded, AppError> {
    let (id, item, name, bytes) = match request.body() {
        InvokeBody::Json(_) => {
            return Err(AppError::invalid(
                "add_photo takes the photo as the raw request body, with the wardcheck-id, \
                 wardcheck-item and wardcheck-name headers (docs/APP-IPC.md)",
            ));
        }
        InvokeBody::Raw(bytes) => {
            service::check_photo_size(bytes.len())?;
            let header = |name: &str| -> Result<String, AppError> {
                let value = request
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        AppError::invalid(format!("add_photo needs the header {name}"))
                    })?;
                percent_decode(value).ok_or_else(|| {
                    AppError::invalid(format!("the header {name} is not percent-encoded UTF-8"))
                })
            };
            let id = header("wardcheck-id")?
                .parse()
                .map_err(|_| AppError::invalid("wardcheck-id is not an inspection id"))?;
            (
                id,
                header("wardcheck-item")?,
                header("wardcheck-name")?,
                bytes.clone(),
            )
        }
    };
    blocking(&app, move |app| app.add_photo(id, &item, &name, &bytes)).await
}

/// Decodes `%XX` escapes (as `encodeURIComponent` makes them).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[tauri::command]
pub async fn photo_thumbnail(app: State<'_, App>, sha256: String) -> Result<String, AppError> {
    blocking(&app, move |app| app.photo_thumbnail(&sha256)).await
}

#[tauri::command]
pub async fn add_device(
    app: State<'_, App>,
    id: Uuid,
    hostname: String,
    build_seen: String,
) -> Result<InspectionView, AppError> {
    blocking(&app, move |app| app.add_device(id, &hostname, &build_seen)).await
}

#[tauri::command]
pub async fn record_observation(
    app: State<'_, App>,
    id: Uuid,
    device: Uuid,
    item: String,
    answer: Answer,
    note: String,
) -> Result<InspectionView, AppError> {
    blocking(&app, move |app| {
        app.record_observation(id, device, &item, answer, &note)
    })
    .await
}

#[tauri::command]
pub async fn add_finding(
    app: State<'_, App>,
    id: Uuid,
    severity: Severity,
    text: String,
    items: Vec<String>,
    recommendation: String,
) -> Result<InspectionView, AppError> {
    blocking(&app, move |app| {
        app.add_finding(id, severity, &text, items, &recommendation)
    })
    .await
}

#[tauri::command]
pub async fn add_comment(
    app: State<'_, App>,
    id: Uuid,
    target: CommentTarget,
    text: String,
) -> Result<InspectionView, AppError> {
    blocking(&app, move |app| app.add_comment(id, target, &text)).await
}

#[tauri::command]
pub async fn resolve_conflict(
    app: State<'_, App>,
    id: Uuid,
    field: FieldRef,
    candidate: String,
) -> Result<InspectionView, AppError> {
    blocking(&app, move |app| {
        app.resolve_conflict(id, &field, &candidate)
    })
    .await
}

#[tauri::command]
pub async fn submit_inspection(app: State<'_, App>, id: Uuid) -> Result<InspectionView, AppError> {
    blocking(&app, move |app| app.submit_inspection(id)).await
}

#[tauri::command]
pub async fn sign_off(
    app: State<'_, App>,
    id: Uuid,
    statement: String,
) -> Result<InspectionView, AppError> {
    blocking(&app, move |app| app.sign_off(id, &statement)).await
}

#[tauri::command]
pub async fn inspection_history(
    app: State<'_, App>,
    id: Uuid,
    subject: crate::service::views::HistorySubject,
) -> Result<crate::service::views::History, AppError> {
    blocking(&app, move |app| app.history(id, subject)).await
}

#[tauri::command]
pub async fn sync_status(app: State<'_, App>) -> Result<SyncStatus, AppError> {
    Ok(app.sync_status())
}

#[tauri::command]
pub async fn sync_now(app: State<'_, App>) -> Result<SyncStatus, AppError> {
    Ok(app.sync_now())
}

#[tauri::command]
pub async fn take_servers_copy(
    app: State<'_, App>,
    document: Uuid,
) -> Result<SyncStatus, AppError> {
    blocking(&app, move |app| app.take_servers_copy(document)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("IMG%201.jpg").as_deref(), Some("IMG 1.jpg"));
        assert_eq!(percent_decode("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
    }
}
