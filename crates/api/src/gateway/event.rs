//! HTTP request → payload-format-2.0 event, as function URLs and HTTP APIs send it.
//!
//! Rules (AWS docs: "Invoking Lambda function URLs" and "Create AWS Lambda proxy integrations
//! for HTTP APIs"; observed behaviour marked so):
//! - Header names are lower-case; a repeated header becomes one entry, values joined by `,`
//!   (no space), in arrival order.
//! - `Cookie` headers leave `headers` and become the `cookies` array, one entry per cookie: every
//!   `Cookie` value is split on `;` and trimmed. `cookies` is omitted when there are none.
//! - `rawQueryString` is the query exactly as sent (without `?`); `queryStringParameters` holds
//!   the percent-decoded pairs (`+` is a space, as in form encoding; a key without `=` has an
//!   empty value), repeated keys joined by `,`; omitted when the query is empty.
//! - `rawPath` and `requestContext.http.path` are the path exactly as sent, still
//!   percent-encoded. Function URLs do this; HTTP APIs have been observed to decode `rawPath`
//!   (and to cut it at a decoded `?`), which loses information, so Nimbus does not copy that.
//! - The body is text (`isBase64Encoded: false`) only when the media type is `text/*`,
//!   `application/json`, `application/xml` or `application/javascript` **and** the bytes are
//!   UTF-8; everything else, including a missing `Content-Type`,
//!   `application/x-www-form-urlencoded`, `multipart/form-data` and `+json` suffixes, is sent as
//!   base64 (obs.: AWS documents only "binary is base64"; this split was observed on real HTTP
//!   APIs and function URLs). The UTF-8 check is Nimbus's own: text that is not UTF-8 cannot be
//!   put in a JSON string without loss. An empty body is omitted.
//! - `pathParameters` and `stageVariables` are omitted when absent; AWS says function URLs
//!   "set this to null or exclude it", and HTTP APIs omit them.
//! - `requestContext.time` is `dd/Mon/yyyy:HH:mm:ss +0000`, `timeEpoch` epoch milliseconds.

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{CONTENT_TYPE, COOKIE, USER_AGENT};
use http::{HeaderMap, Method, Version};
use serde::{Deserialize, Serialize};

use super::{media_type, percent_decode};

/// The HTTP request as a front end received it: everything the event is built from.
#[derive(Debug, Clone)]
pub struct HttpRequestParts {
    /// Request method.
    pub method: Method,
    /// Path as sent on the wire, still percent-encoded (e.g. `/a%20b`).
    pub raw_path: String,
    /// Query as sent on the wire, without the `?` (empty when there is none).
    pub raw_query: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// Request body.
    pub body: Bytes,
    /// Address of the peer of the TCP connection.
    pub source_ip: String,
    /// Protocol as the event names it, e.g. `HTTP/1.1`.
    pub protocol: String,
    /// When the request arrived.
    pub time: DateTime<Utc>,
    /// The id this request is known by (also `requestContext.requestId`).
    pub request_id: String,
}

impl HttpRequestParts {
    /// Collect the parts of an `http` request; the rest is what only the front end knows.
    pub fn from_http(
        parts: &http::request::Parts,
        body: Bytes,
        source_ip: String,
        time: DateTime<Utc>,
        request_id: String,
    ) -> Self {
        Self {
            method: parts.method.clone(),
            raw_path: parts.uri.path().to_owned(),
            raw_query: parts.uri.query().unwrap_or_default().to_owned(),
            headers: parts.headers.clone(),
            body,
            source_ip,
            protocol: protocol_name(parts.version).to_owned(),
            time,
            request_id,
        }
    }
}

/// The name the event gives a protocol version.
fn protocol_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// What the front end knows about where the request landed: which API or URL, which route.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestContextInfo {
    /// `requestContext.accountId`. Function URLs with auth type `NONE` have been observed to
    /// send `anonymous` here; the front end decides.
    pub account_id: String,
    /// API id, or the function URL id.
    pub api_id: String,
    /// Host name the request was addressed to.
    pub domain_name: String,
    /// First label of the host name.
    pub domain_prefix: String,
    /// Stage name (`$default` for function URLs).
    pub stage: String,
    /// Matched route key (`$default` for function URLs); also the event's top-level `routeKey`.
    pub route_key: String,
    /// Values of the matched route's path variables.
    pub path_parameters: Option<BTreeMap<String, String>>,
    /// Stage variables of an HTTP API stage.
    pub stage_variables: Option<BTreeMap<String, String>>,
    /// `requestContext.authorizer` (e.g. `{"iam": {…}}` for `AWS_IAM` function URLs).
    pub authorizer: Option<serde_json::Value>,
}

