//! `nimbus`: run the platform (`nimbus server`) or drive one (`nimbus deploy`, `nimbus functions`,
//! `nimbus versions`, `nimbus alias`, `nimbus concurrency`, …).

use clap::{Parser, Subcommand};

use nimbus::cli;
use nimbus::server::ServerArgs;

/// Self-hosted serverless compute that speaks AWS Lambda's APIs.
#[derive(Debug, Parser)]
#[command(name = "nimbus", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the platform: the Lambda API and everything behind it, in this process.
    Server(ServerArgs),
    /// Deploy a folder or zip as a function: creates it, or updates its code and settings.
    Deploy(cli::deploy::DeployArgs),
    /// Invoke a function and print its result.
    Invoke(cli::invoke::InvokeArgs),
    /// Print a function's logs.
    Logs(cli::logs::LogsArgs),
    /// List, show and delete functions.
    #[command(subcommand)]
    Functions(cli::functions::FunctionsCommand),
    /// List a function's versions, or publish a new one.
    Versions(cli::versions::VersionsArgs),
    /// Create, update, show, list and delete aliases of a function.
    #[command(subcommand)]
    Alias(cli::alias::AliasCommand),
    /// Layers: publish, list, show and delete versions.
    #[command(subcommand)]
    Layers(cli::layers::LayersCommand),
    /// Show, set or remove a function's reserved concurrency.
    Concurrency(cli::concurrency::ConcurrencyArgs),
    /// HTTP routes of the gateway (`GET /users/{id}` → function): add, list, remove.
    #[command(subcommand)]
    Routes(cli::routes::RoutesCommand),
    /// Schedules that invoke functions: add, list, remove.
    #[command(subcommand)]
    Schedules(cli::schedules::SchedulesCommand),
    /// Messages held for SQS queues and SNS topics: dead letters and destination records.
    DeadLetters(cli::dead_letters::DeadLettersArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Server(args) => nimbus::server::run_from_args(args).await,
            Command::Deploy(args) => args.run().await,
            Command::Invoke(args) => args.run().await,
            Command::Logs(args) => args.run().await,
            Command::Functions(cmd) => cmd.run().await,
            Command::Versions(args) => args.run().await,
            Command::Alias(cmd) => cmd.run().await,
            Command::Layers(cmd) => cmd.run().await,
            Command::Concurrency(args) => args.run().await,
            Command::Routes(cmd) => cmd.run().await,
            Command::Schedules(cmd) => cmd.run().await,
            Command::DeadLetters(args) => args.run().await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // Print the whole chain: "deploy: upload code: connection refused".
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
