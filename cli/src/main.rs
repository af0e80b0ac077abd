//! `orderflow`: the operator's command line (see the library's docs).

use std::process::ExitCode;

use orderflow::cli::{Cli, run};

fn main() -> ExitCode {
    match run(Cli::parse_checked(std::env::args_os())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("orderflow: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
