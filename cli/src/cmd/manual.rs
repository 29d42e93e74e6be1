//! `vouch completions` and `vouch man`, generated from the command-line
//! definitions themselves.

use std::path::Path;

use anyhow::{Context as _, Result};
use clap::CommandFactory as _;

use crate::args::Cli;
use crate::exit::Exit;

pub(crate) fn completions(shell: clap_complete::Shell) -> Result<Exit> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "vouch", &mut std::io::stdout());
    Ok(Exit::Ok)
}

pub(crate) fn man(out: Option<&Path>) -> Result<Exit> {
    let cmd = Cli::command();
    let Some(dir) = out else {
        clap_mangen::Man::new(cmd)
            .render(&mut std::io::stdout())
            .context("writing the manual page")?;
        return Ok(Exit::Ok);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    let mut page = |name: String, c: clap::Command| -> Result<()> {
        let path = dir.join(format!("{name}.1"));
        let mut f =
            std::fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?;
        clap_mangen::Man::new(
            c.display_name(name.clone())
                .bin_name(name.replacen("vouch-", "vouch ", 1)),
        )
        .title(name.clone())
        .render(&mut f)
        .with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    page("vouch".into(), cmd.clone())?;
    for sub in cmd.get_subcommands() {
        page(format!("vouch-{}", sub.get_name()), sub.clone())?;
    }
    for p in &written {
        println!("{}", p.display());
    }
    Ok(Exit::Ok)
}