impl RequestContextInfo {
    /// The context of a function URL: `https://<url-id>.lambda-url.<region>.on.aws`, where
    /// route key and stage are the placeholder `$default` and there are no path parameters.
    pub fn function_url(account_id: &str, url_id: &str, region: &str) -> Self {
        Self {
            account_id: account_id.to_owned(),
            api_id: url_id.to_owned(),
            domain_name: format!("{url_id}.lambda-url.{region}.on.aws"),
            domain_prefix: url_id.to_owned(),
            stage: "$default".to_owned(),
            route_key: "$default".to_owned(),
            path_parameters: None,
            stage_variables: None,
            authorizer: None,
        }
    }
}

/// The event a function behind a function URL or an HTTP API receives, field for field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpEventV2 {
    /// Always `2.0`.
    pub version: String,
    /// The matched route, `$default` for function URLs.
    pub route_key: String,
    /// Path as sent.
    pub raw_path: String,
    /// Query as sent, without `?`.
    pub raw_query_string: String,
    /// Request cookies, one per entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookies: Option<Vec<String>>,
    /// Lower-cased header names; repeated headers comma-joined.
    pub headers: BTreeMap<String, String>,
    /// Decoded query parameters; repeated keys comma-joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_string_parameters: Option<BTreeMap<String, String>>,
    /// Where and how the request arrived.
    pub request_context: RequestContextV2,
    /// The body, as text or base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Values of the route's path variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_parameters: Option<BTreeMap<String, String>>,
    /// Whether `body` is base64.
    pub is_base64_encoded: bool,
    /// Stage variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_variables: Option<BTreeMap<String, String>>,
}

/// `requestContext` of a 2.0 event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContextV2 {
    /// Account that owns the API or function.
    pub account_id: String,
    /// API or function URL id.
    pub api_id: String,
    /// Caller identity, when an authorizer ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer: Option<serde_json::Value>,
    /// Host the request was addressed to.
    pub domain_name: String,
    /// First label of `domain_name`.
    pub domain_prefix: String,
    /// Method, path, protocol, peer address and user agent.
    pub http: RequestContextHttp,
    /// Id of this request.
    pub request_id: String,
    /// Same as the event's `routeKey`.
    pub route_key: String,
    /// Stage name.
    pub stage: String,
    /// Arrival time, `12/Mar/2020:19:03:58 +0000`.
    pub time: String,
    /// Arrival time in epoch milliseconds.
    pub time_epoch: i64,
}

/// `requestContext.http` of a 2.0 event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContextHttp {
    /// Request method.
    pub method: String,
    /// Path as sent.
    pub path: String,
    /// e.g. `HTTP/1.1`.
    pub protocol: String,
    /// Peer address of the connection.
    pub source_ip: String,
    /// The `User-Agent` header, empty when none was sent.
    pub user_agent: String,
}

impl HttpEventV2 {
    /// Build the event for `request` arriving at `context`.
    pub fn from_request(request: &HttpRequestParts, context: &RequestContextInfo) -> Self {
        let (headers, cookies) = collect_headers(&request.headers);
        let raw_query = request
            .raw_query
            .strip_prefix('?')
            .unwrap_or(&request.raw_query);
        let (body, is_base64_encoded) = encode_body(&request.headers, &request.body);
        let user_agent = headers
            .get(USER_AGENT.as_str())
            .cloned()
            .unwrap_or_default();
        let raw_path = if request.raw_path.is_empty() {
            "/".to_owned()
        } else {
            request.raw_path.clone()
        };
        Self {
            version: "2.0".to_owned(),
            route_key: context.route_key.clone(),
            raw_path: raw_path.clone(),
            raw_query_string: raw_query.to_owned(),
            cookies,
            headers,
            query_string_parameters: query_parameters(raw_query),
            request_context: RequestContextV2 {
                account_id: context.account_id.clone(),
                api_id: context.api_id.clone(),
                authorizer: context.authorizer.clone(),
                domain_name: context.domain_name.clone(),
                domain_prefix: context.domain_prefix.clone(),
                http: RequestContextHttp {
                    method: request.method.as_str().to_owned(),
                    path: raw_path,
                    protocol: request.protocol.clone(),
                    source_ip: request.source_ip.clone(),
                    user_agent,
                },
                request_id: request.request_id.clone(),
                route_key: context.route_key.clone(),
                stage: context.stage.clone(),
                time: request.time.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
                time_epoch: request.time.timestamp_millis(),
            },
            body,
            path_parameters: context.path_parameters.clone(),
            is_base64_encoded,
            stage_variables: context.stage_variables.clone(),
        }
    }

