//! A function's result → the HTTP response a function URL or HTTP API sends.
//!
//! Rules (AWS docs: "Invoking Lambda function URLs" → response payload format, and the HTTP API
//! payload 2.0 response format):
//! - A JSON **object with a `statusCode` key** is a full response: `statusCode`, `headers`
//!   (single values; `multiValueHeaders` is not part of 2.0 and is ignored), `cookies` (each
//!   becomes one `set-cookie` header), `body` (string) and `isBase64Encoded` (decode `body`).
//! - **Any other valid JSON** (string, number, `null`, array, object without `statusCode`) is
//!   the body itself: status 200, `content-type: application/json`, body = the result's bytes
//!   exactly as the function returned them (a string keeps its quotes).
//! - Anything else is a malformed response ([`ResponseMappingError`]), which the caller answers
//!   with [`gateway_error_response`]`(_, GatewayFailure::InvalidResponse)`.
//!
//! Decisions where AWS documents nothing: an empty result (a runtime that posted no bytes) is
//! treated as an empty 200 JSON response; `statusCode` may be a number or a numeric string
//! (a string `"302"` was observed to work on AWS) but must lie in 100–599; header values may be
//! strings, numbers or booleans (`null` drops the header); a non-string `body` is sent as its JSON
//! text; base64 bodies may omit padding and contain line breaks.

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, SET_COOKIE};
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::{Map, Value};

/// An HTTP response ready to send: the result of mapping a function's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponseParts {
    /// Status code.
    pub status: StatusCode,
    /// Headers in order, `set-cookie` once per cookie.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Body bytes (already base64-decoded).
    pub body: Bytes,
}

impl HttpResponseParts {
    /// The first value of header `name`, for callers and tests that look one up.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// As an `http::Response`, headers in order (repeats kept).
    pub fn into_http_response(self) -> http::Response<Bytes> {
        let mut response = http::Response::new(self.body);
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }
}

/// Why a function's output could not become an HTTP response; the client gets a gateway error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseMappingError {
    /// The output is not JSON.
    #[error("the function returned a response that is not valid JSON: {0}")]
    InvalidJson(String),
    /// `statusCode` is missing its value, not an integer, or outside 100–599.
    #[error("statusCode {0} is not a valid HTTP status code")]
    InvalidStatusCode(String),
    /// `headers` is not an object.
    #[error("headers must be an object of string values")]
    HeadersNotObject,
    /// A header name or value cannot be sent over HTTP.
    #[error("header {name:?} is invalid: {reason}")]
    InvalidHeader {
        /// Header name as the function spelled it.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `cookies` is not an array of strings.
    #[error("cookies must be an array of strings")]
    CookiesNotArray,
    /// A cookie cannot be sent as a `Set-Cookie` value.
    #[error("cookie {0:?} is not a valid Set-Cookie value")]
    InvalidCookie(String),
    /// `isBase64Encoded` is not a boolean.
    #[error("isBase64Encoded must be a boolean")]
    InvalidBase64Flag,
    /// `isBase64Encoded` is true but `body` is not base64.
    #[error("body is not valid base64: {0}")]
    InvalidBase64(String),
    /// A streamed response's prelude is not a JSON object.
    #[error("the streamed response prelude is invalid: {0}")]
    InvalidPrelude(String),
    /// A streamed response ended before the prelude's delimiter.
    #[error("the streamed response ended inside its prelude")]
    TruncatedPrelude,
    /// A streamed response's prelude is larger than Nimbus buffers.
    #[error("the streamed response prelude is larger than {0} bytes")]
    PreludeTooLarge(usize),
    /// The stream parser was fed after it had already produced the response head.
    #[error("the streamed response prelude was already parsed")]
    PreludeAlreadyParsed,
}

/// Map a function's result (the bytes `Invoke` returned, no function error) to a response.
pub fn http_response_from_result(
    payload: &[u8],
) -> Result<HttpResponseParts, ResponseMappingError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(json_shortcut(Bytes::new()));
    }
    let value: Value = serde_json::from_slice(payload)
        .map_err(|err| ResponseMappingError::InvalidJson(err.to_string()))?;
    match value {
        Value::Object(object) if object.contains_key("statusCode") => full_response(&object),
        _ => Ok(json_shortcut(Bytes::copy_from_slice(payload))),
    }
}

/// A result that is not a response object: 200, JSON, the result as the body.
fn json_shortcut(body: Bytes) -> HttpResponseParts {
    HttpResponseParts {
        status: StatusCode::OK,
        headers: vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    }
}

