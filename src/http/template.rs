//! Path templates of `google.api.http` rules, and matching a request path
//! against one.
//!
//! The grammar is `google/api/http.proto`'s:
//!
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! FieldPath = IDENT { "." IDENT } ;
//! Verb     = ":" LITERAL ;
//! ```
//!
//! A variable without `=` stands for one segment (`{id}` is `{id=*}`).

use percent_encoding::percent_decode_str;

/// One parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    segments: Vec<Segment>,
    verb: Option<String>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `*`, or a variable's one segment.
    One(Option<String>),
    /// `**`, or a variable's rest of the path; only last.
    Rest(Option<String>),
}

/// The variables a path bound: field path and decoded value.
pub type Bindings = Vec<(String, String)>;

impl PathTemplate {
    /// Parses `text`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| format!("{text}: a template starts with '/'"))?;
        // The verb follows the last segment; a ':' inside braces is not one.
        let (path, verb) = match rest.rfind(':') {
            Some(at) if !rest[at..].contains('}') => (&rest[..at], Some(rest[at + 1..].to_owned())),
            _ => (rest, None),
        };
        let mut segments = Vec::new();
        let mut parts = split_outside_braces(path).into_iter().peekable();
        while let Some(part) = parts.next() {
            let segment = if let Some(inner) = part.strip_prefix('{') {
                let inner = inner
                    .strip_suffix('}')
                    .ok_or_else(|| format!("{text}: unclosed variable"))?;
                let (field, pattern) = inner.split_once('=').unwrap_or((inner, "*"));
                if field.is_empty() || !field.split('.').all(is_ident) {
                    return Err(format!("{text}: {field:?} is not a field path"));
                }
                match pattern {
                    "*" => Segment::One(Some(field.to_owned())),
                    "**" => Segment::Rest(Some(field.to_owned())),
                    _ => {
                        return Err(format!(
                            "{text}: only '*' and '**' are supported after '=' (got {pattern:?})"
                        ));
                    }
                }
            } else {
                match part {
                    "*" => Segment::One(None),
                    "**" => Segment::Rest(None),
                    "" => return Err(format!("{text}: empty segment")),
                    literal => Segment::Literal(literal.to_owned()),
                }
            };
            if matches!(segment, Segment::Rest(_)) && parts.peek().is_some() {
                return Err(format!("{text}: '**' must be the last segment"));
            }
            segments.push(segment);
        }
        if verb.as_deref() == Some("") {
            return Err(format!("{text}: empty verb"));
        }
        Ok(Self {
            segments,
            verb,
            text: text.to_owned(),
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The custom method's verb, when the template has one.
    pub fn verb(&self) -> Option<&str> {
        self.verb.as_deref()
    }

    /// The field paths the template binds, in order.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::One(Some(field)) | Segment::Rest(Some(field)) => Some(field.as_str()),
            _ => None,
        })
    }

    /// How specific the template is: a path that two templates match goes to
    /// the more specific one (a verb first, then more literal segments).
    pub fn specificity(&self) -> (bool, usize) {
        let literals = self
            .segments
            .iter()
            .filter(|segment| matches!(segment, Segment::Literal(_)))
            .count();
        (self.verb.is_some(), literals)
    }

    /// The variables of `path` when it matches; `None` when it does not. A
    /// value that is not valid percent-encoded UTF-8 does not match.
    pub fn matches(&self, path: &str) -> Option<Bindings> {
        let path = path.strip_prefix('/')?;
        let path = match &self.verb {
            Some(verb) => path.strip_suffix(verb.as_str())?.strip_suffix(':')?,
            None => path,
        };
        let parts: Vec<&str> = path.split('/').collect();
        let mut bindings = Vec::new();
        let mut at = 0;
        for segment in &self.segments {
            match segment {
                Segment::Literal(literal) => {
                    if parts.get(at) != Some(&literal.as_str()) {
                        return None;
                    }
                    at += 1;
                }
                Segment::One(field) => {
                    let part = parts.get(at).filter(|part| !part.is_empty())?;
                    if let Some(field) = field {
                        bindings.push((field.clone(), decode(part)?));
                    }
                    at += 1;
                }
                Segment::Rest(field) => {
                    let rest = &parts[at.min(parts.len())..];
                    if rest.is_empty() || rest.iter().any(|part| part.is_empty()) {
                        return None;
                    }
                    if let Some(field) = field {
                        let decoded: Option<Vec<String>> = rest.iter().map(|p| decode(p)).collect();
                        bindings.push((field.clone(), decoded?.join("/")));
                    }
                    at = parts.len();
                }
            }
        }
        (at == parts.len()).then_some(bindings)
    }
}

