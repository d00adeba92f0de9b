//! Test-only package: see `tests/specs.rs`.
