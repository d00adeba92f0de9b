//! The `vectorize` binary: see the library for what it does.
use clap::Parser;
fn main() -> std::process::ExitCode {
    let cli = vectorize::Cli::parse();
    shared::job::run("vectorize", || vectorize::run(cli))
}
