//! HTTP ⇄ Lambda, the way function URLs and API Gateway HTTP APIs do it (payload format 2.0).
//!
//! Everything here but the front door ([`server`]) and the streamed-response sender it uses
//! (`url_stream`) is pure: it turns an HTTP request into the JSON event a function receives
//! ([`event`]), a function's result back into an HTTP response ([`response`], and [`stream`] for
//! `RESPONSE_STREAM` function URLs), and picks the HTTP-API route a request belongs to
//! ([`route`]). No sockets, no clocks, no invocations: the front ends that own those call in, so
//! every AWS quirk can be pinned down by a unit test. `lambda-compat.md` §10.1 is the
//! reference; where AWS documents nothing, the decision is written next to the code.

pub mod event;
pub mod response;
pub mod route;
pub mod server;
pub mod stream;
mod url_stream;

pub use event::{
    HttpEventV2, HttpRequestParts, RequestContextHttp, RequestContextInfo, RequestContextV2,
};
pub use response::{
    gateway_error_response, http_response_from_result, Frontend, GatewayFailure, HttpResponseParts,
    ResponseMappingError,
};
pub use route::{RouteError, RouteKey, RouteMatch, RouteMethod, RoutePath, RouteTable};
pub use stream::{
    PreludeProgress, StreamPreludeParser, StreamedResponseHead,
    HTTP_INTEGRATION_RESPONSE_CONTENT_TYPE,
};

/// Percent-decode `input`; with `plus_as_space`, `+` also means a space (form encoding, as in
/// query strings). A `%` not followed by two hex digits stays as written and bytes that do not
/// form UTF-8 are replaced (Nimbus's choice, AWS documents neither): a request is never refused
/// for its spelling, and the event is JSON text that must stay valid.
pub(crate) fn percent_decode(input: &str, plus_as_space: bool) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|b| hex_value(*b));
                let lo = bytes.get(i + 2).and_then(|b| hex_value(*b));
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus_as_space => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(text) => text,
        Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The media type of a `Content-Type` value: parameters dropped, lower-cased, because both the
/// text/binary rule and the streaming marker compare media types only.
pub(crate) fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_handles_utf8_plus_and_stray_percent_signs() {
        assert_eq!(percent_decode("caf%C3%A9", false), "café");
        assert_eq!(percent_decode("a+b%20c", true), "a b c");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
        assert_eq!(percent_decode("%2F", false), "/");
        assert_eq!(percent_decode("%FF", false), "\u{FFFD}");
    }

    #[test]
    fn media_type_drops_parameters_and_case() {
        assert_eq!(media_type("Text/HTML; charset=UTF-8"), "text/html");
        assert_eq!(media_type(""), "");
    }
}
