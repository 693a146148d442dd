//! The HTTP response of a `RESPONSE_STREAM` function URL whose function streams: the head once
//! the prelude (if the stream is marked for one) is complete, then every chunk as the function
//! writes it, in chunked transfer encoding.
//!
//! A stream that fails before its head is known gets the function URL's error response (502);
//! one that fails later simply ends, as a function URL on AWS does: the status is already sent.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use nimbus_core::stream::{BodyPart, StreamEnd, StreamedResponse};

use super::{
    gateway_error_response, Frontend, GatewayFailure, PreludeProgress, StreamPreludeParser,
    StreamedResponseHead,
};
use crate::stream_body::{Encoder, StreamingBody};

/// Wait for the head of `streamed`, then answer with it and its body as it is written.
/// `label` names the function in log lines.
pub(crate) async fn respond(streamed: StreamedResponse, label: &str) -> Response {
    let StreamedResponse {
        content_type,
        mut body,
        ..
    } = streamed;
    let mut parser = StreamPreludeParser::new(content_type.as_deref());
    let mapped = loop {
        match body.next().await {
            Some(BodyPart::Data(chunk)) => match parser.feed(&chunk) {
                Ok(PreludeProgress::NeedMore) => {}
                Ok(PreludeProgress::Ready(head, rest)) => break Ok((head, rest)),
                Err(err) => {
                    tracing::warn!(function = %label, error = %err, "function streamed an invalid HTTP prelude");
                    break Err(GatewayFailure::InvalidResponse);
                }
            },
            Some(BodyPart::End(StreamEnd { error: Some(error), .. })) => {
                tracing::debug!(function = %label, error_type = %error.error_type, "streamed function failed before its response began");
                break Err(GatewayFailure::FunctionError);
            }
            Some(BodyPart::End(_)) | None => {
                break parser.finish().map_err(|err| {
                    tracing::warn!(function = %label, error = %err, "function streamed an invalid HTTP prelude");
                    GatewayFailure::InvalidResponse
                })
            }
        }
    };
    match mapped {
        Ok((head, first)) => {
            let body = StreamingBody::new(
                Some(first),
                body,
                Passthrough {
                    label: label.to_owned(),
                },
            );
            with_head(head, Body::new(body))
        }
        Err(failure) => gateway_error_response(Frontend::FunctionUrl, failure)
            .into_http_response()
            .map(Body::from),
    }
}

fn with_head(head: StreamedResponseHead, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = head.status;
    let headers = response.headers_mut();
    for (name, value) in head.headers {
        headers.append(name, value);
    }
    response
}

/// The function's bytes go out as they are; a failure after the head only ends the body.
struct Passthrough {
    label: String,
}

impl Encoder for Passthrough {
    fn data(&mut self, chunk: Bytes) -> Bytes {
        chunk
    }

    fn end(&mut self, end: StreamEnd) -> Option<Bytes> {
        if let Some(error) = end.error {
            tracing::debug!(function = %self.label, error_type = %error.error_type, "streamed response ended by a function error");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;
    use nimbus_core::stream::{response_channel, InvocationResponse, StreamError};

    async fn streamed(
        content_type: Option<&str>,
        chunks: &[&'static [u8]],
        error: Option<StreamError>,
    ) -> Response {
        let (sink, receiver) = response_channel();
        let content_type = content_type.map(str::to_owned);
        let chunks: Vec<&'static [u8]> = chunks.to_vec();
        tokio::spawn(async move {
            sink.start(content_type).await;
            for chunk in chunks {
                sink.chunk(Bytes::from_static(chunk)).await;
            }
            sink.end(StreamEnd {
                error,
                log_result: None,
            })
            .await;
        });
        let Some(InvocationResponse::Streamed(s)) = receiver.begin("$LATEST".to_owned()).await
        else {
            panic!("expected a stream");
        };
        respond(s, "f").await
    }

    async fn text(response: Response) -> String {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn the_prelude_gives_the_head_even_when_split() {
        let response = streamed(
            Some("application/vnd.awslambda.http-integration-response"),
            &[
                b"{\"statusCode\":201,\"headers\":{\"x-a\":\"1\"},",
                b"\"cookies\":[\"c=1\"]}\0\0\0",
                b"\0\0\0\0\0hel",
                b"lo",
            ],
            None,
        )
        .await;
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["x-a"], "1");
        assert_eq!(response.headers()["set-cookie"], "c=1");
        assert_eq!(text(response).await, "hello");
    }

    #[tokio::test]
    async fn plain_streams_are_200_with_their_content_type() {
        let response = streamed(Some("text/plain"), &[b"a", b"b"], None).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/plain");
        assert_eq!(text(response).await, "ab");
    }

    #[tokio::test]
    async fn failures_before_the_head_are_502_and_after_it_end_the_body() {
        let error = || {
            Some(StreamError {
                error_type: "Error".to_owned(),
                message: "boom".to_owned(),
            })
        };
        let early = streamed(Some("text/plain"), &[], error()).await;
        assert_eq!(early.status(), 502);
        let late = streamed(Some("text/plain"), &[b"partial"], error()).await;
        assert_eq!(late.status(), 200);
        assert_eq!(text(late).await, "partial");
        let bad = streamed(
            Some("application/vnd.awslambda.http-integration-response"),
            &[b"not json\0\0\0\0\0\0\0\0"],
            None,
        )
        .await;
        assert_eq!(bad.status(), 502);
    }
}
