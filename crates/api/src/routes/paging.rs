//! `Marker`/`MaxItems` pagination, shared by every List operation.
//!
//! Markers are opaque to clients: the last item of the page (a function name, a version, an
//! alias name), base64url-encoded, so a client cannot mistake one for an item.

use base64::Engine as _;
use nimbus_core::ServiceError;

use super::extract::QueryPairs;
use crate::error::ApiError;

/// `MaxItems` (1–10000 in the model), capped at `cap` items per page; `cap` when absent.
pub(super) fn max_items(query: &QueryPairs, cap: usize) -> Result<usize, ApiError> {
    let Some(raw) = query.get("MaxItems") else {
        return Ok(cap);
    };
    match raw.parse::<i64>() {
        Ok(n) if (1..=10_000).contains(&n) => Ok(usize::try_from(n).map_or(cap, |n| n.min(cap))),
        _ => Err(ServiceError::constraint(
            raw,
            "maxItems",
            "Member must have value between 1 and 10000",
        )
        .into()),
    }
}

/// The marker that continues after `last`.
pub(super) fn encode_marker(last: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last)
}

/// The item a marker continues after; `InvalidParameterValueException` for anything this
/// server did not hand out.
pub(super) fn decode_marker(marker: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError(ServiceError::InvalidParameterValue(format!(
            "Invalid pagination marker: {marker}"
        )))
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(marker)
        .map_err(|_| invalid())?;
    String::from_utf8(bytes).map_err(|_| invalid())
}
