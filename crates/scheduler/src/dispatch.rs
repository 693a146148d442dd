//! Asynchronous invocation (`lambda-compat.md` §9): accepting events into the durable queue and
//! running them, with Lambda's retries, maximum age and destinations.
//!
//! The dispatcher leases due events from the [`EventQueue`], runs each through the scheduler's
//! synchronous path (so the same concurrency limits apply), and then settles it:
//!
//! - success: the on-success destination gets an invocation record; the event is removed;
//! - function error (incl. timeout): retried after the configured delays while
//!   `MaximumRetryAttempts` allows, then the on-failure destination gets the record;
//! - throttle or platform error: put back without counting an attempt, with a backoff that
//!   grows with the event's age (1 s up to 5 min), until `MaximumEventAgeInSeconds`;
//! - too old: the on-failure destination gets an `EventAgeExceeded` record.
//!
//! Destinations are functions (`arn:aws:lambda:…:function:NAME[:QUALIFIER]`); the record is
//! delivered as an async invocation of that function, so it is as durable as any event.
//! Delivery is at-least-once: an event whose run was cut short by a crash runs again after
//! the restart, when [`EventQueue::recover`] gives back the dead process's leases.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use nimbus_core::invoke::{InvocationRequest, InvocationResult, InvocationType};
use nimbus_core::queue::{
    defaults, EventInvokeConfig, EventQueue, MessageAttribute, OutboxMessage, QueuedEvent,
};
use nimbus_core::{AccountContext, FunctionName, FunctionRef, ServiceError};
use tokio::sync::Notify;

use crate::pace::{Pace, ProcStat};

/// Timing of the async path; tests shorten it.
#[derive(Debug, Clone, Copy)]
pub struct AsyncSettings {
    /// Delay before the 2nd and the 3rd attempt after a function error (Lambda: ~1 and ~2 min).
    pub retry_delays: [Duration; 2],
    /// Smallest and largest backoff after a throttle or platform error (Lambda: 1 s to 5 min).
    pub throttle_backoff: (Duration, Duration),
    /// How often the queue is checked for events that became due without a wake-up.
    pub poll: Duration,
    /// At most this many events run at once in this dispatcher (on top of which concurrency
    /// limits apply); fewer while the host's CPUs are saturated (see `pace.rs`).
    pub max_in_flight: usize,
    /// At least this many may always run at once, however busy the host.
    pub min_in_flight: usize,
    /// How long an event waits for a concurrency slot before it counts as throttled.
    pub throttle_patience: Duration,
}

impl Default for AsyncSettings {
    fn default() -> Self {
        Self {
            retry_delays: [Duration::from_secs(60), Duration::from_secs(120)],
            throttle_backoff: (Duration::from_secs(1), Duration::from_secs(300)),
            poll: Duration::from_millis(200),
            max_in_flight: 64,
            min_in_flight: std::thread::available_parallelism().map_or(2, |n| n.get().max(2)),
            throttle_patience: Duration::from_secs(1),
        }
    }
}

/// Why an event's processing ended without success (`requestContext.condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Condition {
    Success,
    RetriesExhausted,
    EventAgeExceeded,
}

impl Condition {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "Success",
            Self::RetriesExhausted => "RetriesExhausted",
            Self::EventAgeExceeded => "EventAgeExceeded",
        }
    }
}

/// The async half of the scheduler: its queue, its wake-up and its in-flight count.
pub(crate) struct AsyncPath {
    pub(crate) queue: Arc<dyn EventQueue>,
    pub(crate) settings: AsyncSettings,
    /// Rung when an event is enqueued or a run finishes.
    pub(crate) wake: Notify,
    pub(crate) in_flight: AtomicUsize,
    /// How many may be in flight now.
    pub(crate) pace: Pace,
    /// This process's lease owner id.
    pub(crate) owner: String,
}

