//! Client subcommands. Each is a thin client of the public Lambda API, never of server internals.

pub mod alias;
pub mod client;
pub mod concurrency;
pub mod dead_letters;
pub mod deploy;
pub mod functions;
pub mod invoke;
pub mod layers;
pub mod logs;
pub mod output;
pub mod routes;
pub mod schedules;
pub mod versions;
