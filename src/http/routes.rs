//! The HTTP routes of the API, read from the `google.api.http` rules of the
//! protos: the protos are the one place a route is written, and the
//! OpenAPI document is made from the same table.

use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MethodDescriptor, ReflectMessage, Value,
};

use super::template::{Bindings, PathTemplate};

/// Where a request's body goes (the rule's `body`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyRule {
    /// No body: every field not in the path is a query parameter.
    None,
    /// `*`: the body is the whole request; no query parameters.
    Whole,
    /// The body is this top-level field; the other fields not in the path
    /// are query parameters.
    Field(FieldDescriptor),
}

/// How the call's messages travel over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One JSON request, one JSON answer.
    Unary,
    /// A client stream: one JSON request per line (NDJSON), one answer.
    LinesIn,
    /// A server stream: one Server-Sent Event per message.
    EventsOut,
    /// A server stream of file pieces: the bytes of the rule's
    /// `response_body` field, in order, as the answer's body.
    FileOut,
}

/// One binding of one RPC.
#[derive(Debug, Clone)]
pub struct Route {
    pub verb: http::Method,
    pub template: PathTemplate,
    pub body: BodyRule,
    pub method: MethodDescriptor,
    pub shape: Shape,
    /// The top-level field whose value is the answer, when the rule names one.
    pub response_body: Option<FieldDescriptor>,
    /// Whether this is the rule's own binding, not one of its
    /// `additional_bindings`.
    pub primary: bool,
}

impl Route {
    /// The gRPC path the route calls: `/package.Service/Method`.
    pub fn grpc_path(&self) -> String {
        format!(
            "/{}/{}",
            self.method.parent_service().full_name(),
            self.method.name()
        )
    }
}

/// What a request's method and path found.
#[derive(Debug)]
pub enum Found<'a> {
    Route(&'a Route, Bindings),
    /// The path exists, but not for this method: these are its methods.
    WrongMethod(Vec<http::Method>),
    Nothing,
}

/// Every route, most specific first.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// The routes of every service in `pool` under `package`. A rule that
    /// does not make sense (an unknown body field, a path variable naming
    /// no field) is an error: it is the protos' fault, found at start-up.
    pub fn from_pool(pool: &DescriptorPool, package: &str) -> Result<Self, String> {
        let http = pool
            .get_extension_by_name("google.api.http")
            .ok_or("the descriptors lack google.api.http")?;
        let mut routes = Vec::new();
        for service in pool.services() {
            if service.package_name() != package {
                continue;
            }
            for method in service.methods() {
                let options = method.options();
                if !options.has_extension(&http) {
                    continue;
                }
                let rule = options.get_extension(&http);
                let Some(rule) = rule.as_message() else {
                    continue;
                };
                add_rule(&mut routes, &method, rule, true)?;
            }
        }
        routes.sort_by_key(|route| std::cmp::Reverse(route.template.specificity()));
        Ok(Self { routes })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route of `verb` and `path`.
    pub fn find(&self, verb: &http::Method, path: &str) -> Found<'_> {
        let mut allowed = Vec::new();
        for route in &self.routes {
            if let Some(bindings) = route.template.matches(path) {
                if route.verb == *verb {
                    return Found::Route(route, bindings);
                }
                if !allowed.contains(&route.verb) {
                    allowed.push(route.verb.clone());
                }
            }
        }
        if allowed.is_empty() {
            Found::Nothing
        } else {
            Found::WrongMethod(allowed)
        }
    }
}

