//! The AWS event-stream encoding (`application/vnd.amazon.eventstream`) of
//! `InvokeWithResponseStream`: `PayloadChunk` events carrying the function's bytes, then one
//! `InvokeComplete` event (`lambda-compat.md` §4.4).
//!
//! A message is a 12-byte prelude (total length, headers length, CRC32 of those 8 bytes, all
//! big-endian), the headers, the payload and a CRC32 of everything before it. Each header is a
//! 1-byte name length, the name, a 1-byte value type (7 = string), a 2-byte value length and
//! the value. The header names and values are the ones the SDKs' Lambda model reads.

use bytes::{BufMut, Bytes, BytesMut};
use nimbus_core::stream::StreamError;

/// Content type of an event-stream response.
pub(crate) const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// Value type of a string header.
const STRING: u8 = 7;
/// Prelude (12 bytes) plus message CRC (4 bytes).
const FRAMING: usize = 16;

/// One `PayloadChunk` event carrying `data`.
pub(crate) fn payload_chunk(data: &[u8]) -> Bytes {
    message(
        &[
            (":event-type", "PayloadChunk"),
            (":content-type", "application/octet-stream"),
            (":message-type", "event"),
        ],
        data,
    )
}

/// The `InvokeComplete` event that ends the stream: the error that ended the invocation, if
/// any, and the log tail, if the caller asked for it. AWS documents neither error value; they
/// carry the function's error type and message.
pub(crate) fn invoke_complete(error: Option<&StreamError>, log_result: Option<&str>) -> Bytes {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct InvokeComplete<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        error_code: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_details: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        log_result: Option<&'a str>,
    }
    let event = InvokeComplete {
        error_code: error.map(|e| e.error_type.as_str()),
        error_details: error.map(|e| e.message.as_str()),
        log_result,
    };
    // Serializing strings cannot fail; an empty object is still a valid event.
    let payload = serde_json::to_vec(&event).unwrap_or_else(|_| b"{}".to_vec());
    message(
        &[
            (":event-type", "InvokeComplete"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        &payload,
    )
}

/// One message with string `headers` (fixed names and values, each far below the format's
/// 255- and 32767-byte limits) and `payload`.
fn message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let headers_len: usize = headers
        .iter()
        .map(|(name, value)| 1 + name.len() + 1 + 2 + value.len())
        .sum();
    let total = FRAMING + headers_len + payload.len();
    let mut buf = BytesMut::with_capacity(total);
    // Payloads are bounded far below 4 GiB (6 MiB buffered, one read of a stream).
    buf.put_u32(u32::try_from(total).unwrap_or(u32::MAX));
    buf.put_u32(u32::try_from(headers_len).unwrap_or(u32::MAX));
    let prelude_crc = crc32fast::hash(&buf[..8]);
    buf.put_u32(prelude_crc);
    for (name, value) in headers {
        buf.put_u8(u8::try_from(name.len()).unwrap_or(u8::MAX));
        buf.put_slice(name.as_bytes());
        buf.put_u8(STRING);
        buf.put_u16(u16::try_from(value.len()).unwrap_or(u16::MAX));
        buf.put_slice(value.as_bytes());
    }
    buf.put_slice(payload);
    let message_crc = crc32fast::hash(&buf);
    buf.put_u32(message_crc);
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::read_message_from;

    fn header<'a>(
        message: &'a aws_smithy_types::event_stream::Message,
        name: &str,
    ) -> Option<&'a str> {
        message
            .headers()
            .iter()
            .find(|h| h.name().as_str() == name)
            .and_then(|h| h.value().as_string().ok())
            .map(|s| s.as_str())
    }

    #[test]
    fn payload_chunks_decode_with_the_sdks_reader() {
        let frame = payload_chunk(b"hello\0world");
        let message = read_message_from(frame.clone()).expect("valid frame");
        assert_eq!(&message.payload()[..], b"hello\0world");
        assert_eq!(header(&message, ":event-type"), Some("PayloadChunk"));
        assert_eq!(header(&message, ":message-type"), Some("event"));
        assert_eq!(
            header(&message, ":content-type"),
            Some("application/octet-stream")
        );
        // A corrupted byte fails the checksum.
        let mut bad = frame.to_vec();
        let last = bad.len() - 5;
        bad[last] ^= 1;
        assert!(read_message_from(Bytes::from(bad)).is_err());
    }

    #[test]
    fn invoke_complete_carries_only_what_is_set() {
        let message = read_message_from(invoke_complete(None, None)).expect("valid frame");
        assert_eq!(header(&message, ":event-type"), Some("InvokeComplete"));
        assert_eq!(&message.payload()[..], b"{}");
        let error = StreamError {
            error_type: "Error".to_owned(),
            message: "boom".to_owned(),
        };
        let message =
            read_message_from(invoke_complete(Some(&error), Some("bG9n"))).expect("valid frame");
        assert_eq!(
            &message.payload()[..],
            br#"{"ErrorCode":"Error","ErrorDetails":"boom","LogResult":"bG9n"}"#
        );
    }
}
