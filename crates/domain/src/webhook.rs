//! Webhooks: subscriptions to the event log, deliveries with their attempts, and the retry
//! schedule.

pub mod target;

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ObjectType;
use crate::record::EventAction;

/// What a webhook subscribes to: `contact.created`, `contact.*`, or `*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventPattern {
    object: Option<ObjectType>,
    action: Option<EventAction>,
}

impl EventPattern {
    pub fn parse(text: &str) -> Result<EventPattern, String> {
        if text == "*" {
            return Ok(EventPattern {
                object: None,
                action: None,
            });
        }
        let known = || {
            crate::objects::event_objects()
                .iter()
                .map(|o| o.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (object, action) = text
            .split_once('.')
            .ok_or_else(|| format!("`{text}` is not `<object>.<action>`, `<object>.*` or `*`"))?;
        let object = object
            .parse::<ObjectType>()
            .ok()
            .filter(|o| crate::objects::event_objects().contains(o))
            .ok_or_else(|| format!("`{object}` is not an object with events ({})", known()))?;
        let action = match action {
            "*" => None,
            other => Some(EventAction::parse(other).ok_or_else(|| {
                format!(
                    "`{other}` is not an action (created, updated, deleted, restored, merged or *)"
                )
            })?),
        };
        Ok(EventPattern {
            object: Some(object),
            action,
        })
    }

    pub fn matches(&self, object: ObjectType, action: EventAction) -> bool {
        self.object.is_none_or(|o| o == object) && self.action.is_none_or(|a| a == action)
    }
}

impl fmt::Display for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.object, self.action) {
            (None, _) => f.write_str("*"),
            (Some(object), None) => write!(f, "{object}.*"),
            (Some(object), Some(action)) => write!(f, "{object}.{action}"),
        }
    }
}

/// Whether any of `patterns` wants this event.
pub fn wants(patterns: &[EventPattern], object: ObjectType, action: EventAction) -> bool {
    patterns.iter().any(|p| p.matches(object, action))
}

#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: Uuid,
    pub org_id: Uuid,
    pub url: String,
    pub events: Vec<EventPattern>,
    pub description: Option<String>,
    pub active: bool,
    /// Why Rapport switched the webhook off (the receiver answered 410 Gone).
    pub disabled_reason: Option<String>,
    /// The HMAC key of the signatures; shown once, at creation and on rotation.
    pub secret: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("active", &self.active)
            .field("secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<EventPattern>,
    pub description: Option<String>,
    pub active: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub events: Option<Vec<EventPattern>>,
    pub description: Option<Option<String>>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DeliveryStatus {
    /// Waiting for its (next) attempt.
    Pending,
    /// An attempt is under way.
    Sending,
    Succeeded,
    /// Every attempt failed, or the receiver answered 410 Gone.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sending => "sending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        Some(match text {
            "pending" => DeliveryStatus::Pending,
            "sending" => DeliveryStatus::Sending,
            "succeeded" => DeliveryStatus::Succeeded,
            "failed" => DeliveryStatus::Failed,
            _ => return None,
        })
    }
}

/// One try at delivering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status, when it answered.
    pub response_status: Option<u16>,
    pub latency_ms: i64,
    /// Why it failed, when it did: a network error, a timeout, a non-2xx status.
    pub error: Option<String>,
}

/// One event for one webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_seq: i64,
    pub object: ObjectType,
    pub object_id: Uuid,
    pub action: EventAction,
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: Vec<Attempt>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A delivery claimed by a sender: what to send where.
#[derive(Clone, PartialEq, Eq)]
pub struct DeliveryJob {
    pub id: Uuid,
    pub org_id: Uuid,
    pub webhook_id: Uuid,
    pub url: String,
    pub secret: String,
    pub event_seq: i64,
    /// Attempts made before this one.
    pub attempts: u32,
}

impl fmt::Debug for DeliveryJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryJob")
            .field("id", &self.id)
            .field("webhook_id", &self.webhook_id)
            .field("url", &self.url)
            .field("event_seq", &self.event_seq)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// What became of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Succeeded,
    /// Try again at this time.
    Retry(DateTime<Utc>),
    /// The last attempt failed.
    Failed,
    /// The receiver answered 410 Gone: the delivery fails and the webhook is switched off.
    Gone,
}

/// Attempts per delivery, the first included.
pub const MAX_ATTEMPTS: u32 = 10;

/// The wait after each failed attempt (before jitter): 30 s, 2 min, 10 min, 30 min, 1 h, 2 h,
/// 4 h, 8 h, 12 h — ten attempts over about 29 hours.
const BACKOFF_SECONDS: [i64; 9] = [30, 120, 600, 1_800, 3_600, 7_200, 14_400, 28_800, 43_200];

/// When to try again after `attempts` failed attempts, or None when that was the last.
/// `scale` shrinks the schedule (tests, staging); `jitter` in [-1, 1] spreads retries by up to
/// ±20 % so that a recovering receiver is not hit by every delivery at once.
pub fn next_attempt(
    attempts: u32,
    now: DateTime<Utc>,
    scale: f64,
    jitter: f64,
) -> Option<DateTime<Utc>> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let index = usize::try_from(attempts.saturating_sub(1)).unwrap_or(0);
    let base = BACKOFF_SECONDS.get(index).copied().unwrap_or(43_200) as f64;
    let wait_ms = base * 1000.0 * scale * (1.0 + 0.2 * jitter.clamp(-1.0, 1.0));
    Some(now + Duration::milliseconds(wait_ms.max(1.0) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_name_an_object_and_an_action_or_a_wildcard() {
        let exact = EventPattern::parse("contact.created").unwrap();
        let any_contact = EventPattern::parse("contact.*").unwrap();
        let all = EventPattern::parse("*").unwrap();
        assert!(exact.matches(ObjectType::Contact, EventAction::Created));
        assert!(!exact.matches(ObjectType::Contact, EventAction::Updated));
        assert!(any_contact.matches(ObjectType::Contact, EventAction::Merged));
        assert!(!any_contact.matches(ObjectType::Company, EventAction::Created));
        assert!(all.matches(ObjectType::Order, EventAction::Deleted));
        assert_eq!(any_contact.to_string(), "contact.*");
        for bad in [
            "contacts.created",
            "contact",
            "contact.saved",
            "user.created",
            "",
        ] {
            assert!(EventPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retries_span_more_than_a_day_over_at_least_eight_attempts() {
        let start = DateTime::<Utc>::UNIX_EPOCH;
        let mut at = start;
        let mut attempts = 1;
        while let Some(next) = next_attempt(attempts, at, 1.0, 0.0) {
            assert!(next > at);
            at = next;
            attempts += 1;
        }
        assert_eq!(attempts, MAX_ATTEMPTS);
        assert!(attempts >= 8);
        assert!(at - start >= Duration::hours(24), "{}", at - start);
    }

    #[test]
    fn jitter_spreads_by_a_fifth_at_most() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let early = next_attempt(1, now, 1.0, -1.0).unwrap() - now;
        let late = next_attempt(1, now, 1.0, 1.0).unwrap() - now;
        assert_eq!(early, Duration::seconds(24));
        assert_eq!(late, Duration::seconds(36));
    }
}
