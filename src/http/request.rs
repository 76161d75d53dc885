//! An HTTP request's path variables, query parameters and JSON body, made
//! into the RPC's request message by the proto3 JSON mapping.
//!
//! Everything is gathered into one JSON object first and read by
//! prost-reflect in one pass, so that a field from the path, the query or
//! the body is checked by the same rules, and every fault names the field
//! (through `serde_path_to_error`) in the JSON names the caller used.

use prost_reflect::{DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value};

use super::routes::{BodyRule, Route, fields_at};
use crate::{domain::violation::FieldViolation, error::Error};

/// The request message of `route` from what the HTTP request carried.
pub fn build(
    route: &Route,
    variables: Vec<(String, String)>,
    query: Option<&str>,
    body: &[u8],
) -> Result<DynamicMessage, Error> {
    let input = route.method.input();
    let mut root = match &route.body {
        BodyRule::None => Map::new(),
        BodyRule::Whole => body_object(body, "")?,
        BodyRule::Field(field) => {
            let mut root = Map::new();
            if !is_blank(body) {
                let value = parse_json(body, field.json_name())?;
                root.insert(field.json_name().to_owned(), value);
            }
            root
        }
    };
    for (path, value) in variables {
        let Some(fields) = fields_at(&input, &path) else {
            return Err(Error::internal(format!(
                "no field {path} in {}",
                input.full_name()
            )));
        };
        set(&mut root, &fields, scalar(&fields, value), true)?;
    }
    if let Some(query) = query {
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let parameter = name.as_ref();
            if route.body == BodyRule::Whole {
                return Err(unknown_parameter(
                    parameter,
                    "this method takes its fields in the body",
                ));
            }
            let fields = fields_at(&input, parameter)
                .ok_or_else(|| unknown_parameter(parameter, "no such field"))?;
            if let BodyRule::Field(body) = &route.body
                && fields[0] == *body
            {
                return Err(unknown_parameter(
                    parameter,
                    "this field is the request body",
                ));
            }
            if fields.iter().any(FieldDescriptor::is_map)
                || fields[..fields.len() - 1]
                    .iter()
                    .any(FieldDescriptor::is_list)
            {
                return Err(unknown_parameter(parameter, "cannot be set in the query"));
            }
            let value = scalar(&fields, value.into_owned());
            set(&mut root, &fields, value, false)?;
        }
    }
    message(input, Value::Object(root), "")
}

/// Reads one JSON text as `descriptor`, naming the field at fault as
/// `prefix` followed by its path.
fn message(
    descriptor: MessageDescriptor,
    value: Value,
    prefix: &str,
) -> Result<DynamicMessage, Error> {
    let mut track = serde_path_to_error::Track::new();
    let deserializer = serde_path_to_error::Deserializer::new(value, &mut track);
    DynamicMessage::deserialize_with_options(descriptor, deserializer, &DeserializeOptions::new())
        .map_err(|error| fault(prefix, track, describe(&error.to_string())))
}

/// The violation of the field `track` stopped at, under `prefix`.
fn fault(prefix: &str, track: serde_path_to_error::Track, what: String) -> Error {
    let path = track.path().to_string();
    let field = join(prefix, if path == "." { "" } else { &path });
    let field = if field.is_empty() {
        "body".to_owned()
    } else {
        field
    };
    FieldViolation::new(field, what).into()
}

/// Reads JSON text as `descriptor` in one pass, as [`message`] does a parsed
/// value: for the lines of a stream, where parsing twice would cost.
pub fn message_from_slice(
    descriptor: MessageDescriptor,
    text: &[u8],
    prefix: &str,
) -> Result<DynamicMessage, Error> {
    let mut track = serde_path_to_error::Track::new();
    let mut json = serde_json::Deserializer::from_slice(text);
    let read = DynamicMessage::deserialize_with_options(
        descriptor,
        serde_path_to_error::Deserializer::new(&mut json, &mut track),
        &DeserializeOptions::new(),
    )
    .and_then(|message| json.end().map(|()| message));
    read.map_err(|error| {
        let what = if error.is_syntax() || error.is_eof() {
            format!("not valid JSON: {error}")
        } else {
            describe(&error.to_string())
        };
        fault(prefix, track, what)
    })
}

