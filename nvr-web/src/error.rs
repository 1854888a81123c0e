//! The one place where errors become HTTP responses: a status from the error's kind, a JSON
//! body with a message safe to show, and internals logged rather than sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nvr_core::ErrorKind;

/// An error answered to an API client.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// Machine-readable detail, e.g. a camera failure class (`auth`, `unreachable`).
    pub detail: Option<String>,
    /// Fields for the client beside the message (merged into the JSON body).
    pub fields: Option<serde_json::Value>,
    /// Sent as `Retry-After` (seconds) with 429.
    pub retry_after: Option<std::time::Duration>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
            detail: None,
            fields: None,
            retry_after: None,
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
            ErrorKind::AlreadyExists | ErrorKind::FailedPrecondition => StatusCode::CONFLICT,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorKind::Throttled => StatusCode::TOO_MANY_REQUESTS,
            // The disk (or a quota) is full: the request was fine, the server cannot store.
            ErrorKind::ResourceExhausted => StatusCode::INSUFFICIENT_STORAGE,
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
        let mut body = serde_json::json!({ "error": message });
        if let Some(d) = &self.detail {
            body["kind"] = d.as_str().into();
        }
        if let Some(serde_json::Value::Object(fields)) = &self.fields {
            for (k, v) in fields {
                if k != "error" && k != "kind" {
                    body[k] = v.clone();
                }
            }
        }
        let mut r = (status, Json(body)).into_response();
        if let Some(after) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

impl From<nvr_app::AppError> for ApiError {
    fn from(e: nvr_app::AppError) -> Self {
        ApiError {
            kind: e.kind,
            message: e.message,
            detail: e.detail,
            fields: e.fields,
            retry_after: e.retry_after,
        }
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
            detail,
            ..ApiError::new(e.error_kind(), e.message)
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(format!("background task failed: {e}"))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
