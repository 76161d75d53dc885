//! Turning raw HL7 v2 bytes into text, by the character set MSH-18 names.
//!
//! The header is read as bytes before decoding: every character set handled
//! here keeps the ASCII delimiters and the ASCII names in MSH as single bytes
//! (GB 18030 and Big5 trail bytes can collide with `|^~`, so a sender that
//! puts Chinese text in MSH-3..MSH-17 may confuse the field count; HL7 leaves
//! that case undefined too).

use std::borrow::Cow;

use encoding_rs::Encoding;

/// Longest MSH-18 value echoed back in an error.
const MAX_NAME_CHARS: usize = 32;

const BOM: &[u8] = b"\xEF\xBB\xBF";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CharsetError {
    #[error("message does not begin with an MSH segment")]
    NoHeader,
    #[error("MSH field separator is byte 0x{byte:02X}, which cannot separate fields")]
    BadSeparator { byte: u8 },
    #[error("MSH-18 names character set {0:?}, which is not supported")]
    Unsupported(String),
    #[error("MSH-18 names no character set and the bytes are not UTF-8 (byte offset {offset})")]
    Undeclared { offset: usize },
    #[error("message is not valid {charset}, the character set MSH-18 names")]
    Invalid { charset: &'static str },
}

/// How to decode once MSH-18 is understood.
#[derive(Debug, Clone, Copy)]
enum Charset {
    /// Nothing or ASCII declared. Many senders send UTF-8 without saying so,
    /// and ASCII is a subset, so UTF-8 is accepted.
    Undeclared,
    Utf8,
    /// encoding_rs maps the label ISO-8859-1 to windows-1252, which turns
    /// 0x80-0x9F into punctuation; HL7's 8859/1 means the real thing.
    Latin1,
    /// Strict decoding with encoding_rs; the name is for errors.
    Other(&'static Encoding, &'static str),
}

/// Decodes a whole message, choosing the character set from MSH-18.
///
/// A leading UTF-8 byte order mark is dropped; everything else, including
/// any CR/LF before `MSH`, is decoded as is. Bytes that are not valid in the
/// named character set are an error rather than replacement characters, so
/// that garbled names never reach storage.
pub fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, CharsetError> {
    decode_with(bytes, None)
}

/// Whether `name` is a character set [`decode`] knows (an HL7 table 0211
/// name, spelt loosely), and not the empty one.
pub fn is_known(name: &str) -> bool {
    !name.trim().is_empty() && charset(name.trim().as_bytes()).is_ok()
}

/// As [`decode`], with the character set a feed's sender uses without
/// saying so: when MSH-18 is empty and the bytes are not UTF-8, they are
/// read in `default` (a name [`is_known`] takes).
pub fn decode_with<'a>(
    bytes: &'a [u8],
    default: Option<&str>,
) -> Result<Cow<'a, str>, CharsetError> {
    let bom = if bytes.starts_with(BOM) { BOM.len() } else { 0 };
    let bytes = &bytes[bom..];
    let declared = charset(msh18(bytes)?)?;
    match declared {
        Charset::Undeclared => match std::str::from_utf8(bytes) {
            Ok(text) => Ok(Cow::Borrowed(text)),
            Err(e) => match default
                .map(|name| charset(name.trim().as_bytes()))
                .transpose()?
            {
                Some(Charset::Undeclared) | None => Err(CharsetError::Undeclared {
                    // Counted in the input as received, to match a hex dump.
                    offset: bom + e.valid_up_to(),
                }),
                Some(default) => decode_as(bytes, default),
            },
        },
        other => decode_as(bytes, other),
    }
}

/// `bytes` in a declared character set.
fn decode_as(bytes: &[u8], charset: Charset) -> Result<Cow<'_, str>, CharsetError> {
    match charset {
        Charset::Undeclared => {
            std::str::from_utf8(bytes)
                .map(Cow::Borrowed)
                .map_err(|e| CharsetError::Undeclared {
                    offset: e.valid_up_to(),
                })
        }
        Charset::Utf8 => std::str::from_utf8(bytes)
            .map(Cow::Borrowed)
            .map_err(|_| CharsetError::Invalid { charset: "UTF-8" }),
        Charset::Latin1 => Ok(encoding_rs::mem::decode_latin1(bytes)),
        Charset::Other(encoding, charset) => encoding
            .decode_without_bom_handling_and_without_replacement(bytes)
            .ok_or(CharsetError::Invalid { charset }),
    }
}