fn add_rule(
    routes: &mut Vec<Route>,
    method: &MethodDescriptor,
    rule: &DynamicMessage,
    top: bool,
) -> Result<(), String> {
    let name = method.full_name();
    let text = |field: &str| -> String {
        rule.get_field_by_name(field)
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let mut pattern = None;
    for (field, verb) in [
        ("get", http::Method::GET),
        ("put", http::Method::PUT),
        ("post", http::Method::POST),
        ("delete", http::Method::DELETE),
        ("patch", http::Method::PATCH),
    ] {
        if rule
            .descriptor()
            .get_field_by_name(field)
            .is_some_and(|f| rule.has_field(&f))
        {
            pattern = Some((verb, text(field)));
        }
    }
    let (verb, path) = pattern.ok_or_else(|| format!("{name}: an http rule without a method"))?;
    let template = PathTemplate::parse(&path).map_err(|e| format!("{name}: {e}"))?;
    let input = method.input();
    for variable in template.variables() {
        let field = field_at(&input, variable)
            .ok_or_else(|| format!("{name}: {path} names no field {variable}"))?;
        if field.is_list() || matches!(field.kind(), Kind::Message(_)) {
            return Err(format!(
                "{name}: {path} binds {variable}, which is not a single scalar"
            ));
        }
    }
    let body = match text("body").as_str() {
        "" => BodyRule::None,
        "*" => BodyRule::Whole,
        field => BodyRule::Field(
            input
                .get_field_by_name(field)
                .ok_or_else(|| format!("{name}: body names no field {field}"))?,
        ),
    };
    let response_body = match text("response_body").as_str() {
        "" => None,
        field => Some(
            method
                .output()
                .get_field_by_name(field)
                .ok_or_else(|| format!("{name}: response_body names no field {field}"))?,
        ),
    };
    let shape = match (
        method.is_client_streaming(),
        method.is_server_streaming(),
        &response_body,
    ) {
        (false, false, None) => Shape::Unary,
        (false, false, Some(_)) => {
            return Err(format!("{name}: response_body is only for streamed files"));
        }
        (true, false, _) => Shape::LinesIn,
        (false, true, None) => Shape::EventsOut,
        (false, true, Some(field)) if field.kind() == Kind::Bytes => Shape::FileOut,
        (false, true, Some(_)) => {
            return Err(format!("{name}: a streamed response_body must be bytes"));
        }
        (true, true, _) => return Err(format!("{name}: bidirectional streams have no HTTP form")),
    };
    if shape == Shape::LinesIn && body != BodyRule::Whole {
        return Err(format!("{name}: a client stream's body must be \"*\""));
    }
    routes.push(Route {
        verb,
        template,
        body,
        method: method.clone(),
        shape,
        response_body,
        primary: top,
    });
    // Additional bindings may not nest.
    if top
        && let Some(Value::List(more)) = rule
            .get_field_by_name("additional_bindings")
            .map(|value| value.into_owned())
    {
        for binding in &more {
            if let Some(binding) = binding.as_message() {
                add_rule(routes, method, binding, false)?;
            }
        }
    }
    Ok(())
}

/// The fields along a dotted path in `message`, each part a proto or a JSON
/// name; every part but the last a single message.
pub fn fields_at(
    message: &prost_reflect::MessageDescriptor,
    path: &str,
) -> Option<Vec<FieldDescriptor>> {
    let mut message = message.clone();
    let mut fields = Vec::new();
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let field = message
            .get_field_by_name(part)
            .or_else(|| message.get_field_by_json_name(part))?;
        if parts.peek().is_some() {
            match field.kind() {
                Kind::Message(inner) if !field.is_list() && !field.is_map() => message = inner,
                _ => return None,
            }
        }
        fields.push(field);
    }
    (!fields.is_empty()).then_some(fields)
}

/// The field at the end of a dotted path (see [`fields_at`]).
pub fn field_at(message: &prost_reflect::MessageDescriptor, path: &str) -> Option<FieldDescriptor> {
    fields_at(message, path)?.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        let pool = DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET).unwrap();
        RouteTable::from_pool(&pool, "verdad.v1").unwrap()
    }

    #[test]
    fn every_rpc_has_a_route() {
        let pool = DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET).unwrap();
        let table = table();
        for service in pool.services().filter(|s| s.package_name() == "verdad.v1") {
            for method in service.methods() {
                assert!(
                    table
                        .routes()
                        .iter()
                        .any(|route| route.method.full_name() == method.full_name()),
                    "{} has no http rule",
                    method.full_name()
                );
            }
        }
    }

    #[test]
    fn a_path_finds_its_route_or_the_methods_it_has() {
        let table = table();
        let Found::Route(route, bindings) = table.find(&http::Method::GET, "/v1/touchpoints/ER")
        else {
            panic!("no route");
        };
        assert_eq!(route.method.name(), "GetTouchpoint");
        assert_eq!(bindings, vec![("code".to_owned(), "ER".to_owned())]);

        let Found::Route(route, _) = table.find(&http::Method::POST, "/v1/touchpoints/7:archive")
        else {
            panic!("no route");
        };
        assert_eq!(route.method.name(), "ArchiveTouchpoint");
        assert_eq!(
            route.grpc_path(),
            "/verdad.v1.TouchpointService/ArchiveTouchpoint"
        );

        match table.find(&http::Method::DELETE, "/v1/touchpoints") {
            Found::WrongMethod(methods) => {
                assert!(methods.contains(&http::Method::GET));
                assert!(methods.contains(&http::Method::POST));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            table.find(&http::Method::GET, "/v2/touchpoints"),
            Found::Nothing
        ));
    }

    #[test]
    fn every_route_is_in_the_reference_page() {
        let page = include_str!("../../docs/http.md");
        for route in table().routes() {
            let written = format!("`{} {}", route.verb, route.template.as_str());
            assert!(page.contains(&written), "docs/http.md lacks {written}");
        }
    }

    #[test]
    fn streams_take_their_http_shapes() {
        let table = table();
        let shape = |name: &str| {
            table
                .routes()
                .iter()
                .find(|route| route.method.name() == name)
                .map(|route| route.shape)
        };
        assert_eq!(shape("IngestEncounters"), Some(Shape::LinesIn));
        assert_eq!(shape("WatchRecoveryCases"), Some(Shape::EventsOut));
        assert_eq!(shape("ExportEventLog"), Some(Shape::FileOut));
        assert_eq!(shape("GetScorecard"), Some(Shape::Unary));
    }
}
