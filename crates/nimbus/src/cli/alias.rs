//! `nimbus alias create|update|get|list|delete NAME [ALIAS]`: named pointers at function
//! versions, optionally splitting traffic with a second version (`--weights 2=0.1`).

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use super::client::{AliasConfiguration, AliasInput, ClientArgs, RoutingConfig};
use super::output::{print_json, render_fields, write_stdout, OutputFormat, Style, Table};

/// The `alias` subcommands.
#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Create an alias pointing at a version.
    Create(CreateArgs),
    /// Point an alias elsewhere, or change its weights or description.
    Update(UpdateArgs),
    /// Show one alias.
    Get(AliasArgs),
    /// List a function's aliases.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Delete an alias (the versions stay).
    #[command(visible_alias = "rm")]
    Delete(AliasArgs),
}

/// Flags of `alias create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The function's name or ARN.
    pub name: String,
    /// The alias name.
    pub alias: String,
    /// The version the alias points at: a number or `$LATEST`.
    #[arg(long, short = 'v')]
    pub version: String,
    /// Also send this share of invocations to another version, e.g. `2=0.1`.
    #[arg(long, value_name = "VERSION=WEIGHT", value_parser = parse_weight)]
    pub weights: Vec<(String, f64)>,
    /// A description of the alias.
    #[arg(long, short)]
    pub description: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Flags of `alias update`: only what is given changes.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The function's name or ARN.
    pub name: String,
    /// The alias name.
    pub alias: String,
    /// The version the alias points at from now on.
    #[arg(long, short = 'v')]
    pub version: Option<String>,
    /// Send this share of invocations to another version, e.g. `2=0.1`.
    #[arg(long, value_name = "VERSION=WEIGHT", value_parser = parse_weight, conflicts_with = "clear_weights")]
    pub weights: Vec<(String, f64)>,
    /// Stop splitting traffic: every invocation goes to the alias's version.
    #[arg(long)]
    pub clear_weights: bool,
    /// A new description.
    #[arg(long, short)]
    pub description: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Flags of `alias get` and `alias delete`.
