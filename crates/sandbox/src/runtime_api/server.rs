//! The accept loop, HTTP/1.1 connection settings and the route table of the Runtime API.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::handlers::{self, ApiResponse, ResultKind};
use super::wire;
use super::Shared;

/// Open connections one environment may hold; a runtime needs one or two. Further
/// connections are closed at once, so a runtime cannot exhaust the host's file descriptors.
const MAX_CONNECTIONS: usize = 32;
/// Largest request head (and trailer section) accepted; larger ones get a 431.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Pause after a failed `accept` (e.g. EMFILE), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serve until `shutdown` turns true. Dropping the connection set on the way out aborts every
/// connection task, including long polls and half-sent requests.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .max_header_size(MAX_HEADER_BYTES)
        .auto_date_header(false);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            // The guard `wait_for` returns is not `Send`: drop it inside the branch's future.
            _ = async { drop(shutdown.wait_for(|stop| *stop).await) } => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if connections.len() >= MAX_CONNECTIONS {
                        tracing::warn!("runtime api connection limit reached; closing connection");
                        continue;
                    }
                    // Small request/response exchanges: send them without Nagle's delay.
                    let _ = stream.set_nodelay(true);
                    let shared = Arc::clone(&shared);
                    let service = service_fn(move |request| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, Infallible>(route(&shared, request).await) }
                    });
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    connections.spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(%error, "runtime api connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    tracing::debug!(%error, "runtime api accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
}

/// The route table: every path the Runtime API answers.
async fn route(shared: &Shared, request: Request<Incoming>) -> ApiResponse {
    let (parts, body) = request.into_parts();
    let Some(path) = parts.uri.path().strip_prefix(wire::RUNTIME_PREFIX) else {
        // Extensions, Telemetry and Logs APIs are not offered.
        return handlers::status_only(StatusCode::NOT_FOUND);
    };
    let (expected, endpoint) = if path == wire::PATH_NEXT {
        (Method::GET, Endpoint::Next)
    } else if path == wire::PATH_INIT_ERROR {
        (Method::POST, Endpoint::InitError)
    } else if let Some((request_id, kind)) = invocation_path(path) {
        (Method::POST, Endpoint::Result(request_id, kind))
    } else {
        return handlers::status_only(StatusCode::NOT_FOUND);
    };
    if parts.method != expected {
        return handlers::status_only(StatusCode::METHOD_NOT_ALLOWED);
    }
    match endpoint {
        Endpoint::Next => handlers::next(shared).await,
        Endpoint::InitError => handlers::init_error(shared, &parts.headers, body).await,
        Endpoint::Result(request_id, kind) => {
            handlers::post_result(shared, request_id, kind, &parts.headers, body).await
        }
    }
}

/// A Runtime API endpoint.
enum Endpoint<'a> {
    /// `GET invocation/next`.
    Next,
    /// `POST init/error`.
    InitError,
    /// `POST invocation/{id}/response` or `/error`.
    Result(&'a str, ResultKind),
}

/// `invocation/{id}/response` or `invocation/{id}/error`.
fn invocation_path(path: &str) -> Option<(&str, ResultKind)> {
    let rest = path.strip_prefix(wire::PATH_INVOCATION)?;
    let (id, kind) = if let Some(id) = rest.strip_suffix(wire::SUFFIX_RESPONSE) {
        (id, ResultKind::Response)
    } else {
        (rest.strip_suffix(wire::SUFFIX_ERROR)?, ResultKind::Error)
    };
    (!id.is_empty() && !id.contains('/')).then_some((id, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocation_paths_parse() {
        assert_eq!(
            invocation_path("invocation/abc/response"),
            Some(("abc", ResultKind::Response))
        );
        assert_eq!(
            invocation_path("invocation/abc/error"),
            Some(("abc", ResultKind::Error))
        );
        assert_eq!(invocation_path("invocation//error"), None);
        assert_eq!(invocation_path("invocation/a/b/error"), None);
        assert_eq!(invocation_path("invocation/abc/other"), None);
    }
}
