//! Token buckets, refilled evenly: per user (`RAPPORT_RATE_LIMIT_PER_MINUTE`, shared by all of
//! a user's keys and sessions), per organization (`RAPPORT_ORG_RATE_LIMIT_PER_MINUTE`) and per
//! client address for what comes without a valid credential (`RAPPORT_AUTH_RATE_LIMIT_PER_MINUTE`:
//! sign-up, sign-in, refresh, invitations, and credentials that turn out wrong). One noisy
//! caller drains only its own buckets. Buckets live in this process: with several nodes each
//! keeps its own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// What the client is told: the limit, what is left, and when the bucket is full again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitInfo {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full.
    pub reset: u64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Past the limit: retry after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub info: RateLimitInfo,
    pub retry_after: u64,
}

/// Idle buckets are dropped once the map grows past this many.
const PRUNE_ABOVE: usize = 10_000;

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn rate_per_second(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    /// Takes one request from `key`'s bucket.
    pub fn check(&self, key: &str) -> Result<RateLimitInfo, Limited> {
        self.check_at(key, Instant::now())
    }

    /// Whether `key`'s bucket holds a request, without taking it; when it does not, how many
    /// seconds until it does.
    pub fn room(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(bucket) = buckets.get(key) else {
            return Ok(());
        };
        let rate = self.rate_per_second();
        let tokens = (bucket.tokens
            + now.saturating_duration_since(bucket.updated).as_secs_f64() * rate)
            .min(f64::from(self.per_minute));
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(((1.0 - tokens) / rate).ceil().max(1.0) as u64)
        }
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<RateLimitInfo, Limited> {
        let capacity = f64::from(self.per_minute);
        let rate = self.rate_per_second();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < capacity
            });
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.updated = now;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        let info = RateLimitInfo {
            limit: self.per_minute,
            remaining: bucket.tokens.floor() as u32,
            reset: ((capacity - bucket.tokens) / rate).ceil() as u64,
        };
        if allowed {
            Ok(info)
        } else {
            let retry_after = ((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64;
            Err(Limited { info, retry_after })
        }
    }
}

/// API keys found unknown a moment ago, by their storage hash: a client repeating a wrong key
/// is answered without another database lookup.
#[derive(Debug, Default)]
pub struct RejectedKeys {
    seen: Mutex<HashMap<String, Instant>>,
}

/// How long a key found unknown is answered from memory.
const REJECTED_FOR: std::time::Duration = std::time::Duration::from_secs(60);

impl RejectedKeys {
    pub fn contains(&self, hash: &str) -> bool {
        let seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.get(hash).is_some_and(|at| at.elapsed() < REJECTED_FOR)
    }

    pub fn insert(&self, hash: &str) {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= PRUNE_ABOVE {
            seen.retain(|_, at| at.elapsed() < REJECTED_FOR);
            if seen.len() >= PRUNE_ABOVE {
                seen.clear();
            }
        }
        seen.insert(hash.to_owned(), Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_allows_its_limit_then_refuses_until_it_refills() {
        let limiter = RateLimiter::new(3);
        let start = Instant::now();
        assert_eq!(limiter.check_at("k", start).unwrap().remaining, 2);
        assert_eq!(limiter.check_at("k", start).unwrap().remaining, 1);
        let last = limiter.check_at("k", start).unwrap();
        assert_eq!(last.remaining, 0);
        assert_eq!(last.reset, 60);
        let refused = limiter.check_at("k", start).unwrap_err();
        assert_eq!(refused.retry_after, 20);
        // 20 seconds refill one request at 3 per minute.
        assert!(
            limiter
                .check_at("k", start + Duration::from_secs(20))
                .is_ok()
        );
    }

    #[test]
    fn room_is_looked_at_without_taking_a_request() {
        let limiter = RateLimiter::new(1);
        assert_eq!(limiter.room("k"), Ok(()));
        assert_eq!(limiter.room("k"), Ok(()));
        assert!(limiter.check("k").is_ok());
        assert_eq!(limiter.room("k"), Err(60));
    }

    #[test]
    fn a_rejected_key_is_remembered() {
        let rejected = RejectedKeys::default();
        assert!(!rejected.contains("h"));
        rejected.insert("h");
        assert!(rejected.contains("h"));
    }

    #[test]
    fn one_key_does_not_drain_another() {
        let limiter = RateLimiter::new(1);
        let now = Instant::now();
        assert!(limiter.check_at("noisy", now).is_ok());
        assert!(limiter.check_at("noisy", now).is_err());
        assert!(limiter.check_at("quiet", now).is_ok());
    }
}
