//! `generate man | complete-… | app-migrations`: the man page and shell completions,
//! from the clap definitions the command parses with, and the migrations in the
//! app's own format.

use idstore_repo::{Error, ErrorKind};

use crate::cli::{Cli, Generated};
use crate::context::Ctx;

pub(super) fn generate(ctx: &Ctx, what: Generated) -> Result<(), Error> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut out: Vec<u8> = Vec::new();
    let shell = match what {
        Generated::Man => {
            clap_mangen::Man::new(cmd.clone())
                .render(&mut out)
                .map_err(|e| {
                    Error::with_source(ErrorKind::IoError, "could not render the man page", e)
                })?;
            None
        }
        Generated::CompleteBash => Some(clap_complete::Shell::Bash),
        Generated::CompleteZsh => Some(clap_complete::Shell::Zsh),
        Generated::CompleteFish => Some(clap_complete::Shell::Fish),
        Generated::CompletePowershell => Some(clap_complete::Shell::PowerShell),
        Generated::AppMigrations => {
            out.extend_from_slice(crate::export::to_json().as_bytes());
            None
        }
    };
    if let Some(shell) = shell {
        clap_complete::generate(shell, &mut cmd, "idstore", &mut out);
    }
    ctx.out.line(String::from_utf8_lossy(&out).trim_end());
    Ok(())
}