/// The first component of the first repetition of MSH-18, trimmed; empty
/// when the header has fewer fields.
fn msh18(bytes: &[u8]) -> Result<&[u8], CharsetError> {
    let start = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(bytes.len());
    let header = &bytes[start..];
    let rest = header.strip_prefix(b"MSH").ok_or(CharsetError::NoHeader)?;
    let &separator = rest.first().ok_or(CharsetError::NoHeader)?;
    if !separator.is_ascii_punctuation() {
        return Err(CharsetError::BadSeparator { byte: separator });
    }
    let line_end = header
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(header.len());
    let line = &header[..line_end];

    // pieces[0] is "MSH"; MSH-1 is the separator itself, so pieces[n] is MSH-(n+1).
    let mut pieces = line.split(|&b| b == separator);
    let encoding_chars = pieces.nth(1).unwrap_or_default();
    let component = encoding_chars.first().copied().unwrap_or(b'^');
    let repetition = encoding_chars.get(1).copied().unwrap_or(b'~');
    let field = pieces.nth(15).unwrap_or_default();
    let first = field
        .split(|&b| b == repetition)
        .next()
        .unwrap_or_default()
        .split(|&b| b == component)
        .next()
        .unwrap_or_default();
    Ok(first.trim_ascii())
}

fn charset(name: &[u8]) -> Result<Charset, CharsetError> {
    // Senders spell these loosely ("UTF-8", "utf8", "ISO_8859-1", "KSC5601"),
    // so compare without case, spaces or punctuation.
    let key: String = name
        .iter()
        .filter(|b| !matches!(b, b' ' | b'_' | b'-' | b'/'))
        .map(|b| char::from(b.to_ascii_uppercase()))
        .collect();
    let other = |encoding, label| Ok(Charset::Other(encoding, label));
    if let Some(part) = key
        .strip_prefix("ISO8859")
        .or_else(|| key.strip_prefix("8859"))
    {
        return match part {
            "1" => Ok(Charset::Latin1),
            "2" => other(encoding_rs::ISO_8859_2, "ISO-8859-2"),
            "3" => other(encoding_rs::ISO_8859_3, "ISO-8859-3"),
            "4" => other(encoding_rs::ISO_8859_4, "ISO-8859-4"),
            "5" => other(encoding_rs::ISO_8859_5, "ISO-8859-5"),
            "6" => other(encoding_rs::ISO_8859_6, "ISO-8859-6"),
            "7" => other(encoding_rs::ISO_8859_7, "ISO-8859-7"),
            "8" => other(encoding_rs::ISO_8859_8, "ISO-8859-8"),
            // encoding_rs has no ISO-8859-9; windows-1254 is its superset.
            "9" => other(encoding_rs::WINDOWS_1254, "ISO-8859-9"),
            "15" => other(encoding_rs::ISO_8859_15, "ISO-8859-15"),
            _ => Err(unsupported(name)),
        };
    }
    match key.as_str() {
        "" | "ASCII" | "USASCII" | "ISOIR6" => Ok(Charset::Undeclared),
        "UNICODEUTF8" | "UTF8" => Ok(Charset::Utf8),
        "KSX1001" | "ISOIR149" | "KSC5601" | "EUCKR" => other(encoding_rs::EUC_KR, "EUC-KR"),
        "GB180302000" | "GB18030" => other(encoding_rs::GB18030, "GB 18030"),
        "BIG5" => other(encoding_rs::BIG5, "Big5"),
        "ISOIR87" => other(encoding_rs::ISO_2022_JP, "ISO-2022-JP"),
        _ => Err(unsupported(name)),
    }
}

