//! The one place where errors become HTTP responses: a status from the error's kind, a JSON
//! body with a message safe to show, and internals logged rather than sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nvr_core::ErrorKind;
use serde::Serialize;

/// An error answered to an API client.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// Machine-readable detail, e.g. a camera failure class (`auth`, `unreachable`).
    pub detail: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
            detail: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PermissionDenied, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn status(&self) -> StatusCode {
        match self.kind {
            ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::AlreadyExists => StatusCode::CONFLICT,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorKind::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            // The camera, not the client or us, failed: 422 tells the client its request was
            // understood but the camera it names cannot be used.
            ErrorKind::Unavailable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::DataLoss | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(kind = ?self.kind, error = %self.message, "request failed");
        } else {
            tracing::debug!(kind = ?self.kind, error = %self.message, "request refused");
        }
        let message = match self.kind {
            // Storage internals (paths, SQL) are logged, not shown.
            ErrorKind::Internal => "internal error; see the server log",
            _ => self.message.as_str(),
        };
        (
            status,
            Json(Body {
                error: message,
                kind: self.detail.as_deref(),
            }),
        )
            .into_response()
    }
}

impl From<nvr_storage::StorageError> for ApiError {
    fn from(e: nvr_storage::StorageError) -> Self {
        ApiError::new(e.kind(), e.to_string())
    }
}

impl From<nvr_ingest::IngestError> for ApiError {
    fn from(e: nvr_ingest::IngestError) -> Self {
        let detail = serde_json::to_value(e.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        ApiError {
            kind: e.error_kind(),
            message: e.message,
            detail,
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(format!("background task failed: {e}"))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
