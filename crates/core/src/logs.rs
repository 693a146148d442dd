//! Function logs: events grouped as CloudWatch Logs groups them (`/aws/lambda/NAME`, one stream
//! per environment), and the seam ([`LogStore`]) behind which they are kept.

use async_trait::async_trait;

use crate::error::StoreError;

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// Store-assigned, increasing id; 0 before the event is stored.
    pub id: u64,
    /// Log group, e.g. `/aws/lambda/NAME`.
    pub group: String,
    /// Log stream, e.g. `2026/11/26/[$LATEST]0123…`.
    pub stream: String,
    /// When the line was written, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The line, without its trailing newline.
    pub message: String,
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// The group to read.
    pub group: String,
    /// Only these streams, when not empty.
    pub streams: Vec<String>,
    /// Only events at or after this time (ms since epoch).
    pub start_ms: Option<i64>,
    /// Only events before this time (ms since epoch).
    pub end_ms: Option<i64>,
    /// Only events whose message contains this text.
    pub contains: Option<String>,
    /// Only events with an id greater than this (for paging and following).
    pub after_id: Option<u64>,
    /// At most this many events.
    pub limit: usize,
}

/// A stream of a group, with the time of its first and last event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStreamInfo {
    /// Stream name.
    pub name: String,
    /// First event time (ms).
    pub first_ms: i64,
    /// Last event time (ms).
    pub last_ms: i64,
    /// Number of events.
    pub events: u64,
}

/// Where function logs are kept.
#[async_trait]
pub trait LogStore: Send + Sync + 'static {
    /// Store events in order; ids are assigned by the store.
    async fn append(&self, events: Vec<LogEvent>) -> Result<(), StoreError>;
    /// Events matching `query`, oldest first.
    async fn query(&self, query: &LogQuery) -> Result<Vec<LogEvent>, StoreError>;
    /// The streams of a group, most recently written first.
    async fn streams(&self, group: &str) -> Result<Vec<LogStreamInfo>, StoreError>;
}
