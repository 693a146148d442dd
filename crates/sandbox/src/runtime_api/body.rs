//! Bounded reading of request bodies posted by the runtime, which is untrusted tenant code: a
//! body never grows past its limit in memory, and trailers (streamed responses) are kept. A
//! streamed response can instead be forwarded chunk by chunk, still counted against its limit.

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use nimbus_core::stream::ResponseSink;

/// A body read to its end.
#[derive(Debug)]
pub(crate) struct Collected {
    /// All data frames, concatenated.
    pub(crate) data: Bytes,
    /// Chunked-encoding trailers, if the runtime sent any.
    pub(crate) trailers: Option<HeaderMap>,
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// The body is (or announced itself as) larger than the limit.
    #[error("body of at least {size} bytes exceeds the limit")]
    TooLarge {
        /// The announced length, or the bytes seen when the limit was crossed.
        size: u64,
    },
    /// The connection failed or closed before the body ended.
    #[error("body ended early")]
    Truncated(#[source] hyper::Error),
}

/// Read `body` to its end, refusing more than `limit` bytes of data.
pub(crate) async fn collect(mut body: Incoming, limit: usize) -> Result<Collected, BodyError> {
    let hint = body.size_hint();
    // A Content-Length above the limit is refused before a byte of it is read.
    if hint.lower() > limit as u64 {
        return Err(BodyError::TooLarge { size: hint.lower() });
    }
    // Most bodies arrive as one frame: keep it without copying; concatenate only when needed.
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut total: usize = 0;
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Truncated)?;
        let frame = match frame.into_data() {
            Ok(data) => {
                total = total.saturating_add(data.len());
                if total > limit {
                    let size = hint.exact().unwrap_or(total as u64).max(total as u64);
                    return Err(BodyError::TooLarge { size });
                }
                match (&mut joined, first.take()) {
                    (Some(buf), _) => buf.extend_from_slice(&data),
                    (None, None) => first = Some(data),
                    (None, Some(prev)) => {
                        let capacity = (hint.lower() as usize).max(total).min(limit);
                        let mut buf = BytesMut::with_capacity(capacity);
                        buf.extend_from_slice(&prev);
                        buf.extend_from_slice(&data);
                        joined = Some(buf);
                    }
                }
                continue;
            }
            Err(frame) => frame,
        };
        if let Ok(map) = frame.into_trailers() {
            match &mut trailers {
                None => trailers = Some(map),
                Some(existing) => existing.extend(map),
            }
        }
    }
    let data = match joined {
        Some(buf) => buf.freeze(),
        None => first.unwrap_or_default(),
    };
    Ok(Collected { data, trailers })
}

/// Pass `body` on to `sink` chunk by chunk as it arrives, refusing more than `limit` bytes in
/// all; returns its trailers. Once the caller has gone away the rest is read and dropped, so
/// the runtime can finish its response and the environment stays usable.
pub(crate) async fn forward(
    mut body: Incoming,
    limit: usize,
    sink: &ResponseSink,
) -> Result<Option<HeaderMap>, BodyError> {
    let hint = body.size_hint();
    if hint.lower() > limit as u64 {
        return Err(BodyError::TooLarge { size: hint.lower() });
    }
    let mut total: usize = 0;
    let mut listening = true;
    let mut trailers: Option<HeaderMap> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Truncated)?;
        let frame = match frame.into_data() {
            Ok(data) => {
                total = total.saturating_add(data.len());
                if total > limit {
                    return Err(BodyError::TooLarge { size: total as u64 });
                }
                if listening && !data.is_empty() {
                    listening = sink.chunk(data).await;
                }
                continue;
            }
            Err(frame) => frame,
        };
        if let Ok(map) = frame.into_trailers() {
            match &mut trailers {
                None => trailers = Some(map),
                Some(existing) => existing.extend(map),
            }
        }
    }
    Ok(trailers)
}
