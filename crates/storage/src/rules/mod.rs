//! The storage half of objects' business rules: what needs the database — other records, the
//! figures of related records. The engine calls [`prepare`] once per batch, after a write's
//! references are found and before the object's domain rules derive its computed values, and
//! [`after`] once per batch with every record version it wrote, deleted or restored. The
//! objects that have such rules are listed here by name; the others have none.

use rapport_domain::ObjectType;

pub(crate) mod order;

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
            _ => Ok(()),
        }
    }

    /// Keeps related records current with the records a batch changed: `touched` holds the
    /// values of each record before and after (a new record has no before, a deleted one no
    /// after).
    pub(crate) async fn after(
        conn: &mut Conn,
        ctx: &rapport_domain::AuthContext,
        object: ObjectType,
        touched: &[&serde_json::Map<String, serde_json::Value>],
    ) -> Result<(), crate::error::DbError> {
        match object {
            ObjectType::Order => sql::order_after(conn, ctx, touched).await,
            _ => Ok(()),
        }
    }
}
