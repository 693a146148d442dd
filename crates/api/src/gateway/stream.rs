//! Streamed function URL responses (`InvokeMode: RESPONSE_STREAM`): finding the HTTP head.
//!
//! A streaming function that wants to set status, headers or cookies marks its stream with
//! `Content-Type: application/vnd.awslambda.http-integration-response` and writes, before any
//! body bytes, a JSON prelude `{"statusCode":…,"headers":{…},"cookies":[…]}` followed by eight
//! NUL bytes (Node's `awslambda.HttpResponseStream.from` and Rust's `lambda_runtime` both do
//! this; `lambda-compat.md` §1.4). Everything after the delimiter is the body, sent as is.
//! A stream with any other content type is all body: status 200, that content type.
//!
//! JSON text never contains a raw NUL (it is escaped inside strings), so the first NUL byte
//! starts the delimiter. Chunks arrive as the runtime wrote them, so the prelude and even the
//! delimiter can be split anywhere; [`StreamPreludeParser`] buffers until the head is complete.

use bytes::{Bytes, BytesMut};
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::Value;

use super::media_type;
use super::response::{parse_headers_and_cookies, parse_status, ResponseMappingError};

/// The content type that marks a stream as prelude + delimiter + body.
pub const HTTP_INTEGRATION_RESPONSE_CONTENT_TYPE: &str =
    "application/vnd.awslambda.http-integration-response";

/// Eight NUL bytes end the prelude.
const DELIMITER_LEN: usize = 8;

/// The most prelude bytes Nimbus buffers. AWS documents no limit; a head this large is a bug
/// in the function, and buffering without bound would let one response exhaust memory.
pub(crate) const MAX_PRELUDE_LEN: usize = 1024 * 1024;

/// Status and headers of a streamed response (cookies already turned into `set-cookie`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamedResponseHead {
    /// Status code (200 when the prelude names none).
    pub status: StatusCode,
    /// Headers in order.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// What feeding a chunk achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreludeProgress {
    /// The head is not complete yet; feed the next chunk.
    NeedMore,
    /// The head is complete. The bytes are the start of the body (possibly empty); every later
    /// chunk of the stream is body too and goes straight to the client, not to the parser.
    Ready(StreamedResponseHead, Bytes),
}

/// Incremental parser for the head of a streamed response.
#[derive(Debug)]
pub struct StreamPreludeParser {
    state: State,
}

#[derive(Debug)]
enum State {
    /// Stream has no prelude; the head is fixed up front.
    Passthrough(StreamedResponseHead),
    /// Collecting prelude bytes; `scanned` bytes are known to hold no NUL.
    Prelude { buffer: BytesMut, scanned: usize },
    /// The head was handed out.
    Done,
}

impl StreamPreludeParser {
    /// A parser for a stream whose `Content-Type` (as the runtime set it) is `content_type`.
    pub fn new(content_type: Option<&str>) -> Self {
        let marked =
            content_type.is_some_and(|ct| media_type(ct) == HTTP_INTEGRATION_RESPONSE_CONTENT_TYPE);
        let state = if marked {
            State::Prelude {
                buffer: BytesMut::new(),
                scanned: 0,
            }
        } else {
            let headers = content_type
                .and_then(|ct| HeaderValue::from_str(ct).ok())
                .map(|value| vec![(CONTENT_TYPE, value)])
                .unwrap_or_default();
            State::Passthrough(StreamedResponseHead {
                status: StatusCode::OK,
                headers,
            })
        };
        Self { state }
    }

    /// Whether the stream carries a prelude at all.
    pub fn expects_prelude(&self) -> bool {
        matches!(self.state, State::Prelude { .. })
    }

