//! Password hashing on a few threads of its own, with a short queue.
//!
//! An argon2id check takes 19 MiB and tens of milliseconds of one core. Run on the general
//! blocking pool, every failed sign-in of a flood got a thread of its own: 64 clients took the
//! server to gigabytes (each thread's allocator arena keeps its 19 MiB). Here at most one check
//! per core runs at a time, on the same threads (so their memory is reused), a few more wait,
//! and past that a request is answered 503 `server_busy` with `Retry-After` at once.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use actix_web::http::header::{self, HeaderValue};
use rapport_auth::password;

use crate::error::{ApiError, ErrorCode};

type Job = Box<dyn FnOnce() + Send>;

/// How the password work is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordWorkSettings {
    /// Checks that run at once (one per core by default).
    pub threads: usize,
    /// Checks that may wait for a thread; more are answered 503.
    pub queue: usize,
}

impl Default for PasswordWorkSettings {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        PasswordWorkSettings {
            threads,
            queue: threads * 4,
        }
    }
}

/// The threads that hash and verify passwords. Dropping it lets them end.
pub struct PasswordWork {
    sender: SyncSender<Job>,
}

impl std::fmt::Debug for PasswordWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordWork")
    }
}

impl PasswordWork {
    pub fn new(settings: PasswordWorkSettings) -> Self {
        let (sender, receiver) = sync_channel::<Job>(settings.queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..settings.threads.max(1) {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new()
                .name(format!("rapport-passwords-{n}"))
                .spawn(move || work(&receiver));
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password thread");
            }
        }
        PasswordWork { sender }
    }

    /// Runs `job` on a password thread; 503 `server_busy` when the queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = answer.send(job());
        });
        match self.sender.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(busy()),
            Err(TrySendError::Disconnected(_)) => {
                return Err(ApiError::internal("the password threads have stopped"));
            }
        }
        answered
            .await
            .map_err(|_| ApiError::internal("a password thread dropped its job"))
    }

    /// The PHC string of a fresh hash of `plain`.
    pub async fn hash(&self, plain: String) -> Result<String, ApiError> {
        self.run(move || password::hash(&plain))
            .await?
            .map_err(ApiError::internal)
    }

    /// Whether `plain` matches `hash`.
    pub async fn verify(&self, plain: String, hash: String) -> Result<bool, ApiError> {
        self.run(move || password::verify(&plain, &hash)).await
    }

    /// Spends what a check costs, for an email nobody has (timing tells nothing).
    pub async fn verify_against_nothing(&self, plain: String) -> Result<(), ApiError> {
        self.run(move || password::verify_against_nothing(&plain))
            .await
    }
}

fn work(receiver: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let receiver = receiver
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            receiver.recv()
        };
        match job {
            Ok(job) => job(),
            // Every sender is gone: the application has stopped.
            Err(_) => return,
        }
    }
}

fn busy() -> ApiError {
    ApiError::new(
        ErrorCode::ServerBusy,
        "Too many sign-ins are being checked right now; retry in a second.",
    )
    .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;

    use super::*;

    #[tokio::test]
    async fn past_the_running_and_waiting_checks_a_request_is_refused_at_once() {
        let work = PasswordWork::new(PasswordWorkSettings {
            threads: 1,
            queue: 1,
        });
        let gate = Arc::new(Barrier::new(2));
        let (started, has_started) = std::sync::mpsc::channel();
        // One job holds the only thread until the gate opens...
        let holder = Arc::clone(&gate);
        let hold: Job = Box::new(move || {
            started.send(()).unwrap();
            holder.wait();
        });
        assert!(work.sender.try_send(hold).is_ok());
        has_started.recv().unwrap();
        // ...one waits in the only place of the queue...
        let (ran, has_run) = std::sync::mpsc::channel();
        let waiting: Job = Box::new(move || ran.send(()).unwrap());
        assert!(work.sender.try_send(waiting).is_ok());
        // ...so the next is refused without waiting.
        let refused = work.run(|| 1).await.unwrap_err();
        assert_eq!(refused.code(), ErrorCode::ServerBusy);
        gate.wait();
        has_run.recv().unwrap();
        assert_eq!(work.run(|| 2).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn hashes_verify_on_the_password_threads() {
        let work = PasswordWork::new(PasswordWorkSettings::default());
        let hash = work.hash("correct horse battery".into()).await.unwrap();
        assert!(
            work.verify("correct horse battery".into(), hash.clone())
                .await
                .unwrap()
        );
        assert!(
            !work
                .verify("wrong horse battery".into(), hash)
                .await
                .unwrap()
        );
    }
}
