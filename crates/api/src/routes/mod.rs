//! The route table: every operation Nimbus answers, at AWS's method and path, in one place.

mod account;
mod code;
mod extract;
mod functions;
mod invoke;
mod logs;
mod tags;

use axum::routing::{get, post};
use axum::Router;
use nimbus_core::ServiceError;

use crate::error::ApiError;
use crate::{middleware, ApiState};

pub(crate) fn router(state: ApiState) -> Router {
    let lambda = Router::new()
        // botocore sends ListFunctions to `/functions/` and CreateFunction to `/functions`.
        .route(
            "/2015-03-31/functions",
            post(functions::create).get(functions::list),
        )
        .route(
            "/2015-03-31/functions/",
            post(functions::create).get(functions::list),
        )
        .route(
            "/2015-03-31/functions/{name}",
            get(functions::get).delete(functions::delete),
        )
        .route(
            "/2015-03-31/functions/{name}/configuration",
            get(functions::get_configuration).put(functions::update_configuration),
        )
        .route(
            "/2015-03-31/functions/{name}/code",
            axum::routing::put(functions::update_code),
        )
        .route(
            "/2015-03-31/functions/{name}/invocations",
            post(invoke::invoke),
        )
        .route("/2016-08-19/account-settings", get(account::get_settings))
        .route("/2016-08-19/account-settings/", get(account::get_settings))
        .route(
            "/2017-03-31/tags/{arn}",
            get(tags::list).post(tags::tag).delete(tags::untag),
        )
        // CloudWatch Logs speaks JSON 1.1: every operation is a POST to `/` named by X-Amz-Target.
        .route("/", post(logs::dispatch))
        .fallback(unknown_operation)
        .method_not_allowed_fallback(unknown_operation)
        .layer(axum::middleware::from_fn_with_state(
            state.auth.clone(),
            middleware::aws_request,
        ));
    // Presigned code links are not AWS API requests: their signature is their authorisation.
    let downloads = Router::new().route("/_nimbus/code/{function}/{file}", get(code::download));
    downloads.merge(lambda).with_state(state)
}

async fn unknown_operation(request: axum::extract::Request) -> ApiError {
    ApiError(ServiceError::UnknownOperation(format!(
        "No operation matches {} {}",
        request.method(),
        request.uri().path()
    )))
}