fn full_response(object: &Map<String, Value>) -> Result<HttpResponseParts, ResponseMappingError> {
    let status = parse_status(object.get("statusCode"))?;
    let headers = parse_headers_and_cookies(object)?;
    let base64 = match object.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => return Err(ResponseMappingError::InvalidBase64Flag),
    };
    let text = match object.get("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    };
    let body = if base64 {
        decode_base64(&text)?
    } else {
        Bytes::from(text)
    };
    Ok(HttpResponseParts {
        status,
        headers,
        body,
    })
}

/// `statusCode` of a response object or stream prelude (absent only in preludes, where the
/// caller supplies the default).
pub(crate) fn parse_status(value: Option<&Value>) -> Result<StatusCode, ResponseMappingError> {
    let invalid = |shown: String| ResponseMappingError::InvalidStatusCode(shown);
    let code = match value {
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| invalid(n.to_string()))?,
        Some(Value::String(s)) => s
            .trim()
            .parse::<u64>()
            .map_err(|_| invalid(format!("{s:?}")))?,
        Some(other) => return Err(invalid(other.to_string())),
        None => return Err(invalid("(missing)".to_owned())),
    };
    u16::try_from(code)
        .ok()
        .filter(|c| (100..=599).contains(c))
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| invalid(code.to_string()))
}

/// `headers` then `cookies` (as `set-cookie`) of a response object or stream prelude.
pub(crate) fn parse_headers_and_cookies(
    object: &Map<String, Value>,
) -> Result<Vec<(HeaderName, HeaderValue)>, ResponseMappingError> {
    let mut out = Vec::new();
    match object.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(headers)) => {
            for (name, value) in headers {
                let text = match value {
                    Value::Null => continue,
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Array(_) | Value::Object(_) => {
                        return Err(ResponseMappingError::InvalidHeader {
                            name: name.clone(),
                            reason: "value must be a string".to_owned(),
                        })
                    }
                };
                let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    ResponseMappingError::InvalidHeader {
                        name: name.clone(),
                        reason: "not a valid header name".to_owned(),
                    }
                })?;
                let header_value = HeaderValue::from_str(&text).map_err(|_| {
                    ResponseMappingError::InvalidHeader {
                        name: name.clone(),
                        reason: "value contains characters not allowed in a header".to_owned(),
                    }
                })?;
                out.push((header_name, header_value));
            }
        }
        Some(_) => return Err(ResponseMappingError::HeadersNotObject),
    }
    match object.get("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(cookies)) => {
            for cookie in cookies {
                let Value::String(cookie) = cookie else {
                    return Err(ResponseMappingError::CookiesNotArray);
                };
                let value = HeaderValue::from_str(cookie)
                    .map_err(|_| ResponseMappingError::InvalidCookie(cookie.clone()))?;
                out.push((SET_COOKIE, value));
            }
        }
        Some(_) => return Err(ResponseMappingError::CookiesNotArray),
    }
    Ok(out)
}

/// Standard-alphabet base64, padding optional, line breaks ignored: runtimes differ (Python's
/// `encodebytes` wraps lines, some encoders drop padding) and AWS decodes them all.
fn decode_base64(text: &str) -> Result<Bytes, ResponseMappingError> {
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    ENGINE
        .decode(compact)
        .map(Bytes::from)
        .map_err(|err| ResponseMappingError::InvalidBase64(err.to_string()))
}

/// Which HTTP front end answers: they word the same failures differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frontend {
    /// A Lambda function URL.
    FunctionUrl,
    /// An API Gateway HTTP API with a payload-2.0 Lambda integration.
    HttpApi,
}

/// A failure the front end reports itself, instead of a response from the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayFailure {
    /// The invocation ended in a function error (unhandled exception, crash, timeout).
    FunctionError,
    /// The function returned output [`http_response_from_result`] rejects.
    InvalidResponse,
    /// No route matched (HTTP APIs only; a function URL has no routes).
    NotFound,
}

