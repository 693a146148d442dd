//! GetAccountSettings: the account's limits (concurrency from the server's configuration, less
//! what functions reserve) and what it uses.

use axum::extract::State;
use axum::Json;
use nimbus_core::limits;

use crate::error::ApiError;
use crate::model::{AccountLimit, AccountSettingsResponse, AccountUsage};
use crate::ApiState;

pub(crate) async fn get_settings(
    State(api): State<ApiState>,
) -> Result<Json<AccountSettingsResponse>, ApiError> {
    let (function_count, total_code_size) = api.meta.usage().await?;
    let reserved = api.meta.total_reserved_concurrency().await?;
    let limit = api.concurrency_limit;
    // Reservations never exceed the limit, but a limit lowered after they were made could
    // leave them above it; report none unreserved then rather than wrap around.
    let unreserved = u32::try_from(u64::from(limit).saturating_sub(reserved)).unwrap_or(0);
    Ok(Json(AccountSettingsResponse {
        account_limit: AccountLimit {
            total_code_size: limits::TOTAL_CODE_SIZE,
            code_size_unzipped: limits::UNZIPPED_MAX_BYTES,
            code_size_zipped: limits::ZIP_MAX_BYTES,
            concurrent_executions: limit,
            unreserved_concurrent_executions: unreserved,
        },
        account_usage: AccountUsage {
            total_code_size,
            function_count,
        },
    }))
}
