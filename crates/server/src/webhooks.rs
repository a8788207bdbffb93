//! The webhook worker, one per server process: it turns committed events into deliveries (the
//! event log is the outbox, so nothing is lost across restarts), claims due deliveries (each
//! by one process only), signs and sends them, and keeps every attempt.
//!
//! Targets are the tenants' URLs, reached from inside the operator's network, so the client
//! connects only to addresses the [`TargetPolicy`] allows (public ones by default): address
//! literals are checked before sending, names by the client's resolver ([`resolver`]) on
//! every attempt; redirects are not followed and no proxy is used. What an attempt records
//! for the tenant tells "connection failed" from a timeout and an HTTP status, never one
//! network error from another (a refused port from a reset one would make the worker a port
//! scanner); the detail goes to the server's log.

mod resolver;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::future::join_all;
use rapport_auth::secret::webhook_signature;
use rapport_domain::webhook::target::{TargetError, TargetPolicy};
use rapport_domain::webhook::{Attempt, AttemptOutcome, DeliveryJob, next_attempt};
use rapport_domain::{AuthContext, Store, StoreError};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// How the worker paces itself.
#[derive(Debug, Clone, Copy)]
pub struct WebhookSettings {
    /// How often an idle worker looks for new events and due deliveries.
    pub poll: Duration,
    /// How long a receiver gets to answer.
    pub timeout: Duration,
    /// Multiplies the retry schedule (1.0 in production; tests shrink it).
    pub retry_scale: f64,
    /// Deliveries sent at once.
    pub batch: u32,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            poll: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
            retry_scale: 1.0,
            batch: 32,
        }
    }
}

/// Makes rustls (on ring) the process's TLS crypto: reqwest clients need it before they are
/// built. Calling it again does nothing.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What an attempt records when the receiver could not be reached, whatever the reason.
const CONNECTION_FAILED: &str = "connection failed";

/// The webhook client and the policy it enforces.
struct Sender {
    client: reqwest::Client,
    targets: Arc<TargetPolicy>,
}

/// Starts the worker; abort the handle to stop it (a delivery cut short is claimed again
/// when its lease ends).
pub fn spawn(
    store: Arc<dyn Store>,
    settings: WebhookSettings,
    targets: TargetPolicy,
) -> anyhow::Result<JoinHandle<()>> {
    install_tls_provider();
    let targets = Arc::new(targets);
    let client = reqwest::Client::builder()
        .timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve and connect for us, past the resolver's check.
        .no_proxy()
        .dns_resolver(resolver::GuardedResolver {
            policy: targets.clone(),
        })
        .user_agent(concat!("Rapport-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let sender = Sender { client, targets };
    Ok(tokio::spawn(async move {
        loop {
            match tick(store.as_ref(), &sender, settings).await {
                Ok(0) => tokio::time::sleep(settings.poll).await,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "webhook worker");
                    tokio::time::sleep(settings.poll).await;
                }
            }
        }
    }))
}

/// One round: dispatch new events, then send what is due. Answers how many were sent.
async fn tick(
    store: &dyn Store,
    sender: &Sender,
    settings: WebhookSettings,
) -> Result<usize, StoreError> {
    let queue = store.webhook_queue();
    queue.dispatch(Utc::now()).await?;
    // The lease outlasts an attempt (the receiver's timeout) by a wide margin.
    let lease =
        chrono::Duration::from_std(settings.timeout * 3).unwrap_or(chrono::Duration::seconds(30));
    let jobs = queue.claim(Utc::now(), lease, settings.batch).await?;
    if jobs.is_empty() {
        return Ok(0);
    }
    let mut contexts: HashMap<Uuid, AuthContext> = HashMap::new();
    for job in &jobs {
        if let std::collections::hash_map::Entry::Vacant(entry) = contexts.entry(job.org_id) {
            entry.insert(queue.system_context(job.org_id).await?);
        }
    }
    let sent = jobs.len();
    let results = join_all(jobs.iter().map(|job| {
        let ctx = &contexts[&job.org_id];
        deliver(store, sender, settings, ctx, job)
    }))
    .await;
    for result in results {
        if let Err(error) = result {
            tracing::warn!(%error, "webhook delivery");
        }
    }
    Ok(sent)
}

