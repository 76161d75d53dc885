//! Rules for the free-text fields people type: names and descriptions.

use super::violation::FieldViolation;

/// A required single-line text of 1 to `max` characters, not blank.
pub fn required_line(field: &str, value: &str, max: usize) -> Result<String, FieldViolation> {
    if value.trim().is_empty() {
        return Err(FieldViolation::new(field, "must not be empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldViolation::new(
            field,
            "must be a single line without control characters",
        ));
    }
    at_most(field, value, max)?;
    Ok(value.trim().to_owned())
}

/// An optional text of at most `max` characters; line breaks are allowed.
pub fn optional_text(field: &str, value: &str, max: usize) -> Result<String, FieldViolation> {
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(FieldViolation::new(
            field,
            "must not contain control characters other than line breaks and tabs",
        ));
    }
    at_most(field, value, max)?;
    Ok(value.trim().to_owned())
}

fn at_most(field: &str, value: &str, max: usize) -> Result<(), FieldViolation> {
    let length = value.chars().count();
    if length > max {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {max} characters, got {length}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_line_trims_and_rejects_blank_long_and_multiline_values() {
        assert_eq!(required_line("f", "  Lobby ", 10).unwrap(), "Lobby");
        assert!(required_line("f", "   ", 10).is_err());
        assert!(required_line("f", "a\nb", 10).is_err());
        let err = required_line("f", "접수창구접수창구접수창구", 10).unwrap_err();
        assert_eq!(err.field, "f");
        assert!(
            err.description.contains("at most 10"),
            "{}",
            err.description
        );
    }

    #[test]
    fn optional_text_allows_empty_and_line_breaks() {
        assert_eq!(optional_text("f", "", 10).unwrap(), "");
        assert_eq!(optional_text("f", "a\nb", 10).unwrap(), "a\nb");
        assert!(optional_text("f", "a\u{0}b", 10).is_err());
    }
}
