//! The HTTP gateway: function URLs and HTTP-API routes served on their own listener.
//!
//! A request whose `Host` is `<url-id>.lambda-url.<region>.<anything>` goes to that function
//! URL; any other request is matched against the route table. Either way the request becomes a
//! payload-2.0 event ([`HttpEventV2`]), runs through [`Invoke::invoke`] synchronously, and the
//! result is mapped back with [`http_response_from_result`] (or the stream prelude parser for
//! `RESPONSE_STREAM` URLs). Failures are answered the way each front end answers them on AWS
//! ([`gateway_error_response`]).
//!
//! Streaming: a `RESPONSE_STREAM` URL runs through [`Invoke::invoke_stream`]; when the function
//! streams, its response (head parsed from the prelude, then the body) goes to the client while
//! the function writes it (`url_stream`). A function that answers whole is mapped as before.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use nimbus_core::invoke::{InvocationRequest, InvocationType, Invoke, SYNC_PAYLOAD_MAX};
use nimbus_core::stream::InvocationResponse;
use nimbus_core::url::{Cors, FunctionUrlConfig, InvokeMode};
use nimbus_core::{
    AccountContext, FunctionRef, MetadataStore, Qualifier, ServiceError, StoreError,
};

use super::{
    gateway_error_response, http_response_from_result, url_stream, Frontend, GatewayFailure,
    HttpEventV2, HttpRequestParts, HttpResponseParts, PreludeProgress, RequestContextInfo,
    RouteKey, RouteTable, StreamPreludeParser,
};

/// The gateway's route table, loaded from the metadata store and reloaded after a change.
///
/// The routes API calls [`invalidate`](Self::invalidate) after every write; the gateway reloads
/// the table on its next request. Both hold clones of one cache.
#[derive(Clone, Default)]
pub struct RouteCache {
    inner: Arc<RouteCacheInner>,
}

#[derive(Default)]
struct RouteCacheInner {
    generation: AtomicU64,
    table: RwLock<Option<(u64, Arc<RouteTable<String>>)>>,
}

impl RouteCache {
    /// The stored routes changed: reload them before the next request is routed.
    pub fn invalidate(&self) {
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The current table, from the store when it changed since the last load.
    pub async fn table(
        &self,
        meta: &dyn MetadataStore,
    ) -> Result<Arc<RouteTable<String>>, StoreError> {
        let generation = self.inner.generation.load(Ordering::SeqCst);
        if let Some((loaded, table)) = self
            .inner
            .table
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            if *loaded == generation {
                return Ok(Arc::clone(table));
            }
        }
        let routes = meta.list_routes().await?;
        let table: RouteTable<String> = routes
            .into_iter()
            .filter_map(|route| match RouteKey::parse(&route.route_key) {
                Ok(key) => Some((key, route.target)),
                Err(err) => {
                    tracing::warn!(route = %route.route_key, error = %err, "ignoring an invalid stored route");
                    None
                }
            })
            .collect();
        let table = Arc::new(table);
        *self
            .inner
            .table
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((generation, Arc::clone(&table)));
        Ok(table)
    }
}

/// What the gateway needs: where URLs and routes are stored, and who runs invocations.
#[derive(Clone)]
pub struct GatewayState {
    /// Function URL configs and routes.
    pub meta: Arc<dyn MetadataStore>,
    /// Runs the invocations.
    pub invoker: Arc<dyn Invoke>,
    /// Region and account (the URL host's region, the event's `accountId`).
    pub account: AccountContext,
    /// The route table, shared with the routes API.
    pub routes: RouteCache,
}

/// The gateway application: every request, any method and path, goes to [`handle`].
pub fn gateway_router(state: GatewayState) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// The function URL id a host name addresses, if it has the form
/// `<url-id>.lambda-url.<region>.<anything>`; `Err(())` when it has that form for another region
/// or with an id that cannot exist.
fn url_id_of(host: &str, region: &str) -> Option<Result<String, ()>> {
    let host = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    });
    let host = host.to_ascii_lowercase();
    let mut labels = host.split('.');
    let id = labels.next()?;
    if labels.next()? != "lambda-url" {
        return None;
    }
    let host_region = labels.next()?;
    if host_region != region || !FunctionUrlConfig::is_url_id(id) {
        return Some(Err(()));
    }
    Some(Ok(id.to_owned()))
}