fn decode(part: &str) -> Option<String> {
    percent_decode_str(part)
        .decode_utf8()
        .ok()
        .map(|value| value.into_owned())
}

fn is_ident(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Splits on '/' except inside a variable's braces (`{name=a/*}`).
fn split_outside_braces(path: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (at, c) in path.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => {
                parts.push(&path[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(&path[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(template: &str, path: &str) -> Option<Bindings> {
        PathTemplate::parse(template).unwrap().matches(path)
    }

    fn pairs(items: &[(&str, &str)]) -> Bindings {
        items
            .iter()
            .map(|(field, value)| ((*field).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn literals_match_only_themselves() {
        assert_eq!(bound("/v1/touchpoints", "/v1/touchpoints"), Some(vec![]));
        assert_eq!(bound("/v1/touchpoints", "/v1/touchpoint"), None);
        assert_eq!(bound("/v1/touchpoints", "/v1/touchpoints/x"), None);
        assert_eq!(bound("/v1/touchpoints", "v1/touchpoints"), None);
    }

    #[test]
    fn a_variable_binds_one_decoded_segment() {
        assert_eq!(
            bound("/v1/touchpoints/{code}", "/v1/touchpoints/ER%20DESK"),
            Some(pairs(&[("code", "ER DESK")]))
        );
        assert_eq!(
            bound("/v1/touchpoints/{touchpoint.id}", "/v1/touchpoints/abc"),
            Some(pairs(&[("touchpoint.id", "abc")]))
        );
        assert_eq!(bound("/v1/touchpoints/{code}", "/v1/touchpoints/"), None);
        assert_eq!(bound("/v1/touchpoints/{code}", "/v1/touchpoints/a/b"), None);
        assert_eq!(bound("/v1/touchpoints/{code}", "/v1/touchpoints/%FF"), None);
    }

    #[test]
    fn a_verb_ends_the_last_segment() {
        let archive = "/v1/touchpoints/{id}:archive";
        assert_eq!(
            bound(archive, "/v1/touchpoints/42:archive"),
            Some(pairs(&[("id", "42")]))
        );
        assert_eq!(bound(archive, "/v1/touchpoints/42:unarchive"), None);
        assert_eq!(bound(archive, "/v1/touchpoints/42"), None);
        assert_eq!(
            bound("/v1/touchpoints:lookup", "/v1/touchpoints:lookup"),
            Some(vec![])
        );
        assert_eq!(bound("/v1/touchpoints:lookup", "/v1/touchpoints"), None);
        // Without a verb in the template, a colon is part of the value.
        assert_eq!(
            bound("/v1/touchpoints/{code}", "/v1/touchpoints/a:b"),
            Some(pairs(&[("code", "a:b")]))
        );
    }

    #[test]
    fn wildcards_and_patterns_bind_what_they_cover() {
        assert_eq!(
            bound("/v1/{name=**}", "/v1/a/b%2Fc/d"),
            Some(pairs(&[("name", "a/b/c/d")]))
        );
        assert_eq!(bound("/v1/*/x", "/v1/anything/x"), Some(vec![]));
        assert_eq!(bound("/v1/**", "/v1"), None);
    }

    #[test]
    fn malformed_templates_are_refused_with_a_reason() {
        for text in [
            "v1/x",
            "/v1/{id",
            "/v1/{}",
            "/v1/{1d}",
            "/v1//x",
            "/v1/x:",
            "/v1/**/x",
            "/v1/{name=a/*}",
        ] {
            assert!(PathTemplate::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn verbs_and_literals_make_a_template_more_specific() {
        let get = PathTemplate::parse("/v1/touchpoints/{code}").unwrap();
        let archive = PathTemplate::parse("/v1/touchpoints/{id}:archive").unwrap();
        assert!(archive.specificity() > get.specificity());
        assert_eq!(get.variables().collect::<Vec<_>>(), ["code"]);
        assert_eq!(archive.verb(), Some("archive"));
    }
}
