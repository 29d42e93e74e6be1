//! One module per command.

mod config;
mod export;
mod hook;
mod inspect;
mod installed;
mod judge;
mod keygen;
mod manual;
pub(crate) mod policy;
mod query;
mod sign;
mod stats;
mod stream;
mod submit;
mod verify;
mod watch;

use anyhow::Result;

use crate::args::{Cli, Command, ConfigCommand, PolicyCommand};
use crate::exit::Exit;

/// Runs the parsed command line.
pub(crate) fn run(cli: Cli) -> Result<Exit> {
    match cli.command {
        Command::Keygen(a) => keygen::run(&a),
        Command::Sign(a) => sign::run(&a),
        Command::Inspect(a) => inspect::run(&a),
        Command::Policy(PolicyCommand::Check { file, json }) => policy::check(&file, json),
        Command::Verify(a) => verify::run(&a, cli.config.as_deref()),
        Command::Config(ConfigCommand::Check { file, json }) => {
            config::check(file.as_deref().or(cli.config.as_deref()), json)
        }
        Command::Config(ConfigCommand::Example) => {
            crate::output::text(crate::config::EXAMPLE)?;
            Ok(Exit::Ok)
        }
        Command::CheckInstalled(a) => installed::run(&a, cli.config.as_deref()),
        Command::PacmanHook(a) => hook::pacman(&a, cli.config.as_deref()),
        Command::AptHook(a) => hook::apt(&a, cli.config.as_deref()),
        Command::Export(a) => export::run(&a, cli.config.as_deref()),
        Command::Completions { shell } => manual::completions(shell),
        Command::Man { out } => manual::man(out.as_deref()),
        Command::Query(a) => query::run(&a),
        Command::Submit(a) => submit::run(&a),
        Command::Peers { node, json } => query::peers(&node, json),
        Command::Stats { node, json } => stats::run(&node, json),
        Command::Watch(a) => watch::run(&a),
    }
}
