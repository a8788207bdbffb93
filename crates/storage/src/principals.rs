//! Credentials resolved a moment ago, so that most requests need no query to learn who calls.
//!
//! Every request resolves its bearer credential to a user, a role and the organization's
//! settings; on a busy key that is the same answer thousands of times a second. An answer is
//! kept for a short time (`RAPPORT_CREDENTIAL_CACHE_MS`, default 1 s). Whatever this process
//! writes to identity data (users, keys, sessions, teams, organization settings) forgets every
//! answer at once, so revocations, deactivations, role changes and sign-outs take effect on the
//! next request here; another process sharing the database sees them once its answers expire.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rapport_domain::identity::{KeyUse, Principal};
use uuid::Uuid;

/// Beyond this many answers the expired ones are dropped (and, should all be fresh, all).
const MAX_ENTRIES: usize = 10_000;

struct Kept<V> {
    at: Instant,
    generation: u64,
    value: V,
}

/// A session: its id and who the access token says it belongs to.
pub(crate) type SessionKey = (Uuid, Uuid, Uuid);

pub(crate) struct PrincipalCache {
    ttl: Duration,
    /// Moves on at every identity write; answers read before it moved are not used.
    generation: AtomicU64,
    keys: Mutex<HashMap<String, Kept<(Principal, KeyUse)>>>,
    sessions: Mutex<HashMap<SessionKey, Kept<Principal>>>,
}

/// A read begun at `generation`, for [`PrincipalCache::keep_key`] and `keep_session`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(u64);

impl PrincipalCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        PrincipalCache {
            ttl,
            generation: AtomicU64::new(0),
            keys: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// Taken before the database is read: an identity write that lands during the read makes
    /// its answer unkeepable.
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::Acquire))
    }

    pub(crate) fn key(&self, secret_hash: &str) -> Option<(Principal, KeyUse)> {
        self.fresh(&self.keys, secret_hash)
    }

    pub(crate) fn keep_key(&self, ticket: Ticket, secret_hash: &str, value: (Principal, KeyUse)) {
        self.keep(&self.keys, ticket, secret_hash.to_owned(), value);
    }

    pub(crate) fn session(&self, key: SessionKey) -> Option<Principal> {
        self.fresh(&self.sessions, &key)
    }

    pub(crate) fn keep_session(&self, ticket: Ticket, key: SessionKey, value: Principal) {
        self.keep(&self.sessions, ticket, key, value);
    }

    /// Notes a key's use on its kept answer, so that it is not noted again within the minute.
    pub(crate) fn note_key_use(&self, key_id: Uuid, at: DateTime<Utc>) {
        let mut keys = lock(&self.keys);
        for kept in keys.values_mut() {
            if kept.value.1.key_id == key_id {
                kept.value.1.last_used_at = Some(at);
            }
        }
    }

    /// Identity data changed: no answer read before now is used again.
    pub(crate) fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        lock(&self.keys).clear();
        lock(&self.sessions).clear();
    }

    fn fresh<K: Eq + Hash + ?Sized, Q, V: Clone>(
        &self,
        map: &Mutex<HashMap<Q, Kept<V>>>,
        key: &K,
    ) -> Option<V>
    where
        Q: std::borrow::Borrow<K> + Eq + Hash,
    {
        if !self.enabled() {
            return None;
        }
        let generation = self.generation.load(Ordering::Acquire);
        let map = lock(map);
        let kept = map.get(key)?;
        (kept.generation == generation && kept.at.elapsed() < self.ttl).then(|| kept.value.clone())
    }

    fn keep<Q: Eq + Hash, V>(
        &self,
        map: &Mutex<HashMap<Q, Kept<V>>>,
        ticket: Ticket,
        key: Q,
        value: V,
    ) {
        if !self.enabled() {
            return;
        }
        let mut map = lock(map);
        // Checked under the lock `forget_all` also takes: an answer older than a write is
        // never put back after the write cleared the map.
        if self.generation.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        if map.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            map.retain(|_, kept| kept.at.elapsed() < ttl);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(
            key,
            Kept {
                at: Instant::now(),
                generation: ticket.0,
                value,
            },
        );
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use rapport_domain::Role;
    use rapport_domain::identity::User;

    use super::*;

    fn principal(role: Role) -> Principal {
        let at = Utc::now();
        Principal {
            user: User {
                id: Uuid::now_v7(),
                org_id: Uuid::now_v7(),
                email: "a@b.example".into(),
                name: "A".into(),
                role,
                team_id: None,
                active: true,
                locale: None,
                timezone: None,
                last_login_at: None,
                version: 1,
                created_at: at,
                updated_at: at,
            },
            settings: Default::default(),
        }
    }

    fn key_use() -> KeyUse {
        KeyUse {
            key_id: Uuid::now_v7(),
            scopes: Vec::new(),
            expires_at: None,
            last_used_at: None,
        }
    }

    #[test]
    fn a_kept_answer_is_used_until_an_identity_write() {
        let cache = PrincipalCache::new(Duration::from_secs(60));
        cache.keep_key(cache.ticket(), "h1", (principal(Role::Sales), key_use()));
        assert_eq!(cache.key("h1").map(|(p, _)| p.user.role), Some(Role::Sales));

        cache.forget_all();
        assert!(cache.key("h1").is_none());
    }

    #[test]
    fn an_answer_read_before_a_write_is_not_kept_after_it() {
        let cache = PrincipalCache::new(Duration::from_secs(60));
        let ticket = cache.ticket();
        cache.forget_all(); // a revocation commits while the read is under way
        cache.keep_key(ticket, "h1", (principal(Role::Admin), key_use()));
        assert!(cache.key("h1").is_none());

        let session = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let ticket = cache.ticket();
        cache.forget_all();
        cache.keep_session(ticket, session, principal(Role::Admin));
        assert!(cache.session(session).is_none());
    }

    #[test]
    fn answers_expire_and_a_zero_ttl_keeps_nothing() {
        let cache = PrincipalCache::new(Duration::from_millis(1));
        cache.keep_key(cache.ticket(), "h1", (principal(Role::Viewer), key_use()));
        std::thread::sleep(Duration::from_millis(5));
        assert!(cache.key("h1").is_none());

        let off = PrincipalCache::new(Duration::ZERO);
        off.keep_key(off.ticket(), "h1", (principal(Role::Viewer), key_use()));
        assert!(off.key("h1").is_none());
    }

    #[test]
    fn a_noted_use_reaches_the_kept_answer() {
        let cache = PrincipalCache::new(Duration::from_secs(60));
        let key = key_use();
        let id = key.key_id;
        cache.keep_key(cache.ticket(), "h1", (principal(Role::Sales), key));
        let at = Utc::now();
        cache.note_key_use(id, at);
        assert_eq!(cache.key("h1").and_then(|(_, k)| k.last_used_at), Some(at));
    }
}
