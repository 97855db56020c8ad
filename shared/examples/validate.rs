//! Validates gateway configuration files and prints every problem at once.
//!
//! ```text
//! cargo run -p tidegate-policy --example validate -- examples/gateway.toml
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: validate <gateway.toml|gateway.json>...");
        return ExitCode::from(2);
    }
    let mut failed = false;
    for path in &paths {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => {
                eprintln!("{path}: cannot read: {error}");
                failed = true;
                continue;
            }
        };
        match tidegate_policy::config::parse(&text) {
            Ok(config) => println!(
                "{path}: ok ({} routes, {} issuers, {} managed stages)",
                config.routes.len(),
                config.issuers.len(),
                config.rollback.as_ref().map_or(0, |r| r.stages.len()),
            ),
            Err(errors) => {
                eprintln!("{path}: {errors}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