#[derive(Debug, Args)]
pub struct AliasArgs {
    /// The function's name or ARN.
    pub name: String,
    /// The alias name.
    pub alias: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Flags of `alias list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The function's name or ARN.
    pub name: String,
    /// Only aliases pointing at this version.
    #[arg(long, short = 'v')]
    pub version: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `2=0.1` → ("2", 0.1).
fn parse_weight(text: &str) -> Result<(String, f64), String> {
    let (version, weight) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not VERSION=WEIGHT, e.g. 2=0.1"))?;
    let weight: f64 = weight
        .trim()
        .parse()
        .map_err(|_| format!("{weight:?} is not a weight between 0.0 and 1.0"))?;
    Ok((version.trim().to_owned(), weight))
}

fn routing(weights: Vec<(String, f64)>) -> Option<RoutingConfig> {
    (!weights.is_empty()).then(|| RoutingConfig {
        additional_version_weights: weights.into_iter().collect(),
    })
}

impl AliasCommand {
    /// Run the subcommand, printing its result on stdout.
    pub async fn run(self) -> Result<()> {
        match self {
            AliasCommand::Create(args) => {
                let input = AliasInput {
                    name: Some(args.alias.clone()),
                    function_version: Some(args.version),
                    description: args.description,
                    routing_config: routing(args.weights),
                };
                let alias = args
                    .client
                    .client()?
                    .create_alias(&args.name, &input)
                    .await?;
                show(&alias.typed, &alias.json, args.client.output)
            }
            AliasCommand::Update(args) => {
                let routing_config = if args.clear_weights {
                    Some(RoutingConfig::default())
                } else {
                    routing(args.weights)
                };
                let input = AliasInput {
                    name: None,
                    function_version: args.version,
                    description: args.description,
                    routing_config,
                };
                if input == AliasInput::default() {
                    bail!("nothing to change: give --version, --weights, --clear-weights or --description");
                }
                let alias = args
                    .client
                    .client()?
                    .update_alias(&args.name, &args.alias, &input)
                    .await?;
                show(&alias.typed, &alias.json, args.client.output)
            }
            AliasCommand::Get(args) => {
                let alias = args
                    .client
                    .client()?
                    .get_alias(&args.name, &args.alias)
                    .await?;
                show(&alias.typed, &alias.json, args.client.output)
            }
            AliasCommand::List(args) => {
                let aliases = args
                    .client
                    .client()?
                    .list_aliases(&args.name, args.version.as_deref())
                    .await?;
                match args.client.output {
                    OutputFormat::Json => print_json(&aliases.json),
                    OutputFormat::Table => {
                        write_stdout(&aliases_table(&aliases.typed).render(Style::for_stdout()))
                    }
                }
            }
            AliasCommand::Delete(args) => {
                args.client
                    .client()?
                    .delete_alias(&args.name, &args.alias)
                    .await
                    .context("the alias was not deleted")?;
                match args.client.output {
                    OutputFormat::Json => print_json(
                        &json!({"FunctionName": args.name, "Name": args.alias, "Deleted": true}),
                    ),
                    OutputFormat::Table => {
                        write_stdout(&format!("deleted alias {} of {}\n", args.alias, args.name))
                    }
                }
            }
        }
    }
}

fn show(alias: &AliasConfiguration, json: &serde_json::Value, output: OutputFormat) -> Result<()> {
    match output {
        OutputFormat::Json => print_json(json),
        OutputFormat::Table => {
            write_stdout(&render_fields(&alias_fields(alias), Style::for_stdout()))
        }
    }
}

/// `2=10%`, or empty without routing.
fn weights_text(alias: &AliasConfiguration) -> String {
    alias
        .routing_config
        .as_ref()
        .map(|r| {
            r.additional_version_weights
                .iter()
                .map(|(version, weight)| format!("{version}={}%", percent(*weight)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// A weight as a percentage, without float noise: 0.1 → "10", 0.125 → "12.5".
fn percent(weight: f64) -> String {
    let text = format!("{:.4}", weight * 100.0);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn alias_fields(alias: &AliasConfiguration) -> Vec<(&'static str, String)> {
    let rows = [
        ("Name", Some(alias.name.clone())),
        ("ARN", alias.alias_arn.clone()),
        ("Version", alias.function_version.clone()),
        ("Weights", Some(weights_text(alias))),
        ("Description", alias.description.clone()),
        ("Revision", alias.revision_id.clone()),
    ];
    rows.into_iter()
        .filter_map(|(key, value)| Some((key, value.filter(|v| !v.is_empty())?)))
        .collect()
}

/// NAME | VERSION | WEIGHTS | DESCRIPTION, in the server's (name) order.
fn aliases_table(aliases: &[AliasConfiguration]) -> Table {
    let mut table = Table::new(["NAME", "VERSION", "WEIGHTS", "DESCRIPTION"]);
    for a in aliases {
        table.push_row([
            a.name.clone(),
            a.function_version.clone().unwrap_or_default(),
            weights_text(a),
            a.description.clone().unwrap_or_default(),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_parse_as_version_and_share() {
        assert_eq!(parse_weight("2=0.1"), Ok(("2".to_owned(), 0.1)));
        assert_eq!(parse_weight(" 3 = 1 "), Ok(("3".to_owned(), 1.0)));
        assert!(parse_weight("2").is_err());
        assert!(parse_weight("2=lots").is_err());
    }

    #[test]
    fn table_shows_weights_as_percentages() {
        let alias = AliasConfiguration {
            name: "live".to_owned(),
            function_version: Some("1".to_owned()),
            routing_config: Some(RoutingConfig {
                additional_version_weights: [("2".to_owned(), 0.1)].into(),
            }),
            description: Some("prod traffic".to_owned()),
            ..AliasConfiguration::default()
        };
        let plain = AliasConfiguration {
            name: "edge".to_owned(),
            function_version: Some("$LATEST".to_owned()),
            ..AliasConfiguration::default()
        };
        let out = aliases_table(&[plain, alias.clone()]).render(Style::PLAIN);
        let expected = "\
NAME  VERSION  WEIGHTS  DESCRIPTION
edge  $LATEST
live  1        2=10%    prod traffic
";
        assert_eq!(out, expected);
        assert_eq!(percent(0.125), "12.5");
        assert_eq!(percent(1.0), "100");
        assert_eq!(percent(0.0), "0");
        let keys: Vec<&str> = alias_fields(&alias).iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["Name", "Version", "Weights", "Description"]);
    }
}
