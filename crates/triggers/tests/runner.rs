//! The schedule runner against a manual clock and a recording invoker: time only moves when a
//! test moves it, and every test waits on the runner's published status, never on real time.
//!
//! Calendar facts used: 2026-01-02 is a Friday; the US switches to daylight time on 2026-03-08
//! (02:00 → 03:00) and back on 2026-11-01 (02:00 → 01:00).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use nimbus_core::invoke::{InvocationRequest, InvocationResult, InvocationType, Invoke};
use nimbus_core::schedule::store::MemoryScheduleStore;
use nimbus_core::schedule::{ScheduleRule, ScheduleStore};
use nimbus_core::{AccountContext, ServiceError, StoreError};
use nimbus_triggers::{fire_id, Clock, ManualClock, RunnerSettings, RunnerStatus, ScheduleRunner};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a test waits for the runner to react before failing (real time; the runner never
/// needs more than a few milliseconds).
const PATIENCE: Duration = Duration::from_secs(10);

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test instant is RFC 3339")
        .with_timezone(&Utc)
}

fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

// ---------------------------------------------------------------------------------------------
// Fakes

/// One call the runner made.
#[derive(Debug, Clone)]
struct Call {
    request: InvocationRequest,
    /// What the clock showed.
    at: DateTime<Utc>,
    accepted: bool,
}

impl Call {
    fn event(&self) -> serde_json::Value {
        serde_json::from_slice(&self.request.payload).expect("payload is JSON")
    }

    /// The `time` of the Scheduled Event.
    fn fire_time(&self) -> DateTime<Utc> {
        t(self.event()["time"].as_str().expect("event has a time"))
    }
}

/// Records every invoke; refuses the next ones as told.
struct Recorder {
    clock: Arc<ManualClock>,
    calls: Mutex<Vec<Call>>,
    refusals: Mutex<VecDeque<ServiceError>>,
    refuse_all: Mutex<Option<ServiceError>>,
}

impl Recorder {
    fn new(clock: Arc<ManualClock>) -> Arc<Self> {
        Arc::new(Self {
            clock,
            calls: Mutex::default(),
            refusals: Mutex::default(),
            refuse_all: Mutex::default(),
        })
    }

    fn calls(&self) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn fire_times(&self) -> Vec<DateTime<Utc>> {
        self.calls().iter().map(Call::fire_time).collect()
    }

    fn refuse_next(&self, err: ServiceError) {
        self.refusals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(err);
    }

    fn refuse_all(&self, err: Option<ServiceError>) {
        *self
            .refuse_all
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = err;
    }
}

#[async_trait]
impl Invoke for Recorder {
    async fn invoke(&self, request: InvocationRequest) -> Result<InvocationResult, ServiceError> {
        let refusal = self
            .refusals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
            .or_else(|| {
                self.refuse_all
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            });
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Call {
                request,
                at: self.clock.now(),
                accepted: refusal.is_none(),
            });
        match refusal {
            Some(err) => Err(err),
            None => Ok(InvocationResult {
                payload: Bytes::new(),
                function_error: None,
                executed_version: "$LATEST".to_owned(),
                log_result: None,
                content_type: None,
            }),
        }
    }
}

/// A store whose `record_fire` fails: a crash between the invoke and the record, as far as the
/// store is concerned.
struct ForgetfulStore(Arc<MemoryScheduleStore>);

#[async_trait]
impl ScheduleStore for ForgetfulStore {
    async fn create(&self, rule: &ScheduleRule) -> Result<(), StoreError> {
        self.0.create(rule).await
    }
    async fn get(&self, name: &str) -> Result<Option<ScheduleRule>, StoreError> {
        self.0.get(name).await
    }
    async fn list(&self) -> Result<Vec<ScheduleRule>, StoreError> {
        self.0.list().await
    }
    async fn update(&self, rule: &ScheduleRule) -> Result<(), StoreError> {
        self.0.update(rule).await
    }
    async fn delete(&self, name: &str) -> Result<(), StoreError> {
        self.0.delete(name).await
    }
    async fn record_fire(&self, _: &str, _: DateTime<Utc>) -> Result<(), StoreError> {
        Err(StoreError::backend(std::io::Error::other("disk went away")))
    }
}

