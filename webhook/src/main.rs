//! The `webhook` binary: see the library for what it does.
use clap::Parser;
fn main() -> std::process::ExitCode {
    let cli = webhook::Cli::parse();
    shared::job::run("webhook", || webhook::run(cli))
}
