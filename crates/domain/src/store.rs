//! The store traits: what the HTTP layer may ask of the database. Every method that reads or
//! writes tenant data takes the [`AuthContext`] first and is scoped by its organization; only
//! the authentication entry points of [`AuthStore`] run before a context exists.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::StoreError;
use crate::access::AuthContext;
use crate::custom_field::{CustomFieldDef, CustomFieldPatch, NewCustomField};
use crate::email::Email;
use crate::idempotency::{Claim, StoredResponse};
use crate::identity::{
    Acceptance, ApiKey, AuditEntry, AuditFilter, ClientInfo, IdentityLogin, Invitation, KeyUse,
    NewApiKey, NewInvitation, NewMember, NewRefreshToken, NewTeam, OpenInvitation, Organization,
    OrganizationPatch, Principal, RefreshOutcome, Team, TeamPatch, TransferCounts, User,
    UserFilter, UserPatch,
};
use crate::import::{
    ClaimedImport, ImportChunk, ImportJob, ImportRowError, ImportStatus, NewImport,
};
use crate::kit::ObjectSpec;
use crate::kit::record::{Record, RecordPatch};
use crate::object::ObjectType;
use crate::page::{Page, PageRequest};
use crate::query::RawFilter;
use crate::record::{ChangePage, MergeOutcome, RecordEvent};
use crate::webhook::{
    Attempt, AttemptOutcome, Delivery, DeliveryJob, NewWebhook, Webhook, WebhookPatch,
};
use crate::write::{RowOutcome, RowTarget, WriteRow};

/// Which database engine serves the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer of a readiness check: the database answered and its schema is this version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    pub backend: Backend,
    /// The newest migration applied to the database.
    pub schema_version: i64,
}

/// Size and idle connections of one connection pool, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    /// `primary` on PostgreSQL; `writer` and `reader` on SQLite.
    pub name: &'static str,
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// The whole store. Each group of records is reached through its own accessor, so that a
/// handler reads `store.users().get(&ctx, id)`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Pings the database and reads the schema version.
    async fn readiness(&self) -> Result<Readiness, StoreError>;

    fn pool_stats(&self) -> Vec<PoolStats>;

    /// Closes the pools after in-flight queries finish; later calls fail with `Unavailable`.
    async fn close(&self);

    fn auth(&self) -> &dyn AuthStore;
    fn organizations(&self) -> &dyn OrganizationStore;
    fn users(&self) -> &dyn UserStore;
    fn invitations(&self) -> &dyn InvitationStore;
    fn teams(&self) -> &dyn TeamStore;
    fn api_keys(&self) -> &dyn ApiKeyStore;
    fn audit(&self) -> &dyn AuditStore;
    fn custom_fields(&self) -> &dyn CustomFieldStore;
    /// Every object the engine serves, each call naming its declaration.
    fn records(&self) -> &dyn RecordStore;
    fn idempotency(&self) -> &dyn IdempotencyStore;
    fn changes(&self) -> &dyn ChangeStore;
    fn webhooks(&self) -> &dyn WebhookStore;
    fn webhook_queue(&self) -> &dyn WebhookQueue;
    fn imports(&self) -> &dyn ImportStore;
    fn import_queue(&self) -> &dyn ImportQueue;
}

/// Authentication: the only calls made before the caller is known.
#[async_trait]
pub trait AuthStore: Send + Sync {
    /// Creates an organization with its first user, an owner (a new login identity, or one
    /// whose password the caller has checked). A new identity whose email is taken meanwhile
    /// is a `Conflict` on `email`.
    async fn create_organization(
        &self,
        name: String,
        owner: NewMember,
        client: &ClientInfo,
    ) -> Result<(Organization, User), StoreError>;

    /// The login identity with this email, with its memberships of every organization.
    async fn login_identity(&self, email: &Email) -> Result<Option<IdentityLogin>, StoreError>;

