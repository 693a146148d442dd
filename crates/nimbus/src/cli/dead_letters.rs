//! `nimbus dead-letters`: messages held for SQS queues and SNS topics — dead letters of async
//! events that failed for good (`DeadLetterConfig`) and invocation records for queue or topic
//! destinations.

use anyhow::Result;
use clap::Args;

use super::client::{ClientArgs, HeldMessage};
use super::output::{print_json, write_stdout, OutputFormat, Style, Table};

/// Flags of `dead-letters`.
#[derive(Debug, Args)]
pub struct DeadLettersArgs {
    /// Only messages for this queue or topic ARN.
    #[arg(long)]
    pub target: Option<String>,
    /// At most this many messages (oldest first).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[command(flatten)]
    pub client: ClientArgs,
}

impl DeadLettersArgs {
    /// Run the command.
    pub async fn run(self) -> Result<()> {
        let answer = self
            .client
            .client()?
            .held_messages(self.target.as_deref(), self.limit)
            .await?;
        match self.client.output {
            OutputFormat::Json => print_json(&answer.json),
            OutputFormat::Table => {
                write_stdout(&messages_table(&answer.typed).render(Style::for_stdout()))
            }
        }
    }
}

/// Longest body shown in a table cell.
const BODY_WIDTH: usize = 48;

fn messages_table(messages: &[HeldMessage]) -> Table {
    let mut table = Table::new(["SENT", "TARGET", "REQUEST ID", "ERROR", "BODY"]);
    for m in messages {
        let attribute = |name: &str| {
            m.message_attributes
                .get(name)
                .map(|a| a.string_value.clone())
                .unwrap_or_default()
        };
        let sent = m
            .sent_timestamp
            .parse::<i64>()
            .ok()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let target = m
            .target_arn
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        let error = match (attribute("ErrorCode"), attribute("ErrorMessage")) {
            (code, _) if code.is_empty() => "-".to_owned(),
            (code, message) => format!("{code} {message}"),
        };
        table.push_row([sent, target, attribute("RequestID"), error, clip(&m.body)]);
    }
    table
}

/// The first line of `text`, cut to [`BODY_WIDTH`] characters.
fn clip(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(BODY_WIDTH) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::client::HeldAttribute;
    use super::*;

    #[test]
    fn lists_messages_as_a_table() {
        let message = HeldMessage {
            message_id: "m1".into(),
            target_arn: "arn:aws:sqs:us-east-1:000000000000:dlq".into(),
            body: format!("{{\"k\":\"{}\"}}", "x".repeat(60)),
            message_attributes: [
                ("RequestID", "r-1"),
                ("ErrorCode", "200"),
                ("ErrorMessage", "boom"),
            ]
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_owned(),
                    HeldAttribute {
                        string_value: v.to_owned(),
                    },
                )
            })
            .collect(),
            sent_timestamp: "1767225600000".into(),
        };
        let rendered = messages_table(&[message]).render(Style::PLAIN);
        let row = rendered.lines().nth(1).expect("row");
        let cells: Vec<&str> = row
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(
            cells[..4],
            ["2026-01-01 00:00:00", "dlq", "r-1", "200 boom"],
            "{row}"
        );
        assert_eq!(cells[4].chars().count(), BODY_WIDTH + 1, "{row}");
        assert!(row.ends_with('…'), "{row}");
    }
}
