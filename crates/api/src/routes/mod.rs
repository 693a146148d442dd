//! The route table: every operation Nimbus answers, at AWS's method and path, in one place.

mod account;
mod aliases;
mod code;
mod concurrency;
mod event_invoke;
mod extract;
mod functions;
mod http_routes;
mod invoke;
mod invoke_stream;
mod layers;
mod logs;
mod outbox;
mod paging;
pub mod schedules;
mod tags;
mod urls;
mod versions;

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
            "/2015-03-31/functions/{name}/versions",
            post(versions::publish).get(versions::list),
        )
        .route(
            "/2015-03-31/functions/{name}/aliases",
            post(aliases::create).get(aliases::list),
        )
        .route(
            "/2015-03-31/functions/{name}/aliases/{alias}",
            get(aliases::get)
                .put(aliases::update)
                .delete(aliases::delete),
        )
        .route(
            "/2019-09-25/functions/{name}/event-invoke-config",
            axum::routing::put(event_invoke::put)
                .post(event_invoke::update)
                .get(event_invoke::get)
                .delete(event_invoke::delete),
        )
        .route(
            "/2019-09-25/functions/{name}/event-invoke-config/list",
            get(event_invoke::list),
        )
        // Reserved concurrency is written under 2017-10-31 but read under 2019-09-30.
        .route(
            "/2017-10-31/functions/{name}/concurrency",
            axum::routing::put(concurrency::put).delete(concurrency::delete),
        )
        .route(
            "/2019-09-30/functions/{name}/concurrency",
            get(concurrency::get),
        )
        .route(
            "/2015-03-31/functions/{name}/invocations",
            post(invoke::invoke),
        )
        .route(
            "/2021-11-15/functions/{name}/response-streaming-invocations",
            post(invoke_stream::invoke_with_response_stream),
        )
        .route(
            "/2021-10-31/functions/{name}/url",
            post(urls::create)
                .get(urls::get)
                .put(urls::update)
                .delete(urls::delete),
        )
        .route("/2021-10-31/functions/{name}/urls", get(urls::list))
        // Nimbus's own endpoints (not AWS APIs): messages held for queues and topics, and
        // the gateway's routes.
        .route("/_nimbus/outbox", get(outbox::list))
        .route(
            "/_nimbus/routes",
            get(http_routes::list)
                .put(http_routes::put)
                .delete(http_routes::delete),
        )
        .route("/2018-10-31/layers", get(layers::list_or_find))
        .route(
            "/2018-10-31/layers/{name}/versions",
            get(layers::list_versions).post(layers::publish),
        )
        .route(
            "/2018-10-31/layers/{name}/versions/{version}",
            get(layers::get).delete(layers::delete),
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
