//! shim-ctl: the operator's debug CLI for containerd v1 shims (entry point and exit codes).

mod cli;
mod client;
mod commands;
mod completions;
mod connect;
mod error;
mod ls;
mod ocispec;
mod output;
mod signal;
mod spawn;
mod stdio;
mod tty;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            error::exit_code(&err)
        }
    };
    std::process::exit(code);
}
