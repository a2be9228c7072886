//! The `tributary` command's bodies, one module per command, and the set-up they share (logging,
//! opening the store, the sync runner). `main.rs` parses the command line and dispatches here.

pub mod check_config;
pub mod export;
pub mod partner;
pub mod resync;
pub mod run;
pub mod status;
pub mod sync;

use std::sync::Arc;

use anyhow::Context;
use clap::ValueEnum;
use tokio::sync::watch;

use tributary::config::Config;
use tributary::ingest::fetch::Fetcher;
use tributary::metrics::Metrics;
use tributary::scheduler::Runner;
use tributary::store::Store;
use tributary::sync::SyncContext;

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// An error and its causes on one line, without repeating a cause its parent already quoted.
pub fn describe(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if !out.contains(&msg) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&msg);
        }
    }
    out
}

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.compact().init(),
    }
}

pub fn open_store(config: &Config) -> anyhow::Result<Arc<Store>> {
    let store = Store::open(&config.store.path)?;
    store.register_partners(
        &config.partners,
        Some(config.sync.removed_partner_grace_days),
    )?;
    Ok(Arc::new(store))
}

pub fn runner(
    config: &Config,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Arc<Runner>> {
    let fetcher = Fetcher::new().context("cannot set up the HTTP client")?;
    // Kinds left unresolved by a batch that a crash cut short are resolved before anything else.
    let resolved = tributary::sync::resolve_dirty(&store, &config.dedupe)?;
    if resolved > 0 {
        tracing::info!(
            kinds = resolved,
            "resolved entities left over from an interrupted batch"
        );
    }
    let ctx = SyncContext {
        store,
        fetcher: Arc::new(fetcher),
        dedupe: config.dedupe,
        in_flight: Default::default(),
        stop,
    };
    Ok(Arc::new(Runner::new(ctx, config, metrics)))
}
