//! Checks of input values that are not a type of their own, collected so that one answer
//! names every offending field.

use crate::error::{ApiError, FieldError};

#[derive(Debug, Default)]
pub struct Check {
    errors: Vec<FieldError>,
}

impl Check {
    pub fn new() -> Self {
        Check::default()
    }

    /// Keeps `value`, or notes why `field` is invalid.
    pub fn field<T>(&mut self, field: &str, value: Result<T, impl Into<String>>) -> Option<T> {
        match value {
            Ok(value) => Some(value),
            Err(message) => {
                self.errors
                    .push(FieldError::new(field, "invalid_value", message.into()));
                None
            }
        }
    }

    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    /// Merges the `validator` crate's findings (of a body's `#[derive(Validate)]`), in field
    /// order.
    pub fn validator(&mut self, result: Result<(), validator::ValidationErrors>) {
        let Err(errors) = result else {
            return;
        };
        let mut found: Vec<FieldError> = Vec::new();
        for (field, kind) in errors.into_errors() {
            if let validator::ValidationErrorsKind::Field(list) = kind {
                for error in list {
                    let message = error
                        .message
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_else(|| error.code.to_string());
                    found.push(FieldError::new(field.to_string(), error.code, message));
                }
            }
        }
        found.sort_by(|a, b| a.field.cmp(&b.field));
        self.errors.extend(found);
    }

    /// A body checked by its `#[derive(Validate)]`: every problem at once, or nothing.
    pub fn validated(body: &impl validator::Validate) -> Result<(), ApiError> {
        let mut check = Check::new();
        check.validator(body.validate());
        check.finish()
    }

    pub fn into_error(self) -> ApiError {
        ApiError::validation(self.errors)
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.into_error())
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

/// The value checks below for `#[validate(custom(function = …))]`: the same rule and the
/// same message, as the `validator` crate's error (code `invalid_value`).
pub mod rules {
    use std::borrow::Cow;

    use validator::ValidationError;

    fn invalid(message: impl Into<Cow<'static, str>>) -> ValidationError {
        ValidationError::new("invalid_value").with_message(message.into())
    }

    pub fn name(text: &str) -> Result<(), ValidationError> {
        super::name(text).map(drop).map_err(invalid)
    }

    pub fn email(text: &str) -> Result<(), ValidationError> {
        rapport_domain::email::Email::parse(text)
            .map(drop)
            .map_err(invalid)
    }

    pub fn password(text: &str) -> Result<(), ValidationError> {
        rapport_auth::password::check_policy(text).map_err(invalid)
    }

    pub fn locale(text: &str) -> Result<(), ValidationError> {
        super::locale(text).map(drop).map_err(invalid)
    }

    pub fn timezone(text: &str) -> Result<(), ValidationError> {
        super::timezone(text).map(drop).map_err(invalid)
    }
}

/// A display name: trimmed, 1 to 200 characters, no control characters.
pub fn name(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".into());
    }
    if trimmed.chars().count() > 200 {
        return Err("must be at most 200 characters".into());
    }
    if trimmed.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(trimmed.to_owned())
}

pub use rapport_domain::values::{locale, timezone};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_locales_and_timezones() {
        assert_eq!(name("  王安 ").unwrap(), "王安");
        assert!(name("   ").is_err());
        assert!(name(&"x".repeat(201)).is_err());
        assert!(locale("zh-Hans-CN").is_ok());
        assert!(locale("english").is_err());
        assert!(timezone("Asia/Shanghai").is_ok());
        assert!(timezone("America/Argentina/Buenos_Aires").is_ok());
        assert!(timezone("Etc/GMT+8").is_ok());
        assert!(timezone("../etc/passwd").is_err());
        assert!(timezone("").is_err());
    }
}
