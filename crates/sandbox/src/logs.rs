//! Capture of an environment's stdout and stderr, and the platform's log lines about it.
//!
//! Both streams share one pipe (so their relative order is kept). A reader task splits what
//! arrives into lines and writes each to the [`LogSink`] under the environment's group and
//! stream. While an invocation runs, its lines are also kept, from `START` to `REPORT`, for
//! [`InvocationReport::log`](nimbus_core::sandbox::InvocationReport::log).
//!
//! Attribution: a runtime writes its output with `write(2)` *before* it posts the result, so
//! by the time the post arrives those bytes sit in the pipe, even if the reader task has not
//! been scheduled yet. [`LogCapture::drain`] therefore reads the pipe synchronously, without
//! waiting, until it would block: all output written before the result is attributed before
//! `END`, and the hot path pays one `read` that returns `EAGAIN`. Output still buffered inside
//! the runtime (unflushed stdio) or written later by background threads or children is not
//! awaited; it lands in the sink and in the next invocation's log, as on Lambda. Each drain
//! reads at most [`DRAIN_BUDGET`] bytes, so a runtime that writes without pause cannot hold up
//! an invocation (the excess is read by the reader task, after `END`).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use nimbus_core::sandbox::LogSink;

mod lines;
pub(crate) use lines::{
    end_line, init_report_line, report_line, start_line, timed_out_message, timeout_line,
};
use tokio::net::unix::pipe;
use tokio::task::JoinHandle;

/// Longest line passed on; longer output is cut into lines of this size (Lambda splits log
/// events at 256 KiB too).
const MAX_LINE_BYTES: usize = 256 * 1024;
/// How much of an invocation's log is kept for its report: the tail, cut at line boundaries.
/// The API returns only the last 4 KiB; the rest serves callers that want more context.
const INVOCATION_LOG_BYTES: usize = 64 * 1024;
/// How much Init output is kept, for the log of a first invocation whose Init failed.
const INIT_LOG_BYTES: usize = 16 * 1024;
/// Bytes read from the pipe per `read` call.
const READ_CHUNK: usize = 16 * 1024;
/// Bytes one drain reads at most before it lets go of the thread and the log lock.
const DRAIN_BUDGET: usize = 1024 * 1024;

/// Captures one environment's output; dropping it stops the reader.
#[derive(Debug)]
pub(crate) struct LogCapture {
    shared: Arc<Shared>,
    reader: Mutex<Option<JoinHandle<()>>>,
}

/// The write ends of the capture pipe, to hand to the process.
#[derive(Debug)]
pub(crate) struct ProcessOutput {
    pub(crate) stdout: OwnedFd,
    pub(crate) stderr: OwnedFd,
}

struct Shared {
    sink: Arc<dyn LogSink>,
    group: String,
    stream: String,
    pipe: pipe::Receiver,
    state: Mutex<State>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("group", &self.group)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct State {
    /// Bytes after the last newline.
    partial: Vec<u8>,
    /// The pipe reached end of file (every writer is gone).
    eof: bool,
    /// Output written before the first invocation began.
    init: Option<Tail>,
    /// The log of the invocation running now.
    current: Option<Tail>,
}

impl LogCapture {
    /// Create the pipe and start reading it. Must be called inside a tokio runtime.
    pub(crate) fn start(
        sink: Arc<dyn LogSink>,
        group: String,
        stream: String,
    ) -> io::Result<(Self, ProcessOutput)> {
        // Both ends are close-on-exec; the spawner dups the write end onto fds 1 and 2.
        let (reader, writer) = io::pipe()?;
        // `from_owned_fd` makes only our end non-blocking: the pipe's ends are separate open
        // file descriptions, so the runtime keeps ordinary blocking writes.
        let reader = pipe::Receiver::from_owned_fd(OwnedFd::from(reader))?;
        let stdout = OwnedFd::from(writer);
        let stderr = stdout.try_clone()?;
        let shared = Arc::new(Shared {
            sink,
            group,
            stream,
            pipe: reader,
            state: Mutex::new(State {
                partial: Vec::new(),
                eof: false,
                init: Some(Tail::new(INIT_LOG_BYTES)),
                current: None,
            }),
        });
        let reader = tokio::spawn(read_loop(Arc::clone(&shared)));
        Ok((
            Self {
                shared,
                reader: Mutex::new(Some(reader)),
            },
            ProcessOutput { stdout, stderr },
        ))
    }