/// The front door: pick the function URL or route, run it, answer.
async fn handle(State(gateway): State<GatewayState>, request: Request) -> Response {
    let source_ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "127.0.0.1".to_owned(), |c| c.0.ip().to_string());
    let (parts, body) = request.into_parts();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.host().map(str::to_owned))
        .unwrap_or_default();
    match url_id_of(&host, &gateway.account.region) {
        Some(Ok(url_id)) => function_url(&gateway, &url_id, &host, parts, body, source_ip).await,
        Some(Err(())) => url_not_found(),
        None => route(&gateway, &host, parts, body, source_ip).await,
    }
}

fn json_response(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn url_not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, r#"{"Message":"Not Found"}"#)
}

fn send(parts: HttpResponseParts) -> Response {
    parts.into_http_response().map(Body::from)
}

/// Read the body up to the synchronous payload limit; `None` when it is larger.
async fn read_body(body: Body) -> Option<Bytes> {
    axum::body::to_bytes(body, SYNC_PAYLOAD_MAX).await.ok()
}

fn too_large() -> Response {
    let body = format!(
        r#"{{"Message":"Request must be smaller than {SYNC_PAYLOAD_MAX} bytes for the InvokeFunction operation"}}"#
    );
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

fn request_parts(
    parts: &axum::http::request::Parts,
    body: Bytes,
    source_ip: String,
) -> HttpRequestParts {
    HttpRequestParts::from_http(
        parts,
        body,
        source_ip,
        chrono::Utc::now(),
        uuid::Uuid::new_v4().to_string(),
    )
}

async fn function_url(
    gateway: &GatewayState,
    url_id: &str,
    host: &str,
    parts: axum::http::request::Parts,
    body: Body,
    source_ip: String,
) -> Response {
    let url = match gateway.meta.get_function_url_by_id(url_id).await {
        Ok(Some(url)) => url,
        Ok(None) => return url_not_found(),
        Err(err) => {
            tracing::error!(error = %err, "function URL lookup failed");
            return send(gateway_error_response(
                Frontend::FunctionUrl,
                GatewayFailure::FunctionError,
            ));
        }
    };
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned);
    if let (Some(cors), Some(origin)) = (&url.cors, &origin) {
        if parts.method == Method::OPTIONS
            && parts
                .headers
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return preflight(cors, origin);
        }
    }
    let Some(body) = read_body(body).await else {
        return too_large();
    };
    let request = request_parts(&parts, body, source_ip);
    let mut context = RequestContextInfo::function_url(
        &gateway.account.account_id,
        &url.url_id,
        &gateway.account.region,
    );
    // The host the client used (`…lambda-url.<region>.localhost:9002`), not AWS's `on.aws`.
    context.domain_name = host.rsplit_once(':').map_or(host, |(h, _)| h).to_owned();
    let event = HttpEventV2::from_request(&request, &context);
    let mut function = FunctionRef::from_name(url.function.clone());
    function.qualifier = url.alias().map(|a| Qualifier::Alias(a.to_owned()));
    let mut response = run(
        gateway,
        Frontend::FunctionUrl,
        function,
        event.to_json(),
        request.request_id.clone(),
        url.invoke_mode,
    )
    .await;
    if let (Some(cors), Some(origin)) = (&url.cors, &origin) {
        apply_cors(response.headers_mut(), cors, origin);
    }
    response
}