// ---------------------------------------------------------------------------------------------
// Harness

fn account() -> AccountContext {
    AccountContext {
        region: "eu-central-1".to_owned(),
        account_id: "123456789012".to_owned(),
    }
}

/// Fast retries: a refused invoke is tried again at once (the backoff is zero), so no test
/// has to move the clock through a backoff.
fn settings() -> RunnerSettings {
    RunnerSettings {
        retry_backoff: Duration::ZERO,
        ..RunnerSettings::default()
    }
}

struct Harness {
    clock: Arc<ManualClock>,
    invoker: Arc<Recorder>,
    runner: Arc<ScheduleRunner>,
    status: watch::Receiver<RunnerStatus>,
    task: JoinHandle<()>,
}

impl Harness {
    /// A runner over `store`, started at the clock's time and settled after its first pass.
    async fn start(
        store: Arc<dyn ScheduleStore>,
        clock: Arc<ManualClock>,
        settings: RunnerSettings,
    ) -> Self {
        let invoker = Recorder::new(Arc::clone(&clock));
        Self::start_with(store, clock, invoker, settings).await
    }

    async fn start_with(
        store: Arc<dyn ScheduleStore>,
        clock: Arc<ManualClock>,
        invoker: Arc<Recorder>,
        settings: RunnerSettings,
    ) -> Self {
        let runner = Arc::new(ScheduleRunner::new(
            store,
            Arc::clone(&invoker) as Arc<dyn Invoke>,
            Arc::clone(&clock) as Arc<dyn Clock>,
            account(),
            settings,
        ));
        let status = runner.status();
        let task = tokio::spawn({
            let runner = Arc::clone(&runner);
            async move { runner.run().await }
        });
        let mut harness = Self {
            clock,
            invoker,
            runner,
            status,
            task,
        };
        harness.settle(0).await;
        harness
    }

    fn passes(&self) -> u64 {
        self.status.borrow().passes
    }

    /// The fire the runner waits for.
    fn next(&self) -> Option<(String, DateTime<Utc>)> {
        self.status
            .borrow()
            .next
            .as_ref()
            .map(|n| (n.rule.clone(), n.at))
    }

    fn next_at(&self) -> Option<DateTime<Utc>> {
        self.next().map(|(_, at)| at)
    }

    /// Wait until a pass after pass `after` has finished and the runner sleeps with nothing
    /// due.
    async fn settle(&mut self, after: u64) {
        let clock = Arc::clone(&self.clock);
        tokio::time::timeout(
            PATIENCE,
            self.status.wait_for(|s| {
                s.passes > after && s.next.as_ref().is_none_or(|n| n.at > clock.now())
            }),
        )
        .await
        .expect("the runner settles")
        .expect("the runner is alive");
    }

    /// Move the clock to `to`, and if that reaches the fire the runner waits for, let it fire.
    async fn advance_to(&mut self, to: DateTime<Utc>) {
        let before = self.passes();
        let due = self.next_at().is_some_and(|at| at <= to);
        self.clock.set(to);
        if due {
            self.settle(before).await;
        }
    }

    /// Jump to the next fire and let it happen; returns its instant.
    async fn step(&mut self) -> DateTime<Utc> {
        let at = self.next_at().expect("a fire is pending");
        self.advance_to(at).await;
        at
    }

    /// Tell the runner the rules changed and let it pick them up.
    async fn reload(&mut self) {
        let before = self.passes();
        self.runner.reload();
        self.settle(before).await;
    }

    async fn stop(self) -> Arc<Recorder> {
        self.runner.stop();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the runner stops promptly")
            .expect("the runner task did not panic");
        self.invoker
    }
}

fn store() -> Arc<MemoryScheduleStore> {
    Arc::new(MemoryScheduleStore::default())
}

async fn add(store: &MemoryScheduleStore, rule: ScheduleRule) -> ScheduleRule {
    store.create(&rule).await.expect("create rule");
    rule
}

async fn last_fire(store: &MemoryScheduleStore, name: &str) -> Option<DateTime<Utc>> {
    store
        .get(name)
        .await
        .expect("get")
        .expect("rule exists")
        .last_fire
}

// ---------------------------------------------------------------------------------------------
// Firing at the right instants

