//! The `trigger` binary: see the library for what it does.
use clap::Parser;
fn main() -> std::process::ExitCode {
    trigger::main(trigger::Cli::parse())
}