async fn route(
    gateway: &GatewayState,
    host: &str,
    parts: axum::http::request::Parts,
    body: Body,
    source_ip: String,
) -> Response {
    let table = match gateway.routes.table(gateway.meta.as_ref()).await {
        Ok(table) => table,
        Err(err) => {
            tracing::error!(error = %err, "loading the routes failed");
            return send(gateway_error_response(
                Frontend::HttpApi,
                GatewayFailure::FunctionError,
            ));
        }
    };
    let Some(found) = table.find(&parts.method, parts.uri.path()) else {
        return send(gateway_error_response(
            Frontend::HttpApi,
            GatewayFailure::NotFound,
        ));
    };
    let route_key = found.route_key.to_string();
    let path_parameters = found.path_parameters.clone();
    let target = found.target.clone();
    drop(table);
    let function = match FunctionRef::parse(&target) {
        Ok(function) => function,
        Err(err) => {
            tracing::warn!(route = %route_key, target = %target, error = %err, "route target is not a function");
            return send(gateway_error_response(
                Frontend::HttpApi,
                GatewayFailure::FunctionError,
            ));
        }
    };
    let Some(body) = read_body(body).await else {
        return too_large();
    };
    let request = request_parts(&parts, body, source_ip);
    let domain = host.rsplit_once(':').map_or(host, |(h, _)| h).to_owned();
    let prefix = domain.split('.').next().unwrap_or_default().to_owned();
    let context = RequestContextInfo {
        account_id: gateway.account.account_id.clone(),
        api_id: "nimbus".to_owned(),
        domain_name: domain,
        domain_prefix: prefix,
        stage: "$default".to_owned(),
        route_key,
        path_parameters,
        stage_variables: None,
        authorizer: None,
    };
    let event = HttpEventV2::from_request(&request, &context);
    run(
        gateway,
        Frontend::HttpApi,
        function,
        event.to_json(),
        request.request_id.clone(),
        InvokeMode::Buffered,
    )
    .await
}

/// Invoke synchronously and map the outcome to the response `frontend` sends.
async fn run(
    gateway: &GatewayState,
    frontend: Frontend,
    function: FunctionRef,
    payload: Bytes,
    request_id: String,
    mode: InvokeMode,
) -> Response {
    if payload.len() > SYNC_PAYLOAD_MAX {
        return too_large();
    }
    let label = function.arn(&gateway.account);
    let request = InvocationRequest {
        function,
        payload,
        invocation_type: InvocationType::RequestResponse,
        log_tail: false,
        client_context: None,
        request_id,
    };
    let result = match mode {
        InvokeMode::Buffered => gateway.invoker.invoke(request).await,
        InvokeMode::ResponseStream => match gateway.invoker.invoke_stream(request).await {
            Ok(InvocationResponse::Streamed(streamed)) => {
                return url_stream::respond(streamed, &label).await
            }
            Ok(InvocationResponse::Buffered(result)) => Ok(result),
            Err(err) => Err(err),
        },
    };
    let result = match result {
        Ok(result) => result,
        Err(ServiceError::TooManyRequests { .. }) => {
            return match frontend {
                Frontend::FunctionUrl => json_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    r#"{"Message":"Rate Exceeded."}"#,
                ),
                Frontend::HttpApi => json_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    r#"{"message":"Too Many Requests"}"#,
                ),
            }
        }
        Err(ServiceError::RequestTooLarge(_)) => return too_large(),
        Err(err) => {
            tracing::warn!(function = %label, error = %err, "gateway invocation failed");
            return send(gateway_error_response(
                frontend,
                GatewayFailure::FunctionError,
            ));
        }
    };
    if result.function_error.is_some() {
        tracing::debug!(function = %label, "function error behind the gateway");
        return send(gateway_error_response(
            frontend,
            GatewayFailure::FunctionError,
        ));
    }
    let mapped = match mode {
        InvokeMode::Buffered => http_response_from_result(&result.payload),
        InvokeMode::ResponseStream => streamed(result.content_type.as_deref(), &result.payload),
    };
    match mapped {
        Ok(parts) => send(parts),
        Err(err) => {
            tracing::warn!(function = %label, error = %err, "function returned an invalid HTTP response");
            send(gateway_error_response(
                frontend,
                GatewayFailure::InvalidResponse,
            ))
        }
    }
}

/// A `RESPONSE_STREAM` result that came back whole: the prelude (if the runtime marked one)
/// gives the head, the rest is the body, sent as is.
fn streamed(
    content_type: Option<&str>,
    payload: &[u8],
) -> Result<HttpResponseParts, super::ResponseMappingError> {
    let mut parser = StreamPreludeParser::new(content_type);
    let (head, body) = match parser.feed(payload)? {
        PreludeProgress::Ready(head, body) => (head, body),
        PreludeProgress::NeedMore => parser.finish()?,
    };
    Ok(HttpResponseParts {
        status: head.status,
        headers: head.headers,
        body,
    })
}