/// The JSON object of a whole-request body; an empty body is `{}`.
fn body_object(body: &[u8], prefix: &str) -> Result<Map<String, Value>, Error> {
    if is_blank(body) {
        return Ok(Map::new());
    }
    match parse_json(body, prefix)? {
        Value::Object(object) => Ok(object),
        _ => Err(FieldViolation::new(
            if prefix.is_empty() { "body" } else { prefix },
            "must be a JSON object",
        )
        .into()),
    }
}

/// Parses JSON text; a syntax error names where it is.
fn parse_json(body: &[u8], field: &str) -> Result<Value, Error> {
    serde_json::from_slice(body).map_err(|error| {
        FieldViolation::new(
            if field.is_empty() { "body" } else { field },
            format!("not valid JSON: {error}"),
        )
        .into()
    })
}

fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

fn join(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) if path.starts_with('[') => format!("{prefix}{path}"),
        (false, false) => format!("{prefix}.{path}"),
    }
}

/// prost-reflect's messages say what was expected; a value that was sent
/// is quoted by serde, cut here to keep answers short.
fn describe(message: &str) -> String {
    const MOST: usize = 300;
    if message.len() <= MOST {
        return message.to_owned();
    }
    let mut end = MOST;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

fn unknown_parameter(name: &str, why: &str) -> Error {
    let shown: String = name.chars().take(100).collect();
    FieldViolation::new(shown, format!("unknown query parameter: {why}")).into()
}

/// A path or query value as the JSON the mapping expects of its field:
/// booleans as JSON booleans, enums by name or number; numbers,
/// timestamps, durations and field masks as JSON strings, which the mapping
/// accepts for each. Field masks may name fields by proto name
/// (`display_name`) too.
fn scalar(fields: &[FieldDescriptor], value: String) -> Value {
    let Some(field) = fields.last() else {
        return Value::String(value);
    };
    match field.kind() {
        Kind::Bool => match value.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(value),
        },
        // The mapping reads an enum's number only as a JSON number.
        Kind::Enum(_) => match value.parse::<i32>() {
            Ok(number) => Value::from(number),
            Err(_) => Value::String(value),
        },
        Kind::Message(message) if message.full_name() == "google.protobuf.FieldMask" => {
            Value::String(
                value
                    .split(',')
                    .map(|path| {
                        path.split('.')
                            .map(snake_to_camel)
                            .collect::<Vec<_>>()
                            .join(".")
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            )
        }
        _ => Value::String(value),
    }
}

fn snake_to_camel(part: &str) -> String {
    let mut camel = String::with_capacity(part.len());
    let mut upper = false;
    for c in part.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            camel.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            camel.push(c);
        }
    }
    camel
}

/// Puts `value` at `fields` in `root`, by JSON names. A repeated field
/// gathers every value given for it. A path variable must agree with what
/// the body says of the same field.
fn set(
    root: &mut Map<String, Value>,
    fields: &[FieldDescriptor],
    value: Value,
    from_path: bool,
) -> Result<(), Error> {
    let (last, parents) = fields
        .split_last()
        .ok_or_else(|| Error::internal("empty path"))?;
    let mut object = root;
    let mut names = Vec::new();
    for field in parents {
        names.push(field.json_name().to_owned());
        let entry = object
            .entry(field.json_name().to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        object = entry.as_object_mut().ok_or_else(|| {
            Error::from(FieldViolation::new(
                names.join("."),
                "must be a JSON object",
            ))
        })?;
    }
    names.push(last.json_name().to_owned());
    let name = last.json_name().to_owned();
    if last.is_list() {
        match object
            .entry(name)
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            Value::Array(items) => items.push(value),
            _ => return Err(FieldViolation::new(names.join("."), "must be a list").into()),
        }
        return Ok(());
    }
    match object.get(&name) {
        Some(existing) if from_path && !same(existing, &value) => Err(FieldViolation::new(
            names.join("."),
            "differs between the path and the body",
        )
        .into()),
        Some(_) if !from_path => {
            Err(FieldViolation::new(names.join("."), "given more than once").into())
        }
        _ => {
            object.insert(name, value);
            Ok(())
        }
    }
}

fn same(body: &Value, path: &Value) -> bool {
    body == path
}

#[cfg(test)]
mod tests {
    use prost_reflect::DescriptorPool;

    use super::*;
    use crate::http::routes::{Found, RouteTable};

