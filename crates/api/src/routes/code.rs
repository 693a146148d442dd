//! Downloads of code packages through the presigned links GetFunction hands out.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use nimbus_core::{BlobId, ServiceError};

use super::extract::QueryPairs;
use crate::error::ApiError;
use crate::ApiState;

pub(crate) async fn download(
    State(api): State<ApiState>,
    Path((function, file)): Path<(String, String)>,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let denied = || {
        ApiError(ServiceError::ResourceNotFound(
            "Code link is invalid or has expired.".into(),
        ))
    };
    let sha = file.strip_suffix(".zip").ok_or_else(denied)?;
    let id = BlobId::from_hex(sha).ok_or_else(denied)?;
    let expires = query
        .get("Expires")
        .and_then(|e| e.parse::<i64>().ok())
        .ok_or_else(denied)?;
    let signature = query.get("Signature").ok_or_else(denied)?;
    let now = chrono::Utc::now().timestamp();
    if !api
        .code_urls
        .verify(&function, sha, expires, signature, now)
    {
        return Err(denied());
    }
    let bytes = api.blobs.get(&id).await?.ok_or_else(denied)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{function}.zip\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