    /// The event as the JSON bytes handed to `Invoke`.
    pub fn to_json(&self) -> Bytes {
        // Serialising plain strings, maps and numbers cannot fail; an empty object would only
        // mask a bug, so fall back to it rather than panic on a request path.
        Bytes::from(serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec()))
    }
}

/// Headers for the event (lower-case names, repeats comma-joined) and the cookies pulled out of
/// them. Header bytes that are not UTF-8 are replaced: the event is JSON text.
fn collect_headers(headers: &HeaderMap) -> (BTreeMap<String, String>, Option<Vec<String>>) {
    let mut out = BTreeMap::new();
    let mut cookies = Vec::new();
    for name in headers.keys() {
        let values = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        if name == COOKIE {
            for value in values {
                cookies.extend(
                    value
                        .split(';')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(str::to_owned),
                );
            }
            continue;
        }
        out.insert(
            name.as_str().to_owned(),
            values.collect::<Vec<_>>().join(","),
        );
    }
    (out, (!cookies.is_empty()).then_some(cookies))
}

/// `queryStringParameters` from a raw query: decoded, repeated keys comma-joined in order.
fn query_parameters(raw_query: &str) -> Option<BTreeMap<String, String>> {
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key, true);
        let value = percent_decode(value, true);
        params
            .entry(key)
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    (!params.is_empty()).then_some(params)
}

/// Whether a body of this content type is passed as text (see the module doc for the rule).
pub(crate) fn is_text_media_type(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return false;
    };
    let media = media_type(content_type);
    media.starts_with("text/")
        || matches!(
            media.as_str(),
            "application/json" | "application/xml" | "application/javascript"
        )
}

