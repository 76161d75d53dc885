//! The OpenAPI 3 document of the HTTP door, made from the same descriptors
//! and route table the door serves: a route, a field or a comment is
//! written once, in the protos. Descriptions are the protos' comments.
//!
//! No crate turns proto descriptors with `google.api.http` rules into
//! OpenAPI (gnostic's protoc-gen-openapi is Go, and would not know this
//! door's streamed shapes), so the mapping is written here: proto3 JSON
//! types to JSON Schema, path variables and query parameters as the door
//! reads them (see `request`), and the error body of `status`.

use std::collections::BTreeMap;

use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use super::routes::{BodyRule, Route, RouteTable, Shape};

/// The document as pretty-printed JSON, ending with a newline.
pub fn document(routes: &RouteTable) -> anyhow::Result<Vec<u8>> {
    let mut schemas = Schemas::default();
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut operation_ids: BTreeMap<String, usize> = BTreeMap::new();
    let mut tags = BTreeMap::new();
    // Primary bindings first, so that each RPC's first binding keeps its
    // bare operation id whatever the table's order.
    let mut ordered: Vec<&Route> = routes.routes().iter().collect();
    ordered.sort_by_key(|route| (route.method.full_name().to_owned(), !route.primary));
    for route in ordered {
        let service = route.method.parent_service();
        tags.entry(service.name().to_owned()).or_insert_with(|| {
            comments(
                service.parent_file().file_descriptor_proto(),
                service.path(),
            )
        });
        let base = format!("{}_{}", service.name(), route.method.name());
        let seen = operation_ids.entry(base.clone()).or_insert(0);
        *seen += 1;
        let id = if *seen == 1 {
            base
        } else {
            format!("{base}_{seen}")
        };
        let operation = operation(route, id, &mut schemas);
        paths
            .entry(openapi_path(route))
            .or_default()
            .insert(route.verb.as_str().to_ascii_lowercase(), operation);
    }
    let mut components = schemas.finish();
    components.insert("Error".to_owned(), error_schema());
    let document = json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Verdad",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Moments of Truth management for hospitals and welfare agencies. \
                Every RPC of the gRPC API over HTTP with JSON (the proto3 JSON mapping). \
                Send the API key as \"Authorization: Bearer <key>\". Errors are \
                google.rpc.Status in the JSON form of AIP-193.",
            "license": {"name": "Apache-2.0"},
        },
        "tags": tags.into_iter().map(|(name, description)| {
            json!({"name": name, "description": description})
        }).collect::<Vec<_>>(),
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API key of the organisation."}
            },
            "schemas": components,
        },
    });
    let mut text = serde_json::to_vec_pretty(&document)?;
    text.push(b'\n');
    Ok(text)
}

/// OpenAPI writes a path variable as `{name}`; a template's `{name=*}` is
/// the same one segment.
fn openapi_path(route: &Route) -> String {
    route.template.as_str().replace("=*}", "}")
}

fn operation(route: &Route, id: String, schemas: &mut Schemas) -> Value {
    let method = &route.method;
    let input = method.input();
    let description = comments(method.parent_file().file_descriptor_proto(), method.path());
    let mut parameters = Vec::new();
    let path_fields: Vec<String> = route.template.variables().map(str::to_owned).collect();
    for variable in &path_fields {
        if let Some(field) = super::routes::field_at(&input, variable) {
            parameters.push(json!({
                "name": variable,
                "in": "path",
                "required": true,
                "description": field_comment(&field),
                "schema": schemas.field(&field),
            }));
        }
    }
    match &route.body {
        BodyRule::Whole => {}
        BodyRule::None => {
            query_parameters(&input, "", &path_fields, None, schemas, &mut parameters, 0)
        }
        BodyRule::Field(body) => query_parameters(
            &input,
            "",
            &path_fields,
            Some(body),
            schemas,
            &mut parameters,
            0,
        ),
    }
    let mut operation = json!({
        "operationId": id,
        "tags": [method.parent_service().name()],
        "summary": first_sentence(&description),
        "description": description,
        "parameters": parameters,
        "responses": responses(route, schemas),
    });
    let body_schema = match &route.body {
        BodyRule::None => None,
        BodyRule::Whole => Some(schemas.message(&input)),
        BodyRule::Field(field) => Some(schemas.field(field)),
    };
    if let Some(schema) = body_schema {
        let content = if route.shape == Shape::LinesIn {
            json!({
                "application/x-ndjson": {"schema": schema.clone()},
                "application/json": {"schema": schema},
            })
        } else {
            json!({"application/json": {"schema": schema}})
        };
        let description = if route.shape == Shape::LinesIn {
            format!(
                "One {} per line (newline-delimited JSON); as application/json, the body is one.",
                input.name()
            )
        } else {
            String::new()
        };
        operation["requestBody"] = json!({
            "required": route.body != BodyRule::Whole,
            "description": description,
            "content": content,
        });
    }
    operation
}

