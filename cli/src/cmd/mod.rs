//! One module per command.

mod inspect;
mod keygen;
mod policy;
mod query;
mod sign;
mod submit;
mod verify;

use anyhow::Result;

use crate::args::{Cli, Command, PolicyCommand};
use crate::exit::Exit;

/// Runs the parsed command line.
pub(crate) fn run(cli: Cli) -> Result<Exit> {
    match cli.command {
        Command::Keygen(a) => keygen::run(&a),
        Command::Sign(a) => sign::run(&a),
        Command::Inspect(a) => inspect::run(&a),
        Command::Policy(PolicyCommand::Check { file, json }) => policy::check(&file, json),
        Command::Verify(a) => verify::run(&a),
        Command::Query(a) => query::run(&a),
        Command::Submit(a) => submit::run(&a),
        Command::Peers { node, json } => query::peers(&node, json),
    }
}
