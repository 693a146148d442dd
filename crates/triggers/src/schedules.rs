//! [`ScheduleRunner`]: fires durable schedules by invoking their functions asynchronously.
//!
//! # What a pass does
//!
//! The runner loads every rule from the [`ScheduleStore`], and for each enabled one looks at the
//! fires of its schedule strictly after [`ScheduleRule::resume_after`] — the later of its last
//! recorded fire and its creation (rate schedules count their periods from the creation time).
//! If fires are due (at or before now) it fires the *latest* of them once; then it sleeps until
//! the earliest upcoming fire of any rule, or until [`ScheduleRunner::reload`] says the rules
//! changed.
//!
//! # A fire
//!
//! A fire is one [`Invoke::invoke`] with [`InvocationType::Event`]. The payload is the rule's
//! constant input, or else the EventBridge Scheduled Event ([`scheduled_event`]) whose
//! `resources` name the schedule's ARN (`arn:aws:scheduler:REGION:ACCOUNT:schedule/default/NAME`)
//! and whose `time` is the fire time. The request id — also the event's `id` — is derived from
//! the rule name and the fire time by [`fire_id`], never drawn at random.
//!
//! An invoke that is not accepted (the function is missing, throttled, the queue failed) is
//! logged and tried again, `max_attempts` times in all with a doubling backoff from
//! `retry_backoff`; after that the fire is given up — logged as an error — and recorded all the
//! same, so one bad target cannot hold the other rules up or be retried forever.
//!
//! # No duplicates, nothing lost
//!
//! The fire is recorded ([`ScheduleStore::record_fire`], durable) only *after* the invoke was
//! accepted, and an accepted `Event` invoke is durably in the async queue. So:
//!
//! - a crash before the invoke was accepted loses nothing: the fire is not recorded, and the
//!   runner of the next start fires it (as a missed fire, see below);
//! - a crash after the invoke was accepted but before the fire was recorded makes the next
//!   start fire it again — with the *same* request id, because the id depends only on the rule
//!   name and the fire time. The async queue treats an event whose id it already holds as the
//!   same event, so the function still runs once for that fire;
//! - once recorded, a fire never runs again: `last_fire` only moves forward.
//!
//! # Missed fires
//!
//! Fires that came due while no runner was running (between the last recorded fire and the
//! runner's start) are *missed*. With [`RunnerSettings::catch_up`] (the default) the latest
//! missed fire runs once when the runner starts — a daily report runs once after a week of
//! downtime, not seven times. Without it, missed fires are skipped (and recorded as dealt with)
//! and the rule goes on with its first fire after now. Fires that come due while the runner
//! runs are never skipped; if it falls behind (a suspended host), it likewise fires only the
//! latest due one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use nimbus_core::invoke::{InvocationRequest, InvocationType, Invoke};
use nimbus_core::schedule::{scheduled_event, Schedule, ScheduleRule, ScheduleStore};
use nimbus_core::{AccountContext, ServiceError, StoreError};
use sha2::{Digest, Sha256};
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::clock::Clock;

/// How the runner behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerSettings {
    /// Run the latest fire missed while the server was down, once, at start-up (default
    /// `true`); `false` skips missed fires.
    pub catch_up: bool,
    /// Attempts at one fire's invoke before giving it up (default 3; 0 counts as 1).
    pub max_attempts: u32,
    /// Wait before the second attempt, doubled before each further one (default 1 s).
    pub retry_backoff: Duration,
    /// Longest one attempt may take before it counts as failed (default 30 s). An `Event`
    /// invoke only enqueues, so this is a safety net against a wedged invoker.
    pub attempt_timeout: Duration,
    /// Wait before reading the rules again after the store failed (default 5 s).
    pub store_retry: Duration,
}

impl Default for RunnerSettings {
    fn default() -> Self {
        Self {
            catch_up: true,
            max_attempts: 3,
            retry_backoff: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(30),
            store_retry: Duration::from_secs(5),
        }
    }
}

