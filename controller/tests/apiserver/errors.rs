//! Failures as the API server reports them: an HTTP code with a `Status` object body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A failed request.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status code.
    pub code: u16,
    /// The `reason` of the Status (`NotFound`, `AlreadyExists`, `Conflict`, …).
    pub reason: &'static str,
    /// For people.
    pub message: String,
    /// `details` of the Status (name and kind of the object), when about one object.
    pub details: Value,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String) -> Self {
        ApiError { code, reason, message, details: Value::Null }
    }

    fn about(mut self, kind: &str, name: &str) -> Self {
        self.details = json!({ "name": name, "kind": kind });
        self
    }

    /// 404: no such object.
    pub fn not_found(kind: &str, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{kind} \"{name}\" not found")).about(kind, name)
    }

    /// 404: no such resource type or path.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }

    /// 409: create of a name that exists.
    pub fn already_exists(kind: &str, name: &str) -> Self {
        Self::new(409, "AlreadyExists", format!("{kind} \"{name}\" already exists"))
            .about(kind, name)
    }

    /// 409: a write based on an outdated `resourceVersion`.
    pub fn conflict(kind: &str, name: &str) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {kind} \"{name}\": the object has been modified; \
             please apply your changes to the latest version and try again"
        );
        Self::new(409, "Conflict", message).about(kind, name)
    }

    /// 422: the object or patch is not acceptable.
    pub fn invalid(kind: &str, name: &str, message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message.into()).about(kind, name)
    }

    /// 400: a malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into())
    }

    /// 405: a verb the path does not support.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message.into())
    }

    /// 415: a patch type not supported.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format: {content_type}"),
        )
    }

    /// The `Status` object.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if !self.details.is_null() {
            status["details"] = self.details.clone();
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, Json(self.status())).into_response()
    }
}