    /// The pending (not accepted, revoked or expired) invitation with this token hash.
    async fn open_invitation(&self, token_hash: &str)
    -> Result<Option<OpenInvitation>, StoreError>;

    /// Accepts the invitation: makes the membership (and the identity, when new) in one
    /// transaction. An invitation no longer pending is `NotFound`; a member of the
    /// organization already with this email, or a new identity whose email was taken
    /// meanwhile, is a `Conflict`.
    async fn accept_invitation(
        &self,
        token_hash: &str,
        acceptance: Acceptance,
        client: &ClientInfo,
    ) -> Result<(Organization, User), StoreError>;

    /// When the failed sign-ins for this email since `since` happened, oldest first.
    async fn login_failures_since(
        &self,
        email: &Email,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError>;

    /// Records a failed sign-in; audited in the organization of each of `members` (the
    /// memberships of the identity whose email was tried).
    async fn record_login_failure(
        &self,
        email: &Email,
        members: &[User],
        client: &ClientInfo,
    ) -> Result<(), StoreError>;

    /// Starts a session with its first refresh token; records the sign-in and forgets the
    /// email's failed attempts.
    async fn start_session(
        &self,
        user: &User,
        refresh: NewRefreshToken,
        client: &ClientInfo,
        audit_action: &str,
    ) -> Result<Uuid, StoreError>;

    /// The user of a live session, when the user is active and the session not revoked.
    async fn session_principal(
        &self,
        org_id: Uuid,
        user_id: Uuid,
        session_id: Uuid,
    ) -> Result<Option<Principal>, StoreError>;

    /// The key with this secret hash and its user, when neither is revoked or deactivated.
    async fn api_key_principal(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(Principal, KeyUse)>, StoreError>;

    /// Notes that a key was used (callers throttle this to about once a minute per key).
    async fn touch_api_key(&self, key_id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Rotates a refresh token: marks `presented_hash` used and stores `next`. A token already
    /// used revokes its whole family.
    async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        next: NewRefreshToken,
        client: &ClientInfo,
    ) -> Result<RefreshOutcome, StoreError>;

    /// Revokes the session (family) of this refresh token, if it has one.
    async fn end_session(&self, refresh_hash: &str, client: &ClientInfo) -> Result<(), StoreError>;

    async fn organization_of(&self, org_id: Uuid) -> Result<Organization, StoreError>;
}

#[async_trait]
pub trait OrganizationStore: Send + Sync {
    async fn get(&self, ctx: &AuthContext) -> Result<Organization, StoreError>;
    async fn update(
        &self,
        ctx: &AuthContext,
        patch: OrganizationPatch,
        expected_version: Option<i64>,
    ) -> Result<Organization, StoreError>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    async fn list(
        &self,
        ctx: &AuthContext,
        filter: &UserFilter,
        page: &PageRequest,
    ) -> Result<Page<User>, StoreError>;
    async fn get(&self, ctx: &AuthContext, id: Uuid) -> Result<User, StoreError>;
    /// Applies the patch; deactivating revokes the user's sessions and API keys in the same
    /// transaction; role and activation changes are audited.
    async fn update(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        patch: UserPatch,
        expected_version: Option<i64>,
    ) -> Result<User, StoreError>;
    /// The password hash of the caller's login identity.
    async fn password_hash(&self, ctx: &AuthContext) -> Result<String, StoreError>;
    /// Replaces the password of the caller's login identity and revokes its other sessions, in
    /// every organization.
    async fn change_password(&self, ctx: &AuthContext, new_hash: String) -> Result<(), StoreError>;
    /// Reassigns everything `from` owns (of the `include`d objects) to `to`, in one
    /// transaction.
    async fn transfer_ownership(
        &self,
        ctx: &AuthContext,
        from: Uuid,
        to: Uuid,
        include: &[ObjectType],
    ) -> Result<TransferCounts, StoreError>;
}

/// Invitations of the caller's organization.
#[async_trait]
pub trait InvitationStore: Send + Sync {
    async fn list(
        &self,
        ctx: &AuthContext,
        page: &PageRequest,
    ) -> Result<Page<Invitation>, StoreError>;
    async fn get(&self, ctx: &AuthContext, id: Uuid) -> Result<Invitation, StoreError>;
    /// Stores the invitation, revoking an earlier open one for the same address. A member
    /// with this email already is a `Conflict` on `email`.
    async fn create(
        &self,
        ctx: &AuthContext,
        invitation: NewInvitation,
    ) -> Result<Invitation, StoreError>;
    /// Revokes a pending invitation (`NotFound` when there is none with this id).
    async fn revoke(&self, ctx: &AuthContext, id: Uuid) -> Result<(), StoreError>;
}

#[async_trait]
pub trait TeamStore: Send + Sync {
    async fn list(&self, ctx: &AuthContext, page: &PageRequest) -> Result<Page<Team>, StoreError>;
    async fn get(&self, ctx: &AuthContext, id: Uuid) -> Result<Team, StoreError>;
    async fn create(&self, ctx: &AuthContext, team: NewTeam) -> Result<Team, StoreError>;
    async fn update(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        patch: TeamPatch,
        expected_version: Option<i64>,
    ) -> Result<Team, StoreError>;
    /// Deletes the team; its members are left without a team.
    async fn delete(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError>;
}

#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Admins see every key of the organization, others their own.
    async fn list(&self, ctx: &AuthContext, page: &PageRequest)
    -> Result<Page<ApiKey>, StoreError>;
    async fn get(&self, ctx: &AuthContext, id: Uuid) -> Result<ApiKey, StoreError>;
    /// Refuses with `ApiKeyLimit` when the caller already holds `max_live` live keys.
    async fn create(
        &self,
        ctx: &AuthContext,
        key: NewApiKey,
        max_live: u32,
    ) -> Result<ApiKey, StoreError>;
    async fn revoke(&self, ctx: &AuthContext, id: Uuid) -> Result<(), StoreError>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn list(
        &self,
        ctx: &AuthContext,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>, StoreError>;
}

/// A list or search of records before it is checked against the object's catalog (which
/// needs the organization's custom fields): problems come back as `StoreError::Invalid`.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub filter: Option<RawFilter>,
    pub q: Option<String>,
    /// `(field, descending)`; empty for the default (newest first).
    pub sort: Vec<(String, bool)>,
    pub page: PageRequest,
    /// The trash: deleted records instead of live ones.
    pub deleted: bool,
}

#[async_trait]
pub trait CustomFieldStore: Send + Sync {
    async fn list(
        &self,
        ctx: &AuthContext,
        object: Option<ObjectType>,
        page: &PageRequest,
    ) -> Result<Page<CustomFieldDef>, StoreError>;
    async fn get(&self, ctx: &AuthContext, id: Uuid) -> Result<CustomFieldDef, StoreError>;
    async fn create(
        &self,
        ctx: &AuthContext,
        field: NewCustomField,
    ) -> Result<CustomFieldDef, StoreError>;
    async fn update(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        patch: CustomFieldPatch,
        expected_version: Option<i64>,
    ) -> Result<CustomFieldDef, StoreError>;
    /// Deletes the definition and the values records hold under its key.
    async fn delete(&self, ctx: &AuthContext, id: Uuid) -> Result<(), StoreError>;
}

/// The engine's records: one store for every object served from its declaration alone.
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// The live records the caller may see that are likely duplicates of `id`, with the
    /// reasons (`same_<field>`), for objects that merge.
    async fn duplicates(
        &self,
        ctx: &AuthContext,
        spec: &'static ObjectSpec,
        id: Uuid,
    ) -> Result<Vec<(crate::kit::record::Record, Vec<String>)>, StoreError>;
    /// Merges `duplicates` into `primary` (see `storage::engine::merge`).
    async fn merge(
        &self,
        ctx: &AuthContext,
        spec: &'static ObjectSpec,
        primary: Uuid,
        duplicates: &[Uuid],
        dry_run: bool,
    ) -> Result<MergeOutcome<crate::kit::record::Record>, StoreError>;
    /// Whether a live record of any object with records (`contact`, `order`…) exists that
    /// the caller may see.
    async fn is_live(
        &self,
        ctx: &AuthContext,
        object: ObjectType,
        id: Uuid,
    ) -> Result<bool, StoreError>;
    async fn write(
        &self,
        ctx: &AuthContext,
        spec: &'static ObjectSpec,
        rows: Vec<WriteRow<RecordPatch>>,
        all_or_none: bool,
    ) -> Result<Vec<RowOutcome>, StoreError>;
    async fn delete_many(
        &self,
        ctx: &AuthContext,
        spec: &'static ObjectSpec,
        targets: Vec<RowTarget>,
        all_or_none: bool,
    ) -> Result<Vec<RowOutcome>, StoreError>;
    async fn get(
        &self,
        ctx: &AuthContext,
        spec: &'static ObjectSpec,
        id: Uuid,
    ) -> Result<Record, StoreError>;
    /// Live and deleted records among `ids` (the feed's view of them).
    async fn get_many(
        &self,
        ctx: &AuthContext,
        spec: &'static ObjectSpec,
        ids: &[Uuid],
    ) -> Result<Vec<Record>, StoreError>;
    async fn restore(
        &self,
        ctx: &AuthContext,
        spec: &'static ObjectSpec,
        id: Uuid,
    ) -> Result<Record, StoreError>;
    async fn list(
        &self,
        ctx: &AuthContext,
        spec: &'static ObjectSpec,
        request: &ListRequest,
    ) -> Result<Page<Record>, StoreError>;
    async fn history(
        &self,
        ctx: &AuthContext,
        spec: &'static ObjectSpec,
        id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<RecordEvent>, StoreError>;
}

/// Idempotency keys, per credential (the key's or the user's id: globally unique, so one
/// tenant's keys never meet another's).
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for a request whose method, path and body hash to `request_hash`. An
    /// unanswered attempt locked before `stale_before` is taken over.
    async fn claim(
        &self,
        org_id: Uuid,
        credential: &str,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<Claim, StoreError>;
    /// Keeps the response for replays.
    async fn complete(
        &self,
        credential: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError>;
    /// Forgets a claim whose attempt wrote nothing and answered nothing worth keeping (a 5xx, a
    /// 429), so that a retry runs again.
    async fn release(&self, credential: &str, key: &str) -> Result<(), StoreError>;
    /// Deletes the keys past their time; answers how many.
    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// The change feed: the event log of the caller's organization in sequence (= commit) order.
#[async_trait]
pub trait ChangeStore: Send + Sync {
    /// Up to `limit` events after sequence number `after` (none: from the oldest event kept
    /// for the feed, the first at or after `kept_since`), of these objects, oldest first.
    /// `CursorExpired` when events after `after` are older than `kept_since`.
    async fn changes(
        &self,
        ctx: &AuthContext,
        after: Option<i64>,
        limit: u32,
        objects: &[ObjectType],
        kept_since: DateTime<Utc>,
    ) -> Result<ChangePage, StoreError>;
}

/// Webhooks of the caller's organization (owners and admins manage them).
#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn list(
        &self,
        ctx: &AuthContext,
        page: &PageRequest,
    ) -> Result<Page<Webhook>, StoreError>;
    async fn get(&self, ctx: &AuthContext, id: Uuid) -> Result<Webhook, StoreError>;
    /// Creates the webhook; it receives the events committed after this moment.
    async fn create(
        &self,
        ctx: &AuthContext,
        webhook: NewWebhook,
        secret: String,
    ) -> Result<Webhook, StoreError>;
    /// Switching a webhook on again (or clearing why Rapport switched it off) starts its
    /// deliveries at the events committed from then on.
    async fn update(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        patch: WebhookPatch,
        expected_version: Option<i64>,
    ) -> Result<Webhook, StoreError>;
    /// Deletes the webhook with its deliveries.
    async fn delete(&self, ctx: &AuthContext, id: Uuid) -> Result<(), StoreError>;
    async fn rotate_secret(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        secret: String,
    ) -> Result<Webhook, StoreError>;
    /// The webhook's deliveries, newest first, each with its attempts.
    async fn deliveries(
        &self,
        ctx: &AuthContext,
        webhook_id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError>;
    /// Queues the delivery for another attempt now, whatever became of it.
    async fn retry_delivery(
        &self,
        ctx: &AuthContext,
        webhook_id: Uuid,
        delivery_id: Uuid,
    ) -> Result<Delivery, StoreError>;
}

/// What the delivery worker asks. It serves every organization, so these calls are not
/// tenant-first; each claim is taken by one worker process only.
#[async_trait]
pub trait WebhookQueue: Send + Sync {
    /// Turns events committed since the last call into deliveries for the active webhooks
    /// that want them; answers how many it made.
    async fn dispatch(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Claims up to `limit` due deliveries for `lease` (a delivery is due when its record has
    /// no earlier delivery still to make), oldest first.
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: u32,
    ) -> Result<Vec<DeliveryJob>, StoreError>;
    /// The events of these sequence numbers of one organization.
    async fn events(&self, org_id: Uuid, seqs: &[i64]) -> Result<Vec<RecordEvent>, StoreError>;
    /// Keeps an attempt and what follows from it.
    async fn record_attempt(
        &self,
        job: &DeliveryJob,
        attempt: &Attempt,
        outcome: &AttemptOutcome,
    ) -> Result<(), StoreError>;
    /// An owner of the organization, as whom deliveries read records.
    async fn system_context(&self, org_id: Uuid) -> Result<AuthContext, StoreError>;
}

/// Import jobs of the caller's organization.
#[async_trait]
pub trait ImportStore: Send + Sync {
    /// Queues a job; it runs as the caller.
    async fn create(&self, ctx: &AuthContext, import: NewImport) -> Result<ImportJob, StoreError>;
    /// Admins see every job of the organization, others their own.
    async fn get(&self, ctx: &AuthContext, id: Uuid) -> Result<ImportJob, StoreError>;
    async fn list(
        &self,
        ctx: &AuthContext,
        page: &PageRequest,
    ) -> Result<Page<ImportJob>, StoreError>;
    async fn errors(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<ImportRowError>, StoreError>;
    /// Records a chunk none of whose rows reached the store (each failed before).
    async fn record_chunk(&self, ctx: &AuthContext, chunk: &ImportChunk) -> Result<(), StoreError>;
}

/// What the import worker asks; each job is claimed by one process at a time.
#[async_trait]
pub trait ImportQueue: Send + Sync {
    /// A queued job, or a running one whose worker stopped or let go (its lease ran out or
    /// was released), claimed until `lease_until`. Fair across organizations: only jobs of
    /// organizations with no job under a live claim qualify (so one organization's jobs run
    /// one at a time), and among those the one served least recently (`updated_at`) comes
    /// first, so a job let go after its turn queues behind the jobs that waited meanwhile.
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ClaimedImport>, StoreError>;
    /// Extends the claim; false when the job is no longer this worker's.
    async fn renew(&self, id: Uuid, lease_until: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Lets go of a running job before it ends, so that the next claim may take it (to
    /// resume where it stopped) once other organizations' waiting jobs had their turn.
    async fn release(&self, id: Uuid) -> Result<(), StoreError>;
    /// Refreshes the planner's statistics of an object's tables, which a bulk import outgrows
    /// faster than autovacuum notices.
    async fn analyze(&self, object: ObjectType) -> Result<(), StoreError>;
    /// Ends the job (completed or failed) and lets go of its file.
    async fn finish(
        &self,
        id: Uuid,
        status: ImportStatus,
        error: Option<String>,
    ) -> Result<(), StoreError>;
}
