//! The platform's log lines about invocations, in Lambda's text format (§7 of the
//! compatibility notes): `START`, `END`, `REPORT`, `INIT_REPORT` and the timeout line.

use std::time::{Duration, SystemTime};

/// `START RequestId: <id> Version: <version>`.
pub(crate) fn start_line(request_id: &str, version: &str) -> String {
    format!("START RequestId: {request_id} Version: {version}")
}

/// `END RequestId: <id>`.
pub(crate) fn end_line(request_id: &str) -> String {
    format!("END RequestId: {request_id}")
}

/// The `REPORT` line; `Init Duration` only on an environment's first invocation. Billed
/// duration is the duration rounded up to whole milliseconds (at least 1).
pub(crate) fn report_line(
    request_id: &str,
    duration: Duration,
    memory_mb: u32,
    max_memory_used_mb: u64,
    init_duration: Option<Duration>,
) -> String {
    let billed_ms = duration.as_micros().div_ceil(1000).max(1);
    let mut line = format!(
        "REPORT RequestId: {request_id}\tDuration: {:.2} ms\tBilled Duration: {billed_ms} ms\t\
         Memory Size: {memory_mb} MB\tMax Memory Used: {max_memory_used_mb} MB\t",
        millis(duration)
    );
    if let Some(init) = init_duration {
        line.push_str(&format!("Init Duration: {:.2} ms\t", millis(init)));
    }
    line
}

/// `<ISO-8601 ms>Z <id> Task timed out after N.NN seconds`.
pub(crate) fn timeout_line(at: SystemTime, request_id: &str, message: &str) -> String {
    let at: chrono::DateTime<chrono::Utc> = at.into();
    format!(
        "{} {request_id} {message}",
        at.format("%Y-%m-%dT%H:%M:%S%.3fZ")
    )
}

/// `Task timed out after N.NN seconds` (elapsed time, two decimals).
pub(crate) fn timed_out_message(elapsed: Duration) -> String {
    format!("Task timed out after {:.2} seconds", elapsed.as_secs_f64())
}

/// `INIT_REPORT Init Duration: X ms\tPhase: init\tStatus: <status>[\tError Type: <type>]`,
/// written when Init fails or times out.
pub(crate) fn init_report_line(init: Duration, status: &str, error_type: Option<&str>) -> String {
    let mut line = format!(
        "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: {status}",
        millis(init)
    );
    if let Some(error_type) = error_type {
        line.push_str(&format!("\tError Type: {error_type}"));
    }
    line
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_lines_match_lambda() {
        assert_eq!(
            start_line("r1", "$LATEST"),
            "START RequestId: r1 Version: $LATEST"
        );
        assert_eq!(end_line("r1"), "END RequestId: r1");
        assert_eq!(
            report_line("r1", Duration::from_micros(12_960), 128, 48, Some(Duration::from_micros(117_860))),
            "REPORT RequestId: r1\tDuration: 12.96 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\t\
             Max Memory Used: 48 MB\tInit Duration: 117.86 ms\t"
        );
        assert_eq!(
            report_line("r1", Duration::from_millis(13), 128, 48, None),
            "REPORT RequestId: r1\tDuration: 13.00 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\t\
             Max Memory Used: 48 MB\t"
        );
        assert_eq!(
            timed_out_message(Duration::from_millis(1004)),
            "Task timed out after 1.00 seconds"
        );
        let at = std::time::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(
            timeout_line(at, "r1", "Task timed out after 3.01 seconds"),
            "2023-11-14T22:13:20.123Z r1 Task timed out after 3.01 seconds"
        );
        assert_eq!(
            init_report_line(Duration::from_secs(10), "timeout", None),
            "INIT_REPORT Init Duration: 10000.00 ms\tPhase: init\tStatus: timeout"
        );
    }
}
