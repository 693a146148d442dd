//! `nimbus functions list|get|delete`: look at and remove functions through the Lambda API.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::json;

use super::client::{ClientArgs, FunctionConfiguration, GetFunctionOutput};
use super::output::{
    human_size, print_json, render_fields, write_stdout, OutputFormat, Style, Table,
};

/// The `functions` subcommands.
#[derive(Debug, Subcommand)]
pub enum FunctionsCommand {
    /// List all functions.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show one function: its configuration, environment variable names, tags and code location.
    Get(GetArgs),
    /// Delete a function with all its versions and aliases.
    #[command(visible_alias = "rm")]
    Delete(DeleteArgs),
}

/// Arguments of `functions list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Arguments of `functions get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Function name.
    pub name: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Arguments of `functions delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Function name.
    pub name: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

impl FunctionsCommand {
    /// Runs the subcommand, printing its result on stdout.
    pub async fn run(self) -> Result<()> {
        match self {
            FunctionsCommand::List(args) => list(args).await,
            FunctionsCommand::Get(args) => get(args).await,
            FunctionsCommand::Delete(args) => delete(args).await,
        }
    }
}

async fn list(args: ListArgs) -> Result<()> {
    let functions = args.client.client()?.list_functions().await?;
    match args.client.output {
        OutputFormat::Json => print_json(&functions.json),
        OutputFormat::Table => {
            write_stdout(&list_table(functions.typed).render(Style::for_stdout()))
        }
    }
}

async fn get(args: GetArgs) -> Result<()> {
    let function = args.client.client()?.get_function(&args.name).await?;
    match args.client.output {
        OutputFormat::Json => print_json(&function.json),
        OutputFormat::Table => {
            let fields = function_fields(&function.typed);
            write_stdout(&render_fields(&fields, Style::for_stdout()))
        }
    }
}

async fn delete(args: DeleteArgs) -> Result<()> {
    args.client.client()?.delete_function(&args.name).await?;
    match args.client.output {
        // DeleteFunction answers with an empty body; scripts still get something to parse.
        OutputFormat::Json => print_json(&json!({"FunctionName": args.name, "Deleted": true})),
        OutputFormat::Table => write_stdout(&format!("deleted {}\n", args.name)),
    }
}

/// NAME | RUNTIME | MEMORY | TIMEOUT | CODE SIZE | LAST MODIFIED, sorted by name.
fn list_table(mut functions: Vec<FunctionConfiguration>) -> Table {
    functions.sort_by(|a, b| a.function_name.cmp(&b.function_name));
    let mut table = Table::new([
        "NAME",
        "RUNTIME",
        "MEMORY",
        "TIMEOUT",
        "CODE SIZE",
        "LAST MODIFIED",
    ]);
    for f in functions {
        table.push_row([
            f.function_name,
            f.runtime.unwrap_or_default(),
            f.memory_size.map(megabytes).unwrap_or_default(),
            f.timeout.map(seconds).unwrap_or_default(),
            f.code_size.map(human_size).unwrap_or_default(),
            f.last_modified
                .as_deref()
                .map(short_time)
                .unwrap_or_default(),
        ]);
    }
    table
}

/// What `functions get` shows: the configuration, then tags and where the code is.
fn function_fields(function: &GetFunctionOutput) -> Vec<(&'static str, String)> {
    let mut fields = configuration_fields(&function.configuration);
    if let Some(tags) = function.tags.as_ref().filter(|tags| !tags.is_empty()) {
        let tags: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        fields.push(("Tags", tags.join(", ")));
    }
    if let Some(location) = function
        .code
        .as_ref()
        .and_then(|code| code.location.clone())
    {
        fields.push(("Code location", location));
    }
    fields
}

/// Key/value rows describing a function's configuration. Environment variables show by name
/// only: their values are often secrets.
pub(crate) fn configuration_fields(config: &FunctionConfiguration) -> Vec<(&'static str, String)> {
    let with_reason = |status: &Option<String>, reason: &Option<String>| {
        let status = status.clone()?;
        Some(match reason.as_deref().filter(|r| !r.is_empty()) {
            Some(reason) => format!("{status} ({reason})"),
            None => status,
        })
    };
    let rows = [
        ("Name", Some(config.function_name.clone())),
        ("ARN", config.function_arn.clone()),
        ("Runtime", config.runtime.clone()),
        ("Handler", config.handler.clone()),
        ("Memory", config.memory_size.map(megabytes)),
        ("Timeout", config.timeout.map(seconds)),
        (
            "Code size",
            config
                .code_size
                .map(|n| format!("{} ({n} bytes)", human_size(n))),
        ),
        ("Code SHA-256", config.code_sha256.clone()),
        ("Description", config.description.clone()),
        ("Role", config.role.clone()),
        ("Version", config.version.clone()),
        ("State", with_reason(&config.state, &config.state_reason)),
        (
            "Last update",
            with_reason(
                &config.last_update_status,
                &config.last_update_status_reason,
            ),
        ),
        ("Last modified", config.last_modified.clone()),
        ("Revision", config.revision_id.clone()),
        (
            "Architectures",
            config.architectures.as_ref().map(|a| a.join(", ")),
        ),
        (
            "Ephemeral storage",
            config
                .ephemeral_storage
                .as_ref()
                .and_then(|e| e.size)
                .map(megabytes),
        ),
        ("Package type", config.package_type.clone()),
        (
            "Environment",
            config.environment.as_ref().map(|env| {
                let names: Vec<&str> = env.variables.keys().map(String::as_str).collect();
                names.join(", ")
            }),
        ),
    ];
    rows.into_iter()
        .filter_map(|(key, value)| Some((key, value.filter(|v| !v.is_empty())?)))
        .collect()
}

fn megabytes(mb: u32) -> String {
    format!("{mb} MB")
}

fn seconds(s: u32) -> String {
    format!("{s} s")
}

/// `2020-04-10T19:06:32.563+0000` → `2020-04-10 19:06:32`; anything else as is.
pub(crate) fn short_time(timestamp: &str) -> String {
    match (
        timestamp.get(..10),
        timestamp.get(10..11),
        timestamp.get(11..19),
    ) {
        (Some(date), Some("T"), Some(time)) => format!("{date} {time}"),
        _ => timestamp.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::client::Environment;

    fn function(name: &str) -> FunctionConfiguration {
        FunctionConfiguration {
            function_name: name.to_owned(),
            runtime: Some("python3.12".to_owned()),
            memory_size: Some(128),
            timeout: Some(3),
            code_size: Some(2048),
            last_modified: Some("2020-04-10T19:06:32.563+0000".to_owned()),
            ..FunctionConfiguration::default()
        }
    }

    #[test]
    fn list_is_sorted_by_name_with_human_units() {
        let mut other = function("alpha");
        other.runtime = None;
        let out = list_table(vec![function("beta"), other]).render(Style::PLAIN);
        let expected = "\
NAME   RUNTIME     MEMORY  TIMEOUT  CODE SIZE  LAST MODIFIED
alpha              128 MB  3 s      2.0 KiB    2020-04-10 19:06:32
beta   python3.12  128 MB  3 s      2.0 KiB    2020-04-10 19:06:32
";
        assert_eq!(out, expected);
    }

    #[test]
    fn fields_skip_absent_values_and_hide_env_values() {
        let mut config = function("f");
        config.environment = Some(Environment {
            variables: [
                ("B".to_owned(), "secret".to_owned()),
                ("A".to_owned(), "x".to_owned()),
            ]
            .into(),
        });
        config.state = Some("Active".to_owned());
        let fields = configuration_fields(&config);
        let keys: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "Name",
                "Runtime",
                "Memory",
                "Timeout",
                "Code size",
                "State",
                "Last modified",
                "Environment"
            ]
        );
        assert!(fields.contains(&("Environment", "A, B".to_owned())));
        assert!(fields.contains(&("Code size", "2.0 KiB (2048 bytes)".to_owned())));
    }

    #[test]
    fn odd_timestamps_print_as_is() {
        assert_eq!(short_time("yesterday"), "yesterday");
        assert_eq!(short_time("2020-04-10 19:06"), "2020-04-10 19:06");
    }
}