/// Whether `origin` is one the config allows, and the `Access-Control-Allow-Origin` to send.
fn allowed_origin(cors: &Cors, origin: &str) -> Option<HeaderValue> {
    let origins = cors.allow_origins.as_deref().unwrap_or_default();
    let wildcard = origins.iter().any(|o| o == "*");
    let listed = origins.iter().any(|o| {
        o.trim_end_matches('/')
            .eq_ignore_ascii_case(origin.trim_end_matches('/'))
    });
    if !wildcard && !listed {
        return None;
    }
    // With credentials the browser refuses `*`: echo the origin, as AWS does.
    if wildcard && !listed && cors.allow_credentials != Some(true) {
        return Some(HeaderValue::from_static("*"));
    }
    HeaderValue::from_str(origin).ok()
}

fn joined(list: Option<&[String]>) -> Option<HeaderValue> {
    let list = list?;
    if list.is_empty() {
        return None;
    }
    HeaderValue::from_str(&list.join(",")).ok()
}

/// Answer a CORS preflight from the URL's config, without invoking the function.
fn preflight(cors: &Cors, origin: &str) -> Response {
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    let Some(allow_origin) = allowed_origin(cors, origin) else {
        return response;
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    if let Some(methods) = joined(cors.allow_methods.as_deref()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
    }
    if let Some(allowed) = joined(cors.allow_headers.as_deref()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed);
    }
    if let Some(age) = cors.max_age {
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
    }
    if cors.allow_credentials == Some(true) {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    response
}

/// Put the URL's CORS headers on a function's response; CORS headers the function set itself
/// are replaced, as Lambda overwrites them when the URL has a CORS config.
fn apply_cors(headers: &mut HeaderMap, cors: &Cors, origin: &str) {
    let own: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in own {
        headers.remove(name);
    }
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    let Some(allow_origin) = allowed_origin(cors, origin) else {
        return;
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    if let Some(expose) = joined(cors.expose_headers.as_deref()) {
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, expose);
    }
    if cors.allow_credentials == Some(true) {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts_are_recognised() {
        let id = "abcdefghijklmnopqrstuvwxyz012345";
        assert_eq!(
            url_id_of(
                &format!("{id}.lambda-url.us-east-1.localhost:9002"),
                "us-east-1"
            ),
            Some(Ok(id.to_owned()))
        );
        assert_eq!(
            url_id_of(
                &format!("{}.LAMBDA-URL.us-east-1.on.aws", id.to_uppercase()),
                "us-east-1"
            ),
            Some(Ok(id.to_owned()))
        );
        assert_eq!(
            url_id_of(&format!("{id}.lambda-url.eu-west-1.localhost"), "us-east-1"),
            Some(Err(()))
        );
        assert_eq!(
            url_id_of("short.lambda-url.us-east-1.localhost", "us-east-1"),
            Some(Err(()))
        );
        assert_eq!(url_id_of("127.0.0.1:9002", "us-east-1"), None);
        assert_eq!(url_id_of("api.example.com", "us-east-1"), None);
    }

    #[test]
    fn cors_origin_matching() {
        let cors = Cors {
            allow_origins: Some(vec!["https://a.example".into()]),
            ..Cors::default()
        };
        assert_eq!(
            allowed_origin(&cors, "https://a.example"),
            Some(HeaderValue::from_static("https://a.example"))
        );
        assert_eq!(allowed_origin(&cors, "https://b.example"), None);
        let any = Cors {
            allow_origins: Some(vec!["*".into()]),
            ..Cors::default()
        };
        assert_eq!(
            allowed_origin(&any, "https://b.example"),
            Some(HeaderValue::from_static("*"))
        );
        let credentials = Cors {
            allow_credentials: Some(true),
            ..any
        };
        assert_eq!(
            allowed_origin(&credentials, "https://b.example"),
            Some(HeaderValue::from_static("https://b.example"))
        );
    }

    #[test]
    fn streamed_results_use_the_prelude() {
        let mut payload = br#"{"statusCode":201,"headers":{"x-a":"1"}}"#.to_vec();
        payload.extend_from_slice(&[0; 8]);
        payload.extend_from_slice(b"hello");
        let parts = streamed(
            Some("application/vnd.awslambda.http-integration-response"),
            &payload,
        )
        .expect("mapped");
        assert_eq!(parts.status, StatusCode::CREATED);
        assert_eq!(parts.body, &b"hello"[..]);
        let plain = streamed(Some("text/plain"), b"raw").expect("mapped");
        assert_eq!(plain.status, StatusCode::OK);
        assert_eq!(plain.body, &b"raw"[..]);
    }
}
