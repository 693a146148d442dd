//! `nimbus logs NAME [--follow] [--since 10m]`: print a function's log lines.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;

use super::client::{ClientArgs, LogLine};
use super::output::{OutputFormat, Style};

/// Flags of `nimbus logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The function's name.
    pub name: String,
    /// Keep printing new lines as they are written.
    #[arg(long, short)]
    pub follow: bool,
    /// Only lines from this far back, e.g. 30s, 10m, 2h, 1d (default: everything).
    #[arg(long)]
    pub since: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

impl LogsArgs {
    /// Run the command.
    pub async fn run(self) -> Result<()> {
        let client = self.client.client()?;
        let group = format!("/aws/lambda/{}", self.name);
        let start = match &self.since {
            Some(since) => Some(chrono::Utc::now().timestamp_millis() - parse_since(since)?),
            None => None,
        };
        let style = Style::for_stdout();
        let mut token: Option<String> = None;
        let mut seen: HashSet<String> = HashSet::new();
        loop {
            let (events, next) = match client
                .filter_log_events(&group, start, token.as_deref())
                .await
            {
                Ok(page) => page,
                // A function that never ran has no log group yet; when following, wait for one.
                Err(err) if self.follow && is_missing_group(&err) => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                Err(err) => return Err(err),
            };
            for event in &events {
                if seen.insert(event.event_id.clone()) {
                    print_line(event, self.client.output, style)?;
                }
            }
            match next {
                Some(next) => token = Some(next),
                None if self.follow => {
                    token = events.last().map(|e| e.event_id.clone()).or(token);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                None => return Ok(()),
            }
        }
    }
}

fn is_missing_group(err: &anyhow::Error) -> bool {
    super::client::ApiError::find(err).is_some_and(|e| e.is_not_found())
}

fn print_line(event: &LogLine, output: OutputFormat, style: Style) -> Result<()> {
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({
                "timestamp": event.timestamp,
                "logStreamName": event.log_stream_name,
                "message": event.message,
            })
        ),
        OutputFormat::Table => {
            let time = chrono::DateTime::from_timestamp_millis(event.timestamp)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
                .unwrap_or_default();
            println!("{} {}", style.dim(&time), event.message);
        }
    }
    Ok(())
}

/// `30s`, `10m`, `2h`, `1d` → milliseconds.
fn parse_since(text: &str) -> Result<i64> {
    let (number, unit) = text.split_at(text.trim_end_matches(char::is_alphabetic).len());
    let n: i64 = number
        .parse()
        .map_err(|_| anyhow::anyhow!("--since {text:?}: expected e.g. 10m"))?;
    let ms = match unit {
        "s" | "" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => bail!("--since {text:?}: unit must be s, m, h or d"),
    };
    Ok(n * ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_parses_units() {
        assert_eq!(parse_since("30s").expect("s"), 30_000);
        assert_eq!(parse_since("10m").expect("m"), 600_000);
        assert!(parse_since("10y").is_err());
        assert!(parse_since("m").is_err());
    }
}
