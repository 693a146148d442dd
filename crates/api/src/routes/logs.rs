//! A CloudWatch Logs subset over the function logs, so `aws logs tail /aws/lambda/NAME`,
//! `aws logs filter-log-events` and the SDKs' Logs clients read them unchanged.
//!
//! CloudWatch Logs uses the JSON 1.1 protocol: `POST /`, the operation in `X-Amz-Target`
//! (`Logs_20140328.<Operation>`), camelCase members, errors as `{"__type","message"}`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use nimbus_core::logs::{LogEvent, LogQuery};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body::read_limited;
use crate::ApiState;

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const TARGET_PREFIX: &str = "Logs_20140328.";
const PAGE_MAX: usize = 10_000;

/// An error in JSON 1.1 form.
struct LogsError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl LogsError {
    fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind,
            message: message.into(),
        }
    }
}

impl IntoResponse for LogsError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            json!({ "__type": self.kind, "message": self.message }).to_string(),
        )
            .into_response();
        let h = response.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        h.insert("x-amzn-ErrorType", HeaderValue::from_static(self.kind));
        response
    }
}

fn ok(body: Value) -> Response {
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

pub(crate) async fn dispatch(
    State(api): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match run(&api, &headers, body).await {
        Ok(body) => ok(body),
        Err(err) => err.into_response(),
    }
}

async fn run(api: &ApiState, headers: &HeaderMap, body: Body) -> Result<Value, LogsError> {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let operation = target.strip_prefix(TARGET_PREFIX).ok_or_else(|| {
        LogsError::new(
            "UnknownOperationException",
            format!("unknown operation {target:?}"),
        )
    })?;
    let bytes = read_limited(headers, body, 1024 * 1024, operation)
        .await
        .map_err(|e| LogsError::new("InvalidParameterException", e.message()))?;
    let bytes = if bytes.is_empty() {
        &b"{}"[..]
    } else {
        &bytes[..]
    };
    match operation {
        "FilterLogEvents" => filter_log_events(api, parse(bytes)?).await,
        "GetLogEvents" => get_log_events(api, parse(bytes)?).await,
        "DescribeLogStreams" => describe_log_streams(api, parse(bytes)?).await,
        other => Err(LogsError::new(
            "UnknownOperationException",
            format!("operation {other} is not supported"),
        )),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, LogsError> {
    serde_json::from_slice(bytes).map_err(|e| {
        LogsError::new(
            "SerializationException",
            format!("could not parse request: {e}"),
        )
    })
}

fn store_error(err: nimbus_core::StoreError) -> LogsError {
    tracing::error!(error = %err, "log store failed");
    LogsError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        kind: "ServiceUnavailableException",
        message: "The log store failed.".to_owned(),
    }
}

/// The group a request names, which must have been written to.
async fn group(
    api: &ApiState,
    name: Option<String>,
    identifier: Option<String>,
) -> Result<String, LogsError> {
    let group = name
        .or_else(|| identifier.map(|id| id.rsplit(":log-group:").next().unwrap_or(&id).to_owned()))
        .ok_or_else(|| LogsError::new("InvalidParameterException", "logGroupName is required"))?;
    let streams = api.logs.streams(&group).await.map_err(store_error)?;
    if streams.is_empty() {
        return Err(LogsError::new(
            "ResourceNotFoundException",
            "The specified log group does not exist.",
        ));
    }
    Ok(group)
}

fn limit(requested: Option<usize>) -> usize {
    requested.unwrap_or(PAGE_MAX).clamp(1, PAGE_MAX)
}

fn token(raw: Option<&str>) -> Result<Option<u64>, LogsError> {
    raw.map(|t| {
        t.trim_start_matches("f/").parse::<u64>().map_err(|_| {
            LogsError::new(
                "InvalidParameterException",
                "The specified nextToken is invalid.",
            )
        })
    })
    .transpose()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FilterLogEvents {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    #[serde(default)]
    log_stream_names: Vec<String>,
    log_stream_name_prefix: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    filter_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<usize>,
}

async fn filter_log_events(api: &ApiState, req: FilterLogEvents) -> Result<Value, LogsError> {
    let group = group(api, req.log_group_name, req.log_group_identifier).await?;
    let mut streams = req.log_stream_names;
    if let Some(prefix) = &req.log_stream_name_prefix {
        let all = api.logs.streams(&group).await.map_err(store_error)?;
        streams.extend(
            all.into_iter()
                .map(|s| s.name)
                .filter(|n| n.starts_with(prefix)),
        );
        if streams.is_empty() {
            return Ok(json!({ "events": [], "searchedLogStreams": [] }));
        }
    }
    // Filter patterns are matched as plain terms: the quoted or bare text must occur in the line.
    let contains = req
        .filter_pattern
        .map(|p| p.trim().trim_matches('"').to_owned())
        .filter(|p| !p.is_empty());
    let limit = limit(req.limit);
    let events = api
        .logs
        .query(&LogQuery {
            group,
            streams,
            start_ms: req.start_time,
            end_ms: req.end_time,
            contains,
            after_id: token(req.next_token.as_deref())?,
            limit,
        })
        .await
        .map_err(store_error)?;
    let next = (events.len() == limit)
        .then(|| events.last().map(|e| e.id.to_string()))
        .flatten();
    let mut body = json!({
        "events": events.iter().map(filtered_event).collect::<Vec<_>>(),
        "searchedLogStreams": [],
    });
    if let Some(next) = next {
        body["nextToken"] = Value::String(next);
    }
    Ok(body)
}

fn filtered_event(e: &LogEvent) -> Value {
    json!({
        "logStreamName": e.stream,
        "timestamp": e.timestamp_ms,
        "message": e.message,
        "ingestionTime": e.timestamp_ms,
        "eventId": e.id.to_string(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetLogEvents {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name: String,
    start_time: Option<i64>,
    end_time: Option<i64>,
    next_token: Option<String>,
    limit: Option<usize>,
}

async fn get_log_events(api: &ApiState, req: GetLogEvents) -> Result<Value, LogsError> {
    let group = group(api, req.log_group_name, req.log_group_identifier).await?;
    let after = token(req.next_token.as_deref())?;
    let events = api
        .logs
        .query(&LogQuery {
            group,
            streams: vec![req.log_stream_name],
            start_ms: req.start_time,
            end_ms: req.end_time,
            contains: None,
            after_id: after,
            limit: limit(req.limit),
        })
        .await
        .map_err(store_error)?;
    // A forward token that does not move means "no more for now", as CloudWatch signals it.
    let forward = events.last().map_or(after.unwrap_or(0), |e| e.id);
    Ok(json!({
        "events": events.iter().map(|e| json!({
            "timestamp": e.timestamp_ms,
            "message": e.message,
            "ingestionTime": e.timestamp_ms,
        })).collect::<Vec<_>>(),
        "nextForwardToken": format!("f/{forward}"),
        "nextBackwardToken": format!("b/{}", after.unwrap_or(0)),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeLogStreams {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name_prefix: Option<String>,
    limit: Option<usize>,
}

async fn describe_log_streams(api: &ApiState, req: DescribeLogStreams) -> Result<Value, LogsError> {
    let group = group(api, req.log_group_name, req.log_group_identifier).await?;
    let streams = api.logs.streams(&group).await.map_err(store_error)?;
    let account = &api.account;
    let out: Vec<Value> = streams
        .iter()
        .filter(|s| {
            req.log_stream_name_prefix
                .as_deref()
                .is_none_or(|p| s.name.starts_with(p))
        })
        .take(req.limit.unwrap_or(50).clamp(1, 50))
        .map(|s| {
            json!({
                "logStreamName": s.name,
                "creationTime": s.first_ms,
                "firstEventTimestamp": s.first_ms,
                "lastEventTimestamp": s.last_ms,
                "lastIngestionTime": s.last_ms,
                "arn": format!(
                    "arn:aws:logs:{}:{}:log-group:{group}:log-stream:{}",
                    account.region, account.account_id, s.name
                ),
                "storedBytes": 0,
            })
        })
        .collect();
    Ok(json!({ "logStreams": out }))
}