/// The fire the runner is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextFire {
    /// The rule's name.
    pub rule: String,
    /// When it fires.
    pub at: DateTime<Utc>,
}

/// What the runner is doing, published after each pass over the rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunnerStatus {
    /// Passes completed since the runner started.
    pub passes: u64,
    /// The earliest upcoming fire, if any rule has one.
    pub next: Option<NextFire>,
}

/// Fires durable schedules; see the module docs. Share it in an `Arc`: one task runs
/// [`run`](Self::run), others call [`reload`](Self::reload) and [`stop`](Self::stop).
pub struct ScheduleRunner {
    store: Arc<dyn ScheduleStore>,
    invoker: Arc<dyn Invoke>,
    clock: Arc<dyn Clock>,
    account: AccountContext,
    settings: RunnerSettings,
    wake: Notify,
    stop: watch::Sender<bool>,
    status: watch::Sender<RunnerStatus>,
}

impl std::fmt::Debug for ScheduleRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScheduleRunner")
            .field("account", &self.account)
            .field("settings", &self.settings)
            .field("status", &*self.status.borrow())
            .finish_non_exhaustive()
    }
}

/// What became of one fire.
enum Outcome {
    /// The invoke was accepted.
    Delivered,
    /// Every attempt failed, or the target is unusable; recorded anyway.
    GaveUp,
    /// The runner is stopping: not recorded, so the next start fires it.
    Stopped,
}

/// What the runner remembers between passes (nothing of it needs to survive a restart).
#[derive(Default)]
struct Memory {
    /// Per rule, fires at or before this instant are dealt with even if the store could not
    /// record it (a failed `record_fire` must not make the runner fire again at once).
    floors: HashMap<String, DateTime<Utc>>,
    /// Rules whose stored schedule does not parse, with the text last warned about.
    invalid: HashMap<String, (String, Option<String>)>,
}

impl ScheduleRunner {
    /// A runner over `store` that fires into `invoker`. `account` makes the schedule ARNs and
    /// the `account`/`region` of Scheduled Events.
    pub fn new(
        store: Arc<dyn ScheduleStore>,
        invoker: Arc<dyn Invoke>,
        clock: Arc<dyn Clock>,
        account: AccountContext,
        settings: RunnerSettings,
    ) -> Self {
        Self {
            store,
            invoker,
            clock,
            account,
            settings,
            wake: Notify::new(),
            stop: watch::Sender::new(false),
            status: watch::Sender::new(RunnerStatus::default()),
        }
    }

    /// The rules changed (created, updated, deleted): read them again now. Cheap; call it
    /// after every change. A call while a pass runs makes one more pass.
    pub fn reload(&self) {
        self.wake.notify_one();
    }

    /// Make [`run`](Self::run) return: at once while it sleeps, otherwise after the fire in
    /// progress (a fire still being retried is abandoned unrecorded, to run after the next start).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Watch the runner: the pass count and the next fire, updated after every pass.
    pub fn status(&self) -> watch::Receiver<RunnerStatus> {
        self.status.subscribe()
    }

    /// Fire schedules until [`stop`](Self::stop) is called. The start time marks which fires
    /// were missed (see the module docs).
    pub async fn run(&self) {
        let started = self.clock.now();
        let mut stop = self.stop.subscribe();
        let mut memory = Memory::default();
        tracing::info!(catch_up = self.settings.catch_up, "schedule runner started");
        while !*stop.borrow_and_update() {
            let wake_at = match self.pass(started, &mut memory).await {
                Ok(next) => {
                    let at = next.as_ref().map(|n| n.at);
                    if let Some(next) = &next {
                        tracing::debug!(rule = next.rule, at = %next.at, "next schedule fire");
                    }
                    self.publish(next);
                    at
                }
                Err(err) => {
                    tracing::error!(error = %err, "could not read the schedules; trying again shortly");
                    self.publish(None);
                    Some(self.clock.now() + delta(self.settings.store_retry))
                }
            };
            tokio::select! {
                () = sleep_until(self.clock.as_ref(), wake_at) => {}
                () = self.wake.notified() => {}
                _ = stop.wait_for(|stopped| *stopped) => break,
            }
        }
        tracing::info!("schedule runner stopped");
    }

