//! Driver errors, normalised once, here.

use rapport_domain::StoreError;

/// The error type inside store bodies: `?` works on both sqlx and domain errors, and
/// [`on_db!`] turns it into a [`StoreError`] at the trait boundary.
#[derive(Debug)]
pub(crate) struct DbError(pub(crate) StoreError);

impl From<StoreError> for DbError {
    fn from(error: StoreError) -> Self {
        DbError(error)
    }
}

impl From<sqlx::Error> for DbError {
    fn from(error: sqlx::Error) -> Self {
        DbError(classify(error))
    }
}

impl From<DbError> for StoreError {
    fn from(error: DbError) -> Self {
        error.0
    }
}

/// Maps a unique violation to a conflict on `field`; any other error as usual.
pub(crate) fn unique_on(field: &'static str) -> impl Fn(sqlx::Error) -> DbError {
    move |error| match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => DbError(StoreError::Conflict {
            field: Some(field.to_owned()),
        }),
        _ => DbError::from(error),
    }
}

fn classify(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::PoolClosed => StoreError::Unavailable("the connection pool is closed".into()),
        sqlx::Error::PoolTimedOut => {
            StoreError::Unavailable("timed out waiting for a database connection".into())
        }
        sqlx::Error::Io(e) => StoreError::Unavailable(format!("database i/o: {e}")),
        sqlx::Error::Tls(e) => StoreError::Unavailable(format!("database tls: {e}")),
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict { field: None }
        }
        sqlx::Error::Database(db) if is_unavailable_code(db.code().as_deref()) => {
            StoreError::Unavailable(db.message().to_owned())
        }
        other => StoreError::internal(other),
    }
}

/// Codes that mean "not now, try again" rather than "your query is wrong". PostgreSQL:
/// connection exceptions (08…), shutdowns (57P0x), a dropped database (3D000), and two
/// concurrent transactions that had to be told apart — a deadlock (40P01) or a serialization
/// failure (40001); one of them lost and nothing of it was written. SQLite: the database stayed
/// busy or locked past `busy_timeout` (5, 6 and their extended codes).
fn is_unavailable_code(code: Option<&str>) -> bool {
    let Some(code) = code else {
        return false;
    };
    let postgres = code.starts_with("08")
        || code.starts_with("57P")
        || matches!(code, "3D000" | "40P01" | "40001");
    let sqlite = code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
    postgres || sqlite
}

#[cfg(test)]
mod tests {
    use super::is_unavailable_code;

    #[test]
    fn deadlocks_busy_databases_and_lost_connections_are_transient() {
        for code in [
            "40P01", "40001", "08006", "57P01", "3D000", "5", "517", "6", "262",
        ] {
            assert!(is_unavailable_code(Some(code)), "{code}");
        }
        for code in ["23505", "42P01", "22P02", "19", "2067", "1"] {
            assert!(!is_unavailable_code(Some(code)), "{code}");
        }
        assert!(!is_unavailable_code(None));
    }
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid database url: {0}")]
    InvalidUrl(String),
    #[error("cannot open the database: {0}")]
    Open(#[source] sqlx::Error),
    #[error("cannot apply migrations: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}
