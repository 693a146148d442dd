//! `nimbus layers publish|list|versions|get|delete`: layers, zip archives extracted under
//! `/opt` of the functions that use them (`nimbus deploy --layer ARN`).

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::client::{ClientArgs, LayerInput, LayerSummary, LayerVersion};
use super::deploy::load_code;
use super::output::{
    human_size, print_json, render_fields, write_stdout, OutputFormat, Style, Table,
};

/// The `layers` subcommands.
#[derive(Debug, Subcommand)]
pub enum LayersCommand {
    /// Publish a folder (zipped reproducibly) or a .zip file as a new version of a layer.
    Publish(PublishArgs),
    /// List the layers with their latest version.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// List the versions of a layer, newest first.
    Versions(NameArgs),
    /// Show one version of a layer.
    Get(VersionArgs),
    /// Delete one version of a layer (functions using it keep running).
    #[command(visible_alias = "rm")]
    Delete(VersionArgs),
}

/// Flags of `layers publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Layer name.
    pub name: String,
    /// A folder whose contents appear under /opt (python/, nodejs/node_modules/, bin/, lib/),
    /// or a .zip file.
    pub path: PathBuf,
    /// A runtime the layer is meant for; repeat for more.
    #[arg(long = "runtime", value_name = "RUNTIME")]
    pub runtimes: Vec<String>,
    /// An architecture the layer is meant for (x86_64, arm64); repeat for more.
    #[arg(long = "architecture", value_name = "ARCH")]
    pub architectures: Vec<String>,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
    /// License (an SPDX identifier, a URL or the text).
    #[arg(long)]
    pub license: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Flags of `layers list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A layer.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// Layer name or ARN.
    pub name: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// One version of a layer.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Layer name or ARN.
    pub name: String,
    /// Version number.
    pub version: u64,
    #[command(flatten)]
    pub client: ClientArgs,
}

impl LayersCommand {
    /// Run the subcommand.
    pub async fn run(self) -> Result<()> {
        match self {
            Self::Publish(args) => {
                let progress = std::io::stderr().is_terminal();
                let zip = load_code(&args.path, progress)?;
                if progress {
                    eprintln!("uploading {}…", human_size(zip.len() as u64));
                }
                let input = LayerInput {
                    description: args.description,
                    compatible_runtimes: args.runtimes,
                    compatible_architectures: args.architectures,
                    license_info: args.license,
                };
                let answer = args
                    .client
                    .client()?
                    .publish_layer_version(&args.name, &zip, &input)
                    .await?;
                show_version(&args.client.output, &answer.typed, &answer.json)
            }
            Self::List(args) => {
                let answer = args.client.client()?.list_layers().await?;
                match args.client.output {
                    OutputFormat::Json => print_json(&answer.json),
                    OutputFormat::Table => {
                        write_stdout(&layers_table(&answer.typed).render(Style::for_stdout()))
                    }
                }
            }
            Self::Versions(args) => {
                let answer = args
                    .client
                    .client()?
                    .list_layer_versions(&args.name)
                    .await?;
                match args.client.output {
                    OutputFormat::Json => print_json(&answer.json),
                    OutputFormat::Table => {
                        write_stdout(&versions_table(&answer.typed).render(Style::for_stdout()))
                    }
                }
            }
            Self::Get(args) => {
                let answer = args
                    .client
                    .client()?
                    .get_layer_version(&args.name, args.version)
                    .await?;
                show_version(&args.client.output, &answer.typed, &answer.json)
            }
            Self::Delete(args) => {
                args.client
                    .client()?
                    .delete_layer_version(&args.name, args.version)
                    .await?;
                match args.client.output {
                    OutputFormat::Json => print_json(&serde_json::json!({})),
                    OutputFormat::Table => write_stdout(&format!(
                        "Deleted version {} of layer {}\n",
                        args.version, args.name
                    )),
                }
            }
        }
    }
}

fn show_version(output: &OutputFormat, v: &LayerVersion, json: &serde_json::Value) -> Result<()> {
    match output {
        OutputFormat::Json => print_json(json),
        OutputFormat::Table => {
            write_stdout(&render_fields(&version_fields(v), Style::for_stdout()))
        }
    }
}

fn version_fields(v: &LayerVersion) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("ARN", v.layer_version_arn.clone()),
        ("Version", v.version.to_string()),
    ];
    if let Some(content) = &v.content {
        fields.push((
            "Size",
            format!(
                "{} ({} bytes)",
                human_size(content.code_size),
                content.code_size
            ),
        ));
        fields.push(("SHA-256", content.code_sha256.clone()));
    }
    let optional = [
        (
            "Description",
            v.description.clone().filter(|d| !d.is_empty()),
        ),
        (
            "Runtimes",
            Some(v.compatible_runtimes.join(", ")).filter(|s| !s.is_empty()),
        ),
        (
            "Architectures",
            Some(v.compatible_architectures.join(", ")).filter(|s| !s.is_empty()),
        ),
        ("License", v.license_info.clone()),
        ("Created", v.created_date.clone()),
    ];
    fields.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
    fields
}

fn layers_table(layers: &[LayerSummary]) -> Table {
    let mut table = Table::new(["NAME", "LATEST", "RUNTIMES", "DESCRIPTION"]);
    for l in layers {
        let v = &l.latest_matching_version;
        table.push_row([
            l.layer_name.clone(),
            v.version.to_string(),
            v.compatible_runtimes.join(","),
            v.description.clone().unwrap_or_default(),
        ]);
    }
    table
}

fn versions_table(versions: &[LayerVersion]) -> Table {
    let mut table = Table::new(["VERSION", "CREATED", "RUNTIMES", "DESCRIPTION"]);
    for v in versions {
        table.push_row([
            v.version.to_string(),
            v.created_date.clone().unwrap_or_default(),
            v.compatible_runtimes.join(","),
            v.description.clone().unwrap_or_default(),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_and_versions_render_as_tables() {
        let v = LayerVersion {
            layer_version_arn: "arn:aws:lambda:us-east-1:000000000000:layer:deps:2".into(),
            version: 2,
            description: Some("shared deps".into()),
            created_date: Some("2026-12-03T12:00:00.000+0000".into()),
            compatible_runtimes: vec!["python3.12".into()],
            ..LayerVersion::default()
        };
        let summary = LayerSummary {
            layer_name: "deps".into(),
            layer_arn: "arn:aws:lambda:us-east-1:000000000000:layer:deps".into(),
            latest_matching_version: v.clone(),
        };
        assert_eq!(
            layers_table(&[summary]).render(Style::PLAIN),
            "NAME  LATEST  RUNTIMES    DESCRIPTION\ndeps  2       python3.12  shared deps\n"
        );
        let rendered = versions_table(std::slice::from_ref(&v)).render(Style::PLAIN);
        assert!(
            rendered.contains("2        2026-12-03T12:00:00.000+0000  python3.12"),
            "{rendered}"
        );
        let fields = version_fields(&v);
        assert_eq!(fields[0].1, v.layer_version_arn);
        assert!(fields
            .iter()
            .any(|(k, v)| *k == "Runtimes" && v == "python3.12"));
    }
}