    /// Write a platform line (e.g. `END RequestId: …`) to the sink and the current log.
    pub(crate) fn platform(&self, line: &str) {
        let mut state = self.shared.lock();
        self.shared.emit(&mut state, SystemTime::now(), line);
    }

    /// Begin an invocation's log with `start_line`. With `include_init`, the Init output
    /// captured so far follows it (for a first invocation whose Init failed).
    pub(crate) fn begin(&self, start_line: &str, include_init: bool) {
        let mut state = self.shared.lock();
        let init = state.init.take();
        state.current = Some(Tail::new(INVOCATION_LOG_BYTES));
        self.shared.emit(&mut state, SystemTime::now(), start_line);
        if let (true, Some(init), Some(current)) = (include_init, init, state.current.as_mut()) {
            current.push_text(&init.text);
        }
    }

    /// Read what the runtime has written so far (see the module docs), without waiting.
    pub(crate) fn drain(&self) {
        self.shared.drain(true);
    }

    /// End the invocation's log and return it.
    pub(crate) fn finish(&self) -> String {
        let mut state = self.shared.lock();
        state
            .current
            .take()
            .map(Tail::into_text)
            .unwrap_or_default()
    }

    /// Wait (at most `limit`) for the reader to see end of file, then stop it.
    pub(crate) async fn close(&self, limit: std::time::Duration) {
        let reader = self.take_reader();
        if let Some(mut reader) = reader {
            if tokio::time::timeout(limit, &mut reader).await.is_err() {
                reader.abort();
            }
        }
    }

    fn take_reader(&self) -> Option<JoinHandle<()>> {
        self.reader
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        if let Some(reader) = self.take_reader() {
            reader.abort();
        }
    }
}

async fn read_loop(shared: Arc<Shared>) {
    loop {
        if shared.pipe.readable().await.is_err() {
            return;
        }
        // `try_io` clears the readiness when the closure reports `WouldBlock`, i.e. when the
        // pipe is empty; after a full budget the readiness stays, and the loop comes back
        // once other tasks have had their turn.
        let drained = shared.pipe.try_io(|| match shared.drain(false) {
            Drained::Empty => Err(io::ErrorKind::WouldBlock.into()),
            other => Ok(other),
        });
        match drained {
            Ok(Drained::Budget) => tokio::task::yield_now().await,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Ok(_) | Err(_) => return,
        }
    }
}

/// Where a [`Shared::drain`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drained {
    /// The pipe is empty for now.
    Empty,
    /// [`DRAIN_BUDGET`] bytes were read; there may be more.
    Budget,
    /// Every writer is gone.
    Eof,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Read until the pipe would block, at most [`DRAIN_BUDGET`] bytes, so that a runtime
    /// writing without pause can hold neither this thread nor the log lock. With `barrier`
    /// (the runtime has posted its result), a trailing line without its newline is emitted
    /// too; otherwise it waits for the rest, which may come in a later `write`.
    fn drain(&self, barrier: bool) -> Drained {
        let mut state = self.lock();
        if state.eof {
            return Drained::Eof;
        }
        let mut buf = [0u8; READ_CHUNK];
        let mut budget = DRAIN_BUDGET;
        loop {
            if budget == 0 {
                return Drained::Budget;
            }
            // Read directly rather than through tokio's readiness cache: the barrier must see
            // bytes the reactor has not reported yet.
            match rustix::io::read(self.pipe.as_fd(), &mut buf) {
                Ok(0) => {
                    self.flush_partial(&mut state);
                    state.eof = true;
                    return Drained::Eof;
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    self.accept_bytes(&mut state, &buf[..n]);
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => {
                    // A line cut off without its newline when the runtime posted its result
                    // still belongs to this invocation.
                    if barrier {
                        self.flush_partial(&mut state);
                    }
                    return Drained::Empty;
                }
                Err(error) => {
                    tracing::warn!(%error, "reading environment output failed");
                    self.flush_partial(&mut state);
                    state.eof = true;
                    return Drained::Eof;
                }
            }
        }
    }

    fn accept_bytes(&self, state: &mut State, mut bytes: &[u8]) {
        let now = SystemTime::now();
        while let Some(newline) = bytes.iter().position(|&b| b == b'\n') {
            let (line, rest) = bytes.split_at(newline);
            bytes = &rest[1..];
            if state.partial.is_empty() {
                self.emit_bytes(state, now, line);
            } else {
                let mut joined = std::mem::take(&mut state.partial);
                joined.extend_from_slice(line);
                self.emit_bytes(state, now, &joined);
            }
        }
        state.partial.extend_from_slice(bytes);
        while state.partial.len() >= MAX_LINE_BYTES {
            let rest = state.partial.split_off(MAX_LINE_BYTES);
            let line = std::mem::replace(&mut state.partial, rest);
            self.emit_bytes(state, now, &line);
        }
    }

    fn flush_partial(&self, state: &mut State) {
        if !state.partial.is_empty() {
            let line = std::mem::take(&mut state.partial);
            self.emit_bytes(state, SystemTime::now(), &line);
        }
    }

    fn emit_bytes(&self, state: &mut State, at: SystemTime, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.emit(state, at, &String::from_utf8_lossy(line));
    }

    fn emit(&self, state: &mut State, at: SystemTime, line: &str) {
        self.sink.write(&self.group, &self.stream, at, line);
        if let Some(tail) = state.current.as_mut().or(state.init.as_mut()) {
            tail.push_line(line);
        }
    }
}

/// The last `cap` bytes (or a little more) of a log, kept whole lines at a time.
#[derive(Debug)]
struct Tail {
    text: String,
    cap: usize,
}

impl Tail {
    fn new(cap: usize) -> Self {
        Self {
            text: String::new(),
            cap,
        }
    }