    fn publish(&self, next: Option<NextFire>) {
        self.status.send_modify(|status| {
            status.passes += 1;
            status.next = next;
        });
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// One pass: fire what is due, return the earliest upcoming fire.
    async fn pass(
        &self,
        started: DateTime<Utc>,
        memory: &mut Memory,
    ) -> Result<Option<NextFire>, StoreError> {
        let rules = self.store.list().await?;
        memory
            .floors
            .retain(|name, _| rules.iter().any(|r| &r.name == name));
        memory
            .invalid
            .retain(|name, _| rules.iter().any(|r| &r.name == name));
        let mut next: Option<NextFire> = None;
        for rule in rules.iter().filter(|r| r.enabled) {
            if self.stopping() {
                return Ok(None);
            }
            let schedule = match rule.schedule() {
                Ok(schedule) => schedule,
                Err(err) => {
                    let text = (rule.expression.clone(), rule.timezone.clone());
                    if memory.invalid.get(&rule.name) != Some(&text) {
                        tracing::warn!(rule = rule.name, error = %err, "schedule does not parse; it will not fire");
                        memory.invalid.insert(rule.name.clone(), text);
                    }
                    continue;
                }
            };
            memory.invalid.remove(&rule.name);
            let after = match memory.floors.get(&rule.name) {
                Some(floor) => rule.resume_after().max(*floor),
                None => rule.resume_after(),
            };
            let now = self.clock.now();
            let upcoming = match latest_fire_in(&schedule, after, now) {
                Some(due) if due <= started && !self.settings.catch_up => {
                    tracing::info!(
                        rule = rule.name,
                        missed = %due,
                        "skipping fires missed while the server was down (catch-up is off)"
                    );
                    self.record(&rule.name, due, memory).await;
                    schedule.next_after(due)
                }
                Some(due) => {
                    if due <= started {
                        tracing::info!(rule = rule.name, missed = %due, "running the latest fire missed while the server was down");
                    }
                    match self.fire(rule, due).await {
                        Outcome::Stopped => return Ok(None),
                        Outcome::Delivered | Outcome::GaveUp => {
                            self.record(&rule.name, due, memory).await;
                        }
                    }
                    schedule.next_after(due)
                }
                None => schedule.next_after(after),
            };
            if let Some(at) = upcoming {
                if next.as_ref().is_none_or(|n| at < n.at) {
                    next = Some(NextFire {
                        rule: rule.name.clone(),
                        at,
                    });
                }
            }
        }
        Ok(next)
    }

    /// Mark the fire at `at` as dealt with, in the store and (in case the store fails) here.
    async fn record(&self, rule: &str, at: DateTime<Utc>, memory: &mut Memory) {
        memory.floors.insert(rule.to_owned(), at);
        match self.store.record_fire(rule, at).await {
            Ok(()) => {}
            Err(StoreError::NotFound) => {
                tracing::debug!(rule, "schedule was deleted while it fired");
            }
            Err(err) => {
                tracing::error!(rule, fire_time = %at, error = %err, "could not record a schedule fire; after a restart it may fire again (same request id)");
            }
        }
    }

    /// Invoke the rule's target for the fire at `at`, retrying as the settings say.
    async fn fire(&self, rule: &ScheduleRule, at: DateTime<Utc>) -> Outcome {
        let request = match fire_request(rule, at, &self.account) {
            Ok(request) => request,
            Err(err) => {
                tracing::error!(rule = rule.name, fire_time = %at, error = %err, "schedule target is not a function; fire dropped");
                return Outcome::GaveUp;
            }
        };
        let request_id = request.request_id.clone();
        let attempts = self.settings.max_attempts.max(1);
        let mut backoff = self.settings.retry_backoff;
        let mut stop = self.stop.subscribe();
        for attempt in 1..=attempts {
            let result = tokio::time::timeout(
                self.settings.attempt_timeout,
                self.invoker.invoke(request.clone()),
            )
            .await;
            let error = match result {
                Ok(Ok(_)) => {
                    tracing::info!(rule = rule.name, request_id, fire_time = %at, target = rule.target, "schedule fired");
                    return Outcome::Delivered;
                }
                Ok(Err(err)) => describe(&err),
                Err(_) => format!(
                    "the invoke did not answer within {} s",
                    self.settings.attempt_timeout.as_secs_f64()
                ),
            };
            if attempt == attempts {
                tracing::error!(rule = rule.name, request_id, fire_time = %at, target = rule.target, attempts, error, "schedule fire failed; giving it up");
                return Outcome::GaveUp;
            }
            tracing::warn!(rule = rule.name, request_id, fire_time = %at, target = rule.target, attempt, error, "schedule fire was not accepted; retrying");
            let retry_at = self.clock.now() + delta(backoff);
            tokio::select! {
                () = self.clock.sleep_until(retry_at) => {}
                _ = stop.wait_for(|stopped| *stopped) => return Outcome::Stopped,
            }
            backoff = backoff.saturating_mul(2);
        }
        Outcome::GaveUp
    }
}

fn describe(err: &ServiceError) -> String {
    format!("{}: {}", err.error_type(), err.message())
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

async fn sleep_until(clock: &dyn Clock, at: Option<DateTime<Utc>>) {
    match at {
        Some(at) => clock.sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The request id of the fire of `rule` at `at`: a UUID derived from nothing else, so a fire
/// repeated after a crash carries the same id as the first try and the async queue recognises
/// it. Name-based with SHA-256, laid out as a version 8 UUID (RFC 9562, appendix B.2).
pub fn fire_id(rule: &str, at: DateTime<Utc>) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(b"nimbus schedule fire v1\0");
    hash.update(rule.as_bytes());
    hash.update(b"\0");
    hash.update(at.timestamp().to_be_bytes());
    hash.update(at.timestamp_subsec_nanos().to_be_bytes());
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The invocation that fires `rule` at `at` (see the module docs for the payload and id).
pub fn fire_request(
    rule: &ScheduleRule,
    at: DateTime<Utc>,
    account: &AccountContext,
) -> Result<InvocationRequest, ServiceError> {
    let function = rule.function_ref()?;
    let id = fire_id(&rule.name, at);
    let payload = match &rule.input {
        Some(input) => Bytes::from(input.clone()),
        None => Bytes::from(
            scheduled_event(
                id,
                &account.account_id,
                &account.region,
                &rule.arn(account),
                at,
            )
            .to_string(),
        ),
    };
    Ok(InvocationRequest {
        function,
        payload,
        invocation_type: InvocationType::Event,
        log_tail: false,
        client_context: None,
        request_id: id.to_string(),
    })
}

/// The latest fire of `schedule` in `(after, until]`, if any.
///
/// Found by bisection on "the first fire after `x` is at or before `until`", which holds for
/// every `x` below the answer and for none from it on, so it takes about 60 steps even when
/// years of minutely fires lie in between.
pub fn latest_fire_in(
    schedule: &Schedule,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let first = schedule.first_fire_in(after, until)?;
    if schedule.next_after(first).is_none_or(|t| t > until) {
        return Some(first); // The usual case: a runner on time has one fire due.
    }
    // Invariant: next_after(lo) <= until < next_after(hi) (or none after hi).
    let (mut lo, mut hi) = (first, until);
    loop {
        let span = (hi - lo).num_nanoseconds().unwrap_or(i64::MAX);
        if span <= 1 {
            break;
        }
        let mid = lo + TimeDelta::nanoseconds(span / 2);
        match schedule.next_after(mid) {
            Some(t) if t <= until => lo = mid,
            _ => hi = mid,
        }
    }
    schedule.next_after(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test instant is RFC 3339")
            .with_timezone(&Utc)
    }

    fn schedule(expr: &str, anchor: &str) -> Schedule {
        Schedule::new(expr, None, t(anchor)).expect("valid")
    }

    #[test]
    fn latest_fire_in_matches_a_linear_scan() {
        let cases = [
            ("rate(5 minutes)", "2026-01-01T00:00:00.25Z"),
            ("rate(1 day)", "2026-01-01T10:30:00Z"),
            ("cron(*/7 * * * ? *)", "2026-01-01T00:00:00Z"),
            ("cron(0 3 L * ? *)", "2026-01-01T00:00:00Z"),
            ("at(2026-01-01T12:00:00)", "2026-01-01T00:00:00Z"),
        ];
        let after = t("2026-01-01T00:00:00.5Z");
        for (expr, anchor) in cases {
            let s = schedule(expr, anchor);
            for until in [
                "2026-01-01T00:00:00.5Z",
                "2026-01-01T00:04:59Z",
                "2026-01-01T00:05:00.25Z",
                "2026-01-01T13:00:00Z",
                "2026-03-02T00:00:00Z",
                "2026-12-31T23:59:59Z",
            ] {
                let until = t(until);
                let scanned = s.fires_after(after).take_while(|f| *f <= until).last();
                assert_eq!(
                    latest_fire_in(&s, after, until),
                    scanned,
                    "{expr} until {until}"
                );
            }
        }
    }

    #[test]
    fn latest_fire_in_is_fast_over_years_of_minutely_fires() {
        let s = schedule("rate(1 minute)", "2026-01-01T00:00:00.123Z");
        let started = std::time::Instant::now();
        assert_eq!(
            latest_fire_in(&s, t("2026-01-01T00:00:00Z"), t("2030-06-01T12:34:56Z")),
            Some(t("2030-06-01T12:34:00.123Z"))
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn fire_ids_depend_on_rule_and_instant_only() {
        let at = t("2026-01-01T03:00:00Z");
        let id = fire_id("nightly", at);
        assert_eq!(id, fire_id("nightly", at));
        assert_eq!(id.get_version_num(), 8);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(id, fire_id("nightly2", at));
        assert_ne!(id, fire_id("nightly", at + TimeDelta::minutes(1)));
        assert_ne!(id, fire_id("nightly", at + TimeDelta::nanoseconds(1)));
        // Pinned (computed independently): a changed derivation would make a fire retried
        // across an upgrade run twice.
        assert_eq!(id.to_string(), "a40d8a49-8adc-8139-ba76-f61deb2ce78e");
    }

    #[test]
    fn fire_request_is_an_event_invoke_with_the_scheduled_event() {
        let account = AccountContext {
            region: "eu-west-1".into(),
            account_id: "123456789012".into(),
        };
        let at = t("2026-01-01T03:00:00Z");
        let rule = ScheduleRule::new("nightly", "cron(0 3 * * ? *)", "f:live", at);
        let request = fire_request(&rule, at, &account).expect("request");
        assert_eq!(request.invocation_type, InvocationType::Event);
        assert_eq!(request.function.name.as_str(), "f");
        assert_eq!(request.request_id, fire_id("nightly", at).to_string());
        let event: serde_json::Value =
            serde_json::from_slice(&request.payload).expect("payload is JSON");
        assert_eq!(
            event,
            serde_json::json!({
                "version": "0",
                "id": request.request_id,
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": "123456789012",
                "time": "2026-01-01T03:00:00Z",
                "region": "eu-west-1",
                "resources": ["arn:aws:scheduler:eu-west-1:123456789012:schedule/default/nightly"],
                "detail": {},
            })
        );
        let mut with_input = rule.clone();
        with_input.input = Some(r#"{"k": 1}"#.into());
        let request = fire_request(&with_input, at, &account).expect("request");
        assert_eq!(&request.payload[..], br#"{"k": 1}"#);
    }
}