impl AsyncPath {
    pub(crate) fn new(queue: Arc<dyn EventQueue>, settings: AsyncSettings) -> Self {
        Self {
            queue,
            settings,
            wake: Notify::new(),
            in_flight: AtomicUsize::new(0),
            pace: Pace::new(
                settings.min_in_flight,
                settings.max_in_flight,
                Box::new(ProcStat::new()),
            ),
            owner: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// Accept an event: durable when this returns.
    pub(crate) async fn accept(
        &self,
        function: &FunctionName,
        qualifier: Option<String>,
        request: &InvocationRequest,
    ) -> Result<(), ServiceError> {
        let now = Utc::now();
        let event = QueuedEvent {
            id: request.request_id.clone(),
            function: function.clone(),
            qualifier,
            payload: request.payload.clone(),
            enqueued_at: now,
            attempts: 0,
            not_before: now,
        };
        match self.queue.enqueue(&event).await {
            Ok(()) => {}
            // The same id is the same event (a retried schedule fire, a resent destination
            // record): it is queued already, which is what the caller wants.
            Err(nimbus_core::StoreError::AlreadyExists) => return Ok(()),
            Err(err) => {
                tracing::error!(error = %err, request_id = %event.id, "could not queue an async event");
                return Err(ServiceError::Service(
                    "The event could not be queued.".to_owned(),
                ));
            }
        }
        self.wake.notify_one();
        Ok(())
    }
}

/// The settings that apply to an event: its function's config or Lambda's defaults.
pub(crate) struct Policy {
    pub(crate) max_retries: u32,
    pub(crate) max_age: Duration,
    pub(crate) on_success: Option<String>,
    pub(crate) on_failure: Option<String>,
    /// The version's `DeadLetterConfig.TargetArn`: where a failed event goes when there is
    /// no on-failure destination.
    pub(crate) dead_letter: Option<String>,
}

impl Policy {
    pub(crate) fn from_config(
        config: Option<EventInvokeConfig>,
        dead_letter: Option<String>,
    ) -> Self {
        let config = config.as_ref();
        Self {
            max_retries: config
                .and_then(|c| c.maximum_retry_attempts)
                .unwrap_or(defaults::MAXIMUM_RETRY_ATTEMPTS),
            max_age: config
                .and_then(|c| c.maximum_event_age_seconds)
                .map_or(defaults::MAXIMUM_EVENT_AGE, |s| {
                    Duration::from_secs(u64::from(s))
                }),
            on_success: config.and_then(|c| c.on_success.clone()),
            on_failure: config.and_then(|c| c.on_failure.clone()),
            dead_letter,
        }
    }
}

/// What to do with an event after one run.
#[derive(Debug, PartialEq)]
pub(crate) enum Settle {
    /// Remove it; deliver a record to this destination first, if any.
    Done(Option<(String, Condition)>),
    /// Remove it, after sending it to this dead-letter queue (it failed for good and there is
    /// no on-failure destination).
    DeadLetter(String),
    /// Run it again at this time, with this many attempts counted.
    Retry { attempts: u32, at: DateTime<Utc> },
}

/// Decide an event's fate from the outcome of one run (`None` = not run: too old).
pub(crate) fn settle(
    event: &QueuedEvent,
    policy: &Policy,
    settings: &AsyncSettings,
    outcome: Option<&Result<InvocationResult, ServiceError>>,
    now: DateTime<Utc>,
) -> Settle {
    let failed = |condition| match (&policy.on_failure, &policy.dead_letter) {
        (None, Some(queue)) => Settle::DeadLetter(queue.clone()),
        (on_failure, _) => Settle::Done(on_failure.clone().map(|d| (d, condition))),
    };
    let Some(outcome) = outcome else {
        return failed(Condition::EventAgeExceeded);
    };
    match outcome {
        Ok(result) if result.function_error.is_none() => {
            Settle::Done(policy.on_success.clone().map(|d| (d, Condition::Success)))
        }
        // A function error: an attempt that counts.
        Ok(_) | Err(ServiceError::InvalidRuntime(_)) => {
            let attempts = event.attempts + 1;
            if attempts > policy.max_retries {
                return failed(Condition::RetriesExhausted);
            }
            let index = usize::try_from(attempts - 1).unwrap_or(usize::MAX);
            let delay = settings
                .retry_delays
                .get(index)
                .or(settings.retry_delays.last())
                .copied()
                .unwrap_or_default();
            Settle::Retry {
                attempts,
                at: now + delay,
            }
        }
        // The function (or version) is gone: nothing will ever run it.
        Err(ServiceError::ResourceNotFound(_)) => Settle::Done(None),
        // Throttled or the platform failed: back off, without counting an attempt.
        Err(_) => {
            let age = (now - event.enqueued_at).to_std().unwrap_or_default();
            let (min, max) = settings.throttle_backoff;
            Settle::Retry {
                attempts: event.attempts,
                at: now + age.clamp(min, max),
            }
        }
    }
}

/// Whether the event is older than its policy allows.
pub(crate) fn expired(event: &QueuedEvent, policy: &Policy, now: DateTime<Utc>) -> bool {
    (now - event.enqueued_at)
        .to_std()
        .is_ok_and(|age| age > policy.max_age)
}

/// The request that runs a queued event: the same id on every attempt, as Lambda does.
pub(crate) fn request_of(event: &QueuedEvent) -> Result<InvocationRequest, ServiceError> {
    let reference = match &event.qualifier {
        Some(q) => format!("{}:{q}", event.function),
        None => event.function.to_string(),
    };
    Ok(InvocationRequest {
        function: FunctionRef::parse(&reference)?,
        payload: event.payload.clone(),
        invocation_type: InvocationType::RequestResponse,
        log_tail: false,
        client_context: None,
        request_id: event.id.clone(),
    })
}

/// The invocation record sent to a destination (Lambda's format).
pub(crate) fn invocation_record(
    event: &QueuedEvent,
    account: &AccountContext,
    condition: Condition,
    outcome: Option<&Result<InvocationResult, ServiceError>>,
    invoke_count: u32,
    now: DateTime<Utc>,
) -> Bytes {
    let function_arn = account.qualified_function_arn(
        &event.function,
        event.qualifier.as_deref().unwrap_or("$LATEST"),
    );
    let request_payload = serde_json::from_slice::<serde_json::Value>(&event.payload)
        .unwrap_or_else(|_| String::from_utf8_lossy(&event.payload).into_owned().into());
    let mut record = serde_json::json!({
        "version": "1.0",
        "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "requestContext": {
            "requestId": event.id,
            "functionArn": function_arn,
            "condition": condition.as_str(),
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": request_payload,
    });
    if let Some(Ok(result)) = outcome {
        let mut context = serde_json::json!({
            "statusCode": 200,
            "executedVersion": result.executed_version,
        });
        if let Some(error) = &result.function_error {
            context["functionError"] = error.clone().into();
        }
        record["responseContext"] = context;
        record["responsePayload"] = serde_json::from_slice(&result.payload)
            .unwrap_or_else(|_| String::from_utf8_lossy(&result.payload).into_owned().into());
    }
    Bytes::from(record.to_string())
}

/// Most bytes of `ErrorMessage` in a dead-letter message.
const DEAD_LETTER_MESSAGE_MAX: usize = 1024;

/// The dead-letter message of an event that failed for good: the original event as the body,
/// with Lambda's attributes `RequestID`, `ErrorCode` (the HTTP status of the last attempt) and
/// `ErrorMessage` (its first kilobyte).
pub(crate) fn dead_letter_message(
    event: &QueuedEvent,
    target: &str,
    policy: &Policy,
    outcome: Option<&Result<InvocationResult, ServiceError>>,
    now: DateTime<Utc>,
) -> OutboxMessage {
    let (code, message) = match outcome {
        Some(Ok(result)) => {
            let message = serde_json::from_slice::<serde_json::Value>(&result.payload)
                .ok()
                .and_then(|body| body.get("errorMessage")?.as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&result.payload).into_owned());
            (200, message)
        }
        Some(Err(error)) => (error.http_status(), error.message().to_owned()),
        None => (
            429,
            format!(
                "The event was not run within its maximum age of {} seconds.",
                policy.max_age.as_secs()
            ),
        ),
    };
    let mut message = message;
    if message.len() > DEAD_LETTER_MESSAGE_MAX {
        let mut end = DEAD_LETTER_MESSAGE_MAX;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    OutboxMessage {
        id: uuid::Uuid::new_v4().to_string(),
        target_arn: target.to_owned(),
        body: event.payload.clone(),
        attributes: [
            ("RequestID", MessageAttribute::string(&event.id)),
            ("ErrorCode", MessageAttribute::number(code)),
            ("ErrorMessage", MessageAttribute::string(message)),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect(),
        sent_at: now,
    }
}

/// The function a destination ARN names, if it is a Lambda function of this account.
pub(crate) fn destination_function(arn: &str) -> Option<(FunctionName, Option<String>)> {
    let reference = FunctionRef::parse(arn).ok()?;
    let qualifier = reference.qualifier.map(|q| q.to_string());
    Some((reference.name, qualifier))
}

/// Decrements the in-flight count and wakes the dispatcher when a run ends.
pub(crate) struct InFlight<'a>(pub(crate) &'a AsyncPath);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(attempts: u32, age_secs: i64, now: DateTime<Utc>) -> QueuedEvent {
        QueuedEvent {
            id: "id-1".into(),
            function: FunctionName::new("f").expect("name"),
            qualifier: None,
            payload: Bytes::from_static(br#"{"k":1}"#),
            enqueued_at: now - chrono::Duration::seconds(age_secs),
            attempts,
            not_before: now,
        }
    }

    fn result(error: bool) -> Result<InvocationResult, ServiceError> {
        Ok(InvocationResult {
            payload: Bytes::from_static(br#"{"errorMessage":"boom"}"#),
            function_error: error.then(|| "Unhandled".to_owned()),
            executed_version: "$LATEST".into(),
            log_result: None,
            content_type: None,
        })
    }

    fn policy(max_retries: u32) -> Policy {
        Policy {
            max_retries,
            max_age: Duration::from_secs(3600),
            on_success: Some("arn:aws:lambda:us-east-1:000000000000:function:ok".into()),
            on_failure: Some("arn:aws:lambda:us-east-1:000000000000:function:dlq".into()),
            dead_letter: None,
        }
    }

    #[test]
    fn without_an_on_failure_destination_failures_go_to_the_dead_letter_queue() {
        let now = Utc::now();
        let settings = AsyncSettings::default();
        let queue = "arn:aws:sqs:us-east-1:000000000000:dlq";
        let p = Policy {
            on_failure: None,
            dead_letter: Some(queue.into()),
            ..policy(0)
        };
        let failed = result(true);
        assert_eq!(
            settle(&event(0, 0, now), &p, &settings, Some(&failed), now),
            Settle::DeadLetter(queue.into())
        );
        assert_eq!(
            settle(&event(0, 0, now), &p, &settings, None, now),
            Settle::DeadLetter(queue.into())
        );
        // Success never dead-letters; an on-failure destination takes precedence.
        assert!(matches!(
            settle(&event(0, 0, now), &p, &settings, Some(&result(false)), now),
            Settle::Done(Some((_, Condition::Success)))
        ));
        let both = Policy {
            dead_letter: Some(queue.into()),
            ..policy(0)
        };
        assert!(matches!(
            settle(&event(0, 0, now), &both, &settings, Some(&failed), now),
            Settle::Done(Some((_, Condition::RetriesExhausted)))
        ));

        let message = dead_letter_message(&event(0, 0, now), queue, &p, Some(&failed), now);
        assert_eq!(message.target_arn, queue);
        assert_eq!(message.body.as_ref(), br#"{"k":1}"#);
        let attribute = |name: &str| message.attributes[name].clone();
        assert_eq!(attribute("RequestID"), MessageAttribute::string("id-1"));
        assert_eq!(attribute("ErrorCode"), MessageAttribute::number(200));
        assert_eq!(attribute("ErrorMessage"), MessageAttribute::string("boom"));

        let long = Ok(InvocationResult {
            payload: Bytes::from("é".repeat(700)),
            ..result(true).expect("result")
        });
        let message = dead_letter_message(&event(0, 0, now), queue, &p, Some(&long), now);
        let text = &message.attributes["ErrorMessage"].string_value;
        assert!(text.len() <= 1024 && text.len() > 1000, "{}", text.len());
        let throttled = Err(ServiceError::throttled(
            nimbus_core::ThrottleReason::ConcurrentInvocationLimitExceeded,
        ));
        let message = dead_letter_message(&event(0, 0, now), queue, &p, Some(&throttled), now);
        assert_eq!(
            message.attributes["ErrorCode"],
            MessageAttribute::number(429)
        );
    }

    #[test]
    fn function_errors_are_retried_with_lambdas_delays_then_sent_to_on_failure() {
        let now = Utc::now();
        let settings = AsyncSettings::default();
        let p = policy(2);
        assert_eq!(
            settle(&event(0, 0, now), &p, &settings, Some(&result(true)), now),
            Settle::Retry {
                attempts: 1,
                at: now + Duration::from_secs(60)
            }
        );
        assert_eq!(
            settle(&event(1, 60, now), &p, &settings, Some(&result(true)), now),
            Settle::Retry {
                attempts: 2,
                at: now + Duration::from_secs(120)
            }
        );
        assert_eq!(
            settle(&event(2, 180, now), &p, &settings, Some(&result(true)), now),
            Settle::Done(Some((
                "arn:aws:lambda:us-east-1:000000000000:function:dlq".into(),
                Condition::RetriesExhausted
            )))
        );
        assert!(matches!(
            settle(
                &event(0, 0, now),
                &policy(0),
                &settings,
                Some(&result(true)),
                now
            ),
            Settle::Done(Some((_, Condition::RetriesExhausted)))
        ));
    }

    #[test]
    fn throttles_back_off_without_counting_an_attempt() {
        let now = Utc::now();
        let settings = AsyncSettings::default();
        let throttled = Err(ServiceError::throttled(
            nimbus_core::ThrottleReason::ConcurrentInvocationLimitExceeded,
        ));
        let young = settle(
            &event(1, 0, now),
            &policy(2),
            &settings,
            Some(&throttled),
            now,
        );
        assert_eq!(
            young,
            Settle::Retry {
                attempts: 1,
                at: now + Duration::from_secs(1)
            }
        );
        let old = settle(
            &event(1, 4000, now),
            &policy(2),
            &settings,
            Some(&throttled),
            now,
        );
        assert_eq!(
            old,
            Settle::Retry {
                attempts: 1,
                at: now + Duration::from_secs(300)
            }
        );
    }

    #[test]
    fn success_goes_to_on_success_and_age_to_on_failure() {
        let now = Utc::now();
        let settings = AsyncSettings::default();
        assert!(matches!(
            settle(&event(0, 0, now), &policy(2), &settings, Some(&result(false)), now),
            Settle::Done(Some((d, Condition::Success))) if d.ends_with(":ok")
        ));
        assert!(matches!(
            settle(&event(0, 0, now), &policy(2), &settings, None, now),
            Settle::Done(Some((_, Condition::EventAgeExceeded)))
        ));
        assert!(expired(&event(0, 3601, now), &policy(2), now));
        assert!(!expired(&event(0, 10, now), &policy(2), now));
    }

    #[test]
    fn records_have_lambdas_fields() {
        let now = Utc::now();
        let account = AccountContext::default();
        let failed = result(true);
        let record = invocation_record(
            &event(2, 0, now),
            &account,
            Condition::RetriesExhausted,
            Some(&failed),
            3,
            now,
        );
        let v: serde_json::Value = serde_json::from_slice(&record).expect("json");
        assert_eq!(v["version"], "1.0");
        assert_eq!(v["requestContext"]["requestId"], "id-1");
        assert_eq!(v["requestContext"]["condition"], "RetriesExhausted");
        assert_eq!(v["requestContext"]["approximateInvokeCount"], 3);
        assert!(v["requestContext"]["functionArn"]
            .as_str()
            .is_some_and(|a| a.ends_with(":function:f:$LATEST")));
        assert_eq!(v["requestPayload"], serde_json::json!({"k": 1}));
        assert_eq!(v["responseContext"]["statusCode"], 200);
        assert_eq!(v["responseContext"]["functionError"], "Unhandled");
        assert_eq!(v["responsePayload"]["errorMessage"], "boom");
        assert!(v["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        let expired = invocation_record(
            &event(0, 0, now),
            &account,
            Condition::EventAgeExceeded,
            None,
            0,
            now,
        );
        let v: serde_json::Value = serde_json::from_slice(&expired).expect("json");
        assert!(v.get("responseContext").is_none());
    }

    #[test]
    fn destinations_name_functions() {
        assert_eq!(
            destination_function("arn:aws:lambda:us-east-1:000000000000:function:dlq:live"),
            Some((
                FunctionName::new("dlq").expect("name"),
                Some("live".to_owned())
            ))
        );
        assert_eq!(
            destination_function("arn:aws:sqs:us-east-1:000000000000:q"),
            None
        );
    }
}
