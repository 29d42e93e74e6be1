//! One error type for every handler: a status and a JSON body
//! `{"error": "...", "detail": "..."}`. Internal errors are logged and shown
//! without their internals.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: &'static str,
    detail: String,
}

impl ApiError {
    /// 400: the request is malformed.
    pub fn bad_request(error: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error,
            detail: detail.into(),
        }
    }
    /// 401: missing or wrong admin token.
    pub fn unauthorized() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            error: "unauthorized",
            detail: "send `Authorization: Bearer <admin token>` (DATA_DIR/admin-token)".into(),
        }
    }
    /// 401 with a reason (worker authentication).
    pub fn unauthorized_because(detail: String) -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            error: "unauthorized",
            detail,
        }
    }
    /// 409.
    pub fn conflict(detail: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::CONFLICT,
            error: "conflict",
            detail: detail.into(),
        }
    }
    /// 404.
    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            error: "not_found",
            detail: detail.into(),
        }
    }
    /// 408: the request took longer than the server allows.
    pub fn timeout(limit: std::time::Duration) -> ApiError {
        ApiError {
            status: StatusCode::REQUEST_TIMEOUT,
            error: "timeout",
            detail: format!(
                "the request took longer than {} s (sending it or answering it)",
                limit.as_secs()
            ),
        }
    }
    /// 413.
    pub fn too_large(detail: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            error: "too_large",
            detail: detail.into(),
        }
    }
    /// 415.
    pub fn media_type(expected: &str) -> ApiError {
        ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            error: "unsupported_media_type",
            detail: format!("send Content-Type: {expected}"),
        }
    }
    /// 500, logged; the answer does not carry the internals.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "internal error");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "internal",
            detail: "the node failed; see its log".into(),
        }
    }
    /// 503: the store is unavailable (shutting down or failing).
    pub fn unavailable(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "store unavailable");
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: "unavailable",
            detail: "the store is unavailable; nothing was stored".into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error": self.error, "detail": self.detail })),
        )
            .into_response()
    }
}
