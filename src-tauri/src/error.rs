//! The one error every command returns: `{code, message}`, serialised for the UI.
//!
//! The UI branches on `code` (docs/APP-IPC.md lists them); `message` is a sentence an
//! inspector can act on. Typed errors from `wardcheck-core` are mapped here, so no
//! command decides a code for itself.

use serde::Serialize;
use wardcheck_core::inspection::InspectionError;
use wardcheck_core::photo::PhotoError;
use wardcheck_core::store::StoreError;

/// What kind of failure, for the UI to branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No one is signed in on this device.
    NotSignedIn,
    /// The server cannot be reached.
    Offline,
    /// Wrong user or password, or the device's token was revoked.
    Unauthorized,
    /// No keychain to keep the store's key and the device token in.
    NoKeychain,
    NotFound,
    /// A typed refusal from `wardcheck-core` (e.g. 'not applicable' without a reason).
    Invalid,
    TooLarge,
    BadImage,
    /// The local store failed (disk full, damaged, locked).
    Storage,
    /// An update of the app whose signature does not hold under the app's release key:
    /// nothing was installed.
    UpdateRefused,
    /// An update that verified but could not be installed (no rights, a failed installer).
    UpdateFailed,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotSignedIn => "not_signed_in",
            ErrorCode::Offline => "offline",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NoKeychain => "no_keychain",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Invalid => "invalid",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::BadImage => "bad_image",
            ErrorCode::Storage => "storage",
            ErrorCode::UpdateRefused => "update_refused",
            ErrorCode::UpdateFailed => "update_failed",
            ErrorCode::Internal => "internal",
        }
    }
}

/// A command's failure, as the UI receives it: `{"code": "...", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError {
            code,
            message: sentence(&message.into()),
        }
    }

    pub fn not_signed_in() -> Self {
        AppError::new(
            ErrorCode::NotSignedIn,
            "Nobody is signed in on this device: sign in while connected to the server",
        )
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        AppError::new(
            ErrorCode::Internal,
            format!("Something went wrong inside the app: {e}"),
        )
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        AppError::new(ErrorCode::Invalid, message)
    }
}

/// Core messages are short and lowercase ("unknown checklist item ..."); the UI shows
/// a sentence.
fn sentence(message: &str) -> String {
    let message = message.trim();
    let mut chars = message.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return "Something went wrong.".into(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

impl From<InspectionError> for AppError {
    fn from(e: InspectionError) -> Self {
        use InspectionError as E;
        let code = match &e {
            E::UnknownItem(_)
            | E::UnknownDevice(_)
            | E::UnknownFinding(_)
            | E::UnknownPhoto { .. }
            | E::UnknownCandidate { .. } => ErrorCode::NotFound,
            E::ChecklistMismatch { .. }
            | E::UnsupportedSchema(_)
            | E::Malformed(_)
            | E::Automerge(_) => ErrorCode::Storage,
            _ => ErrorCode::Invalid,
        };
        AppError::new(code, e.to_string())
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Inspection(e) => e.into(),
            StoreError::UnknownDocument(id) => AppError::new(
                ErrorCode::NotFound,
                format!("inspection {id} is not on this device"),
            ),
            StoreError::UnknownBlob(sha) => AppError::new(
                ErrorCode::NotFound,
                format!("photo {sha} is not on this device"),
            ),
            StoreError::Full(_) => AppError::new(
                ErrorCode::Storage,
                "The device's storage is full: free some space; nothing was saved",
            ),
            e => AppError::new(
                ErrorCode::Storage,
                format!("The local data could not be read or written: {e}"),
            ),
        }
    }
}

impl From<PhotoError> for AppError {
    fn from(e: PhotoError) -> Self {
        let code = match &e {
            PhotoError::InputTooLarge { .. }
            | PhotoError::TooLarge { .. }
            | PhotoError::MemoryLimit { .. } => ErrorCode::TooLarge,
            PhotoError::Encode { .. } => ErrorCode::Internal,
            _ => ErrorCode::BadImage,
        };
        AppError::new(code, format!("the photo was not added: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_code_and_message() {
        let e = AppError::new(ErrorCode::TooLarge, "photo is too large");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"code": "too_large", "message": "Photo is too large."})
        );
        for code in [
            ErrorCode::NotSignedIn,
            ErrorCode::Offline,
            ErrorCode::Unauthorized,
            ErrorCode::NoKeychain,
            ErrorCode::NotFound,
            ErrorCode::Invalid,
            ErrorCode::TooLarge,
            ErrorCode::BadImage,
            ErrorCode::Storage,
            ErrorCode::UpdateRefused,
            ErrorCode::UpdateFailed,
            ErrorCode::Internal,
        ] {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::json!(code.as_str()),
                "the serde name and as_str agree"
            );
        }
    }

    #[test]
    fn missing_reason_is_invalid() {
        let e: AppError = InspectionError::MissingReason("ndg1-x".into()).into();
        assert_eq!(e.code, ErrorCode::Invalid);
        assert!(e.message.starts_with("'not applicable'"), "{}", e.message);
    }
}