/// The event's `body` and `isBase64Encoded` for a request body.
fn encode_body(headers: &HeaderMap, body: &Bytes) -> (Option<String>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if is_text_media_type(content_type) {
        if let Ok(text) = std::str::from_utf8(body) {
            return (Some(text.to_owned()), false);
        }
    }
    (
        Some(base64::engine::general_purpose::STANDARD.encode(body)),
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use http::HeaderValue;
    use serde_json::{json, Value};

    fn request() -> HttpRequestParts {
        HttpRequestParts {
            method: Method::GET,
            raw_path: "/my/path".to_owned(),
            raw_query: String::new(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            source_ip: "192.0.2.1".to_owned(),
            protocol: "HTTP/1.1".to_owned(),
            time: Utc
                .timestamp_millis_opt(1_583_348_638_390)
                .single()
                .expect("valid timestamp"),
            request_id: "req-1".to_owned(),
        }
    }

    fn url_context() -> RequestContextInfo {
        RequestContextInfo::function_url("123456789012", "abcdefg", "us-east-1")
    }

    fn event_json(request: &HttpRequestParts, context: &RequestContextInfo) -> Value {
        let bytes = HttpEventV2::from_request(request, context).to_json();
        serde_json::from_slice(&bytes).expect("event is JSON")
    }

    fn add(headers: &mut HeaderMap, name: &'static str, value: &str) {
        headers.append(name, HeaderValue::from_str(value).expect("header value"));
    }

    #[test]
    fn minimal_get_has_exactly_the_documented_fields() {
        let mut req = request();
        add(&mut req.headers, "user-agent", "curl/8");
        add(
            &mut req.headers,
            "host",
            "abcdefg.lambda-url.us-east-1.on.aws",
        );
        let event = event_json(&req, &url_context());
        assert_eq!(
            event,
            json!({
                "version": "2.0",
                "routeKey": "$default",
                "rawPath": "/my/path",
                "rawQueryString": "",
                "headers": {"host": "abcdefg.lambda-url.us-east-1.on.aws", "user-agent": "curl/8"},
                "requestContext": {
                    "accountId": "123456789012",
                    "apiId": "abcdefg",
                    "domainName": "abcdefg.lambda-url.us-east-1.on.aws",
                    "domainPrefix": "abcdefg",
                    "http": {
                        "method": "GET",
                        "path": "/my/path",
                        "protocol": "HTTP/1.1",
                        "sourceIp": "192.0.2.1",
                        "userAgent": "curl/8"
                    },
                    "requestId": "req-1",
                    "routeKey": "$default",
                    "stage": "$default",
                    "time": "04/Mar/2020:19:03:58 +0000",
                    "timeEpoch": 1_583_348_638_390_i64
                },
                "isBase64Encoded": false
            })
        );
    }

    #[test]
    fn time_uses_the_access_log_format() {
        let mut req = request();
        req.time = Utc
            .with_ymd_and_hms(2020, 3, 12, 19, 3, 58)
            .single()
            .expect("valid time");
        let event = HttpEventV2::from_request(&req, &url_context());
        assert_eq!(event.request_context.time, "12/Mar/2020:19:03:58 +0000");
        assert_eq!(event.request_context.time_epoch, 1_584_039_838_000);
    }

    #[test]
    fn repeated_headers_are_comma_joined_and_names_lower_cased() {
        let mut req = request();
        add(&mut req.headers, "X-Multi", "v1");
        add(&mut req.headers, "x-multi", "v2");
        add(&mut req.headers, "Accept", "text/html, application/json");
        let event = HttpEventV2::from_request(&req, &url_context());
        assert_eq!(event.headers["x-multi"], "v1,v2");
        assert_eq!(event.headers["accept"], "text/html, application/json");
        assert_eq!(event.request_context.http.user_agent, "");
    }

    #[test]
    fn cookies_leave_the_headers_and_are_split() {
        let mut req = request();
        add(&mut req.headers, "cookie", "a=1; b=2");
        add(&mut req.headers, "cookie", "c=3;d=4; ");
        let event = HttpEventV2::from_request(&req, &url_context());
        assert_eq!(
            event.cookies.as_deref(),
            Some(&["a=1", "b=2", "c=3", "d=4"].map(String::from)[..])
        );
        assert!(!event.headers.contains_key("cookie"));
        let json = event_json(&request(), &url_context());
        assert!(json.get("cookies").is_none(), "no cookies → field omitted");
    }

    #[test]
    fn query_is_raw_verbatim_and_decoded_in_parameters() {
        let mut req = request();
        req.raw_query = "parameter1=value1&parameter1=value2&parameter2=value".to_owned();
        let event = HttpEventV2::from_request(&req, &url_context());
        assert_eq!(
            event.raw_query_string,
            "parameter1=value1&parameter1=value2&parameter2=value"
        );
        let params = event.query_string_parameters.expect("parameters");
        assert_eq!(params["parameter1"], "value1,value2");
        assert_eq!(params["parameter2"], "value");

        let mut req = request();
        req.raw_query = "?q=a%20b+c&caf%C3%A9=%E2%9C%93&flag&&empty=".to_owned();
        let event = HttpEventV2::from_request(&req, &url_context());
        assert_eq!(
            event.raw_query_string,
            "q=a%20b+c&caf%C3%A9=%E2%9C%93&flag&&empty="
        );
        let params = event.query_string_parameters.expect("parameters");
        assert_eq!(params["q"], "a b c");
        assert_eq!(params["café"], "✓");
        assert_eq!(params["flag"], "");
        assert_eq!(params["empty"], "");
        assert_eq!(params.len(), 4);
    }

    #[test]
    fn no_query_omits_the_parameters() {
        let json = event_json(&request(), &url_context());
        assert_eq!(json["rawQueryString"], "");
        assert!(json.get("queryStringParameters").is_none());
    }

    #[test]
    fn paths_stay_percent_encoded_and_unicode_survives() {
        let mut req = request();
        req.raw_path = "/caf%C3%A9/a%2Fb/%20x".to_owned();
        let event = HttpEventV2::from_request(&req, &url_context());
        assert_eq!(event.raw_path, "/caf%C3%A9/a%2Fb/%20x");
        assert_eq!(event.request_context.http.path, "/caf%C3%A9/a%2Fb/%20x");

        req.raw_path = "/café/ünïcode".to_owned();
        let json = event_json(&req, &url_context());
        assert_eq!(json["rawPath"], "/café/ünïcode");

        req.raw_path = String::new();
        assert_eq!(
            HttpEventV2::from_request(&req, &url_context()).raw_path,
            "/"
        );
    }

    #[test]
    fn text_bodies_stay_text() {
        for content_type in [
            "application/json",
            "application/json; charset=utf-8",
            "text/plain",
            "TEXT/HTML",
            "application/xml",
            "application/javascript",
        ] {
            let mut req = request();
            req.method = Method::POST;
            add(&mut req.headers, "content-type", content_type);
            req.body = Bytes::from_static("{\"k\":\"✓\"}".as_bytes());
            let event = HttpEventV2::from_request(&req, &url_context());
            assert_eq!(
                event.body.as_deref(),
                Some("{\"k\":\"✓\"}"),
                "{content_type}"
            );
            assert!(!event.is_base64_encoded, "{content_type}");
        }
    }

    #[test]
    fn other_bodies_are_base64_and_round_trip() {
        let binary: &[u8] = &[0, 159, 146, 150, 255, b'\n'];
        for content_type in [
            Some("application/octet-stream"),
            Some("image/png"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/vnd.api+json"),
            None,
        ] {
            let mut req = request();
            req.method = Method::POST;
            if let Some(ct) = content_type {
                add(&mut req.headers, "content-type", ct);
            }
            req.body = Bytes::from_static(binary);
            let event = HttpEventV2::from_request(&req, &url_context());
            assert!(event.is_base64_encoded, "{content_type:?}");
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(event.body.expect("body"))
                .expect("valid base64");
            assert_eq!(decoded, binary);
        }

        // Form posts are base64 even though they are ASCII (observed on AWS).
        let mut req = request();
        add(
            &mut req.headers,
            "content-type",
            "application/x-www-form-urlencoded",
        );
        req.body = Bytes::from_static(b"key1=data1");
        let event = HttpEventV2::from_request(&req, &url_context());
        assert_eq!(event.body.as_deref(), Some("a2V5MT1kYXRhMQ=="));
        assert!(event.is_base64_encoded);
    }

    #[test]
    fn text_content_type_with_invalid_utf8_falls_back_to_base64() {
        let mut req = request();
        add(&mut req.headers, "content-type", "text/plain");
        req.body = Bytes::from_static(&[0xff, 0xfe]);
        let event = HttpEventV2::from_request(&req, &url_context());
        assert!(event.is_base64_encoded);
        assert_eq!(event.body.as_deref(), Some("//4="));
    }

    #[test]
    fn empty_body_is_omitted() {
        let mut req = request();
        add(&mut req.headers, "content-type", "application/octet-stream");
        let json = event_json(&req, &url_context());
        assert!(json.get("body").is_none());
        assert_eq!(json["isBase64Encoded"], false);
    }

    #[test]
    fn http_api_context_carries_route_and_path_parameters() {
        let context = RequestContextInfo {
            account_id: "123456789012".to_owned(),
            api_id: "api1".to_owned(),
            domain_name: "api1.execute-api.us-east-1.amazonaws.com".to_owned(),
            domain_prefix: "api1".to_owned(),
            stage: "prod".to_owned(),
            route_key: "GET /users/{id}".to_owned(),
            path_parameters: Some(BTreeMap::from([("id".to_owned(), "42".to_owned())])),
            stage_variables: Some(BTreeMap::from([("env".to_owned(), "p".to_owned())])),
            authorizer: Some(json!({"iam": {"accountId": "111122223333"}})),
        };
        let json = event_json(&request(), &context);
        assert_eq!(json["routeKey"], "GET /users/{id}");
        assert_eq!(json["requestContext"]["routeKey"], "GET /users/{id}");
        assert_eq!(json["requestContext"]["stage"], "prod");
        assert_eq!(json["pathParameters"], json!({"id": "42"}));
        assert_eq!(json["stageVariables"], json!({"env": "p"}));
        assert_eq!(
            json["requestContext"]["authorizer"]["iam"]["accountId"],
            "111122223333"
        );
        let url = event_json(&request(), &url_context());
        assert!(url.get("pathParameters").is_none());
        assert!(url.get("stageVariables").is_none());
        assert!(url["requestContext"].get("authorizer").is_none());
    }

    #[test]
    fn from_http_reads_method_path_query_and_version() {
        let req = http::Request::builder()
            .method(Method::PUT)
            .uri("/a%20b/c?x=1&y=%2F")
            .version(Version::HTTP_2)
            .header("X-Test", "yes")
            .body(())
            .expect("request");
        let (parts, ()) = req.into_parts();
        let time = request().time;
        let parts = HttpRequestParts::from_http(
            &parts,
            Bytes::from_static(b"{}"),
            "10.0.0.1".to_owned(),
            time,
            "r".to_owned(),
        );
        assert_eq!(parts.method, Method::PUT);
        assert_eq!(parts.raw_path, "/a%20b/c");
        assert_eq!(parts.raw_query, "x=1&y=%2F");
        assert_eq!(parts.protocol, "HTTP/2.0");
        assert_eq!(parts.headers["x-test"], "yes");
    }

    #[test]
    fn event_round_trips_through_serde() {
        let mut req = request();
        req.raw_query = "a=1".to_owned();
        add(&mut req.headers, "cookie", "s=1");
        let event = HttpEventV2::from_request(&req, &url_context());
        let back: HttpEventV2 = serde_json::from_slice(&event.to_json()).expect("parse");
        assert_eq!(back, event);
    }
}
