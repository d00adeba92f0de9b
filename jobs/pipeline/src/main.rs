//! The `pipeline` binary: see the library for what it does.
use clap::Parser;
fn main() -> std::process::ExitCode {
    let cli = pipeline::Cli::parse();
    shared::job::run("pipeline", || pipeline::run(cli))
}
