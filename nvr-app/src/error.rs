//! The application layer's error: a kind (which the web layer maps to a status in one place,
//! and the CLI prints), a message safe to show the person who asked, and optional structured
//! detail for the client (a camera failure class, what a change would delete, when to retry).

use std::time::Duration;

use nvr_core::ErrorKind;

/// An operation refused or failed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub kind: ErrorKind,
    pub message: String,
    /// Machine-readable class, e.g. a camera failure (`auth`, `unreachable`) or `held`.
    pub detail: Option<String>,
    /// Fields for the client beside the message (e.g. `would_delete_bytes`).
    pub fields: Option<serde_json::Value>,
    /// For `Throttled`: when trying again may succeed.
    pub retry_after: Option<Duration>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        AppError {
            kind,
            message: message.into(),
            detail: None,
            fields: None,
            retry_after: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
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

    pub fn precondition(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::FailedPrecondition, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    pub fn throttled(message: impl Into<String>, retry_after: Duration) -> Self {
        AppError {
            retry_after: Some(retry_after),
            ..Self::new(ErrorKind::Throttled, message)
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_fields(mut self, fields: serde_json::Value) -> Self {
        self.fields = Some(fields);
        self
    }
}

impl From<nvr_storage::StorageError> for AppError {
    fn from(e: nvr_storage::StorageError) -> Self {
        let detail = match &e {
            nvr_storage::StorageError::Held { .. } => Some("held".to_owned()),
            _ => None,
        };
        let fields = match &e {
            nvr_storage::StorageError::Held { holds, .. } => {
                Some(serde_json::json!({ "holds": holds }))
            }
            _ => None,
        };
        AppError {
            detail,
            fields,
            ..AppError::new(e.kind(), e.to_string())
        }
    }
}

impl From<nvr_ingest::IngestError> for AppError {
    fn from(e: nvr_ingest::IngestError) -> Self {
        let detail = serde_json::to_value(e.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        AppError {
            detail,
            ..AppError::new(e.error_kind(), e.message)
        }
    }
}

impl From<nvr_core::AccountRuleError> for AppError {
    fn from(e: nvr_core::AccountRuleError) -> Self {
        AppError::invalid(e.to_string())
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(e: tokio::task::JoinError) -> Self {
        AppError::internal(format!("background task failed: {e}"))
    }
}