fn unsupported(name: &[u8]) -> CharsetError {
    CharsetError::Unsupported(
        String::from_utf8_lossy(name)
            .chars()
            .take(MAX_NAME_CHARS)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feeds_default_reads_what_msh18_does_not_name() {
        let (korean, _, _) = encoding_rs::EUC_KR.encode("김철수");
        let bytes = message("", &korean);
        assert!(decode(&bytes).is_err());
        let text = decode_with(&bytes, Some("KS X 1001")).unwrap();
        assert!(text.contains("김철수"));
        // Valid UTF-8 stays UTF-8; a declared set wins over the default.
        let utf8 = message("", "김철수".as_bytes());
        assert!(
            decode_with(&utf8, Some("KS X 1001"))
                .unwrap()
                .contains("김철수")
        );
        let declared = message("UNICODE UTF-8", "김철수".as_bytes());
        assert!(decode_with(&declared, Some("KS X 1001")).is_ok());
        assert!(
            is_known("KS X 1001") && is_known("8859/1") && !is_known("") && !is_known("EBCDIC")
        );
    }

    /// A message whose MSH-18 is `msh18`, followed by `body` bytes in a PID.
    fn message(msh18: &str, body: &[u8]) -> Vec<u8> {
        let mut m = format!(
            "MSH|^~\\&|SEND|FAC|RECV|FAC|20240715134259||ADT^A01|MSG0001|P|2.5|||||KOR|{msh18}\rPID|1||123||"
        )
        .into_bytes();
        m.extend_from_slice(body);
        m.extend_from_slice(b"\r");
        m
    }

    #[test]
    fn utf8_korean_without_msh18() {
        let m = message("", "김철수".as_bytes());
        let text = decode(&m).unwrap();
        assert!(matches!(text, Cow::Borrowed(_)));
        assert!(text.contains("PID|1||123||김철수\r"));
    }

    #[test]
    fn header_shorter_than_msh18() {
        let m = "MSH|^~\\&|SEND\rPID|1||김\r".as_bytes();
        assert_eq!(decode(m).unwrap(), "MSH|^~\\&|SEND\rPID|1||김\r");
    }

    #[test]
    fn euc_kr_by_any_korean_name() {
        let (euc, _, unmappable) = encoding_rs::EUC_KR.encode("김철수");
        assert!(!unmappable);
        for name in ["KS X 1001", "ISO IR149", "KS C 5601", "EUC-KR", "ks_x_1001"] {
            let m = message(name, &euc);
            let text = decode(&m).unwrap();
            assert!(text.ends_with("PID|1||123||김철수\r"), "{name}");
        }
    }

    #[test]
    fn invalid_euc_kr() {
        let m = message("KS X 1001", b"\xB1\xE8\xFF");
        assert_eq!(decode(&m), Err(CharsetError::Invalid { charset: "EUC-KR" }));
    }

    #[test]
    fn latin1_is_iso_8859_1_not_windows_1252() {
        let m = message("8859/1", b"Ren\xE9\x80");
        let text = decode(&m).unwrap();
        assert!(text.ends_with("PID|1||123||Ren\u{e9}\u{80}\r"));
    }

    #[test]
    fn other_8859_parts() {
        let m = message("8859/15", b"\xA4");
        assert!(decode(&m).unwrap().ends_with("||\u{20ac}\r"));
        let m = message("8859/9", b"\xFD");
        assert!(decode(&m).unwrap().ends_with("||\u{131}\r"));
        let m = message("8859/5", b"\xB0");
        assert!(decode(&m).unwrap().ends_with("||\u{410}\r"));
        let m = message("8859/2", b"\xB1");
        assert!(decode(&m).unwrap().ends_with("||\u{105}\r"));
        let m = message("ISO-8859-1", b"\xE9");
        assert!(decode(&m).unwrap().ends_with("||\u{e9}\r"));
    }

    #[test]
    fn chinese_and_japanese() {
        let (gb, _, _) = encoding_rs::GB18030.encode("张伟");
        assert!(
            decode(&message("GB 18030-2000", &gb))
                .unwrap()
                .ends_with("张伟\r")
        );
        let (big5, _, _) = encoding_rs::BIG5.encode("張偉");
        assert!(
            decode(&message("BIG-5", &big5))
                .unwrap()
                .ends_with("張偉\r")
        );
        let (jis, _, _) = encoding_rs::ISO_2022_JP.encode("山田");
        assert!(
            decode(&message("ISO IR87", &jis))
                .unwrap()
                .ends_with("山田\r")
        );
    }

    #[test]
    fn declared_utf8_is_strict() {
        for name in ["UNICODE UTF-8", "UTF-8", "utf8"] {
            let m = message(name, "é".as_bytes());
            assert!(decode(&m).unwrap().ends_with("é\r"));
            assert_eq!(
                decode(&message(name, b"\xE9")),
                Err(CharsetError::Invalid { charset: "UTF-8" })
            );
        }
    }

    #[test]
    fn undeclared_non_utf8_reports_the_offset() {
        let m = message("", b"\xE9");
        let offset = m.len() - 2;
        let err = decode(&m).unwrap_err();
        assert_eq!(err, CharsetError::Undeclared { offset });
        assert!(err.to_string().contains(&offset.to_string()));
        let m = message("ASCII", b"\xE9");
        assert_eq!(
            decode(&m),
            Err(CharsetError::Undeclared {
                offset: m.len() - 2
            })
        );
        let mut m = BOM.to_vec();
        m.extend(message("ISO IR6", b"\xE9"));
        assert_eq!(
            decode(&m),
            Err(CharsetError::Undeclared {
                offset: m.len() - 2
            })
        );
    }

    #[test]
    fn custom_separators() {
        let (euc, _, _) = encoding_rs::EUC_KR.encode("김");
        let mut m =
            b"MSH#$*\\&#A#B#C#D#1#2#X$Y#C1#P#2.5#####KOR#KS X 1001*UNICODE UTF-8$x\rPID#".to_vec();
        m.extend_from_slice(&euc);
        assert!(decode(&m).unwrap().ends_with("PID#김"));
    }

    #[test]
    fn first_repetition_and_component() {
        let (euc, _, _) = encoding_rs::EUC_KR.encode("김");
        let m = message("KS X 1001~UNICODE UTF-8", &euc);
        assert!(decode(&m).unwrap().ends_with("김\r"));
        let m = message(" KS X 1001 ^extra", &euc);
        assert!(decode(&m).unwrap().ends_with("김\r"));
    }

    #[test]
    fn unsupported_names_are_truncated() {
        for name in [
            "UNICODE",
            "UNICODE UTF-16",
            "UNICODE UTF-32",
            "EBCDIC",
            "8859",
            "8859/10",
            "ISO 8859",
        ] {
            assert_eq!(
                decode(&message(name, b"")),
                Err(CharsetError::Unsupported(name.to_string()))
            );
        }
        let long = "X".repeat(100);
        assert_eq!(
            decode(&message(&long, b"")),
            Err(CharsetError::Unsupported("X".repeat(32)))
        );
        let m = message("", b"");
        let mut odd = m.clone();
        let at = m.iter().position(|&b| b == b'\r').unwrap();
        odd.splice(at..at, b"\xFF\xFE".iter().copied());
        assert_eq!(
            decode(&odd),
            Err(CharsetError::Unsupported("\u{fffd}\u{fffd}".to_string()))
        );
    }

    #[test]
    fn no_header() {
        assert_eq!(decode(b""), Err(CharsetError::NoHeader));
        assert_eq!(decode(b"\r\n"), Err(CharsetError::NoHeader));
        assert_eq!(decode(b"MSH"), Err(CharsetError::NoHeader));
        assert_eq!(decode(b"PID|1"), Err(CharsetError::NoHeader));
        assert_eq!(decode(b" MSH|^~\\&"), Err(CharsetError::NoHeader));
        assert_eq!(decode(b"msh|^~\\&"), Err(CharsetError::NoHeader));
    }

    #[test]
    fn bad_separators() {
        for byte in [b'A', b'1', b'\r', b'\n', b' ', 0x00, 0xE9] {
            let m = [b'M', b'S', b'H', byte, b'x'];
            assert_eq!(decode(&m), Err(CharsetError::BadSeparator { byte }));
        }
    }

    #[test]
    fn bom_and_leading_line_breaks() {
        let mut m = BOM.to_vec();
        m.extend_from_slice(b"\r\n\r");
        m.extend_from_slice(&message("UNICODE UTF-8", "김".as_bytes()));
        let text = decode(&m).unwrap();
        assert!(text.starts_with("\r\n\rMSH|"));
        assert!(text.ends_with("김\r"));
    }
}
