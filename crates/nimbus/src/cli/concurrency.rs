//! `nimbus concurrency NAME [N | --delete]`: show, set or remove a function's reserved
//! concurrency, beside what the account has left unreserved.

use anyhow::Result;
use clap::Args;
use serde_json::json;

use super::client::{AccountLimit, ClientArgs};
use super::output::{print_json, render_fields, write_stdout, OutputFormat, Style};

/// Flags of `nimbus concurrency`.
#[derive(Debug, Args)]
pub struct ConcurrencyArgs {
    /// The function's name or ARN.
    pub name: String,
    /// Reserve this many concurrent executions for the function (0 stops it from running).
    #[arg(conflicts_with = "delete")]
    pub reserve: Option<u32>,
    /// Remove the reservation: the function shares the account's unreserved concurrency.
    #[arg(long)]
    pub delete: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

impl ConcurrencyArgs {
    /// Run the command.
    pub async fn run(self) -> Result<()> {
        let client = self.client.client()?;
        let reserved = if let Some(n) = self.reserve {
            client
                .put_function_concurrency(&self.name, n)
                .await?
                .typed
                .reserved_concurrent_executions
        } else {
            if self.delete {
                client.delete_function_concurrency(&self.name).await?;
            }
            client
                .get_function_concurrency(&self.name)
                .await?
                .typed
                .reserved_concurrent_executions
        };
        let account = client.get_account_settings().await?.typed.account_limit;
        match self.client.output {
            OutputFormat::Json => print_json(&json!({
                "FunctionName": self.name,
                "ReservedConcurrentExecutions": reserved,
                "AccountLimit": {
                    "ConcurrentExecutions": account.concurrent_executions,
                    "UnreservedConcurrentExecutions": account.unreserved_concurrent_executions,
                },
            })),
            OutputFormat::Table => {
                let fields = fields(&self.name, reserved, &account);
                write_stdout(&render_fields(&fields, Style::for_stdout()))
            }
        }
    }
}

fn fields(
    name: &str,
    reserved: Option<u32>,
    account: &AccountLimit,
) -> Vec<(&'static str, String)> {
    let reserved = match reserved {
        Some(0) => "0 (the function is throttled: it cannot run)".to_owned(),
        Some(n) => n.to_string(),
        None => "none (uses the account's unreserved concurrency)".to_owned(),
    };
    let count = |n: Option<u32>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
    vec![
        ("Function", name.to_owned()),
        ("Reserved", reserved),
        (
            "Account unreserved",
            format!(
                "{} of {}",
                count(account.unreserved_concurrent_executions),
                count(account.concurrent_executions)
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_reservation_and_the_accounts_remainder() {
        let account = AccountLimit {
            concurrent_executions: Some(1000),
            unreserved_concurrent_executions: Some(990),
        };
        let out = render_fields(&fields("f", Some(10), &account), Style::PLAIN);
        assert_eq!(
            out,
            "Function            f\nReserved            10\nAccount unreserved  990 of 1000\n"
        );
        let none = render_fields(&fields("f", None, &account), Style::PLAIN);
        assert!(
            none.contains("none (uses the account's unreserved concurrency)"),
            "{none}"
        );
    }
}
