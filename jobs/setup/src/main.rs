//! The `setup` binary: see the library for what it does.
use clap::Parser;
fn main() -> std::process::ExitCode {
    let cli = setup::Cli::parse();
    shared::job::run("setup", || setup::run(cli))
}
