//! The EventBridge Scheduler API subset for schedules that invoke Lambda functions: what
//! `aws scheduler … --endpoint-url` and boto3's `scheduler` client send (service model
//! `scheduler-2021-06-30`, protocol rest-json).
//!
//! | Operation | Method and path | Answer |
//! |---|---|---|
//! | CreateSchedule | `POST /schedules/{Name}` | `{"ScheduleArn"}` |
//! | GetSchedule | `GET /schedules/{Name}?groupName=` | the schedule |
//! | UpdateSchedule | `PUT /schedules/{Name}` | `{"ScheduleArn"}` |
//! | DeleteSchedule | `DELETE /schedules/{Name}?groupName=&clientToken=` | `{}` |
//! | ListSchedules | `GET /schedules?NamePrefix=&State=&MaxResults=&NextToken=&ScheduleGroup=` | `{"Schedules", "NextToken"}` |
//!
//! Create and update bodies carry `ScheduleExpression`, `ScheduleExpressionTimezone`,
//! `Target {Arn, RoleArn, Input}`, `FlexibleTimeWindow {Mode, MaximumWindowInMinutes}`, `State`,
//! `Description`, `GroupName`; UpdateSchedule replaces the schedule whole, as AWS documents
//! (omitted optional fields return to their defaults). Timestamps go out as epoch seconds, the
//! rest-json default. Errors are `ValidationException` (400), `ResourceNotFoundException` (404),
//! `ConflictException` (409) and `InternalServerException` (500), named in `x-amzn-ErrorType`
//! with a `{"Message"}` body.
//!
//! What Nimbus does not do, and says so instead of silently ignoring: targets other than Lambda
//! functions of this server's region and account; schedule groups other than `default`;
//! `StartDate`, `EndDate`, `KmsKeyArn` and `ActionAfterCompletion: DELETE`. `ClientToken`,
//! `Target.RetryPolicy` and `Target.DeadLetterConfig` are accepted and not used (fires are
//! retried by the runner, then by the async invoke queue). Whether the target function exists is
//! not checked here — AWS does not either; a fire of a missing function is logged.
//!
//! The handlers hold no state: everything is in [`SchedulesApi`], and a successful change calls
//! its `on_change` so the schedule runner reloads.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use nimbus_core::invoke::ASYNC_PAYLOAD_MAX;
use nimbus_core::schedule::store::{schedule_arn, validate_name, DEFAULT_GROUP};
use nimbus_core::schedule::{ScheduleRule, ScheduleStore};
use nimbus_core::{AccountContext, FunctionRef, ServiceError, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest request body: an `Input` as large as an async payload may be, plus the rest.
const BODY_MAX: usize = ASYNC_PAYLOAD_MAX + 64 * 1024;
/// `MaxResults` bounds of ListSchedules (also its default).
const LIST_MAX: usize = 100;

/// What the handlers need.
#[derive(Clone)]
pub struct SchedulesApi {
    /// Where the schedules live.
    pub store: Arc<dyn ScheduleStore>,
    /// Region and account of the schedule ARNs and of the functions they may target.
    pub account: AccountContext,
    /// Called after every successful create, update and delete: the runner's `reload`.
    pub on_change: Arc<dyn Fn() + Send + Sync>,
    /// The time of `CreationDate` / `LastModificationDate`, and the rate anchor.
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

impl SchedulesApi {
    /// Handlers over `store` on the wall clock; `on_change` runs after every change.
    pub fn new(
        store: Arc<dyn ScheduleStore>,
        account: AccountContext,
        on_change: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        Self {
            store,
            account,
            on_change: Arc::new(on_change),
            clock: Arc::new(Utc::now),
        }
    }

    /// The same handlers on another clock (tests).
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    fn changed(&self) {
        (self.on_change)();
    }
}

/// The Scheduler routes, with their state applied, mergeable into a router of any state.
/// Merge it before the request-id/authentication layer is added, so these requests pass the
/// same door as the Lambda API. It has no fallback of its own.
pub fn router<S>(api: SchedulesApi) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/schedules", get(list))
        .route(
            "/schedules/{name}",
            get(get_schedule).post(create).put(update).delete(delete),
        )
        .with_state(api)
}

// ---------------------------------------------------------------------------------------------
// Errors

/// An error in EventBridge Scheduler's rest-json form.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SchedulerError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl SchedulerError {
    fn validation(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "ValidationException",
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "ResourceNotFoundException",
            message: message.into(),
        }
    }

    fn schedule_not_found(name: &str) -> Self {
        Self::not_found(format!("Schedule {name} does not exist."))
    }

    fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            code: "ConflictException",
            message: message.into(),
        }
    }

    fn internal() -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "InternalServerException",
            message: "An internal error occurred; the request was not completed.".to_owned(),
        }
    }
}

impl From<ServiceError> for SchedulerError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::ResourceNotFound(m) => Self::not_found(m),
            ServiceError::ResourceConflict(m) => Self::conflict(m),
            ServiceError::Service(m) => {
                tracing::error!(error = m, "scheduler request failed");
                Self::internal()
            }
            ServiceError::TooManyRequests { message, .. } => Self {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "ThrottlingException",
                message,
            },
            // Everything else is a request the caller has to change.
            other => Self::validation(other.message()),
        }
    }
}

