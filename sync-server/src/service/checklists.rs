//! Checklists for devices (issue 15, item 3): every checklist the server holds (each
//! published one, and each bundled one an inspection has pinned), so that a device can
//! open an inspection pinned to a version its build does not carry, and keep it.
//!
//! - `GET /api/v1/checklists`: each checklist's id, version, SHA-256 (its pin) and title;
//! - `GET /api/v1/checklists/{id}/{version}`: its files, in the order the pin hashes
//!   them (the device loads them and checks that they hash to the pin it needs).
//!
//! Any signed-in caller: a checklist is the regulator's published question list, not
//! an inspection's content. Not audited (a read of public material).

use serde::Serialize;
use wardcheck_core::checklist;

use super::{Acting, blocking};
use crate::error::AppError;
use crate::storage::PublishedChecklist;

/// A checklist the server holds.
#[derive(Debug, Serialize)]
pub struct ChecklistRef {
    pub id: String,
    pub version: String,
    pub sha256: String,
    pub title: String,
}

#[derive(Debug, Serialize)]
pub struct ChecklistList {
    pub checklists: Vec<ChecklistRef>,
}

/// One file of a checklist.
#[derive(Debug, Serialize)]
pub struct ChecklistFile {
    pub name: String,
    pub text: String,
}

/// A checklist's files.
#[derive(Debug, Serialize)]
pub struct ChecklistFiles {
    pub id: String,
    pub version: String,
    pub sha256: String,
    pub files: Vec<ChecklistFile>,
}

impl Acting<'_> {
    /// Every checklist the server holds, by id and version.
    pub async fn checklists(&self) -> Result<ChecklistList, AppError> {
        let storage = self.state.storage.clone();
        let held = blocking(move || Ok(storage.checklists()?)).await?;
        let checklists = held
            .into_iter()
            .map(|p: PublishedChecklist| {
                let title = checklist::load_files(&p.files)
                    .map(|c| c.title)
                    .unwrap_or_default();
                ChecklistRef {
                    id: p.id,
                    version: p.version,
                    sha256: p.sha256,
                    title,
                }
            })
            .collect();
        Ok(ChecklistList { checklists })
    }

    /// The files of checklist `id` at `version` (404 when the server holds none).
    pub async fn checklist_files(
        &self,
        id: &str,
        version: &str,
    ) -> Result<ChecklistFiles, AppError> {
        let storage = self.state.storage.clone();
        let (i, v) = (id.to_owned(), version.to_owned());
        let found = blocking(move || Ok(storage.checklist(&i, &v)?))
            .await?
            .ok_or_else(AppError::not_found)?;
        Ok(ChecklistFiles {
            id: found.id,
            version: found.version,
            sha256: found.sha256,
            files: found
                .files
                .into_iter()
                .map(|(name, text)| ChecklistFile { name, text })
                .collect(),
        })
    }
}
