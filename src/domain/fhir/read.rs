//! Reading FHIR R4 JSON into our types, every fault an [`Issue`] that names
//! the element by its FHIRPath and never repeats a value.
//!
//! A body is read in three steps: into JSON (refusing repeated properties,
//! which FHIR forbids and which would otherwise let the last copy win
//! unseen); then over the JSON tree, dropping primitive extensions (`_x`
//! siblings carry only extensions of `x`, which Verdad does not read) and
//! refusing modifier extensions (they change the meaning of what they sit
//! on, so a reader that does not know them must not carry on); and last
//! into the typed structure.

use std::fmt::{self, Write as _};

use serde::{
    Deserialize, Deserializer,
    de::{DeserializeOwned, MapAccess, SeqAccess, Visitor},
};
use serde_json::{Map, Value, error::Category};
use serde_path_to_error::{Path, Segment};

use super::{
    outcome::{Issue, IssueType, Severity},
    types::{
        BUNDLE_TYPES, Bundle, BundleJson, BundleType, Encounter, EntryJson, HTTP_VERBS,
        RequestJson, own_error, own_phrase,
    },
};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
/// Longer names are not FHIR's and are not repeated back.
const NAME_MAX_CHARS: usize = 64;

/// Reads an Encounter sent on its own.
pub fn read_encounter(json: &[u8]) -> Result<Encounter, Vec<Issue>> {
    encounter_from(parse_json(json, "Encounter")?)
}

/// Reads a Bundle's own elements; its entries are read by [`read_entry`].
/// Only batches and transactions are taken: a Bundle of another type is
/// not a request to store anything.
pub fn read_bundle(json: &[u8]) -> Result<Bundle, Vec<Issue>> {
    let mut value = parse_json(json, "Bundle")?;
    check_resource_type(&value, "Bundle", None).map_err(|issue| vec![issue])?;
    prepare(&mut value, "Bundle", &["entry"])?;
    let raw: BundleJson = typed(value, "Bundle")?;
    let kind = match raw.kind.as_deref() {
        Some("batch") => BundleType::Batch,
        Some("transaction") => BundleType::Transaction,
        Some(kind) if BUNDLE_TYPES.contains(&kind) => {
            return Err(vec![Issue::error(
                IssueType::NotSupported,
                format!("Bundle.type {kind} is not supported: send a batch or a transaction"),
                Some("Bundle.type".to_owned()),
            )]);
        }
        Some(_) => {
            return Err(vec![Issue::error(
                IssueType::Value,
                format!(
                    "Bundle.type is not a known code; expected one of {}",
                    BUNDLE_TYPES.join(", ")
                ),
                Some("Bundle.type".to_owned()),
            )]);
        }
        None => {
            return Err(vec![Issue::error(
                IssueType::Required,
                "Bundle.type is required",
                Some("Bundle.type".to_owned()),
            )]);
        }
    };
    Ok(Bundle {
        id: raw.id,
        kind,
        entry: raw.entry,
    })
}

/// Reads entry `index` of a batch or transaction: a create (`POST
/// Encounter`) of an Encounter. The issues' expressions start at the
/// Bundle (`Bundle.entry[2].resource.status`).
pub fn read_entry(index: usize, entry: &Value) -> Result<Encounter, Vec<Issue>> {
    let root = format!("Bundle.entry[{index}]");
    let mut value = entry.clone();
    if !value.is_object() {
        return Err(vec![Issue::error(
            IssueType::Structure,
            format!("{root} must be a JSON object"),
            Some(root),
        )]);
    }
    prepare(&mut value, &root, &["resource", "outcome"])?;
    let raw: EntryJson = typed(value, &root)?;
    let mut issues = match &raw.request {
        Some(request) => check_request(request, &root),
        None => vec![Issue::error(
            IssueType::Required,
            format!("{root}.request is required in a batch or transaction"),
            Some(format!("{root}.request")),
        )],
    };
    let at = format!("{root}.resource");
    let Some(resource) = raw.resource else {
        issues.push(Issue::error(
            IssueType::Required,
            format!("{at} is required: the Encounter to create"),
            Some(at),
        ));
        return Err(issues);
    };
    if !resource.is_object() {
        issues.push(Issue::error(
            IssueType::Structure,
            format!("{at} must be a JSON object"),
            Some(at),
        ));
        return Err(issues);
    }
    if let Err(issue) = check_resource_type(&resource, "Encounter", Some(at)) {
        issues.push(issue);
        return Err(issues);
    }
    match encounter_from(resource) {
        Ok(encounter) if issues.is_empty() => Ok(encounter),
        Ok(_) => Err(issues),
        Err(more) => {
            issues.extend(more.into_iter().map(|issue| issue.in_entry(index)));
            Err(issues)
        }
    }
}

