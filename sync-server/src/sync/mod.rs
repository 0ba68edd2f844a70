//! The automerge-repo sync protocol over WebSocket (being written).

use std::sync::Arc;

use axum::Router;

use crate::AppState;
use crate::storage::Storage;

/// The documents in memory.
#[derive(Debug)]
pub struct Documents {
    #[allow(dead_code)]
    storage: Arc<dyn Storage>,
}

impl Documents {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Documents { storage }
    }

    /// Evicts idle documents from memory, forever.
    pub async fn evict_idle_forever(&self) {
        std::future::pending::<()>().await
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
}
