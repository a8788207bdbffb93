//! The import worker, one per server process. It claims jobs (queued, or running with a lapsed
//! or released lease), writes their rows chunk by chunk, renewing the claims as it goes, and
//! finishes them.
//!
//! Scheduling is fair across organizations, so that one tenant's 600,000-row import does not
//! make another's one-row import wait for hours: a worker works on up to
//! [`ImportSettings::concurrent`] jobs at once, each of another organization (the claim takes
//! only jobs of organizations with no job under a live claim), writing one chunk of each in
//! turn. While it works it looks for waiting jobs every `poll`; a new job's first chunk comes
//! next. When all its places are taken and another organization's job waits, the job that has
//! had [`ImportSettings::turn`] chunks in a row lets go of its claim (it resumes where it
//! stopped, after the jobs that waited meanwhile) and the waiting one takes its place.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rapport_domain::import::ImportStatus;
use rapport_domain::{Store, StoreError};
use rapport_http::import::{ImportRun, RunError};
use tokio::task::JoinHandle;
use uuid::Uuid;

#[derive(Debug, Clone, Copy)]
pub struct ImportSettings {
    /// Whether this process runs imports.
    pub enabled: bool,
    /// How often an idle worker looks for a job, and a busy one for jobs of other
    /// organizations.
    pub poll: Duration,
    /// Rows per transaction.
    pub chunk: usize,
    /// How long a claim holds without renewal.
    pub lease: Duration,
    /// Jobs (of as many organizations) a worker holds at once; each holds its file in memory.
    pub concurrent: usize,
    /// Chunks a job writes before it gives its place to another organization's waiting job
    /// (only when the worker has no free place).
    pub turn: usize,
}

impl Default for ImportSettings {
    fn default() -> Self {
        ImportSettings {
            enabled: true,
            poll: Duration::from_millis(500),
            chunk: 500,
            lease: Duration::from_secs(60),
            concurrent: 4,
            turn: 32,
        }
    }
}

