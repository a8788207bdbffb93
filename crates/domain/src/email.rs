//! Email addresses: kept as written, compared case-insensitively everywhere.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    /// Accepts `local@domain.tld` after trimming; refuses spaces, a missing or empty part, and
    /// addresses longer than 254 bytes.
    pub fn parse(input: &str) -> Result<Email, &'static str> {
        let email = input.trim();
        if email.is_empty() {
            return Err("is empty");
        }
        if email.len() > Self::MAX_LEN {
            return Err("is longer than 254 characters");
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err("is not an email address (no @)");
        };
        let valid_domain = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        if local.is_empty()
            || !valid_domain
            || email.chars().any(|c| c.is_whitespace() || c.is_control())
            || local.contains('@')
        {
            return Err("is not an email address");
        }
        Ok(Email(email.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used for comparison and uniqueness.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_kept_as_written() {
        let email = Email::parse("  Wang.An@Example.CN ").unwrap();
        assert_eq!(email.as_str(), "Wang.An@Example.CN");
        assert_eq!(email.normalized(), "wang.an@example.cn");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a b@example.com",
            "a@.com",
            "a@b..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }
}