    fn request(
        verb: http::Method,
        path: &str,
        query: Option<&str>,
        body: &str,
    ) -> Result<DynamicMessage, Error> {
        let pool = DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET).unwrap();
        let table = RouteTable::from_pool(&pool, "verdad.v1").unwrap();
        let Found::Route(route, variables) = table.find(&verb, path) else {
            panic!("no route for {path}");
        };
        build(route, variables, query, body.as_bytes())
    }

    fn violation(error: Error) -> (String, String) {
        match error {
            Error::InvalidArgument(violations) => (
                violations[0].field.clone(),
                violations[0].description.clone(),
            ),
            other => panic!("{other:?}"),
        }
    }

    fn json(message: &DynamicMessage) -> Value {
        serde_json::to_value(message).unwrap()
    }

    #[test]
    fn path_query_and_body_fill_one_request() {
        let message = request(
            http::Method::PATCH,
            "/v1/touchpoints/7",
            Some("update_mask=display_name,cycle_position"),
            r#"{"displayName": "Front desk"}"#,
        )
        .unwrap();
        assert_eq!(
            json(&message),
            serde_json::json!({
                "touchpoint": {"id": "7", "displayName": "Front desk"},
                "updateMask": "displayName,cyclePosition"
            })
        );
    }

    #[test]
    fn query_parameters_take_proto_or_json_names_and_repeat_into_lists() {
        let message = request(
            http::Method::GET,
            "/v1/analyses/scorecard",
            Some("scope.touchpoint_codes=A&scope.touchpointCodes=B&scope.stage=STAGE_SERVICE"),
            "",
        )
        .unwrap();
        assert_eq!(
            json(&message),
            serde_json::json!({"scope": {"touchpointCodes": ["A", "B"], "stage": "STAGE_SERVICE"}})
        );
        let message = request(
            http::Method::GET,
            "/v1/touchpoints",
            Some("pageSize=5&key=false&show_archived=true"),
            "",
        )
        .unwrap();
        assert_eq!(
            json(&message),
            serde_json::json!({"pageSize": 5, "key": false, "showArchived": true})
        );
    }

    #[test]
    fn faults_name_the_field() {
        let (field, _) = violation(
            request(
                http::Method::POST,
                "/v1/touchpoints",
                None,
                r#"{"displayName": 5}"#,
            )
            .unwrap_err(),
        );
        assert_eq!(field, "touchpoint.displayName");
        let (field, description) = violation(
            request(
                http::Method::POST,
                "/v1/touchpoints",
                None,
                r#"{"colour": "red"}"#,
            )
            .unwrap_err(),
        );
        assert_eq!(field, "touchpoint");
        assert!(description.contains("colour"), "{description}");
        let (field, _) = violation(
            request(
                http::Method::GET,
                "/v1/touchpoints",
                Some("page_size=many"),
                "",
            )
            .unwrap_err(),
        );
        assert_eq!(field, "pageSize");
        let (field, _) = violation(
            request(http::Method::GET, "/v1/touchpoints", Some("colour=red"), "").unwrap_err(),
        );
        assert_eq!(field, "colour");
        let (field, description) =
            violation(request(http::Method::POST, "/v1/touchpoints", None, "{nope").unwrap_err());
        assert_eq!(field, "touchpoint");
        assert!(description.starts_with("not valid JSON"), "{description}");
        let (field, _) = violation(
            request(
                http::Method::POST,
                "/v1/apiKeys",
                Some("role=ROLE_ADMIN"),
                r#"{"displayName": "x"}"#,
            )
            .unwrap_err(),
        );
        assert_eq!(field, "role");
    }

    #[test]
    fn a_body_may_name_fields_by_their_proto_names() {
        let message = request(
            http::Method::POST,
            "/v1/encounters",
            None,
            r#"{"touchpoint_code": "desk", "journeyId": "v-1"}"#,
        )
        .unwrap();
        assert_eq!(
            json(&message),
            serde_json::json!({"encounter": {"touchpointCode": "desk", "journeyId": "v-1"}})
        );
    }

    #[test]
    fn a_path_variable_and_the_body_must_agree() {
        let (field, _) = violation(
            request(
                http::Method::PATCH,
                "/v1/touchpoints/7",
                None,
                r#"{"id": "8", "displayName": "x"}"#,
            )
            .unwrap_err(),
        );
        assert_eq!(field, "touchpoint.id");
        assert!(
            request(
                http::Method::PATCH,
                "/v1/touchpoints/7",
                None,
                r#"{"id": "7", "displayName": "x"}"#,
            )
            .is_ok()
        );
    }
}
