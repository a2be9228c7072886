//! `tributary check-config`: the config already loaded without problems (`main` reports those);
//! this checks what `run` will also need (the admin token source, the store's folder) and prints
//! a one-line summary.

use std::path::Path;
use std::process::ExitCode;

use tributary::config::{self, Config};

pub fn check_config(config: &Config, path: &Path) -> ExitCode {
    let needs = config::check_runtime(config);
    if !needs.is_empty() {
        eprintln!(
            "error: {} is valid, but `run` would fail ({} problem(s)):",
            path.display(),
            needs.len()
        );
        for p in &needs {
            eprintln!("  {p}");
        }
        return ExitCode::from(2);
    }
    println!(
        "{}: ok ({} partners, {} feeds)",
        path.display(),
        config.partners.len(),
        config.partners.iter().map(|p| p.feeds.len()).sum::<usize>()
    );
    ExitCode::SUCCESS
}
