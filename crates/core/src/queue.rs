//! The durable queue behind asynchronous invocation (`lambda-compat.md` §9), and the
//! per-function settings that govern its retries and destinations.
//!
//! An event is acknowledged to its caller (202) only once [`EventQueue::enqueue`] has returned,
//! which means it is committed and on disk. Dispatch is at-least-once: a dispatcher *leases*
//! due events, runs them, and then completes, reschedules or releases each. A lease names its
//! owner; leases of an owner that is gone (a crashed server) are taken back with
//! [`EventQueue::recover`], so every accepted event runs even across a crash.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::names::FunctionName;

/// One accepted asynchronous invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedEvent {
    /// The request id the caller was given (also the invocation's id).
    pub id: String,
    /// The function to run.
    pub function: FunctionName,
    /// The qualifier it was invoked with (`None` = unqualified, i.e. `$LATEST`).
    pub qualifier: Option<String>,
    /// The event payload.
    pub payload: Bytes,
    /// When the event was accepted; its age counts from here.
    pub enqueued_at: DateTime<Utc>,
    /// Attempts that ended in a function error so far (throttles do not count).
    pub attempts: u32,
    /// The event is not dispatched before this instant (backoff between attempts).
    pub not_before: DateTime<Utc>,
}

/// Durable storage of queued events, shared by every dispatcher.
///
/// Every mutation is durable when the call returns; a lease need not be (see
/// [`lease`](Self::lease)).
#[async_trait]
pub trait EventQueue: Send + Sync + 'static {
    /// Store a new event; returns once it is committed and on disk.
    /// [`StoreError::AlreadyExists`] if an event with the same id is stored.
    async fn enqueue(&self, event: &QueuedEvent) -> Result<(), StoreError>;

    /// Lease up to `limit` events that are due at `now` and not leased by anyone, oldest
    /// `not_before` first, on behalf of `owner`. A leased event is not handed out again until
    /// it is completed, rescheduled or released, or its owner's leases are recovered.
    /// Events due at the same instant come in the order they were enqueued.
    ///
    /// A lease is the one mutation that need not be durable: leases only matter while their
    /// owner runs, and after a crash [`recover`](Self::recover) gives them all back anyway. A
    /// lease lost to a power cut only means its event runs again (at-least-once).
    async fn lease(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<QueuedEvent>, StoreError>;

    /// The event ran to its end (success, or failure with nothing left to try): remove it.
    /// [`StoreError::NotFound`] if no such event is stored (completed already, or its function
    /// forgotten while it ran).
    async fn complete(&self, id: &str) -> Result<(), StoreError>;

    /// Put a leased event back for another attempt at `not_before`, with its new attempt count.
    /// [`StoreError::NotFound`] if no such event is stored.
    async fn reschedule(
        &self,
        id: &str,
        attempts: u32,
        not_before: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Give back the leases of every owner other than `current_owner` (at start-up: they
    /// belonged to a process that is gone). Returns how many events were released.
    async fn recover(&self, current_owner: &str) -> Result<u64, StoreError>;

    /// Events stored (leased or not).
    async fn len(&self) -> Result<u64, StoreError>;

    /// Whether no events are stored.
    async fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len().await? == 0)
    }

    /// The settings of asynchronous invocation for a function (and qualifier, `None` =
    /// unqualified), if any were put.
    async fn get_invoke_config(
        &self,
        function: &FunctionName,
        qualifier: Option<&str>,
    ) -> Result<Option<EventInvokeConfig>, StoreError>;

    /// Store (replace) a function's asynchronous invocation settings. An empty qualifier is the
    /// same as none (unqualified).
    async fn put_invoke_config(&self, config: &EventInvokeConfig) -> Result<(), StoreError>;

    /// Remove a function's settings for one qualifier; [`StoreError::NotFound`] if none.
    async fn delete_invoke_config(
        &self,
        function: &FunctionName,
        qualifier: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Every qualifier's settings of a function, in qualifier order (unqualified first).
    async fn list_invoke_configs(
        &self,
        function: &FunctionName,
    ) -> Result<Vec<EventInvokeConfig>, StoreError>;

    /// Remove a deleted function's settings and queued events.
    async fn forget_function(&self, function: &FunctionName) -> Result<(), StoreError>;

    /// Hold a message for a queue or topic target; returns once it is on disk. Messages
    /// older than [`OUTBOX_RETENTION`] may be dropped on the way.
    async fn hold(&self, message: &OutboxMessage) -> Result<(), StoreError>;

    /// Held messages, oldest first: all, or those for one target ARN; at most `limit`.
    async fn held(
        &self,
        target_arn: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxMessage>, StoreError>;
}

/// How long held messages are kept: SQS's longest retention.
pub const OUTBOX_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);

/// A message bound for an SQS queue or SNS topic: a dead-letter message
/// (`DeadLetterConfig.TargetArn`) or an invocation record for a queue or topic destination.
/// Nimbus hosts no queues or topics (yet), so such messages are held durably beside the event
/// queue, where operators read them (`nimbus dead-letters`), instead of being dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Message id.
    pub id: String,
    /// The queue or topic ARN it is for.
    pub target_arn: String,
    /// Message body: the original event (dead letters) or the invocation record.
    pub body: Bytes,
    /// Message attributes, by name (dead letters: `RequestID`, `ErrorCode`, `ErrorMessage`).
    pub attributes: std::collections::BTreeMap<String, MessageAttribute>,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
}

