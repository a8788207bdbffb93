//! Keyset pages. A cursor is opaque to clients: the sort it belongs to and the last row's sort
//! key and id, so that page 10,000 costs what page 1 costs and concurrent inserts neither
//! repeat nor skip rows.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// Where a page ends: the sort (`sort`), the last row's sort key (`values`) and its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "s")]
    pub sort: String,
    #[serde(rename = "v", default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Value>,
    pub id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("is not a cursor this API issued")]
    Malformed,
    #[error("belongs to another sort order; start again without a cursor")]
    WrongSort,
}

impl Cursor {
    pub fn new(sort: impl Into<String>, values: Vec<Value>, id: Uuid) -> Self {
        Cursor {
            sort: sort.into(),
            values,
            id,
        }
    }

    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(text: &str) -> Result<Cursor, CursorError> {
        if text.len() > 4096 {
            return Err(CursorError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| CursorError::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)
    }

    /// Decodes a cursor and checks that it belongs to `sort`.
    pub fn decode_for(text: &str, sort: &str) -> Result<Cursor, CursorError> {
        let cursor = Cursor::decode(text)?;
        if cursor.sort != sort {
            return Err(CursorError::WrongSort);
        }
        Ok(cursor)
    }
}

/// What page of a list to read.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<Cursor>,
    /// Also count every row that matches (`?include=total`).
    pub with_total: bool,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            limit: DEFAULT_LIMIT,
            after: None,
            with_total: false,
        }
    }
}

/// One page of rows and where the next one starts (None on the last page).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
    pub total: Option<i64>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows read in order: the extra row only says that
    /// another page exists.
    pub fn from_rows(
        mut rows: Vec<T>,
        limit: u32,
        cursor_of: impl Fn(&T) -> Cursor,
        total: Option<i64>,
    ) -> Page<T> {
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = if has_more {
            rows.last().map(cursor_of)
        } else {
            None
        };
        Page {
            items: rows,
            next,
            total,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
            total: self.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_check_their_sort() {
        let cursor = Cursor::new(
            "-updated_at",
            vec![Value::from("2026-01-01")],
            Uuid::now_v7(),
        );
        let text = cursor.encode();
        assert!(!text.contains('='), "url-safe, unpadded");
        assert_eq!(Cursor::decode(&text).unwrap(), cursor);
        assert_eq!(
            Cursor::decode_for(&text, "name"),
            Err(CursorError::WrongSort)
        );
    }

    #[test]
    fn garbage_is_not_a_cursor() {
        for bad in ["", "abc", "!!!!", "eyJmb28iOjF9", &"A".repeat(5000)] {
            assert_eq!(Cursor::decode(bad), Err(CursorError::Malformed), "{bad}");
        }
    }

    #[test]
    fn a_page_keeps_limit_rows_and_points_after_the_last() {
        let page = Page::from_rows(
            vec![1, 2, 3],
            2,
            |n| Cursor::new("id", vec![], Uuid::from_u128(*n)),
            None,
        );
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next.unwrap().id, Uuid::from_u128(2));
        let last = Page::from_rows(
            vec![1, 2],
            2,
            |n| Cursor::new("id", vec![], Uuid::from_u128(*n)),
            None,
        );
        assert!(last.next.is_none());
    }
}
