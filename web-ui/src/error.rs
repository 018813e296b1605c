//! The one error type handlers return; it becomes a JSON response with a status code.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use migrator_core::orchestrator::commands::CommandError;

/// What can go wrong in a handler.
#[derive(Debug)]
pub enum AppError {
    /// 400: a value that cannot be used (the message says what is expected).
    BadRequest(String),
    /// 401: a command without the right admin token.
    Unauthorized,
    /// 403: a form POST without this server's anti-CSRF token, or a command from another site.
    Forbidden(String),
    /// 404.
    NotFound(String),
    /// 415: an API command whose body is not JSON (the message says what to send).
    UnsupportedMediaType(String),
    /// 409: refused in the current state (the reason says why and what to do).
    Refused(String),
    /// 503: the orchestrator is not running.
    Unavailable(String),
    /// 500: the step failed (a database error; never holds a secret).
    Failed(String),
}

impl From<CommandError> for AppError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::UnknownMapping(_) => AppError::NotFound(e.to_string()),
            CommandError::Refused(_) | CommandError::Held { .. } => {
                AppError::Refused(e.to_string())
            }
            CommandError::Stopped => AppError::Unavailable(e.to_string()),
            CommandError::Config(_) | CommandError::Pg(_) => AppError::Failed(e.to_string()),
        }
    }
}

impl AppError {
    /// The HTTP status and the message for people.
    pub fn status_and_message(self) -> (StatusCode, String) {
        match self {
            AppError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "this command needs the admin token: send Authorization: Bearer <server.admin_token>".to_owned(),
            ),
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            AppError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            AppError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            AppError::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, m),
            AppError::Refused(m) => (StatusCode::CONFLICT, m),
            AppError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
            AppError::Failed(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (code, message) = self.status_and_message();
        (code, Json(serde_json::json!({ "error": message }))).into_response()
    }
}