#[tokio::test]
async fn a_rate_rule_fires_every_period_counted_from_its_creation() {
    let created = t("2026-01-01T10:00:00.25Z");
    let store = store();
    add(
        &store,
        ScheduleRule::new("every5", "rate(5 minutes)", "f", created),
    )
    .await;
    let clock = Arc::new(ManualClock::new(created));
    let mut h = Harness::start(store.clone(), clock, settings()).await;
    assert_eq!(h.next(), Some(("every5".to_owned(), created + minutes(5))));

    // Just before the fire, nothing happens.
    h.advance_to(created + minutes(5) - TimeDelta::milliseconds(1))
        .await;
    assert!(h.invoker.calls().is_empty());

    let mut fired = Vec::new();
    for _ in 0..3 {
        fired.push(h.step().await);
    }
    assert_eq!(
        fired,
        [
            created + minutes(5),
            created + minutes(10),
            created + minutes(15)
        ]
    );
    let calls = h.invoker.calls();
    assert_eq!(calls.len(), 3);
    for (call, at) in calls.iter().zip(&fired) {
        assert_eq!(call.at, *at, "fired at its instant, not later");
        assert_eq!(call.request.invocation_type, InvocationType::Event);
        assert_eq!(call.request.function.name.as_str(), "f");
        assert_eq!(call.request.request_id, fire_id("every5", *at).to_string());
        // The event carries whole seconds.
        assert_eq!(
            call.event()["time"],
            at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
        );
    }
    assert_eq!(last_fire(&store, "every5").await, Some(fired[2]));
    h.stop().await;
}

#[tokio::test]
async fn a_cron_rule_fires_at_its_wall_clock_times_with_the_scheduled_event() {
    let created = t("2026-01-02T08:00:00Z"); // Friday
    let store = store();
    add(
        &store,
        ScheduleRule::new(
            "weekday-9am",
            "cron(0 9 ? * MON-FRI *)",
            "arn:aws:lambda:eu-central-1:123456789012:function:report:live",
            created,
        ),
    )
    .await;
    let clock = Arc::new(ManualClock::new(created));
    let mut h = Harness::start(store.clone(), clock, settings()).await;
    for _ in 0..3 {
        h.step().await;
    }
    assert_eq!(
        h.invoker.fire_times(),
        [
            t("2026-01-02T09:00:00Z"), // Friday
            t("2026-01-05T09:00:00Z"), // Monday: the weekend is skipped
            t("2026-01-06T09:00:00Z"),
        ]
    );
    let call = &h.invoker.calls()[0];
    assert_eq!(
        call.event(),
        serde_json::json!({
            "version": "0",
            "id": fire_id("weekday-9am", t("2026-01-02T09:00:00Z")).to_string(),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": "2026-01-02T09:00:00Z",
            "region": "eu-central-1",
            "resources": ["arn:aws:scheduler:eu-central-1:123456789012:schedule/default/weekday-9am"],
            "detail": {},
        })
    );
    assert_eq!(
        call.event()["id"].as_str(),
        Some(call.request.request_id.as_str()),
        "the event id is the request id"
    );
    let qualifier = call
        .request
        .function
        .qualifier
        .as_ref()
        .map(|q| q.to_string());
    assert_eq!(qualifier.as_deref(), Some("live"));
    h.stop().await;
}

