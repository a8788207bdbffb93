//! The storage half of objects' business rules: what needs the database — other records, the
//! figures of related records. The engine calls [`prepare`] once per batch, after a write's
//! references are found and before the object's domain rules derive its computed values, and
//! [`after`] once per batch with every record version it wrote, deleted or restored. The
//! objects that have such rules are listed here by name; the others have none.

use rapport_domain::ObjectType;

pub(crate) mod company;
pub(crate) mod order;

/// A record a batch touched: its id, and its values before and after (a new record has none
/// before, a deleted one none after).
pub(crate) type Touched<'a> = (
    uuid::Uuid,
    Option<&'a serde_json::Map<String, serde_json::Value>>,
    Option<&'a serde_json::Map<String, serde_json::Value>>,
);

per_backend! {
    /// Fills what a batch's writes need from other records.
    pub(crate) async fn prepare(
        conn: &mut Conn,
        ctx: &rapport_domain::AuthContext,
        object: ObjectType,
        drafts: &mut [crate::engine::write::Drafting<'_>],
    ) -> Result<(), crate::error::DbError> {
        match object {
            ObjectType::Order => sql::order_prepare(conn, ctx, drafts).await,
            ObjectType::Company => sql::company_prepare(conn, ctx, drafts).await,
            _ => Ok(()),
        }
    }

    /// Keeps related records current after duplicates were merged into `primary` (whose
    /// values are now `values`): the records that named the duplicates name it now.
    pub(crate) async fn merged(
        conn: &mut Conn,
        ctx: &rapport_domain::AuthContext,
        object: ObjectType,
        primary: uuid::Uuid,
        values: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), crate::error::DbError> {
        match object {
            ObjectType::Company => sql::company_merged(conn, ctx, primary, values).await,
            _ => Ok(()),
        }
    }

    /// Keeps related records current with the records a batch wrote, deleted, restored or
    /// merged at `at`.
    pub(crate) async fn after(
        conn: &mut Conn,
        ctx: &rapport_domain::AuthContext,
        object: ObjectType,
        touched: &[crate::rules::Touched<'_>],
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), crate::error::DbError> {
        match object {
            ObjectType::Order => sql::order_after(conn, ctx, touched).await,
            ObjectType::Company => sql::company_after(conn, ctx, touched, at).await,
            _ => Ok(()),
        }
    }
}
