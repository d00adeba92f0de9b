//! The `upload` binary: see the library for what it does.
use clap::Parser;
fn main() -> std::process::ExitCode {
    let cli = upload::Cli::parse();
    shared::job::run("upload", || upload::run(cli))
}