pub fn spawn(store: Arc<dyn Store>, settings: ImportSettings) -> JoinHandle<()> {
    tokio::spawn(async move {
        if !settings.enabled {
            return;
        }
        let mut worker = Worker::new(settings);
        loop {
            match worker.step(store.as_ref()).await {
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

/// A job this worker holds.
struct Active {
    run: ImportRun,
    /// Chunks written since this worker claimed it.
    chunks: usize,
    /// When its claim was last extended.
    renewed: Instant,
}

impl Active {
    fn id(&self) -> Uuid {
        self.run.claimed.job.id
    }
}

/// The jobs a worker holds, in the order of their turns.
struct Worker {
    settings: ImportSettings,
    active: VecDeque<Active>,
    /// When the worker last looked for a job.
    looked: Option<Instant>,
}

impl Worker {
    fn new(settings: ImportSettings) -> Worker {
        Worker {
            settings,
            active: VecDeque::new(),
            looked: None,
        }
    }

    /// Takes on a waiting job when it is time to look, then writes one chunk of the job whose
    /// turn it is. Answers whether the worker holds any job.
    async fn step(&mut self, store: &dyn Store) -> Result<bool, StoreError> {
        let due = self
            .looked
            .is_none_or(|at| self.active.is_empty() || at.elapsed() >= self.settings.poll);
        if due {
            self.looked = Some(Instant::now());
            self.take_on(store).await?;
        }
        let Some(mut active) = self.active.pop_front() else {
            return Ok(false);
        };
        // A job that fails to advance because the database is away is dropped: its claim
        // lapses and a worker resumes it later.
        if advance(store, self.settings, &mut active).await? {
            self.active.push_back(active);
        }
        self.renew(store).await?;
        Ok(!self.active.is_empty())
    }

    /// Claims a waiting job, making room for it when every place is taken (and some job
    /// has had its turn).
    async fn take_on(&mut self, store: &dyn Store) -> Result<(), StoreError> {
        let settings = self.settings;
        let full = self.active.len() >= settings.concurrent.max(1);
        let paused = if full {
            let most = self
                .active
                .iter()
                .enumerate()
                .filter(|(_, a)| a.chunks >= settings.turn)
                .max_by_key(|(_, a)| a.chunks)
                .map(|(index, _)| index);
            match most {
                Some(index) => Some(index),
                None => return Ok(()),
            }
        } else {
            None
        };
        let Some(run) = claim(store, settings).await? else {
            return Ok(());
        };
        if let Some(active) = paused.and_then(|index| self.active.remove(index)) {
            store.import_queue().release(active.id()).await?;
            tracing::info!(import = %active.id(), processed = active.run.processed, "import paused for another organization's");
        }
        self.active.push_front(Active {
            run,
            chunks: 0,
            renewed: Instant::now(),
        });
        Ok(())
    }

    /// Extends the claims that have run a quarter of their lease; forgets the jobs that are no
    /// longer this worker's.
    async fn renew(&mut self, store: &dyn Store) -> Result<(), StoreError> {
        let queue = store.import_queue();
        let mut kept = VecDeque::with_capacity(self.active.len());
        while let Some(mut active) = self.active.pop_front() {
            if active.renewed.elapsed() >= self.settings.lease / 4 {
                if !queue
                    .renew(active.id(), Utc::now() + lease(self.settings))
                    .await?
                {
                    tracing::warn!(import = %active.id(), "the import was taken over; stopping");
                    continue;
                }
                active.renewed = Instant::now();
            }
            kept.push_back(active);
        }
        self.active = kept;
        Ok(())
    }
}

/// Claims a job and opens its file; a job whose file cannot be worked on fails at once (and
/// the next one is tried).
async fn claim(
    store: &dyn Store,
    settings: ImportSettings,
) -> Result<Option<ImportRun>, StoreError> {
    let queue = store.import_queue();
    loop {
        let now = Utc::now();
        let Some(claimed) = queue.claim(now, now + lease(settings)).await? else {
            return Ok(None);
        };
        let id = claimed.job.id;
        tracing::info!(import = %id, org = %claimed.job.org_id, object = %claimed.job.object, processed = claimed.job.counts.processed, "import claimed");
        match ImportRun::start(store, claimed).await {
            Ok(run) => return Ok(Some(run)),
            Err(RunError::Unavailable(error)) => return Err(error),
            Err(RunError::Fatal(reason)) => {
                queue.finish(id, ImportStatus::Failed, Some(reason)).await?;
            }
        }
    }
}

/// Writes the job's next chunk, and finishes the job when that was its last. Answers whether
/// the job goes on.
async fn advance(
    store: &dyn Store,
    settings: ImportSettings,
    active: &mut Active,
) -> Result<bool, StoreError> {
    let queue = store.import_queue();
    let id = active.id();
    if !active.run.done() {
        match active.run.next_chunk(store, settings.chunk).await {
            Ok(()) => {
                active.chunks += 1;
                // The tables grow by the chunk: keep the planner's picture within a factor of two.
                if active.chunks.is_power_of_two() {
                    queue.analyze(active.run.claimed.job.object).await?;
                }
            }
            Err(RunError::Unavailable(error)) => return Err(error),
            Err(RunError::Fatal(reason)) => {
                queue.finish(id, ImportStatus::Failed, Some(reason)).await?;
                return Ok(false);
            }
        }
    }
    if active.run.done() {
        queue.finish(id, ImportStatus::Completed, None).await?;
        tracing::info!(import = %id, rows = active.run.processed, "import completed");
        return Ok(false);
    }
    Ok(true)
}

/// Claims one job and works on it alone: to the end, or for `max_chunks` chunks (then the claim
/// is left to lapse, as if the process had stopped). Answers whether there was a job.
pub async fn work(
    store: &dyn Store,
    settings: ImportSettings,
    max_chunks: Option<usize>,
) -> Result<bool, StoreError> {
    let Some(run) = claim(store, settings).await? else {
        return Ok(false);
    };
    let mut active = Active {
        run,
        chunks: 0,
        renewed: Instant::now(),
    };
    while max_chunks.is_none_or(|max| active.chunks < max) {
        if !advance(store, settings, &mut active).await? {
            return Ok(true);
        }
        if !store
            .import_queue()
            .renew(active.id(), Utc::now() + lease(settings))
            .await?
        {
            tracing::warn!(import = %active.id(), "the import was taken over; stopping");
            return Ok(true);
        }
    }
    Ok(true)
}
