//! wardcheck-server: the sync server and admin command line.
//!
//! For now this is the admin CLI's skeleton; `checklist validate` is the command that
//! works. It parses arguments, calls `wardcheck_core`, and prints: the logic lives in core.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wardcheck_core::checklist;

#[derive(Debug, Parser)]
#[command(name = "wardcheck-server", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with checklist files.
    #[command(subcommand)]
    Checklist(ChecklistCommand),
}

#[derive(Debug, Subcommand)]
enum ChecklistCommand {
    /// Validate checklist files: print each one's pin, or every problem found.
    ///
    /// Exits non-zero if any file has a problem.
    Validate {
        /// Checklist or template files (a template's includes are read from its directory).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Checklist(ChecklistCommand::Validate { files }) => validate(&files),
    }
}

/// `ok` lines go to stdout; problems go to stderr as `file:line: field: message`.
fn validate(files: &[PathBuf]) -> ExitCode {
    let mut failed = 0;
    for file in files {
        match checklist::load_file(file) {
            Ok(c) => println!(
                "ok  {}  {}@{}  {} sections, {} items  sha256 {}",
                file.display(),
                c.id,
                c.version,
                c.sections.len(),
                c.items().count(),
                c.pin.sha256
            ),
            Err(errors) => {
                failed += 1;
                println!("FAIL  {}  {} problem(s)", file.display(), errors.len());
                eprintln!("{errors}");
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("{failed} of {} file(s) failed validation", files.len());
        ExitCode::FAILURE
    }
}