#[tokio::test]
async fn constant_input_is_delivered_as_is() {
    let created = t("2026-01-01T00:00:00Z");
    let store = store();
    let mut rule = ScheduleRule::new("with-input", "rate(1 minute)", "f", created);
    rule.input = Some(r#"{"job": "cleanup", "dry_run": false}"#.to_owned());
    add(&store, rule).await;
    let mut h = Harness::start(store, Arc::new(ManualClock::new(created)), settings()).await;
    h.step().await;
    let calls = h.invoker.calls();
    assert_eq!(
        &calls[0].request.payload[..],
        br#"{"job": "cleanup", "dry_run": false}"#
    );
    assert_eq!(
        calls[0].request.request_id,
        fire_id("with-input", created + minutes(1)).to_string()
    );
    h.stop().await;
}

#[tokio::test]
async fn daylight_saving_gaps_skip_and_repeats_fire_once() {
    // 02:30 does not exist in Los Angeles on 2026-03-08.
    let created = t("2026-03-06T00:00:00Z");
    let store = store();
    let mut spring = ScheduleRule::new("spring", "cron(30 2 * * ? *)", "f", created);
    spring.timezone = Some("America/Los_Angeles".to_owned());
    add(&store, spring).await;
    let mut h = Harness::start(store, Arc::new(ManualClock::new(created)), settings()).await;
    for _ in 0..3 {
        h.step().await;
    }
    assert_eq!(
        h.invoker.fire_times(),
        [
            t("2026-03-06T10:30:00Z"), // 02:30 PST
            t("2026-03-07T10:30:00Z"),
            // 2026-03-08: no 02:30, no fire.
            t("2026-03-09T09:30:00Z"), // 02:30 PDT
        ]
    );
    h.stop().await;

    // 01:30 happens twice in Los Angeles on 2026-11-01; it fires at the first.
    let created = t("2026-10-31T00:00:00Z");
    let store = self::store();
    let mut fall = ScheduleRule::new("fall", "cron(30 1 * * ? *)", "f", created);
    fall.timezone = Some("America/Los_Angeles".to_owned());
    add(&store, fall).await;
    let mut h = Harness::start(store, Arc::new(ManualClock::new(created)), settings()).await;
    for _ in 0..3 {
        h.step().await;
    }
    assert_eq!(
        h.invoker.fire_times(),
        [
            t("2026-10-31T08:30:00Z"), // 01:30 PDT
            t("2026-11-01T08:30:00Z"), // the first 01:30 (PDT); not again at 09:30Z (PST)
            t("2026-11-02T09:30:00Z"), // 01:30 PST
        ]
    );
    h.stop().await;
}

#[tokio::test]
async fn a_one_time_rule_fires_once() {
    let created = t("2026-05-01T00:00:00Z");
    let store = store();
    let mut once = ScheduleRule::new("once", "at(2026-05-01T09:15:00)", "f", created);
    once.timezone = Some("Europe/Berlin".to_owned());
    add(&store, once).await;
    let mut h = Harness::start(store, Arc::new(ManualClock::new(created)), settings()).await;
    assert_eq!(h.step().await, t("2026-05-01T07:15:00Z"));
    assert_eq!(h.next(), None, "nothing left to fire");
    h.advance_to(t("2027-01-01T00:00:00Z")).await;
    assert_eq!(h.invoker.calls().len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn the_earliest_of_several_rules_is_next() {
    let created = t("2026-01-01T00:00:00Z");
    let store = store();
    add(
        &store,
        ScheduleRule::new("slow", "rate(7 minutes)", "f", created),
    )
    .await;
    add(
        &store,
        ScheduleRule::new("fast", "rate(3 minutes)", "g", created),
    )
    .await;
    let mut h = Harness::start(store, Arc::new(ManualClock::new(created)), settings()).await;
    let mut order = Vec::new();
    for _ in 0..5 {
        let at = h.step().await;
        let last = h.invoker.calls().last().cloned().expect("a call");
        order.push((
            last.request.function.name.as_str().to_owned(),
            (at - created).num_minutes(),
        ));
    }
    let order: Vec<(&str, i64)> = order.iter().map(|(f, m)| (f.as_str(), *m)).collect();
    assert_eq!(order, [("g", 3), ("g", 6), ("f", 7), ("g", 9), ("g", 12)]);
    h.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Enabled, disabled, reload

#[tokio::test]
async fn disabled_rules_do_not_fire() {
    let created = t("2026-01-01T00:00:00Z");
    let store = store();
    let mut off = ScheduleRule::new("off", "rate(1 minute)", "f", created);
    off.enabled = false;
    add(&store, off).await;
    let mut h = Harness::start(
        store.clone(),
        Arc::new(ManualClock::new(created)),
        settings(),
    )
    .await;
    assert_eq!(h.next(), None);
    h.advance_to(created + TimeDelta::hours(2)).await;
    assert!(h.invoker.calls().is_empty());

    let now = h.clock.now();
    add(&store, ScheduleRule::new("on", "rate(5 minutes)", "g", now)).await;
    h.reload().await;
    assert_eq!(h.next(), Some(("on".to_owned(), now + minutes(5))));
    h.step().await;
    let names: Vec<String> = h
        .invoker
        .calls()
        .iter()
        .map(|c| c.request.function.name.as_str().to_owned())
        .collect();
    assert_eq!(names, ["g"]);
    h.stop().await;
}

#[tokio::test]
async fn reload_picks_up_new_changed_and_deleted_rules() {
    let start = t("2026-01-01T00:00:00Z");
    let store = store();
    let clock = Arc::new(ManualClock::new(start));
    let mut h = Harness::start(store.clone(), clock.clone(), settings()).await;
    assert_eq!(h.next(), None, "no rules, nothing to wait for");

    // A rule created a little later fires a period after its creation.
    clock.set(start + minutes(2));
    let created = clock.now();
    add(
        &store,
        ScheduleRule::new("new", "rate(10 minutes)", "f", created),
    )
    .await;
    h.reload().await;
    assert_eq!(h.next(), Some(("new".to_owned(), created + minutes(10))));
    h.step().await;
    assert_eq!(h.invoker.fire_times(), [created + minutes(10)]);

    // Changed to a cron: the next fire follows the new expression.
    let old = store.get("new").await.expect("get").expect("rule");
    let now = clock.now();
    let changed = old.updated(ScheduleRule::new("new", "cron(0 * * * ? *)", "f", now), now);
    store.update(&changed).await.expect("update");
    h.reload().await;
    assert_eq!(h.next_at(), Some(t("2026-01-01T01:00:00Z")));

    // Disabled, then deleted: nothing to wait for.
    let mut off = changed.clone();
    off.enabled = false;
    store.update(&off).await.expect("update");
    h.reload().await;
    assert_eq!(h.next(), None);
    store.delete("new").await.expect("delete");
    h.reload().await;
    assert_eq!(h.next(), None);
    h.advance_to(t("2026-01-02T00:00:00Z")).await;
    assert_eq!(h.invoker.calls().len(), 1);
    h.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Restarts, crashes and missed fires

#[tokio::test]
async fn a_restart_does_not_fire_a_recorded_fire_again() {
    let created = t("2026-01-01T00:00:00Z");
    let store = store();
    add(
        &store,
        ScheduleRule::new("r", "rate(5 minutes)", "f", created),
    )
    .await;
    let clock = Arc::new(ManualClock::new(created));
    let mut h = Harness::start(store.clone(), clock.clone(), settings()).await;
    let fired = h.step().await;
    let first = h.stop().await;
    assert_eq!(first.calls().len(), 1);
    assert_eq!(last_fire(&store, "r").await, Some(fired));

    // Back up at the very instant of that fire, and a little later: nothing fires again.
    for restart_at in [fired, fired + TimeDelta::seconds(30)] {
        clock.set(restart_at);
        let h = Harness::start(store.clone(), clock.clone(), settings()).await;
        assert!(h.invoker.calls().is_empty(), "restart at {restart_at}");
        assert_eq!(h.next_at(), Some(created + minutes(10)));
        h.stop().await;
    }
}

#[tokio::test]
async fn a_fire_repeated_after_a_crash_before_its_record_keeps_its_id() {
    let created = t("2026-01-01T00:00:00Z");
    let shared = store();
    add(
        &shared,
        ScheduleRule::new("r", "rate(5 minutes)", "f", created),
    )
    .await;
    let clock = Arc::new(ManualClock::new(created));

    // The first server invokes, then "crashes" before the fire is recorded.
    let forgetful: Arc<dyn ScheduleStore> = Arc::new(ForgetfulStore(shared.clone()));
    let mut h = Harness::start(forgetful, clock.clone(), settings()).await;
    let fired = h.step().await;
    assert_eq!(
        h.next_at(),
        Some(fired + minutes(5)),
        "no refire in-process"
    );
    let before = h.stop().await.calls();
    assert_eq!(before.len(), 1);
    assert_eq!(last_fire(&shared, "r").await, None, "the record was lost");

    // The next server sees the fire as missed and repeats it, identically.
    clock.set(fired + TimeDelta::seconds(20));
    let h = Harness::start(shared.clone(), clock, settings()).await;
    let after = h.invoker.calls();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].request.request_id, before[0].request.request_id);
    assert_eq!(after[0].request.payload, before[0].request.payload);
    assert_eq!(last_fire(&shared, "r").await, Some(fired));
    h.stop().await;
}

#[tokio::test]
async fn with_catch_up_the_latest_missed_fire_runs_once_at_start() {
    let created = t("2026-01-01T00:00:00Z");
    let store = store();
    add(
        &store,
        ScheduleRule::new("r", "rate(5 minutes)", "f", created),
    )
    .await;
    // Down from creation until 17 minutes later: fires at 5, 10 and 15 were missed.
    let clock = Arc::new(ManualClock::new(created + minutes(17)));
    let mut h = Harness::start(store.clone(), clock, settings()).await;
    assert_eq!(h.invoker.fire_times(), [created + minutes(15)]);
    assert_eq!(last_fire(&store, "r").await, Some(created + minutes(15)));
    assert_eq!(h.next_at(), Some(created + minutes(20)));
    h.step().await;
    assert_eq!(
        h.invoker.fire_times(),
        [created + minutes(15), created + minutes(20)]
    );
    h.stop().await;
}

#[tokio::test]
async fn with_catch_up_a_week_of_missed_daily_fires_runs_once() {
    let created = t("2026-01-01T00:00:00Z");
    let store = store();
    let mut rule = ScheduleRule::new("daily", "cron(0 6 * * ? *)", "f", created);
    rule.last_fire = Some(t("2026-01-01T06:00:00Z"));
    add(&store, rule).await;
    let clock = Arc::new(ManualClock::new(t("2026-01-08T12:00:00Z")));
    let h = Harness::start(store, clock, settings()).await;
    assert_eq!(h.invoker.fire_times(), [t("2026-01-08T06:00:00Z")]);
    assert_eq!(h.next_at(), Some(t("2026-01-09T06:00:00Z")));
    h.stop().await;
}

#[tokio::test]
async fn without_catch_up_missed_fires_are_skipped() {
    let created = t("2026-01-01T00:00:00Z");
    let store = store();
    add(
        &store,
        ScheduleRule::new("r", "rate(5 minutes)", "f", created),
    )
    .await;
    let clock = Arc::new(ManualClock::new(created + minutes(17)));
    let no_catch_up = RunnerSettings {
        catch_up: false,
        ..settings()
    };
    let mut h = Harness::start(store.clone(), clock.clone(), no_catch_up.clone()).await;
    assert!(h.invoker.calls().is_empty());
    assert_eq!(h.next_at(), Some(created + minutes(20)));
    assert_eq!(
        last_fire(&store, "r").await,
        Some(created + minutes(15)),
        "the skip is recorded, so a later start with catch-up does not resurrect it"
    );
    // Fires that come due while running are not skipped.
    h.step().await;
    assert_eq!(h.invoker.fire_times(), [created + minutes(20)]);
    h.stop().await;

    // Nor is a fire due exactly at start-up time after a restart on time.
    clock.set(created + minutes(25));
    let h = Harness::start(store.clone(), clock, no_catch_up).await;
    assert!(
        h.invoker.calls().is_empty(),
        "25 was due at the start instant: missed"
    );
    h.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Failures

#[tokio::test]
async fn a_refused_invoke_is_retried_with_the_same_id() {
    let created = t("2026-01-01T00:00:00Z");
    let store = store();
    add(&store, ScheduleRule::new("r", "rate(1 hour)", "f", created)).await;
    let clock = Arc::new(ManualClock::new(created));
    let invoker = Recorder::new(clock.clone());
    invoker.refuse_next(ServiceError::throttled(
        nimbus_core::ThrottleReason::ConcurrentInvocationLimitExceeded,
    ));
    invoker.refuse_next(ServiceError::Service("queue unavailable".into()));
    let mut h = Harness::start_with(store.clone(), clock, invoker, settings()).await;
    let fired = h.step().await;
    let calls = h.invoker.calls();
    assert_eq!(
        calls.iter().map(|c| c.accepted).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert!(calls
        .iter()
        .all(|c| c.request.request_id == fire_id("r", fired).to_string()));
    assert_eq!(last_fire(&store, "r").await, Some(fired));
    h.stop().await;
}

#[tokio::test]
async fn a_target_that_keeps_failing_is_given_up_and_does_not_wedge_the_runner() {
    let created = t("2026-01-01T00:00:00Z");
    let store = store();
    add(
        &store,
        ScheduleRule::new("broken", "rate(10 minutes)", "missing", created),
    )
    .await;
    add(
        &store,
        ScheduleRule::new("fine", "rate(15 minutes)", "f", created),
    )
    .await;
    let clock = Arc::new(ManualClock::new(created));
    let invoker = Recorder::new(clock.clone());
    invoker.refuse_all(Some(ServiceError::function_not_found(
        "arn:aws:lambda:eu-central-1:123456789012:function:missing",
    )));
    let mut h = Harness::start_with(store.clone(), clock, invoker, settings()).await;
    h.step().await; // broken at 10: three attempts, all refused, then recorded
    let attempts = h.invoker.calls();
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|c| !c.accepted));
    assert_eq!(
        last_fire(&store, "broken").await,
        Some(created + minutes(10))
    );
    assert_eq!(
        h.next_at(),
        Some(created + minutes(15)),
        "the runner moved on"
    );

    h.invoker.refuse_all(None);
    h.step().await; // fine at 15
    let last = h.invoker.calls().last().cloned().expect("call");
    assert!(last.accepted);
    assert_eq!(last.request.function.name.as_str(), "f");
    h.stop().await;
}

#[tokio::test]
async fn retries_wait_for_the_backoff_on_the_clock() {
    let created = t("2026-01-01T00:00:00Z");
    let store = store();
    add(&store, ScheduleRule::new("r", "rate(1 hour)", "f", created)).await;
    let clock = Arc::new(ManualClock::new(created));
    let invoker = Recorder::new(clock.clone());
    invoker.refuse_next(ServiceError::Service("busy".into()));
    invoker.refuse_next(ServiceError::Service("busy".into()));
    let backoff = RunnerSettings {
        retry_backoff: Duration::from_secs(2),
        ..RunnerSettings::default()
    };
    let mut h = Harness::start_with(store.clone(), clock.clone(), invoker, backoff).await;
    let fire = created + TimeDelta::hours(1);
    let before = h.passes();
    clock.set(fire);
    // The runner waits on the clock between attempts: 2 s, then 4 s.
    wait_for_calls(&h.invoker, 1).await;
    clock.set(fire + TimeDelta::seconds(2));
    wait_for_calls(&h.invoker, 2).await;
    clock.set(fire + TimeDelta::seconds(6));
    h.settle(before).await;
    let at: Vec<DateTime<Utc>> = h.invoker.calls().iter().map(|c| c.at).collect();
    assert_eq!(
        at,
        [
            fire,
            fire + TimeDelta::seconds(2),
            fire + TimeDelta::seconds(6)
        ]
    );
    assert_eq!(last_fire(&store, "r").await, Some(fire));
    h.stop().await;
}

async fn wait_for_calls(invoker: &Recorder, n: usize) {
    tokio::time::timeout(PATIENCE, async {
        while invoker.calls().len() < n {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the runner made the call");
}

#[tokio::test]
async fn ids_are_the_same_for_any_runner_and_differ_per_fire() {
    let created = t("2026-01-01T00:00:00Z");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let store = store();
        add(
            &store,
            ScheduleRule::new("r", "rate(1 minute)", "f", created),
        )
        .await;
        let mut h = Harness::start(store, Arc::new(ManualClock::new(created)), settings()).await;
        h.step().await;
        h.step().await;
        ids.push(
            h.stop()
                .await
                .calls()
                .iter()
                .map(|c| c.request.request_id.clone())
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(ids[0], ids[1], "two runners derive the same ids");
    assert_ne!(ids[0][0], ids[0][1], "each fire has its own id");
    assert_eq!(
        ids[0],
        [
            fire_id("r", created + minutes(1)).to_string(),
            fire_id("r", created + minutes(2)).to_string()
        ]
    );
}

#[tokio::test]
async fn stop_ends_a_sleeping_runner_at_once() {
    let created = t("2026-01-01T00:00:00Z");
    let store = store();
    add(&store, ScheduleRule::new("r", "rate(1 day)", "f", created)).await;
    let h = Harness::start(store, Arc::new(ManualClock::new(created)), settings()).await;
    assert!(h.invoker.calls().is_empty());
    h.stop().await;
}