/// One SQS/SNS message attribute, shaped as SQS returns it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageAttribute {
    /// `String` or `Number`.
    pub data_type: String,
    /// The value, as text (numbers too, as in SQS).
    pub string_value: String,
}

impl MessageAttribute {
    /// A `String` attribute.
    pub fn string(value: impl Into<String>) -> Self {
        Self {
            data_type: "String".to_owned(),
            string_value: value.into(),
        }
    }

    /// A `Number` attribute.
    pub fn number(value: impl ToString) -> Self {
        Self {
            data_type: "Number".to_owned(),
            string_value: value.to_string(),
        }
    }
}

/// `FunctionEventInvokeConfig`: retries, maximum age and destinations of async invocations.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventInvokeConfig {
    /// The function.
    pub function: FunctionName,
    /// The qualifier the settings apply to (`None` = unqualified).
    pub qualifier: Option<String>,
    /// Retries after a function error: 0–2 (Lambda's default 2).
    pub maximum_retry_attempts: Option<u32>,
    /// How long an event may wait, in seconds: 60–21600 (default 21600).
    pub maximum_event_age_seconds: Option<u32>,
    /// Destination ARN for successful invocations.
    pub on_success: Option<String>,
    /// Destination ARN for events that failed for good or expired.
    pub on_failure: Option<String>,
    /// When the settings last changed.
    pub last_modified: DateTime<Utc>,
}

/// Lambda's defaults for async invocation.
pub mod defaults {
    use super::Duration;

    /// Retries after a function error.
    pub const MAXIMUM_RETRY_ATTEMPTS: u32 = 2;
    /// Maximum event age.
    pub const MAXIMUM_EVENT_AGE: Duration = Duration::from_secs(21_600);
    /// Smallest configurable maximum event age.
    pub const MINIMUM_EVENT_AGE: Duration = Duration::from_secs(60);
}

