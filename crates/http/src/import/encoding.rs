//! The text encoding of an imported file. Excel saves CSV in the system's code page — GBK or
//! GB18030 on Chinese Windows — or as "Unicode text" (UTF-16 with a byte-order mark); the
//! upload names its encoding, and a byte-order mark, where there is one, says it for itself.
//! Decoding is encoding_rs's; the job keeps the file as UTF-8.

use encoding_rs::{Encoding, GB18030, GBK, UTF_8};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::ApiError;

/// The encoding of an imported file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
pub enum FileEncoding {
    /// UTF-8, with or without a byte-order mark (the default).
    #[default]
    #[serde(rename = "utf-8")]
    Utf8,
    /// GBK (Excel's "CSV" on Simplified Chinese Windows).
    #[serde(rename = "gbk")]
    Gbk,
    /// GB 18030, the superset of GBK.
    #[serde(rename = "gb18030")]
    Gb18030,
    /// UTF-16 (Excel's "Unicode text"); the file must start with its byte-order mark, which
    /// says little- or big-endian.
    #[serde(rename = "utf-16")]
    Utf16,
}

impl FileEncoding {
    pub const NAMES: &str = "utf-8, gbk, gb18030 or utf-16";

    /// Reads the name an upload gives (`utf-8`, `GBK`, `gb18030`, `utf-16`; `utf8` too).
    pub fn parse(text: &str) -> Result<FileEncoding, ApiError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Ok(FileEncoding::Utf8),
            "gbk" => Ok(FileEncoding::Gbk),
            "gb18030" => Ok(FileEncoding::Gb18030),
            "utf-16" | "utf16" => Ok(FileEncoding::Utf16),
            _ => Err(ApiError::invalid(
                "encoding",
                "invalid_value",
                format!("must be {}", FileEncoding::NAMES),
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            FileEncoding::Utf8 => "UTF-8",
            FileEncoding::Gbk => "GBK",
            FileEncoding::Gb18030 => "GB18030",
            FileEncoding::Utf16 => "UTF-16",
        }
    }
}

/// The file's text as UTF-8, without a byte-order mark. A byte-order mark (UTF-8, UTF-16LE,
/// UTF-16BE) decides the encoding, whatever the upload named; without one the named encoding
/// does. Bytes the encoding cannot read refuse the file (nothing is replaced).
pub fn decode(content: Vec<u8>, named: FileEncoding) -> Result<Vec<u8>, ApiError> {
    let (encoding, start, name) = match Encoding::for_bom(&content) {
        Some((encoding, length)) => (encoding, length, encoding.name()),
        None => {
            let encoding = match named {
                FileEncoding::Utf8 => UTF_8,
                FileEncoding::Gbk => GBK,
                FileEncoding::Gb18030 => GB18030,
                FileEncoding::Utf16 => {
                    return Err(ApiError::invalid(
                        "file",
                        "invalid_value",
                        "has no byte-order mark: a UTF-16 file must start with one (Excel's \
                         \"Unicode text\" does)",
                    ));
                }
            };
            (encoding, 0, named.name())
        }
    };
    if encoding == UTF_8 {
        let mut content = content;
        content.drain(..start);
        return match std::str::from_utf8(&content) {
            Ok(_) => Ok(content),
            Err(_) => Err(ApiError::invalid(
                "file",
                "invalid_value",
                format!(
                    "is not UTF-8 text; name the file's encoding in `encoding` ({}), or save \
                     it as CSV UTF-8",
                    FileEncoding::NAMES
                ),
            )),
        };
    }
    match encoding.decode_without_bom_handling_and_without_replacement(&content[start..]) {
        Some(text) => Ok(text.into_owned().into_bytes()),
        None => Err(ApiError::invalid(
            "file",
            "invalid_value",
            format!(
                "is not {name} text; name the file's encoding in `encoding` ({})",
                FileEncoding::NAMES
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_encoding_reads_back_as_utf8() {
        let text = "name,city\n王安,杭州\n";
        let (gbk, _, _) = GBK.encode(text);
        assert_eq!(
            decode(gbk.to_vec(), FileEncoding::Gbk).unwrap(),
            text.as_bytes()
        );
        let (gb18030, _, _) = GB18030.encode("name\n𠀀 王\n");
        assert_eq!(
            decode(gb18030.to_vec(), FileEncoding::Gb18030).unwrap(),
            "name\n𠀀 王\n".as_bytes()
        );
        let mut utf16le = vec![0xFF, 0xFE];
        utf16le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let mut utf16be = vec![0xFE, 0xFF];
        utf16be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        for file in [utf16le, utf16be] {
            // The mark decides, whatever was named.
            assert_eq!(
                decode(file.clone(), FileEncoding::Utf16).unwrap(),
                text.as_bytes()
            );
            assert_eq!(decode(file, FileEncoding::Utf8).unwrap(), text.as_bytes());
        }
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(text.as_bytes());
        assert_eq!(decode(bom, FileEncoding::Gbk).unwrap(), text.as_bytes());
    }

    #[test]
    fn bytes_the_encoding_cannot_read_refuse_the_file_and_say_what_to_do() {
        let (gbk, _, _) = GBK.encode("王安\n");
        let error = decode(gbk.to_vec(), FileEncoding::Utf8).unwrap_err();
        assert!(error.errors()[0].message.contains("gbk"), "{error:?}");
        assert!(decode(b"a\x81\n".to_vec(), FileEncoding::Gbk).is_err());
        assert!(
            decode(
                "a,b\n".encode_utf16().flat_map(u16::to_le_bytes).collect(),
                FileEncoding::Utf16
            )
            .is_err()
        );
        assert!(decode(b"a,b\n".to_vec(), FileEncoding::Utf8).is_ok());
    }

    #[test]
    fn names_are_read_without_regard_to_case() {
        assert_eq!(FileEncoding::parse(" GBK ").unwrap(), FileEncoding::Gbk);
        assert_eq!(FileEncoding::parse("UTF8").unwrap(), FileEncoding::Utf8);
        assert!(FileEncoding::parse("latin1").is_err());
    }
}
