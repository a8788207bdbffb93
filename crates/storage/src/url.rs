//! The database URL, which may carry a password and so never prints one.

use std::fmt;

use rapport_domain::Backend;

/// A `sqlite://…` or `postgres://…` URL. `Debug` and `Display` hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Accepts `sqlite:` and `postgres:`/`postgresql:` URLs; anything else is an error naming
    /// the schemes we know.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err("is empty".into());
        }
        match backend_of(url) {
            Some(_) => Ok(DatabaseUrl(url.to_owned())),
            None => Err("must start with sqlite:// or postgres://".into()),
        }
    }

    pub fn backend(&self) -> Backend {
        backend_of(&self.0).unwrap_or(Backend::Sqlite)
    }

    /// The URL with its password, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

fn backend_of(url: &str) -> Option<Backend> {
    let scheme = url.split_once(':')?.0.to_ascii_lowercase();
    match scheme.as_str() {
        "sqlite" => Some(Backend::Sqlite),
        "postgres" | "postgresql" => Some(Backend::Postgres),
        _ => None,
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", redact(&self.0))
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; a password given as a
/// `password=` query parameter is hidden too.
fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some((userinfo, host)) = authority.rsplit_once('@')
            && let Some((user, _password)) = userinfo.split_once(':')
        {
            out = format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..]);
        }
    }
    if let Some(start) = out.find("password=") {
        let value_start = start + "password=".len();
        let value_end = out[value_start..]
            .find('&')
            .map_or(out.len(), |i| value_start + i);
        out.replace_range(value_start..value_end, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_authority_is_hidden() {
        let url = DatabaseUrl::parse("postgres://app:s3cret@db.internal:5432/crm").unwrap();
        assert_eq!(url.to_string(), "postgres://app:***@db.internal:5432/crm");
        assert!(!format!("{url:?}").contains("s3cret"));
        assert_eq!(url.expose(), "postgres://app:s3cret@db.internal:5432/crm");
    }

    #[test]
    fn a_password_in_the_query_is_hidden() {
        let url = DatabaseUrl::parse("postgres://db/crm?user=app&password=s3cret&sslmode=require")
            .unwrap();
        assert_eq!(
            url.to_string(),
            "postgres://db/crm?user=app&password=***&sslmode=require"
        );
    }

    #[test]
    fn a_url_without_password_is_unchanged() {
        let url = DatabaseUrl::parse("sqlite://rapport.db").unwrap();
        assert_eq!(url.to_string(), "sqlite://rapport.db");
        assert_eq!(url.backend(), Backend::Sqlite);
    }

    #[test]
    fn unknown_schemes_are_refused() {
        assert!(DatabaseUrl::parse("mysql://localhost/crm").is_err());
        assert!(DatabaseUrl::parse("").is_err());
        assert!(DatabaseUrl::parse("rapport.db").is_err());
    }
}
