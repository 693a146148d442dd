//! GetAccountSettings.

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
    Ok(Json(AccountSettingsResponse {
        account_limit: AccountLimit {
            total_code_size: limits::TOTAL_CODE_SIZE,
            code_size_unzipped: limits::UNZIPPED_MAX_BYTES,
            code_size_zipped: limits::ZIP_MAX_BYTES,
            concurrent_executions: limits::ACCOUNT_CONCURRENCY,
            unreserved_concurrent_executions: limits::ACCOUNT_CONCURRENCY,
        },
        account_usage: AccountUsage {
            total_code_size,
            function_count,
        },
    }))
}
