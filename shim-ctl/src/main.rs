//! shim-ctl: the operator's debug CLI for containerd shims, v1 and task v2 (entry point, error
//! report, exit codes).

mod cli;
mod client;
mod commands;
mod completions;
mod connect;
mod error;
mod ls;
mod metrics;
mod ocispec;
mod output;
mod procfs;
mod signal;
mod spawn;
mod stdio;
mod tty;

use clap::error::ErrorKind;
use clap::Parser;
use error::Class;

/// True when `--json` is among the options (before `--`): used when clap itself refused the line.
fn json_requested(args: &[std::ffi::OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

/// clap's own error as one of ours: class usage, clap's text without its `error: ` lead.
fn usage_error(e: &clap::Error, json: bool) -> ! {
    let text = e.render().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let message = if json {
        text.lines().next().unwrap_or_default()
    } else {
        text.trim_end()
    };
    eprintln!("{}", error::report(Class::Usage, message, json));
    std::process::exit(Class::Usage.exit_code());
}

fn main() {
    let args: Vec<_> = std::env::args_os().collect();
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
            _ => usage_error(&e, json_requested(&args)),
        },
    };
    let json = cli.json;
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            let class = error::classify(&err);
            eprintln!("{}", error::report(class, &format!("{err:#}"), json));
            class.exit_code()
        }
    };
    std::process::exit(code);
}