/// Reads the resource of a Bundle entry as an Encounter; the issues'
/// expressions start at the Encounter.
pub fn read_entry_resource(resource: &Value) -> Result<Encounter, Vec<Issue>> {
    encounter_from(resource.clone())
}

fn encounter_from(mut value: Value) -> Result<Encounter, Vec<Issue>> {
    if !value.is_object() {
        return Err(vec![Issue::error(
            IssueType::Structure,
            "the resource must be a JSON object",
            None,
        )]);
    }
    check_resource_type(&value, "Encounter", None).map_err(|issue| vec![issue])?;
    prepare(&mut value, "Encounter", &["contained"])?;
    typed(value, "Encounter")
}

fn check_request(request: &RequestJson, root: &str) -> Vec<Issue> {
    let mut issues = Vec::new();
    let method = request.method.as_str();
    let at = format!("{root}.request.method");
    if !HTTP_VERBS.contains(&method) {
        issues.push(Issue::error(
            IssueType::Value,
            format!(
                "{at} is not a known code; expected one of {}",
                HTTP_VERBS.join(", ")
            ),
            Some(at),
        ));
    } else if method != "POST" {
        issues.push(Issue::error(
            IssueType::NotSupported,
            format!("{at} {method} is not supported: an entry must create (POST) an Encounter"),
            Some(at),
        ));
    }
    let url = request.url.as_str();
    if url != "Encounter" && !url.ends_with("/Encounter") {
        let at = format!("{root}.request.url");
        issues.push(Issue::error(
            IssueType::NotSupported,
            format!("{at} must be Encounter: an entry must create (POST) an Encounter"),
            Some(at),
        ));
    }
    issues
}

/// Refuses a resource of another type than `expected`; `at` is where the
/// resource sits, when it is not the whole body.
fn check_resource_type(value: &Value, expected: &str, at: Option<String>) -> Result<(), Issue> {
    let lead = at.as_ref().map_or(String::new(), |at| format!("{at}: "));
    match value.get("resourceType") {
        Some(Value::String(kind)) if kind == expected => Ok(()),
        Some(Value::String(kind)) if is_name(kind) => Err(Issue::error(
            IssueType::NotSupported,
            format!("{lead}a {kind} is not taken here, only an {expected}"),
            at,
        )),
        Some(Value::String(_)) => Err(Issue::error(
            IssueType::NotSupported,
            format!("{lead}resourceType does not name a FHIR resource; expected {expected}"),
            at,
        )),
        Some(_) => Err(Issue::error(
            IssueType::Value,
            format!("{lead}resourceType must be a string: {expected}"),
            at,
        )),
        None => Err(Issue::error(
            IssueType::Required,
            format!("{lead}resourceType is required: {expected}"),
            at,
        )),
    }
}

/// Parses a body into JSON; `root` names its resource in the issues.
fn parse_json(json: &[u8], root: &str) -> Result<Value, Vec<Issue>> {
    // Some Windows clients begin their UTF-8 with a byte order mark, which
    // JSON does not allow but which carries no meaning.
    let json = json.strip_prefix(UTF8_BOM).unwrap_or(json);
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let Strict(value) = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| vec![json_issue(root, Some(e.path()), e.inner())])?;
    deserializer
        .end()
        .map_err(|e| vec![json_issue(root, None, &e)])?;
    if !value.is_object() {
        return Err(vec![Issue::error(
            IssueType::Structure,
            "the body must be a JSON object: a FHIR resource",
            None,
        )]);
    }
    Ok(value)
}

fn json_issue(root: &str, path: Option<&Path>, error: &serde_json::Error) -> Issue {
    let message = error.to_string();
    match (error.classify(), own_phrase(&message), path) {
        (Category::Data, Some(phrase), Some(path)) => {
            let (at, _) = expression(root, path);
            Issue::error(IssueType::Structure, format!("{at} {phrase}"), Some(at))
        }
        _ => Issue {
            severity: Severity::Fatal,
            code: IssueType::Structure,
            // serde_json's syntax errors name what was expected and where
            // ("at line 3 column 7"), never the text found.
            diagnostics: format!("the body is not valid JSON: {message}"),
            expression: Vec::new(),
        },
    }
}

