//! The one place where errors become HTTP responses: a status from the error's kind, a JSON
//! body with a message safe to show (plus the error's machine-readable `kind` and fields), and
//! internals logged rather than sent. The error itself is the application layer's
//! ([`AppError`]); this wrapper only adds the HTTP side.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nvr_app::AppError;
use nvr_core::ErrorKind;

/// An error answered to an API client.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl std::ops::Deref for ApiError {
    type Target = AppError;
    fn deref(&self) -> &AppError {
        &self.0
    }
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError(AppError::new(kind, message))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError(AppError::invalid(message))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError(AppError::not_found(message))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError(AppError::forbidden(message))
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        ApiError(AppError::unauthenticated(message))
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError(AppError::internal(message))
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
        let e = self.0;
        if status.is_server_error() {
            tracing::error!(kind = ?e.kind, error = %e.message, "request failed");
        } else {
            tracing::debug!(kind = ?e.kind, error = %e.message, "request refused");
        }
        let message = match e.kind {
            // Storage internals (paths, SQL) are logged, not shown.
            ErrorKind::Internal => "internal error; see the server log",
            _ => e.message.as_str(),
        };
        let mut body = serde_json::json!({ "error": message });
        if let Some(d) = &e.detail {
            body["kind"] = d.as_str().into();
        }
        if let Some(serde_json::Value::Object(fields)) = &e.fields {
            for (k, v) in fields {
                if k != "error" && k != "kind" {
                    body[k] = v.clone();
                }
            }
        }
        let mut r = (status, Json(body)).into_response();
        if let Some(after) = e.retry_after
            && let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
    }
}

impl From<nvr_storage::StorageError> for ApiError {
    fn from(e: nvr_storage::StorageError) -> Self {
        ApiError(e.into())
    }
}

impl From<nvr_ingest::IngestError> for ApiError {
    fn from(e: nvr_ingest::IngestError) -> Self {
        ApiError(e.into())
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError(e.into())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
