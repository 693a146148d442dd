//! `nimbus invoke NAME [--payload JSON|@file] [--log]`: run a function and print its result.

use std::io::Write as _;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::client::ClientArgs;
use super::output::OutputFormat;

/// Flags of `nimbus invoke`.
#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// The function's name or ARN.
    pub name: String,
    /// The event: JSON text, or @FILE to read it from a file (@- for stdin).
    #[arg(long, short, default_value = "{}")]
    pub payload: String,
    /// Also print the last 4 KB of the invocation's log (to stderr).
    #[arg(long)]
    pub log: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

impl InvokeArgs {
    /// Run the command.
    pub async fn run(self) -> Result<()> {
        let payload = read_payload(&self.payload)?;
        let client = self.client.client()?;
        let out = client.invoke(&self.name, payload, self.log).await?;
        if let Some(log) = &out.log {
            eprintln!("{}", log.trim_end());
        }
        match self.client.output {
            OutputFormat::Json => {
                let body: serde_json::Value = serde_json::from_slice(&out.payload)
                    .unwrap_or_else(|_| String::from_utf8_lossy(&out.payload).into_owned().into());
                let report = serde_json::json!({
                    "StatusCode": 200,
                    "FunctionError": out.function_error,
                    "ExecutedVersion": out.executed_version,
                    "Payload": body,
                });
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            OutputFormat::Table => {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(&out.payload)?;
                if !out.payload.ends_with(b"\n") {
                    writeln!(stdout)?;
                }
            }
        }
        if let Some(kind) = out.function_error {
            bail!("the function failed ({kind})");
        }
        Ok(())
    }
}

/// The event bytes from `--payload`: literal JSON, `@file` or `@-`.
fn read_payload(arg: &str) -> Result<Vec<u8>> {
    let bytes = match arg.strip_prefix('@') {
        Some("-") => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("read stdin")?;
            buf
        }
        Some(path) => std::fs::read(path).with_context(|| format!("read payload file {path}"))?,
        None => arg.as_bytes().to_vec(),
    };
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .context("the payload must be JSON (use @FILE to read it from a file)")?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_must_be_json() {
        assert_eq!(read_payload(r#"{"a":1}"#).expect("json"), br#"{"a":1}"#);
        assert!(read_payload("not json").is_err());
        assert!(read_payload("@/no/such/file").is_err());
    }
}