/// An in-memory [`EventQueue`], the reference the durable backends are tested against and a
/// stand-in for them in tests of the layers above.
#[cfg(feature = "test-util")]
pub mod memory {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::{Mutex, MutexGuard, PoisonError};

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};

    use super::{EventInvokeConfig, EventQueue, OutboxMessage, QueuedEvent};
    use crate::error::StoreError;
    use crate::names::FunctionName;

    /// [`EventQueue`] in memory, with the same leases, owners, ordering and errors as the
    /// durable queue. "Durable" here means: for as long as this value lives.
    #[derive(Debug, Default)]
    pub struct MemoryEventQueue {
        state: Mutex<State>,
    }

    #[derive(Debug, Default)]
    struct State {
        /// Events by insertion sequence number, so ties in `not_before` keep their order.
        events: BTreeMap<u64, Entry>,
        /// Sequence number by event id.
        ids: HashMap<String, u64>,
        next_seq: u64,
        /// Settings by function and qualifier (`""` = unqualified), which sorts unqualified
        /// first and the rest as strings, as the durable queue lists them.
        configs: BTreeMap<(FunctionName, String), EventInvokeConfig>,
        outbox: Vec<OutboxMessage>,
    }

    #[derive(Debug)]
    struct Entry {
        event: QueuedEvent,
        lease: Option<String>,
    }

    impl MemoryEventQueue {
        fn state(&self) -> MutexGuard<'_, State> {
            // Every mutation below is a few map operations that cannot panic half-way.
            self.state.lock().unwrap_or_else(PoisonError::into_inner)
        }

        /// The owner of an event's lease: `None` if it is not stored, `Some(None)` if it is not
        /// leased. For tests that look inside.
        pub fn lease_of(&self, id: &str) -> Option<Option<String>> {
            let state = self.state();
            let seq = state.ids.get(id)?;
            state.events.get(seq).map(|entry| entry.lease.clone())
        }
    }

    fn config_key(function: &FunctionName, qualifier: Option<&str>) -> (FunctionName, String) {
        (function.clone(), qualifier.unwrap_or_default().to_owned())
    }

    #[async_trait]
    impl EventQueue for MemoryEventQueue {
        async fn enqueue(&self, event: &QueuedEvent) -> Result<(), StoreError> {
            let mut state = self.state();
            if state.ids.contains_key(&event.id) {
                return Err(StoreError::AlreadyExists);
            }
            let seq = state.next_seq;
            state.next_seq += 1;
            state.ids.insert(event.id.clone(), seq);
            state.events.insert(
                seq,
                Entry {
                    event: event.clone(),
                    lease: None,
                },
            );
            Ok(())
        }

        async fn lease(
            &self,
            owner: &str,
            now: DateTime<Utc>,
            limit: usize,
        ) -> Result<Vec<QueuedEvent>, StoreError> {
            let mut state = self.state();
            let mut due: Vec<(DateTime<Utc>, u64)> = state
                .events
                .iter()
                .filter(|(_, entry)| entry.lease.is_none() && entry.event.not_before <= now)
                .map(|(seq, entry)| (entry.event.not_before, *seq))
                .collect();
            due.sort_unstable();
            due.truncate(limit);
            let mut leased = Vec::with_capacity(due.len());
            for (_, seq) in due {
                if let Some(entry) = state.events.get_mut(&seq) {
                    entry.lease = Some(owner.to_owned());
                    leased.push(entry.event.clone());
                }
            }
            Ok(leased)
        }

        async fn complete(&self, id: &str) -> Result<(), StoreError> {
            let mut state = self.state();
            let seq = state.ids.remove(id).ok_or(StoreError::NotFound)?;
            state.events.remove(&seq);
            Ok(())
        }

        async fn reschedule(
            &self,
            id: &str,
            attempts: u32,
            not_before: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            let mut state = self.state();
            let seq = *state.ids.get(id).ok_or(StoreError::NotFound)?;
            let entry = state.events.get_mut(&seq).ok_or(StoreError::NotFound)?;
            entry.event.attempts = attempts;
            entry.event.not_before = not_before;
            entry.lease = None;
            Ok(())
        }

        async fn recover(&self, current_owner: &str) -> Result<u64, StoreError> {
            let mut released = 0;
            for entry in self.state().events.values_mut() {
                if entry
                    .lease
                    .as_deref()
                    .is_some_and(|owner| owner != current_owner)
                {
                    entry.lease = None;
                    released += 1;
                }
            }
            Ok(released)
        }

        async fn len(&self) -> Result<u64, StoreError> {
            Ok(self.state().events.len() as u64)
        }

        async fn get_invoke_config(
            &self,
            function: &FunctionName,
            qualifier: Option<&str>,
        ) -> Result<Option<EventInvokeConfig>, StoreError> {
            Ok(self
                .state()
                .configs
                .get(&config_key(function, qualifier))
                .cloned())
        }

        async fn put_invoke_config(&self, config: &EventInvokeConfig) -> Result<(), StoreError> {
            let key = config_key(&config.function, config.qualifier.as_deref());
            let mut stored = config.clone();
            if key.1.is_empty() {
                stored.qualifier = None;
            }
            self.state().configs.insert(key, stored);
            Ok(())
        }

        async fn delete_invoke_config(
            &self,
            function: &FunctionName,
            qualifier: Option<&str>,
        ) -> Result<(), StoreError> {
            self.state()
                .configs
                .remove(&config_key(function, qualifier))
                .map(drop)
                .ok_or(StoreError::NotFound)
        }

        async fn list_invoke_configs(
            &self,
            function: &FunctionName,
        ) -> Result<Vec<EventInvokeConfig>, StoreError> {
            Ok(self
                .state()
                .configs
                .iter()
                .filter(|((name, _), _)| name == function)
                .map(|(_, config)| config.clone())
                .collect())
        }

        async fn forget_function(&self, function: &FunctionName) -> Result<(), StoreError> {
            let mut state = self.state();
            state.configs.retain(|(name, _), _| name != function);
            let gone: Vec<u64> = state
                .events
                .iter()
                .filter(|(_, entry)| &entry.event.function == function)
                .map(|(seq, _)| *seq)
                .collect();
            for seq in gone {
                if let Some(entry) = state.events.remove(&seq) {
                    state.ids.remove(&entry.event.id);
                }
            }
            Ok(())
        }

        async fn hold(&self, message: &OutboxMessage) -> Result<(), StoreError> {
            let mut state = self.state();
            if state.outbox.iter().any(|m| m.id == message.id) {
                return Err(StoreError::AlreadyExists);
            }
            state.outbox.push(message.clone());
            Ok(())
        }

        async fn held(
            &self,
            target_arn: Option<&str>,
            limit: usize,
        ) -> Result<Vec<OutboxMessage>, StoreError> {
            Ok(self
                .state()
                .outbox
                .iter()
                .filter(|m| target_arn.is_none_or(|arn| m.target_arn == arn))
                .take(limit)
                .cloned()
                .collect())
        }
    }
}
