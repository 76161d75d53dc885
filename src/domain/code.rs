//! Codes: the stable identifiers an organisation gives its touchpoints and
//! standards, which other systems send back to Verdad.

use std::fmt;

use uuid::Uuid;

use super::violation::FieldViolation;

/// How a request names a resource that has both an id and a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Id(Uuid),
    /// Compared regardless of case.
    Code(String),
}

impl fmt::Display for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lookup::Id(id) => write!(f, "{id}"),
            Lookup::Code(code) => f.write_str(code),
        }
    }
}

/// Reads a resource named by `id` or by `code`: `None` when neither is set,
/// a violation (on `id_field`) when both are.
pub fn parse_lookup(
    id_field: &str,
    id: &str,
    code_field: &str,
    code: &str,
) -> Result<Option<Lookup>, FieldViolation> {
    match (id.is_empty(), code.is_empty()) {
        (true, true) => Ok(None),
        (false, true) => parse_id(id_field, id).map(|id| Some(Lookup::Id(id))),
        (true, false) => parse_code(code_field, code).map(|code| Some(Lookup::Code(code))),
        (false, false) => Err(FieldViolation::new(
            id_field,
            format!("set at most one of {id_field} and {code_field}"),
        )),
    }
}

/// Reads a resource id: a UUID in its one canonical text form, 8-4-4-4-12
/// hexadecimal digits. The other forms a UUID parser takes (braces,
/// `urn:uuid:`, no dashes) would name the same resource by other strings,
/// which page tokens, logs and callers' own keys would then not match.
pub fn parse_id(field: &str, value: &str) -> Result<Uuid, FieldViolation> {
    if value.is_empty() {
        return Err(FieldViolation::new(field, "must not be empty"));
    }
    let dashes = value
        .char_indices()
        .filter(|(_, c)| *c == '-')
        .map(|(at, _)| at);
    let canonical = value.len() == 36 && dashes.eq([8, 13, 18, 23]);
    canonical
        .then(|| Uuid::try_parse(value).ok())
        .flatten()
        .ok_or_else(|| {
            FieldViolation::new(
                field,
                format!(
                    "is not a valid id: {value:?} (an id is written as 8-4-4-4-12 hexadecimal digits)"
                ),
            )
        })
}

pub const CODE_MAX_CHARS: usize = 64;

/// Checks a code: 1 to 64 ASCII letters, digits, '.', '_' or '-', starting
/// with a letter or digit. Codes travel through other systems' interfaces and
/// URLs, so they stay plain.
pub fn parse_code(field: &str, code: &str) -> Result<String, FieldViolation> {
    let Some(first) = code.chars().next() else {
        return Err(FieldViolation::new(field, "must not be empty"));
    };
    if code.len() > CODE_MAX_CHARS {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {CODE_MAX_CHARS} characters"),
        ));
    }
    if !first.is_ascii_alphanumeric() {
        return Err(FieldViolation::new(
            field,
            "must start with a letter or a digit",
        ));
    }
    if let Some(bad) = code
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(FieldViolation::new(
            field,
            format!("may only contain letters, digits, '.', '_' and '-', found {bad:?}"),
        ));
    }
    Ok(code.to_owned())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn codes_are_plain_identifiers() {
        assert_eq!(
            parse_code("code", "reception-desk").unwrap(),
            "reception-desk"
        );
        assert_eq!(parse_code("code", "OPD.1_a").unwrap(), "OPD.1_a");
        assert!(parse_code("code", "").is_err());
        assert!(parse_code("code", "-lobby").is_err());
        assert!(parse_code("code", "lobby desk").is_err());
        assert!(parse_code("code", "로비").is_err());
        assert!(parse_code("code", &"a".repeat(65)).is_err());
        assert_eq!(
            parse_code("touchpoint.code", "").unwrap_err().field,
            "touchpoint.code"
        );
    }

    #[test]
    fn a_lookup_takes_an_id_or_a_code_but_not_both() {
        let id = Uuid::now_v7();
        assert_eq!(
            parse_lookup("id", &id.to_string(), "code", "").unwrap(),
            Some(Lookup::Id(id))
        );
        assert_eq!(
            parse_lookup("id", "", "code", "Lobby").unwrap(),
            Some(Lookup::Code("Lobby".into()))
        );
        assert_eq!(parse_lookup("id", "", "code", "").unwrap(), None);
        assert_eq!(parse_lookup("id", "x", "code", "").unwrap_err().field, "id");
        assert_eq!(
            parse_lookup("id", "", "code", "a b").unwrap_err().field,
            "code"
        );
        let both = parse_lookup("t.id", &id.to_string(), "t.code", "lobby").unwrap_err();
        assert_eq!(both.field, "t.id");
        assert!(both.description.contains("t.code"));
    }

    proptest! {
        #[test]
        fn accepted_codes_match_the_documented_alphabet(code in "\\PC{0,70}") {
            if let Ok(code) = parse_code("code", &code) {
                prop_assert!(!code.is_empty() && code.len() <= CODE_MAX_CHARS);
                prop_assert!(code.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)));
            }
        }
    }

    #[test]
    fn ids_are_read_in_their_canonical_form_only() {
        let id = "0192f5a8-7c3e-7b1a-9d4e-2f6a8b0c1d3e";
        assert_eq!(parse_id("id", id).unwrap().to_string(), id);
        assert!(parse_id("id", &id.to_uppercase()).is_ok());
        for other in [
            "{0192f5a8-7c3e-7b1a-9d4e-2f6a8b0c1d3e}",
            "urn:uuid:0192f5a8-7c3e-7b1a-9d4e-2f6a8b0c1d3e",
            "0192f5a87c3e7b1a9d4e2f6a8b0c1d3e",
            "0192f5a8-7c3e-7b1a-9d4e2f6a8b0c1d3e-",
            "0192f5a8-7c3e-7b1a-9d4e-2f6a8b0c1d3g",
            "",
        ] {
            let refused = parse_id("touchpoint_id", other).unwrap_err();
            assert_eq!(refused.field, "touchpoint_id", "{other}");
        }
    }
}