fn responses(route: &Route, schemas: &mut Schemas) -> Value {
    let output = route.method.output();
    let ok = match route.shape {
        Shape::Unary | Shape::LinesIn => json!({
            "description": output.name(),
            "content": {"application/json": {"schema": schemas.message(&output)}},
        }),
        Shape::EventsOut => json!({
            "description": format!(
                "Server-Sent Events: each `data:` line is one {} in JSON; an `error` event \
                 carries the Error that ended the stream.",
                output.name()
            ),
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }),
        Shape::FileOut => json!({
            "description": "The file, streamed as it is made.",
            "content": {
                "text/csv": {"schema": {"type": "string", "format": "binary"}},
                "application/xml": {"schema": {"type": "string", "format": "binary"}},
            },
        }),
    };
    json!({
        "200": ok,
        "default": {
            "description": "An error: google.rpc.Status with ErrorInfo and, for bad fields, BadRequest.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        },
    })
}

/// Every field the query may set: the scalars, enums, well-known types
/// and lists of them, and the fields of nested messages by dotted path.
fn query_parameters(
    message: &MessageDescriptor,
    prefix: &str,
    in_path: &[String],
    body: Option<&FieldDescriptor>,
    schemas: &mut Schemas,
    parameters: &mut Vec<Value>,
    depth: usize,
) {
    for field in message.fields() {
        if prefix.is_empty() && body.is_some_and(|body| *body == field) {
            continue;
        }
        let name = format!("{prefix}{}", field.name());
        if in_path.contains(&name) || field.is_map() {
            continue;
        }
        match field.kind() {
            Kind::Message(inner) if !is_well_known(&inner) => {
                if !field.is_list() && depth < 3 {
                    query_parameters(
                        &inner,
                        &format!("{name}."),
                        in_path,
                        body,
                        schemas,
                        parameters,
                        depth + 1,
                    );
                }
            }
            _ => {
                let json_name = format!("{prefix}{}", field.json_name());
                let mut parameter = json!({
                    "name": json_name,
                    "in": "query",
                    "description": field_comment(&field),
                    "schema": schemas.field(&field),
                });
                if field.is_list() {
                    parameter["style"] = json!("form");
                    parameter["explode"] = json!(true);
                }
                parameters.push(parameter);
            }
        }
    }
}

/// A message the mapping writes as a scalar or a free object, not as its
/// fields: the well-known types and the wrappers.
fn is_well_known(message: &MessageDescriptor) -> bool {
    well_known(message).is_some()
        || message.package_name() == "google.protobuf" && message.full_name().ends_with("Value")
}

/// The JSON Schema of a field: its type, or a reference to its message's
/// or enum's schema.
fn field_schema(field: &FieldDescriptor) -> Value {
    if field.is_map()
        && let Kind::Message(entry) = field.kind()
    {
        let value = kind_schema(&entry.map_entry_value_field());
        return json!({"type": "object", "additionalProperties": value});
    }
    let item = kind_schema(field);
    if field.is_list() {
        json!({"type": "array", "items": item})
    } else {
        item
    }
}

fn kind_schema(field: &FieldDescriptor) -> Value {
    match field.kind() {
        Kind::Double | Kind::Float => {
            json!({"type": "number", "format": if field.kind() == Kind::Double { "double" } else { "float" }})
        }
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({"type": "integer", "format": "int32"})
        }
        Kind::Uint32 | Kind::Fixed32 => {
            json!({"type": "integer", "format": "int64", "minimum": 0})
        }
        // The mapping writes 64-bit integers as strings.
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            json!({"type": "string", "format": "int64"})
        }
        Kind::Uint64 | Kind::Fixed64 => json!({"type": "string", "format": "uint64"}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::String => json!({"type": "string"}),
        Kind::Bytes => json!({"type": "string", "format": "byte"}),
        Kind::Enum(kind) => reference(kind.full_name()),
        Kind::Message(message) => message_schema(&message),
    }
}