/// A JSON value read with every object's properties checked to be
/// distinct.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| own_error("is not a finite number"))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(if is_name(&key) {
                    own_error(format_args!("repeats the property {key}"))
                } else {
                    own_error("repeats a property")
                });
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Drops primitive extensions and refuses modifier extensions anywhere in
/// `value` but under the properties named in `skip` (contained resources,
/// and a Bundle's entries, which are read on their own).
fn prepare(value: &mut Value, root: &str, skip: &[&str]) -> Result<(), Vec<Issue>> {
    let mut issues = Vec::new();
    // A stack rather than recursion: a value handed in need not have come
    // through serde_json's nesting limit.
    let mut stack: Vec<(String, &mut Value)> = vec![(root.to_owned(), value)];
    while let Some((path, value)) = stack.pop() {
        let children: Vec<(String, &mut Value)> = match value {
            Value::Object(object) => {
                object.retain(|key, _| !key.starts_with('_'));
                if object.contains_key("modifierExtension") {
                    let at = format!("{path}.modifierExtension");
                    issues.push(Issue::error(
                        IssueType::NotSupported,
                        format!(
                            "{at} is not supported: a modifier extension changes the meaning \
                             of what it sits on, and Verdad does not know any"
                        ),
                        Some(at),
                    ));
                }
                object
                    .iter_mut()
                    .filter(|(key, _)| !skip.contains(&key.as_str()))
                    .map(|(key, child)| {
                        // A name that is not FHIR's is not repeated: the
                        // element holding it is named instead.
                        let at = if is_name(key) {
                            format!("{path}.{key}")
                        } else {
                            path.clone()
                        };
                        (at, child)
                    })
                    .collect()
            }
            Value::Array(items) => items
                .iter_mut()
                .enumerate()
                .map(|(i, item)| (format!("{path}[{i}]"), item))
                .collect(),
            _ => Vec::new(),
        };
        // Reversed, so that the issues come in the order of the document.
        stack.extend(
            children
                .into_iter()
                .filter(|(_, child)| child.is_object() || child.is_array())
                .rev(),
        );
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(issues)
    }
}

/// Reads prepared JSON into `T`, naming the first fault by its FHIRPath.
fn typed<T: DeserializeOwned>(value: Value, root: &str) -> Result<T, Vec<Issue>> {
    serde_path_to_error::deserialize(value).map_err(|e| vec![type_issue(root, e.path(), e.inner())])
}

/// The issue for an error serde made. Its message may quote the value, so
/// only the parts that come from our types (field names, what was
/// expected) are passed on.
fn type_issue(root: &str, path: &Path, error: &serde_json::Error) -> Issue {
    let (at, named) = expression(root, path);
    let message = error.to_string();
    if let Some(phrase) = own_phrase(&message) {
        return Issue::error(IssueType::Value, format!("{at} {phrase}"), Some(at));
    }
    if let Some((field, _)) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
    {
        let at = format!("{at}.{field}");
        return Issue::error(IssueType::Required, format!("{at} is required"), Some(at));
    }
    if message.starts_with("unknown field `") {
        let diagnostics = if named {
            format!("{at} is not an element FHIR R4 defines here")
        } else {
            format!("{at} has an element whose name is not a FHIR name")
        };
        return Issue::error(IssueType::Structure, diagnostics, Some(at));
    }
    let mismatch = ["invalid type: ", "invalid value: ", "invalid length "]
        .iter()
        .any(|prefix| message.starts_with(prefix));
    // The expected part is the last, and comes from our types; the value
    // quoted before it may hold anything, ", expected" included.
    if let (true, Some((_, expected))) = (mismatch, message.rsplit_once(", expected ")) {
        let expected = match expected {
            "a sequence" => "an array",
            _ if expected.starts_with("struct ") => "an object",
            _ => expected,
        };
        return Issue::error(
            IssueType::Value,
            format!("{at} has the wrong type: expected {expected}"),
            Some(at),
        );
    }
    Issue::error(IssueType::Value, format!("{at} is not valid"), Some(at))
}

/// The FHIRPath of `path` below `root`, and whether every name in it could
/// be given: one that is not a FHIR name ends it, unrepeated.
fn expression(root: &str, path: &Path) -> (String, bool) {
    let mut text = root.to_owned();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                let _ = write!(text, "[{index}]");
            }
            Segment::Map { key } if is_name(key) => {
                text.push('.');
                text.push_str(key);
            }
            Segment::Map { .. } => return (text, false),
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    (text, true)
}

/// Whether `text` could be a FHIR element or resource name, and so may be
/// repeated back: a letter, then letters and digits.
fn is_name(text: &str) -> bool {
    text.len() <= NAME_MAX_CHARS
        && text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text.chars().all(|c| c.is_ascii_alphanumeric())
}
