//! The storage half of objects' business rules: what needs the database — other records, the
//! figures of related records. The engine calls [`prepare`] once per batch, after a write's
//! references are found and before the object's domain rules derive its computed values, and
//! [`after`] once per batch with every record version it wrote, deleted or restored. The
//! objects that have such rules are listed here by name; the others have none.

use rapport_domain::ObjectType;

pub(crate) mod company;
pub(crate) mod contact;
pub(crate) mod order;

/// A record's lifecycle stage.
fn stage(
    values: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Option<rapport_domain::values::LifecycleStage> {
    values
        .and_then(|v| v.get("lifecycle_stage"))
        .and_then(serde_json::Value::as_str)
        .and_then(|s| s.parse().ok())
}

/// A stage that changes is timed (`lifecycle_stage_changed_at`), for objects with a lifecycle.
pub(crate) fn time_stage_changes(drafts: &mut [crate::engine::write::Drafting<'_>]) {
    for draft in drafts.iter_mut() {
        let before = draft.before.map(|b| &b.values);
        if stage(before) != stage(Some(&draft.values)) {
            let at = rapport_domain::values::timestamp(&draft.at);
            match stage(Some(&draft.values)) {
                Some(_) => draft
                    .values
                    .insert("lifecycle_stage_changed_at".into(), at.into()),
                None => draft.values.remove("lifecycle_stage_changed_at"),
            };
        }
    }
}

/// The stage changes of the records a batch touched, for the lifecycle history.
pub(crate) fn stage_changes(
    touched: &[Touched<'_>],
) -> Vec<(
    uuid::Uuid,
    Option<rapport_domain::values::LifecycleStage>,
    Option<rapport_domain::values::LifecycleStage>,
)> {
    touched
        .iter()
        .filter(|(_, _, after)| after.is_some())
        .map(|(id, before, after)| (*id, stage(*before), stage(*after)))
        .filter(|(_, from, to)| from != to)
        .collect()
}

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
            ObjectType::Contact => sql::contact_prepare(conn, ctx, drafts).await,
            _ => Ok(()),
        }
    }

    /// Likely duplicates beyond shared values (a contact's namesake at the same company), with
    /// their reasons.
    pub(crate) async fn more_duplicates(
        conn: &mut Conn,
        ctx: &rapport_domain::AuthContext,
        object: ObjectType,
        record: &rapport_domain::kit::record::Record,
    ) -> Result<Vec<(uuid::Uuid, String)>, crate::error::DbError> {
        match object {
            ObjectType::Contact => sql::contact_duplicates(conn, ctx, record).await,
            _ => Ok(Vec::new()),
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
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), crate::error::DbError> {
        match object {
            ObjectType::Company => sql::company_merged(conn, ctx, primary, values, at).await,
            ObjectType::Contact => sql::refresh_contact_purchases(conn, ctx, &[primary], at).await,
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
            ObjectType::Order => sql::order_after(conn, ctx, touched, at).await,
            ObjectType::Company => sql::company_after(conn, ctx, touched, at).await,
            ObjectType::Contact => sql::contact_after(conn, ctx, touched, at).await,
            _ => Ok(()),
        }
    }
}