fn message_schema(message: &MessageDescriptor) -> Value {
    well_known(message).unwrap_or_else(|| reference(message.full_name()))
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The messages and enums the operations refer to, gathered as they are
/// met, for the document's components.
#[derive(Default)]
struct Schemas {
    messages: BTreeMap<String, MessageDescriptor>,
    enums: BTreeMap<String, EnumDescriptor>,
}

impl Schemas {
    /// The schema of `message`, whose own components are gathered.
    fn message(&mut self, message: &MessageDescriptor) -> Value {
        self.gather(message);
        message_schema(message)
    }

    /// The schema of `field`, whose message or enum is gathered.
    fn field(&mut self, field: &FieldDescriptor) -> Value {
        self.gather_field(field);
        field_schema(field)
    }

    fn gather(&mut self, message: &MessageDescriptor) {
        if well_known(message).is_some() || self.messages.contains_key(message.full_name()) {
            return;
        }
        self.messages
            .insert(message.full_name().to_owned(), message.clone());
        for field in message.fields() {
            self.gather_field(&field);
        }
    }

    fn gather_field(&mut self, field: &FieldDescriptor) {
        let field = match field.kind() {
            Kind::Message(entry) if field.is_map() => entry.map_entry_value_field(),
            _ => field.clone(),
        };
        match field.kind() {
            Kind::Enum(kind) => {
                self.enums
                    .entry(kind.full_name().to_owned())
                    .or_insert(kind);
            }
            Kind::Message(message) => self.gather(&message),
            _ => {}
        }
    }

    fn finish(self) -> Map<String, Value> {
        let mut schemas = Map::new();
        for (name, message) in &self.messages {
            let mut properties = Map::new();
            for field in message.fields() {
                let mut schema = field_schema(&field);
                let description = field_comment(&field);
                if !description.is_empty() {
                    schema = with_description(schema, &description);
                }
                properties.insert(field.json_name().to_owned(), schema);
            }
            schemas.insert(
                name.clone(),
                json!({
                    "type": "object",
                    "description": comments(message.parent_file().file_descriptor_proto(), message.path()),
                    "properties": properties,
                }),
            );
        }
        for (name, kind) in &self.enums {
            schemas.insert(
                name.clone(),
                json!({
                    "type": "string",
                    "description": comments(kind.parent_file().file_descriptor_proto(), kind.path()),
                    "enum": kind.values().map(|value| value.name().to_owned()).collect::<Vec<_>>(),
                }),
            );
        }
        schemas
    }
}

/// A `$ref` cannot carry siblings in OpenAPI 3.0: it is wrapped in allOf.
fn with_description(schema: Value, description: &str) -> Value {
    if schema.get("$ref").is_some() {
        json!({"allOf": [schema], "description": description})
    } else {
        let mut schema = schema;
        schema["description"] = json!(description);
        schema
    }
}

fn well_known(message: &MessageDescriptor) -> Option<Value> {
    Some(match message.full_name() {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => {
            json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"})
        }
        "google.protobuf.FieldMask" => {
            json!({"type": "string", "description": "Comma-separated field paths."})
        }
        "google.protobuf.Struct" => json!({"type": "object"}),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.Empty" => json!({"type": "object"}),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": {"@type": {"type": "string"}},
            "additionalProperties": true,
        }),
        _ => return None,
    })
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "google.rpc.Status in the JSON form of AIP-193.",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "integer", "description": "The HTTP status code."},
                    "message": {"type": "string", "description": "What went wrong, for a developer."},
                    "status": {"type": "string", "description": "The google.rpc.Code name, e.g. INVALID_ARGUMENT."},
                    "details": {
                        "type": "array",
                        "description": "google.rpc.ErrorInfo (reason, domain \"verdad\", metadata) and, for bad fields, google.rpc.BadRequest.",
                        "items": {
                            "type": "object",
                            "properties": {"@type": {"type": "string"}},
                            "additionalProperties": true,
                        },
                    },
                },
            },
        },
    })
}

fn field_comment(field: &FieldDescriptor) -> String {
    comments(field.parent_file().file_descriptor_proto(), field.path())
}

/// The leading comment of the element at `path` of a file, joined into
/// paragraphs.
fn comments(file: &prost_types::FileDescriptorProto, path: &[i32]) -> String {
    let Some(info) = &file.source_code_info else {
        return String::new();
    };
    info.location
        .iter()
        .find(|location| location.path == path)
        .and_then(|location| location.leading_comments.as_deref())
        .map(|text| {
            text.lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

fn first_sentence(text: &str) -> String {
    match text.find(". ") {
        Some(end) => text[..=end].to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document_value() -> Value {
        let pool = crate::http::descriptors().unwrap();
        let routes = RouteTable::from_pool(&pool, "verdad.v1").unwrap();
        serde_json::from_slice(&document(&routes).unwrap()).unwrap()
    }

    #[test]
    fn every_route_is_an_operation_with_a_unique_id() {
        let document = document_value();
        let pool = crate::http::descriptors().unwrap();
        let routes = RouteTable::from_pool(&pool, "verdad.v1").unwrap();
        let mut ids = Vec::new();
        for (_, operations) in document["paths"].as_object().unwrap() {
            for (_, operation) in operations.as_object().unwrap() {
                ids.push(operation["operationId"].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(ids.len(), routes.routes().len());
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), routes.routes().len());
        assert!(ids.contains(&"TouchpointService_GetTouchpoint".to_owned()));
    }

    #[test]
    fn every_reference_resolves() {
        let document = document_value();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        let text = document.to_string();
        for reference in text.split("\"#/components/schemas/").skip(1) {
            let name = &reference[..reference.find('"').unwrap()];
            assert!(schemas.contains_key(name), "{name} is not defined");
        }
    }

    #[test]
    fn comments_become_descriptions_and_queries_reach_nested_fields() {
        let document = document_value();
        let get = &document["paths"]["/v1/analyses/scorecard"]["get"];
        assert!(
            get["description"]
                .as_str()
                .unwrap()
                .contains("Per touchpoint"),
            "{get}"
        );
        let names: Vec<&str> = get["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"scope.touchpointCodes"), "{names:?}");
        let patch = &document["paths"]["/v1/touchpoints/{touchpoint.id}"]["patch"];
        assert_eq!(patch["parameters"][0]["in"], "path");
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "updateMask")
        );
    }
}
