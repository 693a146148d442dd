//! `nimbus versions NAME` lists a function's versions; `nimbus versions publish NAME` publishes
//! `$LATEST` as a new, immutable version.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use super::client::{ClientArgs, FunctionConfiguration};
use super::functions::{configuration_fields, short_time};
use super::output::{
    human_size, print_json, render_fields, write_stdout, OutputFormat, Style, Table,
};

/// Flags of `nimbus versions`: a function name to list its versions, or a subcommand.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct VersionsArgs {
    #[command(subcommand)]
    pub command: Option<VersionsCommand>,
    /// The function whose versions to list.
    #[arg(required = true)]
    pub name: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The `versions` subcommands.
#[derive(Debug, Subcommand)]
pub enum VersionsCommand {
    /// List a function's versions: `$LATEST`, then the published ones.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Publish `$LATEST` as a new version (or get the newest one back if nothing changed).
    Publish(PublishArgs),
}

/// Flags of `versions list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The function's name or ARN.
    pub name: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Flags of `versions publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The function's name or ARN.
    pub name: String,
    /// A description of the version, instead of the function's.
    #[arg(long, short)]
    pub description: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

impl VersionsArgs {
    /// Run the command.
    pub async fn run(self) -> Result<()> {
        match (self.command, self.name) {
            (Some(VersionsCommand::List(args)), _) => list(args).await,
            (Some(VersionsCommand::Publish(args)), _) => publish(args).await,
            (None, Some(name)) => {
                list(ListArgs {
                    name,
                    client: self.client,
                })
                .await
            }
            (None, None) => bail!("name a function: nimbus versions NAME"),
        }
    }
}

async fn list(args: ListArgs) -> Result<()> {
    let versions = args.client.client()?.list_versions(&args.name).await?;
    match args.client.output {
        OutputFormat::Json => print_json(&versions.json),
        OutputFormat::Table => {
            write_stdout(&versions_table(&versions.typed).render(Style::for_stdout()))
        }
    }
}

async fn publish(args: PublishArgs) -> Result<()> {
    let version = args
        .client
        .client()?
        .publish_version(&args.name, args.description.as_deref())
        .await?;
    match args.client.output {
        OutputFormat::Json => print_json(&version.json),
        OutputFormat::Table => {
            let fields = configuration_fields(&version.typed);
            write_stdout(&render_fields(&fields, Style::for_stdout()))
        }
    }
}

/// VERSION | CODE SHA-256 | CODE SIZE | MEMORY | DESCRIPTION | LAST MODIFIED, in the server's
/// order (`$LATEST` first).
fn versions_table(versions: &[FunctionConfiguration]) -> Table {
    let mut table = Table::new([
        "VERSION",
        "CODE SHA-256",
        "CODE SIZE",
        "MEMORY",
        "DESCRIPTION",
        "LAST MODIFIED",
    ]);
    for v in versions {
        table.push_row([
            v.version.clone().unwrap_or_default(),
            v.code_sha256.clone().unwrap_or_default(),
            v.code_size.map(human_size).unwrap_or_default(),
            v.memory_size
                .map(|mb| format!("{mb} MB"))
                .unwrap_or_default(),
            v.description.clone().unwrap_or_default(),
            v.last_modified
                .as_deref()
                .map(short_time)
                .unwrap_or_default(),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_table_keeps_the_server_order() {
        let version = |v: &str, description: &str| FunctionConfiguration {
            function_name: "f".to_owned(),
            version: Some(v.to_owned()),
            code_sha256: Some("YFgDgEKG3ugvF1+pX64gV6tu9qNuIYNUdgJm8nCxsm4=".to_owned()),
            code_size: Some(2048),
            memory_size: Some(128),
            description: Some(description.to_owned()),
            last_modified: Some("2020-04-10T19:06:32.563+0000".to_owned()),
            ..FunctionConfiguration::default()
        };
        let out =
            versions_table(&[version("$LATEST", ""), version("1", "first")]).render(Style::PLAIN);
        let expected = "\
VERSION  CODE SHA-256                                  CODE SIZE  MEMORY  DESCRIPTION  LAST MODIFIED
$LATEST  YFgDgEKG3ugvF1+pX64gV6tu9qNuIYNUdgJm8nCxsm4=  2.0 KiB    128 MB               2020-04-10 19:06:32
1        YFgDgEKG3ugvF1+pX64gV6tu9qNuIYNUdgJm8nCxsm4=  2.0 KiB    128 MB  first        2020-04-10 19:06:32
";
        assert_eq!(out, expected);
    }
}