    /// Feed the next chunk of the stream.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<PreludeProgress, ResponseMappingError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Done => Err(ResponseMappingError::PreludeAlreadyParsed),
            State::Passthrough(head) => {
                Ok(PreludeProgress::Ready(head, Bytes::copy_from_slice(chunk)))
            }
            State::Prelude {
                mut buffer,
                scanned,
            } => {
                buffer.extend_from_slice(chunk);
                let Some(offset) = buffer[scanned..].iter().position(|b| *b == 0) else {
                    if buffer.len() > MAX_PRELUDE_LEN {
                        return Err(ResponseMappingError::PreludeTooLarge(MAX_PRELUDE_LEN));
                    }
                    let scanned = buffer.len();
                    self.state = State::Prelude { buffer, scanned };
                    return Ok(PreludeProgress::NeedMore);
                };
                let json_len = scanned + offset;
                if json_len > MAX_PRELUDE_LEN {
                    return Err(ResponseMappingError::PreludeTooLarge(MAX_PRELUDE_LEN));
                }
                let available = (buffer.len() - json_len).min(DELIMITER_LEN);
                if buffer[json_len..json_len + available]
                    .iter()
                    .any(|b| *b != 0)
                {
                    return Err(ResponseMappingError::InvalidPrelude(
                        "the prelude must be followed by 8 NUL bytes".to_owned(),
                    ));
                }
                if available < DELIMITER_LEN {
                    // Part of the delimiter is here; NULs are never scanned as JSON again.
                    self.state = State::Prelude {
                        buffer,
                        scanned: json_len,
                    };
                    return Ok(PreludeProgress::NeedMore);
                }
                let head = parse_prelude(&buffer[..json_len])?;
                let body = buffer.split_off(json_len + DELIMITER_LEN).freeze();
                Ok(PreludeProgress::Ready(head, body))
            }
        }
    }

    /// The stream ended. If the head was never produced, this yields it with whatever body
    /// arrived: a passthrough stream that wrote nothing is an empty 200, and so is a marked
    /// stream that wrote nothing at all (the Node runtime writes the prelude only with the first
    /// body write; Nimbus's choice, AWS documents no such case). A marked stream that ends
    /// inside its prelude is malformed.
    pub fn finish(self) -> Result<(StreamedResponseHead, Bytes), ResponseMappingError> {
        match self.state {
            State::Done => Err(ResponseMappingError::PreludeAlreadyParsed),
            State::Passthrough(head) => Ok((head, Bytes::new())),
            State::Prelude { buffer, .. } if buffer.is_empty() => Ok((
                StreamedResponseHead {
                    status: StatusCode::OK,
                    headers: Vec::new(),
                },
                Bytes::new(),
            )),
            State::Prelude { .. } => Err(ResponseMappingError::TruncatedPrelude),
        }
    }
}

