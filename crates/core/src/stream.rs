//! Streamed responses: the bytes a streaming function writes, on their way from its
//! environment's Runtime API to the caller while the function is still running.
//!
//! The caller's side hands a [`ResponseSink`] down with the invocation and keeps the matching
//! [`ResponseReceiver`] ([`response_channel`]). What travels through it, in order:
//!
//! - the start of the stream with its content type ([`ResponseSink::start`]), then its chunks
//!   ([`ResponseSink::chunk`]), both written by the Runtime API as the runtime posts them, then
//!   [`ResponseSink::end`] once the invocation is over (written by the scheduler: only then are
//!   the duration, the log and any error known);
//! - or, when the runtime answered without streaming, one [`ResponseSink::whole`] result.
//!
//! The channel is bounded, so a slow client slows the runtime down (its writes block) instead
//! of making the platform hold the stream in memory. A caller that went away is not an error:
//! the writes fail quietly and the invocation runs to its end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::invoke::InvocationResult;

/// Pieces of a stream in flight at once: enough to keep a fast client busy, small enough that
/// a slow one holds back the runtime after a few chunks.
const CHANNEL_CAPACITY: usize = 16;

/// One piece of a response on its way up.
#[derive(Debug)]
enum Frame {
    Start { content_type: Option<String> },
    Chunk(Bytes),
    End(StreamEnd),
    Whole(Box<InvocationResult>),
}

/// How a streamed response ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamEnd {
    /// Set when the function failed after the stream started (error trailers, timeout, crash,
    /// oversized stream).
    pub error: Option<StreamError>,
    /// Base64 of the last 4 KB of the invocation's log, when the caller asked for it.
    pub log_result: Option<String>,
}

/// The error that ended a stream (or a buffered answer sent to a streaming caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    /// e.g. `Error`, `Sandbox.Timedout`, `Function.ResponseSizeTooLarge`.
    pub error_type: String,
    /// The error's message.
    pub message: String,
}

impl StreamError {
    /// The type and message of a Lambda error body (`{"errorType","errorMessage",…}`); what
    /// the body does not say is filled in from `fallback_type` and the body's text.
    pub fn from_error_body(body: &[u8], fallback_type: &str) -> Self {
        #[derive(serde::Deserialize)]
        struct ErrorBody {
            #[serde(rename = "errorType")]
            error_type: Option<String>,
            #[serde(rename = "errorMessage")]
            error_message: Option<String>,
        }
        let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
        let (error_type, message) = parsed
            .map(|e| (e.error_type, e.error_message))
            .unwrap_or_default();
        Self {
            error_type: error_type
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| fallback_type.to_owned()),
            message: message.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
        }
    }
}

/// The writing end of a response channel. Clones write to the same stream.
#[derive(Debug, Clone)]
pub struct ResponseSink {
    tx: mpsc::Sender<Frame>,
    started: Arc<AtomicBool>,
}

/// The reading end of a response channel, before the response has begun.
#[derive(Debug)]
pub struct ResponseReceiver {
    rx: mpsc::Receiver<Frame>,
}

/// A new response channel.
pub fn response_channel() -> (ResponseSink, ResponseReceiver) {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let sink = ResponseSink {
        tx,
        started: Arc::new(AtomicBool::new(false)),
    };
    (sink, ResponseReceiver { rx })
}

impl ResponseSink {
    /// The runtime began a streamed response with this content type.
    pub async fn start(&self, content_type: Option<String>) {
        self.started.store(true, Ordering::Release);
        // A caller that went away does not stop the invocation.
        let _ = self.tx.send(Frame::Start { content_type }).await;
    }

    /// The next chunk of the stream; waits while the caller is behind. Returns `false` once
    /// the caller has gone away, after which chunks need not be sent.
    pub async fn chunk(&self, data: Bytes) -> bool {
        self.tx.send(Frame::Chunk(data)).await.is_ok()
    }

    /// Whether [`start`](Self::start) was called: the caller then expects [`end`](Self::end),
    /// otherwise [`whole`](Self::whole).
    pub fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// The invocation whose stream started is over.
    pub async fn end(&self, end: StreamEnd) {
        let _ = self.tx.send(Frame::End(end)).await;
    }

    /// The invocation ended without streaming: this is its whole result.
    pub async fn whole(&self, result: InvocationResult) {
        let _ = self.tx.send(Frame::Whole(Box::new(result))).await;
    }
}

impl ResponseReceiver {
    /// Wait until the response begins: a stream (whose body follows) or a whole result.
    /// `None` when every sink was dropped without writing anything.
    pub async fn begin(mut self, executed_version: String) -> Option<InvocationResponse> {
        let pending = match self.rx.recv().await? {
            Frame::Whole(result) => return Some(InvocationResponse::Buffered(*result)),
            Frame::Start { content_type } => {
                return Some(InvocationResponse::Streamed(StreamedResponse {
                    executed_version,
                    content_type,
                    body: ResponseBody {
                        rx: self.rx,
                        pending: None,
                        done: false,
                    },
                }))
            }
            // Writers always start first; keep any other first piece rather than lose it.
            other => Some(other),
        };
        Some(InvocationResponse::Streamed(StreamedResponse {
            executed_version,
            content_type: None,
            body: ResponseBody {
                rx: self.rx,
                pending,
                done: false,
            },
        }))
    }
}

/// What a synchronous invocation that may stream gave back.
#[derive(Debug)]
pub enum InvocationResponse {
    /// The whole result, as [`Invoke::invoke`](crate::invoke::Invoke::invoke) returns it.
    Buffered(InvocationResult),
    /// A stream the function is still writing.
    Streamed(StreamedResponse),
}

