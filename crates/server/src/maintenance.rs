//! Housekeeping that runs beside the HTTP server: expired idempotency keys are deleted.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rapport_domain::Store;
use tokio::task::JoinHandle;

/// How often the housekeeping runs.
const EVERY: Duration = Duration::from_secs(3600);

/// Starts the housekeeping loop; abort the handle to stop it.
pub fn spawn(store: Arc<dyn Store>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(EVERY);
        loop {
            ticks.tick().await;
            match store.idempotency().purge_expired(Utc::now()).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "expired idempotency keys deleted"),
                Err(error) => tracing::warn!(%error, "cannot purge idempotency keys"),
            }
        }
    })
}
