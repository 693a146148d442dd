//! `nimbus routes add|list|remove`: the HTTP gateway's routes, API-Gateway-HTTP-API style
//! (`GET /users/{id}`, `ANY /files/{proxy+}`, `$default`), each invoking a function.

use anyhow::Result;
use clap::{Args, Subcommand};

use super::client::{ClientArgs, HttpRoute};
use super::output::{print_json, write_stdout, OutputFormat, Style, Table};

/// The `routes` subcommands.
#[derive(Debug, Subcommand)]
pub enum RoutesCommand {
    /// Add a route, or point an existing one at another function.
    Add(AddArgs),
    /// List the routes.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Remove a route.
    #[command(visible_alias = "rm")]
    Remove(RemoveArgs),
}

/// Flags of `routes add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The route key: `METHOD /path` (ANY, GET, POST, …; `{param}`, `{proxy+}`) or `$default`.
    pub route_key: String,
    /// The function the route invokes: a name or ARN, optionally with `:alias`.
    pub function: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Flags of `routes list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Flags of `routes remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The route key, as added.
    pub route_key: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

impl RoutesCommand {
    /// Run the subcommand.
    pub async fn run(self) -> Result<()> {
        match self {
            Self::Add(args) => {
                let answer = args
                    .client
                    .client()?
                    .put_route(&args.route_key, &args.function)
                    .await?;
                match args.client.output {
                    OutputFormat::Json => print_json(&answer.json),
                    OutputFormat::Table => write_stdout(
                        &routes_table(std::slice::from_ref(&answer.typed))
                            .render(Style::for_stdout()),
                    ),
                }
            }
            Self::List(args) => {
                let answer = args.client.client()?.list_routes().await?;
                match args.client.output {
                    OutputFormat::Json => print_json(&answer.json),
                    OutputFormat::Table => {
                        write_stdout(&routes_table(&answer.typed).render(Style::for_stdout()))
                    }
                }
            }
            Self::Remove(args) => {
                args.client.client()?.delete_route(&args.route_key).await?;
                match args.client.output {
                    OutputFormat::Json => print_json(&serde_json::json!({})),
                    OutputFormat::Table => {
                        write_stdout(&format!("Removed route {}\n", args.route_key))
                    }
                }
            }
        }
    }
}

fn routes_table(routes: &[HttpRoute]) -> Table {
    let mut table = Table::new(["ROUTE", "FUNCTION"]);
    for route in routes {
        table.push_row([route.route_key.clone(), route.target.clone()]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_routes_as_a_table() {
        let routes = [
            HttpRoute {
                route_key: "$default".into(),
                target: "site".into(),
            },
            HttpRoute {
                route_key: "GET /users/{id}".into(),
                target: "users:live".into(),
            },
        ];
        assert_eq!(
            routes_table(&routes).render(Style::PLAIN),
            "ROUTE            FUNCTION\n$default         site\nGET /users/{id}  users:live\n"
        );
    }
}