/// A response the function is still writing.
#[derive(Debug)]
pub struct StreamedResponse {
    /// The version that runs, e.g. `$LATEST`.
    pub executed_version: String,
    /// Content type the runtime gave its stream, if any.
    pub content_type: Option<String>,
    /// The bytes, as they are written, then how the stream ended.
    pub body: ResponseBody,
}

/// One step of a streamed body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyPart {
    /// The next bytes the function wrote.
    Data(Bytes),
    /// The stream is over; nothing follows.
    End(StreamEnd),
}

/// The body of a streamed response.
#[derive(Debug)]
pub struct ResponseBody {
    rx: mpsc::Receiver<Frame>,
    pending: Option<Frame>,
    done: bool,
}

impl ResponseBody {
    /// The next part, once it arrives; `None` after the end.
    pub async fn next(&mut self) -> Option<BodyPart> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Poll for the next part (for HTTP body adapters).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<BodyPart>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            let frame = match self.pending.take() {
                Some(frame) => Some(frame),
                None => match self.rx.poll_recv(cx) {
                    Poll::Ready(frame) => frame,
                    Poll::Pending => return Poll::Pending,
                },
            };
            let part = match frame {
                Some(Frame::Chunk(data)) => BodyPart::Data(data),
                Some(Frame::End(end)) => BodyPart::End(end),
                // The invocation ended without streaming after all; an empty piece is skipped.
                Some(Frame::Whole(result)) if result.payload.is_empty() => continue,
                Some(Frame::Whole(result)) => {
                    self.pending = Some(Frame::End(StreamEnd {
                        error: None,
                        log_result: result.log_result,
                    }));
                    BodyPart::Data(result.payload)
                }
                Some(Frame::Start { .. }) => continue,
                // Every writer is gone without saying how the stream ended: it was cut off.
                None => BodyPart::End(StreamEnd {
                    error: Some(StreamError {
                        error_type: "Runtime.TruncatedResponse".to_owned(),
                        message: "The response stream ended before it was complete".to_owned(),
                    }),
                    log_result: None,
                }),
            };
            if matches!(part, BodyPart::End(_)) {
                self.done = true;
            }
            return Poll::Ready(Some(part));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(payload: &'static [u8]) -> InvocationResult {
        InvocationResult {
            payload: Bytes::from_static(payload),
            function_error: None,
            executed_version: "$LATEST".to_owned(),
            log_result: None,
            content_type: None,
        }
    }

    #[tokio::test]
    async fn a_stream_delivers_its_chunks_then_its_end() {
        let (sink, receiver) = response_channel();
        let writer = tokio::spawn(async move {
            sink.start(Some("text/plain".to_owned())).await;
            assert!(sink.started());
            assert!(sink.chunk(Bytes::from_static(b"a")).await);
            assert!(sink.chunk(Bytes::from_static(b"b")).await);
            sink.end(StreamEnd::default()).await;
        });
        let Some(InvocationResponse::Streamed(mut streamed)) =
            receiver.begin("$LATEST".to_owned()).await
        else {
            panic!("expected a stream");
        };
        assert_eq!(streamed.content_type.as_deref(), Some("text/plain"));
        let mut parts = Vec::new();
        while let Some(part) = streamed.body.next().await {
            parts.push(part);
        }
        assert_eq!(
            parts,
            vec![
                BodyPart::Data(Bytes::from_static(b"a")),
                BodyPart::Data(Bytes::from_static(b"b")),
                BodyPart::End(StreamEnd::default()),
            ]
        );
        writer.await.expect("writer");
    }

    #[tokio::test]
    async fn a_whole_result_is_buffered() {
        let (sink, receiver) = response_channel();
        sink.whole(result(b"{}")).await;
        assert!(!sink.started());
        let Some(InvocationResponse::Buffered(r)) = receiver.begin("1".to_owned()).await else {
            panic!("expected a buffered result");
        };
        assert_eq!(r.payload, &b"{}"[..]);
    }

    #[tokio::test]
    async fn writers_gone_mid_stream_end_it_with_an_error() {
        let (sink, receiver) = response_channel();
        sink.start(None).await;
        sink.chunk(Bytes::from_static(b"x")).await;
        drop(sink);
        let Some(InvocationResponse::Streamed(mut streamed)) =
            receiver.begin("$LATEST".to_owned()).await
        else {
            panic!("expected a stream");
        };
        assert_eq!(
            streamed.body.next().await,
            Some(BodyPart::Data(Bytes::from_static(b"x")))
        );
        let Some(BodyPart::End(end)) = streamed.body.next().await else {
            panic!("expected the end");
        };
        assert!(end.error.is_some());
        assert_eq!(streamed.body.next().await, None);

        let (sink, receiver) = response_channel();
        drop(sink);
        assert!(receiver.begin("$LATEST".to_owned()).await.is_none());
    }

    #[tokio::test]
    async fn a_gone_caller_makes_chunks_fail_quietly() {
        let (sink, receiver) = response_channel();
        drop(receiver);
        sink.start(None).await;
        assert!(!sink.chunk(Bytes::from_static(b"x")).await);
        sink.end(StreamEnd::default()).await;
    }

    #[test]
    fn error_bodies_give_type_and_message() {
        assert_eq!(
            StreamError::from_error_body(
                br#"{"errorType":"TypeError","errorMessage":"nope","trace":[]}"#,
                "Function.Unknown"
            ),
            StreamError {
                error_type: "TypeError".to_owned(),
                message: "nope".to_owned()
            }
        );
        assert_eq!(
            StreamError::from_error_body(b"not json", "Function.Unknown"),
            StreamError {
                error_type: "Function.Unknown".to_owned(),
                message: "not json".to_owned()
            }
        );
    }
}
