//! A [`LogSink`] that batches environment log lines into the [`LogStore`] off the invoke path.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nimbus_core::logs::{LogEvent, LogStore};
use nimbus_core::sandbox::LogSink;
use tokio::sync::mpsc;

/// Lines waiting beyond this are dropped (and counted) rather than stalling functions.
const QUEUE: usize = 65_536;
const BATCH: usize = 1_024;

/// Forwards lines to a background task that writes them in batches.
pub struct StoreLogSink {
    tx: mpsc::Sender<LogEvent>,
}

impl StoreLogSink {
    /// Start the writer task; it ends when the sink is dropped and the queue is drained.
    pub fn start(store: Arc<dyn LogStore>) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<LogEvent>(QUEUE);
        let writer = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                if let Err(err) = store.append(std::mem::take(&mut batch)).await {
                    tracing::warn!(error = %err, "could not store function log lines");
                }
                // A short pause lets lines accumulate into larger transactions under load.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        (Arc::new(Self { tx }), writer)
    }
}

impl LogSink for StoreLogSink {
    fn write(&self, group: &str, stream: &str, timestamp: SystemTime, line: &str) {
        let timestamp_ms = timestamp
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let event = LogEvent {
            id: 0,
            group: group.to_owned(),
            stream: stream.to_owned(),
            timestamp_ms,
            message: line.to_owned(),
        };
        if self.tx.try_send(event).is_err() {
            tracing::warn!(group, "log queue full; a function log line was dropped");
        }
    }
}