/// The body of a delivery: the event as the change feed shows it, with the delivery's ids.
async fn payload(
    store: &dyn Store,
    ctx: &AuthContext,
    job: &DeliveryJob,
) -> Result<Option<Vec<u8>>, StoreError> {
    let events = store
        .webhook_queue()
        .events(job.org_id, &[job.event_seq])
        .await?;
    let rendered = rapport_http::routes::changes::render_events(store, ctx, events).await?;
    let Some(event) = rendered.into_iter().next() else {
        return Ok(None);
    };
    let mut body = json!({"delivery_id": job.id, "webhook_id": job.webhook_id});
    if let (Value::Object(body), Ok(Value::Object(event))) =
        (&mut body, serde_json::to_value(event))
    {
        body.extend(event);
    }
    Ok(Some(serde_json::to_vec(&body).unwrap_or_default()))
}

/// A spread in [-1, 1] from fresh random bits, so that retries do not arrive in lockstep.
fn jitter() -> f64 {
    let random = Uuid::now_v7().as_bytes()[15];
    f64::from(random) / 127.5 - 1.0
}

async fn deliver(
    store: &dyn Store,
    sender: &Sender,
    settings: WebhookSettings,
    ctx: &AuthContext,
    job: &DeliveryJob,
) -> Result<(), StoreError> {
    let attempted_at = Utc::now();
    let started = Instant::now();
    // What the URL alone shows (an address literal, credentials) is checked here; the
    // resolver checks the addresses of a name.
    let refused = sender.targets.check_url_literally(&job.url).err().map(|error| {
        tracing::warn!(webhook = %job.webhook_id, delivery = %job.id, %error, "webhook target refused");
        match error {
            TargetError::Credentials => "the URL must not contain a user name or password",
            TargetError::NotAllowed | TargetError::NotHttp => "the target address is not allowed",
        }
    });
    let body = match refused {
        Some(reason) => Err(reason),
        None => payload(store, ctx, job)
            .await?
            .ok_or("the event no longer exists"),
    };
    let (status, error) = match body {
        Err(reason) => (None, Some(reason.to_owned())),
        Ok(body) => {
            let signature = webhook_signature(&job.secret, attempted_at.timestamp(), &body);
            let event = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["event"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let sent = sender
                .client
                .post(&job.url)
                .header("content-type", "application/json")
                .header("rapport-signature", signature)
                .header("rapport-event", event)
                .header("rapport-delivery", job.id.to_string())
                .body(body)
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    (Some(response.status().as_u16()), None)
                }
                Ok(response) => {
                    let code = response.status().as_u16();
                    (
                        Some(code),
                        Some(format!("the receiver answered HTTP {code}")),
                    )
                }
                Err(error) if error.is_timeout() => (
                    None,
                    Some(format!("no answer within {} s", settings.timeout.as_secs())),
                ),
                Err(error) => {
                    tracing::info!(
                        webhook = %job.webhook_id,
                        delivery = %job.id,
                        error = describe(&error.without_url()),
                        "webhook delivery could not connect"
                    );
                    (None, Some(CONNECTION_FAILED.to_owned()))
                }
            }
        }
    };
    let attempt = Attempt {
        attempted_at,
        response_status: status,
        latency_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        error: error.clone(),
    };
    let outcome = match (status, &error) {
        (_, None) => AttemptOutcome::Succeeded,
        (Some(410), _) => AttemptOutcome::Gone,
        _ => match next_attempt(job.attempts + 1, Utc::now(), settings.retry_scale, jitter()) {
            Some(at) => AttemptOutcome::Retry(at),
            None => AttemptOutcome::Failed,
        },
    };
    store
        .webhook_queue()
        .record_attempt(job, &attempt, &outcome)
        .await
}

/// A network error with its causes, for the server's log only.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(500).collect()
}
