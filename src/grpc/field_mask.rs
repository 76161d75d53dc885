//! Update masks (AIP-134): which fields an update changes.

use prost_types::FieldMask;

use crate::domain::violation::FieldViolation;

/// The fields of a resource an update mask may name, and those it may not.
pub(crate) struct MaskRules {
    /// The fields an update may change, in the resource's order.
    pub(crate) mutable: &'static [&'static str],
    /// Fields of the resource that no update may touch.
    pub(crate) fixed: &'static [&'static str],
    /// Other names a mask may use for a mutable field: a oneof's name for
    /// the whole oneof, a name for a pair of fields that say one thing.
    pub(crate) aliases: &'static [(&'static str, &'static str)],
}

impl MaskRules {
    /// The fields an update changes: those the mask names; every mutable
    /// field for "*"; without a mask, those the request gives a non-default
    /// value, `given` saying which of `mutable` that is.
    pub(crate) fn paths(
        &self,
        mask: Option<FieldMask>,
        given: &[bool],
    ) -> Result<Vec<&'static str>, Vec<FieldViolation>> {
        let paths = mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            let implied: Vec<&'static str> = self
                .mutable
                .iter()
                .zip(given)
                .filter(|(_, given)| **given)
                .map(|(field, _)| *field)
                .collect();
            if implied.is_empty() {
                return Err(vec![FieldViolation::new(
                    "update_mask",
                    "names no field and the request sets none: say which fields to change",
                )]);
            }
            return Ok(implied);
        }
        if paths.iter().any(|p| p == "*") {
            if paths.len() > 1 {
                return Err(vec![FieldViolation::new(
                    "update_mask",
                    "\"*\" must be the only path when it is used",
                )]);
            }
            return Ok(self.mutable.to_vec());
        }
        let mut named = Vec::new();
        let mut violations = Vec::new();
        for path in &paths {
            let path = self
                .aliases
                .iter()
                .find(|(alias, _)| alias == path)
                .map_or(path.as_str(), |(_, field)| field);
            if let Some(field) = self.mutable.iter().find(|f| **f == path) {
                if !named.contains(field) {
                    named.push(*field);
                }
            } else if self.fixed.contains(&path) {
                violations.push(FieldViolation::new(
                    "update_mask",
                    format!("names {path:?}, which cannot be changed"),
                ));
            } else {
                violations.push(FieldViolation::new(
                    "update_mask",
                    format!(
                        "names unknown field {path:?}; known fields are {}",
                        self.known().join(", ")
                    ),
                ));
            }
        }
        if violations.is_empty() {
            Ok(named)
        } else {
            Err(violations)
        }
    }

    /// Every name a mask may use.
    fn known(&self) -> Vec<&'static str> {
        let mut known = self.mutable.to_vec();
        known.extend(self.aliases.iter().map(|(alias, _)| *alias));
        known
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: MaskRules = MaskRules {
        mutable: &["title", "guidance", "rule"],
        fixed: &["id", "code"],
        aliases: &[("advice", "guidance")],
    };

    fn mask(paths: &[&str]) -> Option<FieldMask> {
        Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        })
    }

    #[test]
    fn without_a_mask_the_given_fields_change() {
        assert_eq!(
            RULES.paths(None, &[true, false, true]).unwrap(),
            ["title", "rule"]
        );
        let err = RULES.paths(None, &[false, false, false]).unwrap_err();
        assert_eq!(err[0].field, "update_mask");
    }

    #[test]
    fn a_star_names_every_mutable_field_and_stands_alone() {
        assert_eq!(
            RULES.paths(mask(&["*"]), &[]).unwrap(),
            ["title", "guidance", "rule"]
        );
        assert!(RULES.paths(mask(&["*", "title"]), &[]).is_err());
    }

    #[test]
    fn fixed_and_unknown_paths_are_each_reported() {
        let err = RULES
            .paths(mask(&["code", "colour", "title"]), &[])
            .unwrap_err();
        assert_eq!(err.len(), 2);
        assert!(err[0].description.contains("cannot be changed"));
        assert!(err[1].description.contains("unknown field \"colour\""));
        assert_eq!(RULES.paths(mask(&["rule", "rule"]), &[]).unwrap(), ["rule"]);
    }

    #[test]
    fn an_alias_names_its_field() {
        assert_eq!(
            RULES.paths(mask(&["advice", "guidance"]), &[]).unwrap(),
            ["guidance"]
        );
        let err = RULES.paths(mask(&["colour"]), &[]).unwrap_err();
        assert!(
            err[0]
                .description
                .ends_with("title, guidance, rule, advice")
        );
    }
}
