//! Installation-wide settings that belong to no organization, such as the generated JWT
//! signing key (the one table without `org_id`: it is not tenant data).

use chrono::{SubsecRound, Utc};
use rapport_domain::StoreError;

use crate::SqlStore;

const INSERT_SETTING_IF_MISSING: &str = "insert into instance_settings (name, value, created_at) \
     values ($1, $2, $3) on conflict (name) do nothing";
const SELECT_SETTING: &str = "select value from instance_settings where name = $1";

impl SqlStore {
    /// Returns the setting `name`, storing `candidate` first when it has none. When several
    /// nodes start at once, all of them get the value the first one stored.
    #[tracing::instrument(skip(self, candidate))]
    pub async fn instance_setting_or_insert(
        &self,
        name: &str,
        candidate: &str,
    ) -> Result<String, StoreError> {
        let now = Utc::now().trunc_subsecs(6);
        on_db!(&self.db, write, |pool| {
            sqlx::query(INSERT_SETTING_IF_MISSING)
                .bind(name)
                .bind(candidate)
                .bind(now)
                .execute(pool)
                .await?;
            let value: String = sqlx::query_scalar(SELECT_SETTING)
                .bind(name)
                .fetch_one(pool)
                .await?;
            Ok(value)
        })
    }
}
