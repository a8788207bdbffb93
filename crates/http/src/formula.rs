//! CSV cells that a spreadsheet would run as a formula (CSV injection).
//!
//! Excel, LibreOffice and Google Sheets read a cell that starts with `=`, `+`, `-`, `@`, a tab
//! or a carriage return as a formula, so a contact named `=HYPERLINK("http://evil.example")`
//! would run in the spreadsheet of whoever opens an export. As OWASP recommends, an export
//! writes such a text cell with a leading `'`, which spreadsheets show as text.
//!
//! The escape is undone exactly on import, so that an export imports back unchanged: a cell is
//! unescaped only when it is what [`neutralise`] writes. A text that itself starts with `'`
//! followed by a trigger (`'=x`) is escaped too (`''=x`), so every text has one cell and every
//! cell one text: `restore(neutralise(t)) == t` for all `t`. A value never leaves Rapport as a
//! live formula, however often it goes round.
//!
//! Only text is escaped: numbers, booleans and the JSON of nested values are written by
//! Rapport itself (`-5` in an integer column is the number, not a formula), and never start
//! with `'`, so import reads them as before.

use std::borrow::Cow;

/// The first characters that make a spreadsheet read a cell as a formula (OWASP's list).
const TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The prefix that makes a spreadsheet read the cell as text.
const QUOTE: char = '\'';

/// Whether `text` is written with a prefix: a trigger, after any number of `'`.
fn needs_prefix(text: &str) -> bool {
    text.trim_start_matches(QUOTE)
        .starts_with(|c: char| TRIGGERS.contains(&c))
}

/// The cell of a text: the text, or `'` and the text when a spreadsheet would run it.
pub fn neutralise(text: &str) -> Cow<'_, str> {
    if needs_prefix(text) {
        Cow::Owned(format!("{QUOTE}{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// The text of a cell: what [`neutralise`] was given. A cell it did not write is its own text.
pub fn restore(cell: &str) -> &str {
    match cell.strip_prefix(QUOTE) {
        Some(rest) if needs_prefix(rest) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_run_get_a_quote() {
        for text in [
            "=HYPERLINK(\"http://evil.example\",\"x\")",
            "+86 138 0013 8000",
            "-2+3",
            "@SUM(A1)",
            "\tindented",
            "\rreturn",
        ] {
            assert_eq!(neutralise(text), format!("'{text}"));
        }
        for text in ["王安", "plain", "", "'quoted", "a=b", "'", " =x"] {
            assert_eq!(neutralise(text), text);
        }
    }

    #[test]
    fn a_quote_before_a_trigger_is_escaped_too() {
        assert_eq!(neutralise("'=x"), "''=x");
        assert_eq!(neutralise("''-1"), "'''-1");
        assert_eq!(restore("''=x"), "'=x");
        assert_eq!(restore("'=x"), "=x");
    }

    #[test]
    fn cells_neutralise_did_not_write_are_their_own_text() {
        for cell in [
            "'quoted",
            "'",
            "plain",
            "-5",
            "=raw formula from elsewhere",
            "",
        ] {
            assert_eq!(restore(cell), cell);
        }
    }

    proptest! {
        #[test]
        fn every_text_comes_back_and_no_cell_is_a_formula(text in "['=+@\t\r -]{0,4}[a-z'=]{0,3}") {
            let cell = neutralise(&text);
            prop_assert_eq!(restore(&cell), text.as_str());
            prop_assert!(!cell.starts_with(|c: char| TRIGGERS.contains(&c)));
        }
    }
}
