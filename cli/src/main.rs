//! `vouch`: the client. Exit codes: 0 verified / valid, 1 rejected / invalid
//! signature, 2 unknown, 3 usage or input error, 4 no node could be reached.

mod args;
mod cache;
mod client;
mod cmd;
mod config;
mod exit;
mod output;
mod peer;
mod system;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

use crate::exit::Exit;

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; every real usage error
            // exits 3, never clap's default 2 (which means UNKNOWN here).
            let code = if e.use_stderr() {
                Exit::Input
            } else {
                Exit::Ok
            };
            let _ = e.print();
            return code.into();
        }
    };
    match cmd::run(cli) {
        Ok(code) => code.into(),
        Err(err) => {
            if is_broken_pipe(&err) {
                return Exit::Ok.into();
            }
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "vouch: error: {err}");
            for cause in err.chain().skip(1) {
                let _ = writeln!(stderr, "  caused by: {cause}");
            }
            Exit::Input.into()
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