impl From<StoreError> for SchedulerError {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err, "schedule store operation failed");
        Self::internal()
    }
}

impl IntoResponse for SchedulerError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "Message": self.message }).to_string();
        let mut response = (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        response
            .headers_mut()
            .insert("x-amzn-ErrorType", HeaderValue::from_static(self.code));
        response
    }
}

type Result<T, E = SchedulerError> = std::result::Result<T, E>;

// ---------------------------------------------------------------------------------------------
// Wire shapes

/// The body of CreateSchedule and UpdateSchedule. Members the SDKs send that Nimbus does not
/// use (`ClientToken`, `Target.RetryPolicy`, …) are ignored by serde.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ScheduleInput {
    schedule_expression: Option<String>,
    schedule_expression_timezone: Option<String>,
    target: Option<TargetInput>,
    flexible_time_window: Option<FlexibleTimeWindow>,
    state: Option<String>,
    description: Option<String>,
    group_name: Option<String>,
    start_date: Option<Value>,
    end_date: Option<Value>,
    kms_key_arn: Option<String>,
    action_after_completion: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TargetInput {
    arn: Option<String>,
    role_arn: Option<String>,
    input: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FlexibleTimeWindow {
    mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum_window_in_minutes: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ScheduleArnOutput {
    schedule_arn: String,
}

/// GetSchedule's answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetScheduleOutput {
    action_after_completion: &'static str,
    arn: String,
    creation_date: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    flexible_time_window: FlexibleTimeWindow,
    group_name: &'static str,
    last_modification_date: f64,
    name: String,
    schedule_expression: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule_expression_timezone: Option<String>,
    state: &'static str,
    target: TargetOutput,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct TargetOutput {
    arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<String>,
}

/// One entry of ListSchedules.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ScheduleSummary {
    arn: String,
    creation_date: f64,
    group_name: &'static str,
    last_modification_date: f64,
    name: String,
    state: &'static str,
    target: TargetSummary,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct TargetSummary {
    arn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListSchedulesOutput {
    schedules: Vec<ScheduleSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// rest-json timestamps: epoch seconds, here with milliseconds.
fn epoch_seconds(t: DateTime<Utc>) -> f64 {
    // Exact for any date a schedule can have: milliseconds since 1970 fit f64's 53 bits.
    #[allow(clippy::cast_precision_loss)]
    let millis = t.timestamp_millis() as f64;
    millis / 1000.0
}

fn state_name(enabled: bool) -> &'static str {
    if enabled {
        "ENABLED"
    } else {
        "DISABLED"
    }
}

fn describe(api: &SchedulesApi, rule: ScheduleRule) -> GetScheduleOutput {
    GetScheduleOutput {
        action_after_completion: "NONE",
        arn: rule.arn(&api.account),
        creation_date: epoch_seconds(rule.created_at),
        description: Some(rule.description).filter(|d| !d.is_empty()),
        flexible_time_window: match rule.flexible_window_minutes {
            Some(minutes) => FlexibleTimeWindow {
                mode: Some("FLEXIBLE".to_owned()),
                maximum_window_in_minutes: Some(i64::from(minutes)),
            },
            None => FlexibleTimeWindow {
                mode: Some("OFF".to_owned()),
                maximum_window_in_minutes: None,
            },
        },
        group_name: DEFAULT_GROUP,
        last_modification_date: epoch_seconds(rule.updated_at),
        state: state_name(rule.enabled),
        schedule_expression: rule.expression,
        schedule_expression_timezone: rule.timezone,
        target: TargetOutput {
            arn: rule.target,
            role_arn: rule.role_arn,
            input: rule.input,
        },
        name: rule.name,
    }
}

// ---------------------------------------------------------------------------------------------
// Request checks

/// The `{Name}` of the path, checked against the model's pattern.
fn path_name(path: Result<Path<String>, PathRejection>) -> Result<String> {
    let Path(name) = path.map_err(|err| SchedulerError::validation(err.body_text()))?;
    validate_name(&name)?;
    Ok(name)
}

fn query_pairs(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>> {
    query
        .map(|Query(pairs)| pairs)
        .map_err(|err| SchedulerError::validation(err.body_text()))
}

fn query_value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Only the `default` group exists.
fn check_group(group: Option<&str>) -> Result<()> {
    match group {
        None => Ok(()),
        Some(DEFAULT_GROUP) => Ok(()),
        Some(group) => {
            validate_name(group).map_err(|_| {
                SchedulerError::validation(format!(
                    "1 validation error detected: Value '{group}' at 'groupName' failed to \
                     satisfy constraint: Member must satisfy regular expression pattern: \
                     ^[0-9a-zA-Z-_.]+$"
                ))
            })?;
            Err(SchedulerError::not_found(format!(
                "Schedule group {group} does not exist."
            )))
        }
    }
}

fn missing(field: &str) -> SchedulerError {
    SchedulerError::validation(format!(
        "1 validation error detected: Value null at '{field}' failed to satisfy constraint: \
         Member must not be null"
    ))
}

fn unsupported(member: &str) -> SchedulerError {
    SchedulerError::validation(format!(
        "{member} is not supported by Nimbus; leave it out of the request"
    ))
}

/// The target must be a Lambda function of this server, named by ARN as AWS requires.
fn check_target(api: &SchedulesApi, arn: &str) -> Result<()> {
    let expected = format!(
        "arn:aws:lambda:{}:{}:function:NAME",
        api.account.region, api.account.account_id
    );
    let not_lambda = || {
        SchedulerError::validation(format!(
            "Target Arn \"{arn}\" is not a Lambda function ARN. Nimbus schedules invoke Lambda \
             functions; name one as {expected}, optionally followed by :VERSION or :ALIAS."
        ))
    };
    if arn.split(':').take(3).collect::<Vec<_>>() != ["arn", "aws", "lambda"] {
        return Err(not_lambda());
    }
    let function = FunctionRef::parse(arn).map_err(|_| not_lambda())?;
    if !function.belongs_to(&api.account) {
        return Err(SchedulerError::validation(format!(
            "Target Arn \"{arn}\" names a function of another region or account; this server \
             serves region {} and account {} ({expected}).",
            api.account.region, api.account.account_id
        )));
    }
    Ok(())
}

/// Read the body of CreateSchedule or UpdateSchedule and turn it into a rule named `name`,
/// created and updated `now`, never fired. Every check that can fail does so here.
async fn read_rule(
    api: &SchedulesApi,
    name: &str,
    headers: &HeaderMap,
    body: Body,
    operation: &str,
    now: DateTime<Utc>,
) -> Result<ScheduleRule> {
    let bytes = crate::body::read_limited(headers, body, BODY_MAX, operation).await?;
    let input: ScheduleInput = serde_json::from_slice(&bytes).map_err(|err| {
        SchedulerError::validation(format!(
            "Could not read the request body as {operation} input: {err}"
        ))
    })?;
    check_group(input.group_name.as_deref())?;
    for (member, present) in [
        ("StartDate", input.start_date.is_some()),
        ("EndDate", input.end_date.is_some()),
        ("KmsKeyArn", input.kms_key_arn.is_some()),
    ] {
        if present {
            return Err(unsupported(member));
        }
    }
    match input.action_after_completion.as_deref() {
        None | Some("NONE") => {}
        Some("DELETE") => return Err(unsupported("ActionAfterCompletion DELETE")),
        Some(other) => {
            return Err(SchedulerError::validation(format!(
                "1 validation error detected: Value '{other}' at 'actionAfterCompletion' failed \
                 to satisfy constraint: Member must satisfy enum value set: [NONE, DELETE]"
            )))
        }
    }
    let expression = input
        .schedule_expression
        .ok_or_else(|| missing("scheduleExpression"))?;
    let window = input
        .flexible_time_window
        .ok_or_else(|| missing("flexibleTimeWindow"))?;
    let flexible_window_minutes = match (window.mode.as_deref(), window.maximum_window_in_minutes) {
        (None, _) => return Err(missing("flexibleTimeWindow.mode")),
        (Some("OFF"), None) => None,
        (Some("OFF"), Some(_)) => {
            return Err(SchedulerError::validation(
                "MaximumWindowInMinutes is only valid with FlexibleTimeWindow mode FLEXIBLE",
            ))
        }
        (Some("FLEXIBLE"), None) => {
            return Err(SchedulerError::validation(
                "FlexibleTimeWindow mode FLEXIBLE needs MaximumWindowInMinutes (1 to 1440)",
            ))
        }
        (Some("FLEXIBLE"), Some(minutes)) => Some(u32::try_from(minutes).unwrap_or(0)),
        (Some(other), _) => {
            return Err(SchedulerError::validation(format!(
                "1 validation error detected: Value '{other}' at 'flexibleTimeWindow.mode' \
                 failed to satisfy constraint: Member must satisfy enum value set: [OFF, FLEXIBLE]"
            )))
        }
    };
    let target = input.target.ok_or_else(|| missing("target"))?;
    let target_arn = target.arn.ok_or_else(|| missing("target.arn"))?;
    check_target(api, &target_arn)?;
    let enabled = match input.state.as_deref() {
        None | Some("ENABLED") => true,
        Some("DISABLED") => false,
        Some(other) => {
            return Err(SchedulerError::validation(format!(
                "1 validation error detected: Value '{other}' at 'state' failed to satisfy \
                 constraint: Member must satisfy enum value set: [ENABLED, DISABLED]"
            )))
        }
    };
    let rule = ScheduleRule {
        name: name.to_owned(),
        expression,
        timezone: input.schedule_expression_timezone,
        target: target_arn,
        role_arn: target.role_arn,
        input: target.input,
        enabled,
        flexible_window_minutes,
        description: input.description.unwrap_or_default(),
        created_at: now,
        updated_at: now,
        last_fire: None,
    };
    rule.validate()?;
    Ok(rule)
}

// ---------------------------------------------------------------------------------------------
// Handlers

async fn create(
    State(api): State<SchedulesApi>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ScheduleArnOutput>> {
    let name = path_name(path)?;
    let rule = read_rule(&api, &name, &headers, body, "CreateSchedule", api.now()).await?;
    match api.store.create(&rule).await {
        Ok(()) => {}
        Err(StoreError::AlreadyExists) => {
            return Err(SchedulerError::conflict(format!(
                "Schedule {name} already exists."
            )))
        }
        Err(err) => return Err(err.into()),
    }
    tracing::info!(
        schedule = name,
        expression = rule.expression,
        target = rule.target,
        "schedule created"
    );
    api.changed();
    Ok(Json(ScheduleArnOutput {
        schedule_arn: rule.arn(&api.account),
    }))
}

async fn get_schedule(
    State(api): State<SchedulesApi>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<GetScheduleOutput>> {
    let name = path_name(path)?;
    check_group(query_value(&query_pairs(query)?, "groupName"))?;
    let rule = api
        .store
        .get(&name)
        .await?
        .ok_or_else(|| SchedulerError::schedule_not_found(&name))?;
    Ok(Json(describe(&api, rule)))
}

async fn update(
    State(api): State<SchedulesApi>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ScheduleArnOutput>> {
    let name = path_name(path)?;
    let now = api.now();
    let new = read_rule(&api, &name, &headers, body, "UpdateSchedule", now).await?;
    let old = api
        .store
        .get(&name)
        .await?
        .ok_or_else(|| SchedulerError::schedule_not_found(&name))?;
    let rule = old.updated(new, now);
    match api.store.update(&rule).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(SchedulerError::schedule_not_found(&name)),
        Err(err) => return Err(err.into()),
    }
    tracing::info!(
        schedule = name,
        expression = rule.expression,
        enabled = rule.enabled,
        "schedule updated"
    );
    api.changed();
    Ok(Json(ScheduleArnOutput {
        schedule_arn: rule.arn(&api.account),
    }))
}

async fn delete(
    State(api): State<SchedulesApi>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>> {
    let name = path_name(path)?;
    check_group(query_value(&query_pairs(query)?, "groupName"))?;
    match api.store.delete(&name).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(SchedulerError::schedule_not_found(&name)),
        Err(err) => return Err(err.into()),
    }
    tracing::info!(schedule = name, "schedule deleted");
    api.changed();
    Ok(Json(serde_json::json!({})))
}

async fn list(
    State(api): State<SchedulesApi>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<ListSchedulesOutput>> {
    let pairs = query_pairs(query)?;
    check_group(query_value(&pairs, "ScheduleGroup"))?;
    let prefix = query_value(&pairs, "NamePrefix");
    if let Some(prefix) = prefix {
        validate_name(prefix).map_err(|_| {
            SchedulerError::validation(format!(
                "1 validation error detected: Value '{prefix}' at 'namePrefix' failed to satisfy \
                 constraint: Member must have length between 1 and 64 and satisfy regular \
                 expression pattern: ^[0-9a-zA-Z-_.]+$"
            ))
        })?;
    }
    let state = match query_value(&pairs, "State") {
        None => None,
        Some("ENABLED") => Some(true),
        Some("DISABLED") => Some(false),
        Some(other) => {
            return Err(SchedulerError::validation(format!(
                "1 validation error detected: Value '{other}' at 'state' failed to satisfy \
                 constraint: Member must satisfy enum value set: [ENABLED, DISABLED]"
            )))
        }
    };
    let max = match query_value(&pairs, "MaxResults") {
        None => LIST_MAX,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=LIST_MAX).contains(&n) => n,
            _ => {
                return Err(SchedulerError::validation(format!(
                    "1 validation error detected: Value '{text}' at 'maxResults' failed to \
                     satisfy constraint: Member must have value between 1 and {LIST_MAX}"
                )))
            }
        },
    };
    // The token is the name the previous page ended with; names sort in byte order.
    let after = query_value(&pairs, "NextToken");
    if let Some(token) = after {
        validate_name(token)
            .map_err(|_| SchedulerError::validation("The NextToken is not valid."))?;
    }
    let mut matching = api
        .store
        .list()
        .await?
        .into_iter()
        .filter(|r| prefix.is_none_or(|p| r.name.starts_with(p)))
        .filter(|r| state.is_none_or(|enabled| r.enabled == enabled))
        .filter(|r| after.is_none_or(|token| r.name.as_str() > token));
    let page: Vec<ScheduleRule> = matching.by_ref().take(max).collect();
    let next_token = if matching.next().is_some() {
        page.last().map(|r| r.name.clone())
    } else {
        None
    };
    let schedules = page
        .into_iter()
        .map(|rule| ScheduleSummary {
            arn: schedule_arn(&api.account, &rule.name),
            creation_date: epoch_seconds(rule.created_at),
            group_name: DEFAULT_GROUP,
            last_modification_date: epoch_seconds(rule.updated_at),
            state: state_name(rule.enabled),
            target: TargetSummary { arn: rule.target },
            name: rule.name,
        })
        .collect();
    Ok(Json(ListSchedulesOutput {
        schedules,
        next_token,
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use axum::http::{Method, Request};
    use nimbus_core::schedule::store::MemoryScheduleStore;
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;

    const FUNCTION: &str = "arn:aws:lambda:eu-west-1:123456789012:function:report";

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test instant is RFC 3339")
            .with_timezone(&Utc)
    }

    struct Fixture {
        store: Arc<MemoryScheduleStore>,
        changes: Arc<AtomicUsize>,
        now: Arc<Mutex<DateTime<Utc>>>,
        app: Router,
    }

    fn fixture() -> Fixture {
        let store = Arc::new(MemoryScheduleStore::default());
        let changes = Arc::new(AtomicUsize::new(0));
        let now = Arc::new(Mutex::new(t("2026-01-01T00:00:00.250Z")));
        let api = SchedulesApi::new(
            store.clone(),
            AccountContext {
                region: "eu-west-1".to_owned(),
                account_id: "123456789012".to_owned(),
            },
            {
                let changes = changes.clone();
                move || {
                    changes.fetch_add(1, Ordering::SeqCst);
                }
            },
        )
        .with_clock({
            let now = now.clone();
            move || *now.lock().expect("clock")
        });
        Fixture {
            store,
            changes,
            now,
            app: router(api),
        }
    }

    impl Fixture {
        async fn call(
            &self,
            method: Method,
            uri: &str,
            body: Option<Value>,
        ) -> (StatusCode, HeaderMap, Value) {
            let mut request = Request::builder().method(method).uri(uri);
            let body = match body {
                Some(json) => {
                    request = request.header("content-type", "application/json");
                    Body::from(json.to_string())
                }
                None => Body::empty(),
            };
            let response = self
                .app
                .clone()
                .oneshot(request.body(body).expect("request"))
                .await
                .expect("infallible");
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body");
            let json = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).expect("JSON body")
            };
            (status, headers, json)
        }

        async fn create(&self, name: &str, body: Value) -> (StatusCode, HeaderMap, Value) {
            self.call(Method::POST, &format!("/schedules/{name}"), Some(body))
                .await
        }

        fn changes(&self) -> usize {
            self.changes.load(Ordering::SeqCst)
        }

        fn set_now(&self, t: DateTime<Utc>) {
            *self.now.lock().expect("clock") = t;
        }
    }

    /// What `aws scheduler create-schedule` sends (botocore adds the ClientToken).
    fn cli_body(expression: &str) -> Value {
        json!({
            "ScheduleExpression": expression,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {
                "Arn": FUNCTION,
                "RoleArn": "arn:aws:iam::123456789012:role/scheduler",
            },
            "ClientToken": "6f1f1a5e-0c1f-4c43-9f8e-3d1d3c9b8a11",
        })
    }

    /// An error answer: status, code header and message.
    fn expect_error(
        answer: (StatusCode, HeaderMap, Value),
        status: StatusCode,
        code: &str,
    ) -> String {
        let (got_status, headers, body) = answer;
        assert_eq!(got_status, status, "{body}");
        assert_eq!(
            headers
                .get("x-amzn-ErrorType")
                .and_then(|v| v.to_str().ok()),
            Some(code),
            "{body}"
        );
        body["Message"]
            .as_str()
            .unwrap_or_else(|| panic!("error body has a Message: {body}"))
            .to_owned()
    }

    #[tokio::test]
    async fn create_get_list_update_delete_round_trip() {
        let f = fixture();
        let mut body = cli_body("cron(0 8 ? * MON-FRI *)");
        body["ScheduleExpressionTimezone"] = json!("Europe/Dublin");
        body["Description"] = json!("weekday report");
        body["Target"]["Input"] = json!(r#"{"report":"daily"}"#);
        body["Target"]["RetryPolicy"] = json!({"MaximumRetryAttempts": 3});
        body["State"] = json!("ENABLED");
        let (status, _, answer) = f.create("daily-report", body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(
            answer,
            json!({"ScheduleArn": "arn:aws:scheduler:eu-west-1:123456789012:schedule/default/daily-report"})
        );
        assert_eq!(f.changes(), 1, "the runner is told");

        let (status, _, got) = f.call(Method::GET, "/schedules/daily-report", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            got,
            json!({
                "ActionAfterCompletion": "NONE",
                "Arn": "arn:aws:scheduler:eu-west-1:123456789012:schedule/default/daily-report",
                "CreationDate": 1767225600.25,
                "Description": "weekday report",
                "FlexibleTimeWindow": {"Mode": "OFF"},
                "GroupName": "default",
                "LastModificationDate": 1767225600.25,
                "Name": "daily-report",
                "ScheduleExpression": "cron(0 8 ? * MON-FRI *)",
                "ScheduleExpressionTimezone": "Europe/Dublin",
                "State": "ENABLED",
                "Target": {
                    "Arn": FUNCTION,
                    "RoleArn": "arn:aws:iam::123456789012:role/scheduler",
                    "Input": "{\"report\":\"daily\"}",
                },
            })
        );
        let stored = f
            .store
            .get("daily-report")
            .await
            .expect("get")
            .expect("stored");
        assert_eq!(stored.target, FUNCTION);
        assert_eq!(stored.last_fire, None);

        // UpdateSchedule replaces the schedule whole: the omitted description and input go.
        f.set_now(t("2026-01-02T00:00:00Z"));
        let mut body = cli_body("rate(15 minutes)");
        body["State"] = json!("DISABLED");
        body["FlexibleTimeWindow"] = json!({"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 10});
        let (status, _, answer) = f
            .call(Method::PUT, "/schedules/daily-report", Some(body))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(f.changes(), 2);
        let (_, _, got) = f
            .call(
                Method::GET,
                "/schedules/daily-report?groupName=default",
                None,
            )
            .await;
        assert_eq!(got["ScheduleExpression"], "rate(15 minutes)");
        assert_eq!(got["State"], "DISABLED");
        assert_eq!(got["CreationDate"], 1767225600.25, "creation is kept");
        assert_eq!(got["LastModificationDate"], 1767312000.0);
        assert_eq!(
            got["FlexibleTimeWindow"],
            json!({"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 10})
        );
        assert!(got.get("Description").is_none(), "{got}");
        assert!(got.get("ScheduleExpressionTimezone").is_none(), "{got}");
        assert!(got["Target"].get("Input").is_none(), "{got}");

        let (status, _, listed) = f.call(Method::GET, "/schedules", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            listed,
            json!({"Schedules": [{
                "Arn": "arn:aws:scheduler:eu-west-1:123456789012:schedule/default/daily-report",
                "CreationDate": 1767225600.25,
                "GroupName": "default",
                "LastModificationDate": 1767312000.0,
                "Name": "daily-report",
                "State": "DISABLED",
                "Target": {"Arn": FUNCTION},
            }]})
        );

        let (status, _, answer) = f
            .call(
                Method::DELETE,
                "/schedules/daily-report?clientToken=abc",
                None,
            )
            .await;
        assert_eq!((status, answer), (StatusCode::OK, json!({})));
        assert_eq!(f.changes(), 3);
        let message = expect_error(
            f.call(Method::GET, "/schedules/daily-report", None).await,
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
        );
        assert_eq!(message, "Schedule daily-report does not exist.");
    }

    #[tokio::test]
    async fn a_bad_cron_is_refused_with_the_schedule_error() {
        let f = fixture();
        let message = expect_error(
            f.create("bad", cli_body("cron(0 8 * * * *)")).await,
            StatusCode::BAD_REQUEST,
            "ValidationException",
        );
        let expected = nimbus_core::schedule::ScheduleExpression::parse("cron(0 8 * * * *)")
            .expect_err("refused")
            .to_string();
        assert_eq!(message, expected);
        let message = expect_error(
            f.create("bad", cli_body("every 5 minutes")).await,
            StatusCode::BAD_REQUEST,
            "ValidationException",
        );
        assert!(
            message.starts_with("invalid schedule expression \"every 5 minutes\""),
            "{message}"
        );
        let mut body = cli_body("cron(0 8 * * ? *)");
        body["ScheduleExpressionTimezone"] = json!("Atlantis/Central");
        let message = expect_error(
            f.create("bad", body).await,
            StatusCode::BAD_REQUEST,
            "ValidationException",
        );
        assert!(
            message.contains("unknown time zone \"Atlantis/Central\""),
            "{message}"
        );
        assert_eq!(f.changes(), 0);
        assert!(f.store.list().await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn the_target_must_be_a_lambda_function_of_this_server() {
        let f = fixture();
        for arn in [
            "arn:aws:sqs:eu-west-1:123456789012:queue",
            "arn:aws:scheduler:::aws-sdk:lambda:invoke",
            "report",
            "arn:aws:lambda:eu-west-1:123456789012:layer:x",
        ] {
            let mut body = cli_body("rate(1 hour)");
            body["Target"]["Arn"] = json!(arn);
            let message = expect_error(
                f.create("t", body).await,
                StatusCode::BAD_REQUEST,
                "ValidationException",
            );
            assert!(
                message.contains("is not a Lambda function ARN"),
                "{arn}: {message}"
            );
            assert!(
                message.contains("arn:aws:lambda:eu-west-1:123456789012:function:NAME"),
                "{message}"
            );
        }
        let mut body = cli_body("rate(1 hour)");
        body["Target"]["Arn"] = json!("arn:aws:lambda:us-east-1:123456789012:function:report");
        let message = expect_error(
            f.create("t", body).await,
            StatusCode::BAD_REQUEST,
            "ValidationException",
        );
        assert!(message.contains("another region or account"), "{message}");

        // Qualified ARNs are fine.
        let mut body = cli_body("rate(1 hour)");
        body["Target"]["Arn"] = json!(format!("{FUNCTION}:live"));
        assert_eq!(f.create("t", body).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn malformed_and_missing_members_are_validation_errors() {
        let f = fixture();
        let cases: Vec<(&str, Value, &str)> = vec![
            ("bad%20name%21", cli_body("rate(1 hour)"), "'name'"),
            (
                "n",
                json!({"FlexibleTimeWindow": {"Mode": "OFF"}, "Target": {"Arn": FUNCTION}}),
                "'scheduleExpression'",
            ),
            (
                "n",
                json!({"ScheduleExpression": "rate(1 hour)", "Target": {"Arn": FUNCTION}}),
                "'flexibleTimeWindow'",
            ),
            (
                "n",
                json!({"ScheduleExpression": "rate(1 hour)", "FlexibleTimeWindow": {"Mode": "OFF"}}),
                "'target'",
            ),
            (
                "n",
                json!({"ScheduleExpression": "rate(1 hour)", "FlexibleTimeWindow": {"Mode": "SOMETIMES"}, "Target": {"Arn": FUNCTION}}),
                "[OFF, FLEXIBLE]",
            ),
            (
                "n",
                json!({"ScheduleExpression": "rate(1 hour)", "FlexibleTimeWindow": {"Mode": "FLEXIBLE"}, "Target": {"Arn": FUNCTION}}),
                "needs MaximumWindowInMinutes",
            ),
            (
                "n",
                json!({"ScheduleExpression": "rate(1 hour)", "FlexibleTimeWindow": {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 5000}, "Target": {"Arn": FUNCTION}}),
                "maximumWindowInMinutes",
            ),
            (
                "n",
                json!({"ScheduleExpression": "rate(1 hour)", "FlexibleTimeWindow": {"Mode": "OFF"}, "Target": {"Arn": FUNCTION}, "State": "PAUSED"}),
                "[ENABLED, DISABLED]",
            ),
            (
                "n",
                json!({"ScheduleExpression": "rate(1 hour)", "FlexibleTimeWindow": {"Mode": "OFF"}, "Target": {"Arn": FUNCTION, "Input": "not json"}}),
                "well-formed JSON",
            ),
            (
                "n",
                json!({"ScheduleExpression": "rate(1 hour)", "FlexibleTimeWindow": {"Mode": "OFF"}, "Target": {"Arn": FUNCTION, "RoleArn": "admin"}}),
                "target.roleArn",
            ),
            (
                "n",
                json!({"ScheduleExpression": "rate(1 hour)", "FlexibleTimeWindow": {"Mode": "OFF"}, "Target": {"Arn": FUNCTION}, "StartDate": 1767225600}),
                "StartDate is not supported by Nimbus",
            ),
            (
                "n",
                json!({"ScheduleExpression": "rate(1 hour)", "FlexibleTimeWindow": {"Mode": "OFF"}, "Target": {"Arn": FUNCTION}, "ActionAfterCompletion": "DELETE"}),
                "not supported by Nimbus",
            ),
            (
                "n",
                json!({"ScheduleExpression": 5}),
                "Could not read the request body as CreateSchedule input",
            ),
        ];
        for (name, body, needle) in cases {
            let message = expect_error(
                f.create(name, body.clone()).await,
                StatusCode::BAD_REQUEST,
                "ValidationException",
            );
            assert!(message.contains(needle), "{body}: {message}");
        }
        let mut body = cli_body("rate(1 hour)");
        body["GroupName"] = json!("team-a");
        let message = expect_error(
            f.create("n", body).await,
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
        );
        assert_eq!(message, "Schedule group team-a does not exist.");
        assert_eq!(f.changes(), 0);
    }

    #[tokio::test]
    async fn duplicates_conflict_and_missing_schedules_are_not_found() {
        let f = fixture();
        assert_eq!(
            f.create("r", cli_body("rate(1 hour)")).await.0,
            StatusCode::OK
        );
        let message = expect_error(
            f.create("r", cli_body("rate(2 hours)")).await,
            StatusCode::CONFLICT,
            "ConflictException",
        );
        assert_eq!(message, "Schedule r already exists.");
        for (method, body) in [
            (Method::PUT, Some(cli_body("rate(1 hour)"))),
            (Method::DELETE, None),
            (Method::GET, None),
        ] {
            let message = expect_error(
                f.call(method.clone(), "/schedules/ghost", body).await,
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
            );
            assert_eq!(message, "Schedule ghost does not exist.", "{method}");
        }
        assert_eq!(f.changes(), 1);
    }

    #[tokio::test]
    async fn updates_keep_the_fire_history_unless_the_schedule_changes() {
        let f = fixture();
        f.create("r", cli_body("rate(1 hour)")).await;
        let fired = t("2026-01-01T05:00:00.250Z");
        f.store.record_fire("r", fired).await.expect("record");

        f.set_now(t("2026-01-01T05:30:00Z"));
        let mut body = cli_body("rate(1 hour)");
        body["Description"] = json!("same schedule");
        f.call(Method::PUT, "/schedules/r", Some(body)).await;
        assert_eq!(
            f.store.get("r").await.expect("get").expect("r").last_fire,
            Some(fired)
        );

        f.set_now(t("2026-01-01T06:30:00Z"));
        f.call(Method::PUT, "/schedules/r", Some(cli_body("rate(2 hours)")))
            .await;
        assert_eq!(
            f.store.get("r").await.expect("get").expect("r").last_fire,
            Some(t("2026-01-01T06:30:00Z")),
            "a new schedule does not catch up on the old one's fires"
        );
    }

    #[tokio::test]
    async fn list_filters_and_pages_in_name_order() {
        let f = fixture();
        for name in ["c-job", "a-job", "b-job", "b-other", "a-off"] {
            let mut body = cli_body("rate(1 day)");
            if name.ends_with("off") {
                body["State"] = json!("DISABLED");
            }
            assert_eq!(f.create(name, body).await.0, StatusCode::OK);
        }
        let names = |page: &Value| -> Vec<String> {
            page["Schedules"]
                .as_array()
                .expect("Schedules")
                .iter()
                .map(|s| s["Name"].as_str().expect("Name").to_owned())
                .collect()
        };
        let (_, _, page) = f.call(Method::GET, "/schedules?MaxResults=2", None).await;
        assert_eq!(names(&page), ["a-job", "a-off"]);
        let token = page["NextToken"].as_str().expect("more pages").to_owned();
        let (_, _, page) = f
            .call(
                Method::GET,
                &format!("/schedules?MaxResults=2&NextToken={token}"),
                None,
            )
            .await;
        assert_eq!(names(&page), ["b-job", "b-other"]);
        let token = page["NextToken"].as_str().expect("more pages").to_owned();
        let (_, _, page) = f
            .call(
                Method::GET,
                &format!("/schedules?MaxResults=2&NextToken={token}"),
                None,
            )
            .await;
        assert_eq!(names(&page), ["c-job"]);
        assert!(page.get("NextToken").is_none(), "last page: {page}");

        let (_, _, page) = f.call(Method::GET, "/schedules?NamePrefix=b-", None).await;
        assert_eq!(names(&page), ["b-job", "b-other"]);
        let (_, _, page) = f.call(Method::GET, "/schedules?State=DISABLED", None).await;
        assert_eq!(names(&page), ["a-off"]);
        let (_, _, page) = f
            .call(
                Method::GET,
                "/schedules?ScheduleGroup=default&State=ENABLED&NamePrefix=a",
                None,
            )
            .await;
        assert_eq!(names(&page), ["a-job"]);

        for (query, status, code) in [
            (
                "MaxResults=0",
                StatusCode::BAD_REQUEST,
                "ValidationException",
            ),
            (
                "MaxResults=101",
                StatusCode::BAD_REQUEST,
                "ValidationException",
            ),
            ("State=ON", StatusCode::BAD_REQUEST, "ValidationException"),
            (
                "NamePrefix=a%20b",
                StatusCode::BAD_REQUEST,
                "ValidationException",
            ),
            (
                "NextToken=%25%25",
                StatusCode::BAD_REQUEST,
                "ValidationException",
            ),
            (
                "ScheduleGroup=other",
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
            ),
        ] {
            expect_error(
                f.call(Method::GET, &format!("/schedules?{query}"), None)
                    .await,
                status,
                code,
            );
        }
        let (status, _, empty) = f.call(Method::GET, "/schedules?NamePrefix=zzz", None).await;
        assert_eq!((status, empty), (StatusCode::OK, json!({"Schedules": []})));
    }

    #[tokio::test]
    async fn store_failures_are_internal_errors() {
        struct Broken;
        #[async_trait::async_trait]
        impl ScheduleStore for Broken {
            async fn create(&self, _: &ScheduleRule) -> Result<(), StoreError> {
                Err(StoreError::backend(std::io::Error::other("disk full")))
            }
            async fn get(&self, _: &str) -> Result<Option<ScheduleRule>, StoreError> {
                Err(StoreError::backend(std::io::Error::other("disk full")))
            }
            async fn list(&self) -> Result<Vec<ScheduleRule>, StoreError> {
                Err(StoreError::backend(std::io::Error::other("disk full")))
            }
            async fn update(&self, _: &ScheduleRule) -> Result<(), StoreError> {
                Err(StoreError::backend(std::io::Error::other("disk full")))
            }
            async fn delete(&self, _: &str) -> Result<(), StoreError> {
                Err(StoreError::backend(std::io::Error::other("disk full")))
            }
            async fn record_fire(&self, _: &str, _: DateTime<Utc>) -> Result<(), StoreError> {
                Err(StoreError::backend(std::io::Error::other("disk full")))
            }
        }
        let app: Router = router(SchedulesApi::new(
            Arc::new(Broken),
            AccountContext::default(),
            || {},
        ));
        let response = app
            .oneshot(
                Request::builder()
                    .uri("/schedules")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response
                .headers()
                .get("x-amzn-ErrorType")
                .and_then(|v| v.to_str().ok()),
            Some("InternalServerException")
        );
    }

    #[test]
    fn the_router_merges_into_a_router_with_other_state() {
        #[derive(Clone)]
        struct Other;
        let api = SchedulesApi::new(
            Arc::new(MemoryScheduleStore::default()),
            AccountContext::default(),
            || {},
        );
        let merged: Router<Other> = Router::new()
            .route("/other", get(|| async { "other" }))
            .merge(router(api));
        let _: Router = merged.with_state(Other);
    }

    /// The wiring the server uses: these routes behind the same request door as the Lambda API,
    /// merged beside a router that has a fallback of its own.
    #[tokio::test]
    async fn behind_the_request_door_beside_the_lambda_router() {
        let auth: Arc<dyn crate::Authenticator> = Arc::new(crate::AllowAll);
        let api = SchedulesApi::new(
            Arc::new(MemoryScheduleStore::default()),
            AccountContext::default(),
            || {},
        );
        let lambda: Router = Router::new()
            .route("/2015-03-31/functions", get(|| async { "functions" }))
            .fallback(|| async { (StatusCode::NOT_FOUND, "no such operation") });
        let app = lambda.merge(router(api).layer(axum::middleware::from_fn_with_state(
            auth,
            crate::middleware::aws_request,
        )));
        let response = app
            .clone()
            .oneshot(
                Request::builder()
                    .uri("/schedules")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().contains_key("x-amzn-RequestId"));
        let response = app
            .oneshot(
                Request::builder()
                    .uri("/nowhere")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