/// The response AWS sends for `failure`, so clients see the same status and body as on AWS.
///
/// - Function URL, function error or malformed response: `502` with the bare text
///   `Internal Server Error` labelled `application/json` (obs.: community reports, not AWS docs).
/// - HTTP API, function error or malformed response: `500` `{"message":"Internal Server Error"}`
///   (obs.). REST APIs answer `502` `{"message": "Internal server error"}` instead; that is not
///   this payload format.
/// - No route: `404` `{"message":"Not Found"}` (AWS docs, "Routing API requests").
pub fn gateway_error_response(frontend: Frontend, failure: GatewayFailure) -> HttpResponseParts {
    let (status, body): (StatusCode, &'static [u8]) = match (frontend, failure) {
        (_, GatewayFailure::NotFound) => (StatusCode::NOT_FOUND, br#"{"message":"Not Found"}"#),
        (Frontend::FunctionUrl, _) => (StatusCode::BAD_GATEWAY, b"Internal Server Error"),
        (Frontend::HttpApi, _) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            br#"{"message":"Internal Server Error"}"#,
        ),
    };
    HttpResponseParts {
        status,
        headers: vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body: Bytes::from_static(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(payload: &str) -> HttpResponseParts {
        http_response_from_result(payload.as_bytes()).expect("valid response")
    }

    fn map_err(payload: &str) -> ResponseMappingError {
        http_response_from_result(payload.as_bytes()).expect_err("invalid response")
    }

    fn assert_json_shortcut(payload: &str) {
        let response = map(payload);
        assert_eq!(response.status, StatusCode::OK, "{payload}");
        assert_eq!(response.headers.len(), 1);
        assert_eq!(
            response.header("content-type").map(HeaderValue::as_bytes),
            Some(&b"application/json"[..])
        );
        assert_eq!(response.body, payload.as_bytes(), "{payload}");
    }

    #[test]
    fn string_result_keeps_its_quotes() {
        assert_json_shortcut("\"Hello, world!\"");
        assert_eq!(map("\"Hello, world!\"").body.len(), 15);
    }

    #[test]
    fn numbers_null_arrays_and_objects_without_status_are_bodies() {
        assert_json_shortcut("42");
        assert_json_shortcut("-1.5e3");
        assert_json_shortcut("null");
        assert_json_shortcut("true");
        assert_json_shortcut("[1,{\"statusCode\":500}]");
        assert_json_shortcut("{\n  \"message\": \"Hello, world!\"\n}");
        assert_json_shortcut("{\"body\":\"x\",\"headers\":{\"a\":\"b\"}}");
        assert_json_shortcut("{}");
    }

    #[test]
    fn empty_result_is_an_empty_json_response() {
        let response = map("");
        assert_eq!(response.status, StatusCode::OK);
        assert!(response.body.is_empty());
        assert_eq!(map(" \n").body, Bytes::new());
    }

    #[test]
    fn full_response_with_headers_and_cookies() {
        let response = map(r#"{"statusCode": 201,
                "headers": {"Content-Type": "application/json", "My-Custom-Header": "Custom Value",
                            "X-Num": 5, "X-Bool": true, "X-Null": null},
                "body": "{ \"message\": \"Hello, world!\" }",
                "cookies": ["Cookie_1=Value1; Expires=21 Oct 2021 07:48 GMT",
                            "Cookie_2=Value2; Max-Age=78000"],
                "isBase64Encoded": false}"#);
        assert_eq!(response.status, StatusCode::CREATED);
        assert_eq!(response.body, "{ \"message\": \"Hello, world!\" }");
        let headers: Vec<(&str, &str)> = response
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().expect("ascii")))
            .collect();
        // Headers come out in the order serde_json's map keeps (sorted by name); HTTP gives
        // the order of distinct headers no meaning.
        assert_eq!(
            headers,
            vec![
                ("content-type", "application/json"),
                ("my-custom-header", "Custom Value"),
                ("x-bool", "true"),
                ("x-num", "5"),
                (
                    "set-cookie",
                    "Cookie_1=Value1; Expires=21 Oct 2021 07:48 GMT"
                ),
                ("set-cookie", "Cookie_2=Value2; Max-Age=78000"),
            ]
        );
        let http = response.into_http_response();
        assert_eq!(http.headers().get_all("set-cookie").iter().count(), 2);
        assert_eq!(http.status(), StatusCode::CREATED);
    }

    #[test]
    fn base64_body_is_decoded() {
        let response = map(
            r#"{"statusCode":200,"body":"AJ+SlgD/","isBase64Encoded":true,
                               "headers":{"content-type":"image/png"}}"#,
        );
        assert_eq!(response.body, &[0x00, 0x9f, 0x92, 0x96, 0x00, 0xff][..]);
        assert_eq!(
            map(r#"{"statusCode":200,"body":"aGk","isBase64Encoded":true}"#).body,
            "hi"
        );
        assert_eq!(
            map(r#"{"statusCode":200,"body":"aGVs\nbG8=\n","isBase64Encoded":true}"#).body,
            "hello"
        );
    }

    #[test]
    fn minimal_full_responses() {
        let response = map(r#"{"statusCode":204}"#);
        assert_eq!(response.status, StatusCode::NO_CONTENT);
        assert!(response.headers.is_empty(), "no default content-type");
        assert!(response.body.is_empty());
        assert_eq!(
            map(r#"{"statusCode":"302","headers":{"Location":"/x"}}"#).status,
            302
        );
        assert_eq!(
            map(r#"{"statusCode":200,"body":{"a":1}}"#).body,
            r#"{"a":1}"#
        );
        assert_eq!(
            map(r#"{"statusCode":200,"body":null,"cookies":null,"headers":null}"#).body,
            ""
        );
        // multiValueHeaders belongs to payload 1.0 and is ignored.
        assert!(
            map(r#"{"statusCode":200,"multiValueHeaders":{"a":["1","2"]}}"#)
                .headers
                .is_empty()
        );
    }

    #[test]
    fn invalid_responses_are_errors() {
        for payload in [
            r#"{"statusCode":null}"#,
            r#"{"statusCode":"abc"}"#,
            r#"{"statusCode":99}"#,
            r#"{"statusCode":600}"#,
            r#"{"statusCode":200.5}"#,
            r#"{"statusCode":-1}"#,
            r#"{"statusCode":70000}"#,
            r#"{"statusCode":[200]}"#,
        ] {
            assert!(
                matches!(map_err(payload), ResponseMappingError::InvalidStatusCode(_)),
                "{payload}"
            );
        }
        assert_eq!(
            map_err(r#"{"statusCode":200,"headers":["a"]}"#),
            ResponseMappingError::HeadersNotObject
        );
        assert!(matches!(
            map_err(r#"{"statusCode":200,"headers":{"bad name":"v"}}"#),
            ResponseMappingError::InvalidHeader { .. }
        ));
        assert!(matches!(
            map_err(r#"{"statusCode":200,"headers":{"x":"a\nb"}}"#),
            ResponseMappingError::InvalidHeader { .. }
        ));
        assert!(matches!(
            map_err(r#"{"statusCode":200,"headers":{"x":["a","b"]}}"#),
            ResponseMappingError::InvalidHeader { .. }
        ));
        assert_eq!(
            map_err(r#"{"statusCode":200,"cookies":"a=1"}"#),
            ResponseMappingError::CookiesNotArray
        );
        assert_eq!(
            map_err(r#"{"statusCode":200,"cookies":[1]}"#),
            ResponseMappingError::CookiesNotArray
        );
        assert!(matches!(
            map_err(r#"{"statusCode":200,"cookies":["a=\u0001"]}"#),
            ResponseMappingError::InvalidCookie(_)
        ));
        assert_eq!(
            map_err(r#"{"statusCode":200,"isBase64Encoded":"true"}"#),
            ResponseMappingError::InvalidBase64Flag
        );
        assert!(matches!(
            map_err(r#"{"statusCode":200,"body":"not base64!","isBase64Encoded":true}"#),
            ResponseMappingError::InvalidBase64(_)
        ));
        assert!(matches!(
            map_err("Hello"),
            ResponseMappingError::InvalidJson(_)
        ));
        assert!(matches!(
            map_err("{\"a\":"),
            ResponseMappingError::InvalidJson(_)
        ));
    }

    #[test]
    fn gateway_errors_match_each_front_end() {
        let url = gateway_error_response(Frontend::FunctionUrl, GatewayFailure::FunctionError);
        assert_eq!(url.status, StatusCode::BAD_GATEWAY);
        assert_eq!(url.body, "Internal Server Error");
        assert_eq!(
            gateway_error_response(Frontend::FunctionUrl, GatewayFailure::InvalidResponse),
            url
        );
        let api = gateway_error_response(Frontend::HttpApi, GatewayFailure::FunctionError);
        assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(api.body, r#"{"message":"Internal Server Error"}"#);
        assert_eq!(
            api.header("content-type").map(HeaderValue::as_bytes),
            Some(&b"application/json"[..])
        );
        let not_found = gateway_error_response(Frontend::HttpApi, GatewayFailure::NotFound);
        assert_eq!(not_found.status, StatusCode::NOT_FOUND);
        assert_eq!(not_found.body, r#"{"message":"Not Found"}"#);
    }
}
