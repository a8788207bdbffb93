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

/// The longest cursor text read: room for the longest a list issues (three sort keys, each a
/// custom text of up to 100 KB, JSON-escaped at up to 6 bytes a byte, in base64), so that every
/// cursor issued reads back; anything longer is refused unread.
const MAX_ENCODED_LEN: usize =
    (crate::query::MAX_SORT_KEYS * crate::custom_field::MAX_TEXT_BYTES * 6 + 4096) * 4 / 3;

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
        if text.len() > MAX_ENCODED_LEN {
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
        for bad in [
            "",
            "abc",
            "!!!!",
            "eyJmb28iOjF9",
            &"A".repeat(5000),
            &"A".repeat(MAX_ENCODED_LEN + 1),
        ] {
            assert_eq!(Cursor::decode(bad), Err(CursorError::Malformed), "{bad}");
        }
    }

    #[test]
    fn the_longest_cursor_a_list_issues_reads_back() {
        // Three sort keys on custom text fields full of characters JSON escapes.
        let longest = "\u{1}".repeat(crate::custom_field::MAX_TEXT_BYTES);
        let cursor = Cursor::new(
            "custom.a,custom.b,-custom.c",
            vec![Value::from(longest.as_str()); crate::query::MAX_SORT_KEYS],
            Uuid::now_v7(),
        );
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
    }

    #[test]
    fn a_number_reads_back_to_the_same_bits() {
        // Without serde_json's float_roundtrip this one came back one unit in the last place
        // off, and the next page of a sort by a custom number repeated or skipped a record.
        let cursor = Cursor::new(
            "custom.ratio",
            vec![Value::from(-5.3515544663377366e165)],
            Uuid::nil(),
        );
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
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

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::query::properties::{any_json, nasty_string};

    /// A sort key value as lists put them in cursors: text (up to a custom text field's
    /// 100 KB), times, numbers of either kind, booleans, and null for a missing value.
    fn sort_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => nasty_string().prop_map(Value::from),
            1 => "\\PC{0,200}".prop_map(Value::from),
            1 => any::<i64>().prop_map(Value::from),
            1 => any::<f64>().prop_filter_map("JSON has no NaN or infinity", |f| {
                serde_json::Number::from_f64(f).map(Value::Number)
            }),
            1 => any::<bool>().prop_map(Value::from),
            1 => Just(Value::Null),
            1 => any_json(),
        ]
    }

    fn cursor() -> impl Strategy<Value = Cursor> {
        (
            "-?[a-z_.]{1,20}(,-?[a-z_.]{1,20}){0,2}",
            prop::collection::vec(sort_value(), 0..=3),
            any::<u128>(),
        )
            .prop_map(|(sort, values, id)| Cursor::new(sort, values, Uuid::from_u128(id)))
    }

    proptest! {
        #[test]
        fn every_cursor_round_trips_exactly(cursor in cursor()) {
            let text = cursor.encode();
            prop_assert!(
                text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "fits a query string as it is: {text}"
            );
            prop_assert_eq!(Cursor::decode(&text), Ok(cursor.clone()));
            prop_assert_eq!(Cursor::decode_for(&text, &cursor.sort), Ok(cursor.clone()));
            let other = format!("{},id", cursor.sort);
            prop_assert_eq!(Cursor::decode_for(&text, &other), Err(CursorError::WrongSort));
        }

        #[test]
        fn any_text_decodes_to_a_cursor_or_an_error(text in prop_oneof![
            any::<String>(),
            "[A-Za-z0-9_=-]{0,200}",
        ]) {
            let _ = Cursor::decode(&text);
            let _ = Cursor::decode_for(&text, "name");
        }

        #[test]
        fn any_json_behind_valid_base64_decodes_to_a_cursor_or_an_error(
            json in any_json(),
            bytes in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            for payload in [serde_json::to_vec(&json).unwrap(), bytes] {
                let text = URL_SAFE_NO_PAD.encode(payload);
                if let Ok(cursor) = Cursor::decode(&text) {
                    // Whatever decodes is a cursor that encodes and decodes again the same.
                    prop_assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
                }
            }
        }
    }
}
