//! The gateway's error codes: the contract's (section 5) plus `UNAVAILABLE`, in one enum that
//! gives each its wire name (the `code` of a WebSocket `error` frame and of an HTTP error body)
//! and its HTTP status, so the two protocols cannot disagree.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use vigil_engine::CommandError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    BadRequest,
    AlertNotFound,
    InvalidTransition,
    RateLimited,
    /// `GET /api/patients/{patientId}` of a patient no engine keeps in the caller's scope.
    PatientNotFound,
    /// Cannot be done now (NATS away, starting, stopping, too many connections): retry.
    Unavailable,
}

impl ErrorCode {
    /// Every code, in the order `/metrics` lists them.
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::BadRequest,
        ErrorCode::AlertNotFound,
        ErrorCode::InvalidTransition,
        ErrorCode::RateLimited,
        ErrorCode::PatientNotFound,
        ErrorCode::Unavailable,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::AlertNotFound => "ALERT_NOT_FOUND",
            ErrorCode::InvalidTransition => "INVALID_TRANSITION",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::PatientNotFound => "PATIENT_NOT_FOUND",
            ErrorCode::Unavailable => "UNAVAILABLE",
        }
    }

    /// The HTTP status of the mirror API (docs/decisions.md, "HTTP").
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::AlertNotFound => StatusCode::NOT_FOUND,
            ErrorCode::InvalidTransition => StatusCode::CONFLICT,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::PatientNotFound => StatusCode::NOT_FOUND,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Position in [`ErrorCode::ALL`] (the metrics' counter index).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl From<&CommandError> for ErrorCode {
    fn from(e: &CommandError) -> Self {
        match e {
            CommandError::NotFound(_) | CommandError::PageNotFound(_) => ErrorCode::AlertNotFound,
            CommandError::BadRequest(_) => ErrorCode::BadRequest,
            CommandError::Forbidden { .. } => ErrorCode::Forbidden,
            CommandError::InvalidTransition { .. } => ErrorCode::InvalidTransition,
            CommandError::Unavailable(_) => ErrorCode::Unavailable,
            CommandError::Forwarded { code, .. } => match *code {
                "ALERT_NOT_FOUND" => ErrorCode::AlertNotFound,
                "BAD_REQUEST" => ErrorCode::BadRequest,
                "FORBIDDEN" => ErrorCode::Forbidden,
                "INVALID_TRANSITION" => ErrorCode::InvalidTransition,
                _ => ErrorCode::Unavailable,
            },
        }
    }
}

/// A refusal as both protocols show it: the WebSocket `error` frame and the HTTP error body
/// (`{"code", "message"}` with the code's status) are both written here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    pub code: ErrorCode,
    pub message: String,
}

impl GatewayError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The `error` frame answering the client message `id`.
    pub fn frame(&self, id: Option<&str>) -> String {
        serde_json::json!({
            "type": "error",
            "id": id,
            "code": self.code.as_str(),
            "message": self.message,
        })
        .to_string()
    }
}

impl From<&CommandError> for GatewayError {
    fn from(e: &CommandError) -> Self {
        Self::new(ErrorCode::from(e), e.to_string())
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"code": self.code.as_str(), "message": self.message});
        (
            self.code.status(),
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_wire_name_status_and_index() {
        for (i, code) in ErrorCode::ALL.into_iter().enumerate() {
            assert_eq!(code.index(), i);
            assert!(code.status().is_client_error() || code == ErrorCode::Unavailable);
        }
        assert_eq!(ErrorCode::PatientNotFound.status(), StatusCode::NOT_FOUND);
        let names: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "UNAUTHORIZED",
                "FORBIDDEN",
                "BAD_REQUEST",
                "ALERT_NOT_FOUND",
                "INVALID_TRANSITION",
                "RATE_LIMITED",
                "PATIENT_NOT_FOUND",
                "UNAVAILABLE"
            ]
        );
    }

    #[test]
    fn command_errors_map_to_the_engines_codes() {
        let errors = [
            CommandError::NotFound("a".into()),
            CommandError::PageNotFound("p".into()),
            CommandError::BadRequest("b".into()),
            CommandError::Forbidden {
                role: "viewer",
                action: "acknowledge",
                category: "deterioration",
            },
            CommandError::InvalidTransition {
                action: "acknowledge",
                state: "resolved",
            },
            CommandError::Unavailable("u".into()),
        ];
        for e in &errors {
            assert_eq!(ErrorCode::from(e).as_str(), e.code(), "{e}");
        }
    }
}
