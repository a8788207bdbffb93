//! Lists: `limit`, `cursor` and `include=total` for every collection, the rest of the query
//! string for the collection's own filters, and the `{"data", "next_cursor"}` envelope.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use rapport_domain::page::{Cursor, CursorError, DEFAULT_LIMIT, MAX_LIMIT, PageRequest};
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

use crate::error::{ApiError, FieldError};
use crate::extract::parse_query;

/// The paging parameters every list takes (documentation only; `ListQuery` reads them).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Rows per page, 1 to 200.
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
    /// `total` adds the number of matching rows to the answer.
    #[param(pattern = "^total$")]
    pub include: Option<String>,
}

/// A list request: the page and the collection's filters `F` (a struct that denies unknown
/// fields, so that a mistyped parameter is a 422 naming it).
#[derive(Debug)]
pub struct ListQuery<F> {
    pub page: PageRequest,
    pub filter: F,
}

impl<F> ListQuery<F> {
    /// Checks that the cursor was issued for this list's sort.
    pub fn expect_sort(&self, sort: &str) -> Result<(), ApiError> {
        match &self.page.after {
            Some(cursor) if cursor.sort != sort => Err(cursor_error(CursorError::WrongSort)),
            _ => Ok(()),
        }
    }
}

fn cursor_error(error: CursorError) -> ApiError {
    ApiError::invalid("cursor", "invalid_value", error.to_string())
}

/// The paging parameters every list takes.
const PAGING: [&str; 3] = ["limit", "cursor", "include"];

/// An unknown parameter's error names every parameter the list takes: the paging ones, and
/// those serde expected.
fn name_the_options(mut error: FieldError) -> FieldError {
    if error.code != "unknown_field" {
        return error;
    }
    let mut names: Vec<String> = PAGING.iter().map(|p| format!("`{p}`")).collect();
    let (head, expected) = match error.message.split_once("; expected one of ") {
        Some((head, rest)) => (head.to_owned(), Some(rest.to_owned())),
        None => (error.message.clone(), None),
    };
    names.extend(expected);
    error.message = format!("{head}; expected one of {}", names.join(", "));
    error
}

pub fn parse_list<F: DeserializeOwned>(query: &str) -> Result<ListQuery<F>, ApiError> {
    let mut page = PageRequest::default();
    let mut errors = Vec::new();
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "limit" => match value.parse::<u32>() {
                Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => page.limit = limit,
                _ => errors.push(FieldError::new(
                    "limit",
                    "out_of_range",
                    format!(
                        "must be a whole number from 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})"
                    ),
                )),
            },
            "cursor" => match Cursor::decode(&value) {
                Ok(cursor) => page.after = Some(cursor),
                Err(error) => errors.push(FieldError::new(
                    "cursor",
                    "invalid_value",
                    error.to_string(),
                )),
            },
            "include" => {
                for item in value.split(',').map(str::trim) {
                    match item {
                        "total" => page.with_total = true,
                        other => errors.push(FieldError::new(
                            "include",
                            "invalid_value",
                            format!("`{other}` cannot be included; the only option is `total`"),
                        )),
                    }
                }
            }
            _ => {
                rest.append_pair(&key, &value);
            }
        }
    }
    let filter = match parse_query::<F>(&rest.finish()) {
        Ok(filter) => Some(filter),
        Err(error) => {
            errors.extend(error.errors().iter().cloned().map(name_the_options));
            None
        }
    };
    match filter {
        Some(filter) if errors.is_empty() => Ok(ListQuery { page, filter }),
        _ => Err(ApiError::validation(errors)),
    }
}

impl<F: DeserializeOwned + 'static> FromRequest for ListQuery<F> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_list(req.query_string()))
    }
}

/// A collection without filters of its own.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoFilter {}

/// Declares the list envelope of a record type: `{"data": [...], "next_cursor", "total"}`.
#[macro_export]
macro_rules! list_envelope {
    ($name:ident, $item:ty) => {
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            pub data: Vec<$item>,
            /// Where the next page starts; null on the last page.
            pub next_cursor: Option<String>,
            /// The number of matching rows, with `include=total`.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub total: Option<i64>,
        }

        impl $name {
            pub fn from_page<T>(page: rapport_domain::Page<T>, f: impl FnMut(T) -> $item) -> Self {
                $name {
                    next_cursor: page.next.as_ref().map(rapport_domain::Cursor::encode),
                    total: page.total,
                    data: page.items.into_iter().map(f).collect(),
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Filter {
        active: Option<bool>,
    }

    #[test]
    fn paging_is_split_from_the_filters() {
        let list = parse_list::<Filter>("limit=10&active=true&include=total").unwrap();
        assert_eq!(list.page.limit, 10);
        assert!(list.page.with_total);
        assert_eq!(list.filter.active, Some(true));
    }

    #[test]
    fn every_bad_parameter_is_reported() {
        let error = parse_list::<Filter>("limit=500&cursor=zzz&actve=true").unwrap_err();
        let fields: Vec<&str> = error.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["limit", "cursor", "actve"]);
        assert!(parse_list::<Filter>("limit=0").is_err());
        assert!(parse_list::<Filter>("include=everything").is_err());
    }
}