    fn push_line(&mut self, line: &str) {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push_str(line);
        // Trim only when twice over the cap, so trimming costs amortized O(1) per byte.
        if self.text.len() > 2 * self.cap {
            self.trim();
        }
    }

    fn push_text(&mut self, text: &str) {
        if !text.is_empty() {
            self.push_line(text);
        }
    }

    fn trim(&mut self) {
        let excess = self.text.len().saturating_sub(self.cap);
        // Cut after the first newline past the excess, so the tail starts with a whole line;
        // a single line longer than the cap is kept whole.
        // Newlines are always char boundaries, so byte positions found here are safe to cut at.
        let bytes = self.text.as_bytes();
        let cut = match bytes[excess..].iter().position(|&b| b == b'\n') {
            Some(offset) => Some(excess + offset + 1),
            None => bytes[..excess]
                .iter()
                .rposition(|&b| b == b'\n')
                .map(|i| i + 1),
        };
        if let Some(cut) = cut {
            self.text.drain(..cut);
        }
    }

    fn into_text(mut self) -> String {
        if self.text.len() > self.cap {
            self.trim();
        }
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_whole_lines_at_the_end() {
        let mut tail = Tail::new(10);
        for i in 0..10 {
            tail.push_line(&format!("line{i}"));
        }
        assert_eq!(tail.into_text(), "line9");
        let mut tail = Tail::new(100);
        tail.push_line("a");
        tail.push_line("b");
        assert_eq!(tail.into_text(), "a\nb");
    }

    #[test]
    fn tail_trims_multibyte_text_at_line_boundaries() {
        let mut tail = Tail::new(8);
        for _ in 0..5 {
            tail.push_line("ééé");
        }
        assert_eq!(tail.into_text(), "ééé");
    }

    #[test]
    fn tail_keeps_an_overlong_single_line() {
        let mut tail = Tail::new(4);
        tail.push_line("0123456789");
        assert_eq!(tail.into_text(), "0123456789");
    }
}
