//! A client of the HTTP/JSON door: JSON in, status and JSON out.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::app::TestApp;

/// An HTTP/1.1 client of one app, with or without a key.
pub(crate) struct Http {
    base: String,
    key: Option<String>,
    client: reqwest::Client,
}

/// An answer: its status, content type and body (JSON, or `Value::Null`
/// when the body is not JSON; `text` has it as sent).
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) content_type: String,
    pub(crate) json: Value,
    pub(crate) text: String,
}

impl Answer {
    /// The `google.rpc.Code` name of an error answer.
    pub(crate) fn code(&self) -> &str {
        self.json["error"]["status"].as_str().unwrap_or("")
    }

    /// The ErrorInfo reason of an error answer.
    pub(crate) fn reason(&self) -> String {
        self.detail("type.googleapis.com/google.rpc.ErrorInfo")["reason"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// The fields a BadRequest detail names.
    pub(crate) fn violated_fields(&self) -> Vec<String> {
        self.detail("type.googleapis.com/google.rpc.BadRequest")["fieldViolations"]
            .as_array()
            .map(|violations| {
                violations
                    .iter()
                    .filter_map(|v| v["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn detail(&self, kind: &str) -> Value {
        self.json["error"]["details"]
            .as_array()
            .and_then(|details| details.iter().find(|d| d["@type"] == kind))
            .cloned()
            .unwrap_or(Value::Null)
    }
}

impl TestApp {
    /// A client of the app's HTTP door sending `key` as bearer.
    pub(crate) fn http(&self, key: &str) -> Http {
        Http {
            base: format!("http://{}", self.addr),
            key: Some(key.to_owned()),
            client: reqwest::Client::new(),
        }
    }

    /// A client of the app's HTTP door without a key.
    pub(crate) fn http_anonymous(&self) -> Http {
        Http {
            base: format!("http://{}", self.addr),
            key: None,
            client: reqwest::Client::new(),
        }
    }
}

impl Http {
    /// A request to `path` (with its query) carrying the key.
    pub(crate) fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        answer(self.request(Method::GET, path).send().await.unwrap()).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, body).await
    }

    pub(crate) async fn patch(&self, path: &str, body: Value) -> Answer {
        self.send(Method::PATCH, path, body).await
    }

    /// Sends `body` as JSON with `method`.
    pub(crate) async fn send(&self, method: Method, path: &str, body: Value) -> Answer {
        let request = self
            .request(method, path)
            .header("content-type", "application/json")
            .body(body.to_string());
        answer(request.send().await.unwrap()).await
    }

    /// Sends `body` as it is, with `content_type`.
    pub(crate) async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let request = self
            .request(method, path)
            .header("content-type", content_type)
            .body(body);
        answer(request.send().await.unwrap()).await
    }
}

/// Reads a whole answer.
pub(crate) async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        content_type,
        json,
        text,
    }
}