/// The head a prelude describes; `statusCode` defaults to 200.
fn parse_prelude(json: &[u8]) -> Result<StreamedResponseHead, ResponseMappingError> {
    let value: Value = serde_json::from_slice(json)
        .map_err(|err| ResponseMappingError::InvalidPrelude(err.to_string()))?;
    let Value::Object(object) = value else {
        return Err(ResponseMappingError::InvalidPrelude(
            "the prelude must be a JSON object".to_owned(),
        ));
    };
    let status = match object.get("statusCode") {
        None | Some(Value::Null) => StatusCode::OK,
        some => parse_status(some)?,
    };
    Ok(StreamedResponseHead {
        status,
        headers: parse_headers_and_cookies(&object)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRELUDE: &[u8] =
        br#"{"statusCode":201,"headers":{"Content-Type":"text/plain","X-A":"1"},"cookies":["s=1"]}"#;

    fn stream_bytes(body: &[u8]) -> Vec<u8> {
        let mut all = PRELUDE.to_vec();
        all.extend_from_slice(&[0; 8]);
        all.extend_from_slice(body);
        all
    }

    fn marked() -> StreamPreludeParser {
        StreamPreludeParser::new(Some(HTTP_INTEGRATION_RESPONSE_CONTENT_TYPE))
    }

    fn expected_head() -> StreamedResponseHead {
        StreamedResponseHead {
            status: StatusCode::CREATED,
            headers: vec![
                (CONTENT_TYPE, HeaderValue::from_static("text/plain")),
                (
                    HeaderName::from_static("x-a"),
                    HeaderValue::from_static("1"),
                ),
                (http::header::SET_COOKIE, HeaderValue::from_static("s=1")),
            ],
        }
    }

    /// Feed `chunks` until the head is ready; returns it and the body collected afterwards.
    fn run(chunks: &[&[u8]]) -> (StreamedResponseHead, Vec<u8>) {
        let mut parser = marked();
        let mut head = None;
        let mut body = Vec::new();
        for chunk in chunks {
            if head.is_some() {
                body.extend_from_slice(chunk);
                continue;
            }
            match parser.feed(chunk).expect("valid stream") {
                PreludeProgress::NeedMore => {}
                PreludeProgress::Ready(h, rest) => {
                    head = Some(h);
                    body.extend_from_slice(&rest);
                }
            }
        }
        (head.expect("head ready"), body)
    }

    #[test]
    fn whole_stream_in_one_chunk() {
        let all = stream_bytes(b"hello");
        let (head, body) = run(&[&all]);
        assert_eq!(head, expected_head());
        assert_eq!(body, b"hello");
    }

    #[test]
    fn every_split_point_gives_the_same_result() {
        let body: &[u8] = b"body\0with\0nuls\0\0\0\0\0\0\0\0end";
        let all = stream_bytes(body);
        for split in 0..=all.len() {
            let (a, b) = all.split_at(split);
            let (head, got) = run(&[a, b]);
            assert_eq!(head, expected_head(), "split at {split}");
            assert_eq!(got, body, "split at {split}");
        }
    }

    #[test]
    fn byte_by_byte_including_the_delimiter() {
        let all = stream_bytes(b"xyz");
        let chunks: Vec<&[u8]> = all.chunks(1).collect();
        let (head, body) = run(&chunks);
        assert_eq!(head, expected_head());
        assert_eq!(body, b"xyz");
    }

    #[test]
    fn delimiter_split_across_three_chunks() {
        let mut first = PRELUDE.to_vec();
        first.extend_from_slice(&[0; 3]);
        let (head, body) = run(&[&first, &[0; 4], &[0, b'o', b'k']]);
        assert_eq!(head, expected_head());
        assert_eq!(body, b"ok");
    }

    #[test]
    fn empty_body_after_prelude() {
        let mut parser = marked();
        let all = stream_bytes(b"");
        match parser.feed(&all).expect("valid") {
            PreludeProgress::Ready(head, body) => {
                assert_eq!(head.status, StatusCode::CREATED);
                assert!(body.is_empty());
            }
            PreludeProgress::NeedMore => panic!("head should be ready"),
        }
        assert_eq!(
            parser.feed(b"more"),
            Err(ResponseMappingError::PreludeAlreadyParsed)
        );
    }

    #[test]
    fn prelude_without_status_defaults_to_200() {
        let mut parser = marked();
        let mut all = br#"{"headers":{"x":"y"}}"#.to_vec();
        all.extend_from_slice(&[0; 8]);
        let PreludeProgress::Ready(head, _) = parser.feed(&all).expect("valid") else {
            panic!("head should be ready");
        };
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.headers.len(), 1);
    }

    #[test]
    fn unmarked_stream_is_all_body() {
        let mut parser = StreamPreludeParser::new(Some("text/plain"));
        assert!(!parser.expects_prelude());
        let PreludeProgress::Ready(head, body) = parser.feed(b"{\"statusCode\":500}").expect("ok")
        else {
            panic!("passthrough is ready at once");
        };
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(
            head.headers,
            vec![(CONTENT_TYPE, HeaderValue::from_static("text/plain"))]
        );
        assert_eq!(body, &b"{\"statusCode\":500}"[..]);

        let (head, body) = StreamPreludeParser::new(None)
            .finish()
            .expect("empty stream");
        assert_eq!(head.status, StatusCode::OK);
        assert!(head.headers.is_empty());
        assert!(body.is_empty());
    }

    #[test]
    fn marker_is_matched_by_media_type() {
        assert!(StreamPreludeParser::new(Some(
            "Application/Vnd.AwsLambda.Http-Integration-Response; charset=utf-8"
        ))
        .expects_prelude());
        assert!(!StreamPreludeParser::new(Some("application/octet-stream")).expects_prelude());
    }

    #[test]
    fn malformed_streams_are_errors() {
        // Fewer than 8 NULs before other bytes.
        let mut bad = PRELUDE.to_vec();
        bad.extend_from_slice(&[0, 0, b'x']);
        assert!(matches!(
            marked().feed(&bad),
            Err(ResponseMappingError::InvalidPrelude(_))
        ));
        // Prelude that is not JSON, or not an object.
        for prelude in [&b"not json"[..], b"[1]", b""] {
            let mut all = prelude.to_vec();
            all.extend_from_slice(&[0; 8]);
            assert!(
                matches!(
                    marked().feed(&all),
                    Err(ResponseMappingError::InvalidPrelude(_))
                ),
                "{prelude:?}"
            );
        }
        // Bad status and headers use the same rules as buffered responses.
        let mut all = br#"{"statusCode":1000}"#.to_vec();
        all.extend_from_slice(&[0; 8]);
        assert!(matches!(
            marked().feed(&all),
            Err(ResponseMappingError::InvalidStatusCode(_))
        ));
        // Ends inside the prelude.
        let mut parser = marked();
        assert_eq!(
            parser.feed(b"{\"statusCode\":2"),
            Ok(PreludeProgress::NeedMore)
        );
        assert_eq!(parser.finish(), Err(ResponseMappingError::TruncatedPrelude));
        // Ends inside the delimiter.
        let mut parser = marked();
        let mut partial = PRELUDE.to_vec();
        partial.extend_from_slice(&[0; 5]);
        assert_eq!(parser.feed(&partial), Ok(PreludeProgress::NeedMore));
        assert_eq!(parser.finish(), Err(ResponseMappingError::TruncatedPrelude));
        // A marked stream that wrote nothing.
        let (head, body) = marked().finish().expect("empty marked stream");
        assert_eq!(head.status, StatusCode::OK);
        assert!(body.is_empty());
    }

    #[test]
    fn oversized_prelude_is_refused() {
        let mut parser = marked();
        let chunk = vec![b' '; 64 * 1024];
        let mut result = Ok(PreludeProgress::NeedMore);
        for _ in 0..=(MAX_PRELUDE_LEN / chunk.len()) {
            result = parser.feed(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(
            result,
            Err(ResponseMappingError::PreludeTooLarge(MAX_PRELUDE_LEN))
        );
    }
}
