//! `GET /api/vouch/v1/blobs/SHA256`: evidence, addressed by the sha256 of its
//! uncompressed content; a blob this node lacks is fetched from its peers
//! (`evidence::find`).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::api::verdicts::{blocking, parse_sha};
use crate::store::unpack_blob;

/// `?peers=false`: answer from this node's store only.
#[derive(Debug, serde::Deserialize)]
pub struct BlobQuery {
    peers: Option<String>,
}

/// Sends the zstd bytes with `Content-Encoding: zstd` when the client accepts
/// zstd, else the decompressed content.
pub async fn get(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(sha): Path<String>,
    Query(q): Query<BlobQuery>,
) -> Result<Response, ApiError> {
    let id = parse_sha(&sha)?;
    let blob = match q.peers.as_deref() {
        None | Some("true") => s.find_blob(id).await?,
        Some("false") => {
            let store = s.store.clone();
            blocking(move || store.blob(&id)).await?
        }
        Some(other) => {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("peers=`{other}`: expected true or false"),
            ));
        }
    }
    .ok_or_else(|| ApiError::not_found(format!("no blob {id} here or at this node's peers")))?;
    let accepts_zstd = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("zstd")));
    let mut response = if accepts_zstd {
        let mut r = blob.into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("zstd"));
        r
    } else {
        let content = blocking(move || unpack_blob(&blob)).await?;
        content.into_response()
    };
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    Ok(response)
}
