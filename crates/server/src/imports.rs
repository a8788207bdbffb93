//! The import worker, one per server process: it claims a job (queued, or running with a
//! lapsed lease after its worker stopped), writes its rows chunk by chunk, renewing the claim
//! as it goes, and finishes it.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rapport_domain::import::ImportStatus;
use rapport_domain::{Store, StoreError};
use rapport_http::import::{ImportRun, RunError};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy)]
pub struct ImportSettings {
    /// Whether this process runs imports.
    pub enabled: bool,
    /// How often an idle worker looks for a job.
    pub poll: Duration,
    /// Rows per transaction.
    pub chunk: usize,
    /// How long a claim holds without renewal.
    pub lease: Duration,
}

impl Default for ImportSettings {
    fn default() -> Self {
        ImportSettings {
            enabled: true,
            poll: Duration::from_millis(500),
            chunk: 500,
            lease: Duration::from_secs(60),
        }
    }
}

pub fn spawn(store: Arc<dyn Store>, settings: ImportSettings) -> JoinHandle<()> {
    tokio::spawn(async move {
        if !settings.enabled {
            return;
        }
        loop {
            match work(store.as_ref(), settings, None).await {
                Ok(true) => {}
                Ok(false) => tokio::time::sleep(settings.poll).await,
                Err(error) => {
                    tracing::warn!(%error, "import worker");
                    tokio::time::sleep(settings.poll).await;
                }
            }
        }
    })
}

fn lease(settings: ImportSettings) -> chrono::Duration {
    chrono::Duration::from_std(settings.lease).unwrap_or(chrono::Duration::seconds(60))
}

/// Claims one job and works on it: to the end, or for `max_chunks` chunks (then the claim is
/// left to lapse, as if the process had stopped). Answers whether there was a job.
pub async fn work(
    store: &dyn Store,
    settings: ImportSettings,
    max_chunks: Option<usize>,
) -> Result<bool, StoreError> {
    let queue = store.import_queue();
    let now = Utc::now();
    let Some(claimed) = queue.claim(now, now + lease(settings)).await? else {
        return Ok(false);
    };
    let id = claimed.job.id;
    tracing::info!(import = %id, object = %claimed.job.object, processed = claimed.job.counts.processed, "import claimed");
    let mut run = match ImportRun::start(store, claimed).await {
        Ok(run) => run,
        Err(RunError::Unavailable(error)) => return Err(error),
        Err(RunError::Fatal(reason)) => {
            queue.finish(id, ImportStatus::Failed, Some(reason)).await?;
            return Ok(true);
        }
    };
    let mut chunks = 0;
    while !run.done() {
        if max_chunks.is_some_and(|max| chunks >= max) {
            return Ok(true);
        }
        match run.next_chunk(store, settings.chunk).await {
            Ok(()) => {
                chunks += 1;
                // The tables grow by the chunk: keep the planner's picture within a factor of two.
                if chunks.is_power_of_two() {
                    queue.analyze(run.claimed.job.object).await?;
                }
            }
            Err(RunError::Unavailable(error)) => return Err(error),
            Err(RunError::Fatal(reason)) => {
                queue.finish(id, ImportStatus::Failed, Some(reason)).await?;
                return Ok(true);
            }
        }
        if !queue.renew(id, Utc::now() + lease(settings)).await? {
            tracing::warn!(import = %id, "the import was taken over; stopping");
            return Ok(true);
        }
    }
    queue.finish(id, ImportStatus::Completed, None).await?;
    tracing::info!(import = %id, rows = run.processed, "import completed");
    Ok(true)
}
