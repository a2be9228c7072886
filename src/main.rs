//! The `tributary` command: parses the CLI, loads the config and dispatches. Exit codes: 0 ok,
//! 1 runtime failure (a sync failed, the store cannot be opened), 2 usage or config error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tokio::sync::watch;

use tributary::config::{self, Config};
use tributary::ingest::fetch::Fetcher;
use tributary::scheduler::{self, Runner};
use tributary::server::{self, AppState};
use tributary::store::{runs, Store};
use tributary::sync::{Outcome, SyncContext, SyncOptions};

#[derive(Parser)]
#[command(
    name = "tributary",
    version,
    about = "Federates voluntary-sector directories and event listings"
)]
struct Cli {
    /// Config file (else $TRIBUTARY_CONFIG, else config/tributary.toml, else /etc/tributary/tributary.toml)
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Log format: compact text for people, JSON lines for machines
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: scheduler and HTTP server until SIGTERM/SIGINT (the default)
    Run,
    /// Sync now in this process (all partners, or the named ones), print a summary and exit
    Sync {
        partners: Vec<String>,
        /// Ignore cache validators and re-read every feed
        #[arg(long)]
        full: bool,
    },
    /// Show each partner's last run, result, counts and next run
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Validate the config and print every problem with its key path
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(cli.log_format);
    let path = config::resolve_path(cli.config.as_deref());
    let config = match config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let command = cli.command.unwrap_or(Command::Run);
    if let Command::CheckConfig = command {
        println!(
            "{}: ok ({} partners, {} feeds)",
            path.display(),
            config.partners.len(),
            config.partners.iter().map(|p| p.feeds.len()).sum::<usize>()
        );
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Run => run(config).await,
            Command::Sync { partners, full } => sync(config, partners, full).await,
            Command::Status { json } => status(config, json),
            Command::CheckConfig => Ok(ExitCode::SUCCESS),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.compact().init(),
    }
}

fn open_store(config: &Config) -> anyhow::Result<Arc<Store>> {
    let store = Store::open(&config.store.path)?;
    store.upsert_partners(&config.partners)?;
    Ok(Arc::new(store))
}

fn runner(config: &Config, store: Arc<Store>) -> anyhow::Result<Arc<Runner>> {
    let fetcher = Fetcher::new().context("cannot set up the HTTP client")?;
    let ctx = SyncContext {
        store,
        fetcher: Arc::new(fetcher),
    };
    Ok(Arc::new(Runner::new(ctx, config)))
}

async fn run(config: Config) -> anyhow::Result<ExitCode> {
    let config = Arc::new(config);
    let store = open_store(&config)?;
    let runner = runner(&config, store.clone())?;
    let never_synced = {
        let conn = store.reader()?;
        let mut v = Vec::new();
        for p in &config.partners {
            if runs::latest(&conn, p.id.as_str())?.1.is_none() {
                v.push(p.id.to_string());
            }
        }
        v
    };
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {} (server.listen)", config.server.listen))?;
    tracing::info!(
        listen = %config.server.listen,
        store = %config.store.path.display(),
        partners = config.partners.len(),
        "tributary running"
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let app = server::router(AppState {
        store: store.clone(),
        config: config.clone(),
    });
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|s| *s).await;
            })
            .await
    });
    let sched = tokio::spawn(scheduler::run(
        runner,
        config.clone(),
        never_synced,
        stop_rx,
    ));

    shutdown_signal().await;
    tracing::info!("stopping: letting running syncs finish");
    let _ = stop_tx.send(true);
    let _ = sched.await;
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e).context("HTTP server failed"),
        Err(e) => return Err(e).context("HTTP server task failed"),
    }
    tracing::info!("stopped cleanly");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn sync(config: Config, names: Vec<String>, full: bool) -> anyhow::Result<ExitCode> {
    let mut partners = Vec::new();
    for n in &names {
        match config.partner(n) {
            Some(p) => partners.push(p.clone()),
            None => {
                let known: Vec<_> = config.partners.iter().map(|p| p.id.as_str()).collect();
                eprintln!(
                    "error: no partner {n:?} in the config (known: {})",
                    known.join(", ")
                );
                return Ok(ExitCode::from(2));
            }
        }
    }
    if partners.is_empty() {
        partners = config.partners.clone();
    }
    let store = open_store(&config)?;
    let runner = runner(&config, store)?;
    let opts = SyncOptions {
        full,
        trigger: "cli".into(),
    };
    let started = std::time::Instant::now();
    let reports = runner.run_many(&partners, &opts).await;
    let mut failed = 0;
    for r in &reports {
        let c = &r.counts;
        match r.outcome {
            Outcome::Failed => {
                failed += 1;
                println!(
                    "{:<24} FAILED     {}",
                    r.partner,
                    r.error.as_deref().unwrap_or("unknown error")
                );
            }
            o => println!(
                "{:<24} {:<10} {} records: {} new, {} updated, {} unchanged, {} deleted, {} rejected; {} feed(s) not modified ({:.2}s)",
                r.partner,
                o.as_str(),
                c.records_seen,
                c.inserted,
                c.updated,
                c.unchanged,
                c.deleted,
                c.rejected,
                c.feeds_unchanged,
                r.duration.as_secs_f64()
            ),
        }
    }
    println!(
        "{} partner(s) synced, {} failed, in {:.2}s",
        reports.len() - failed,
        failed,
        started.elapsed().as_secs_f64()
    );
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn status(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.store.path)?;
    let conn = store.reader()?;
    let mut rows = Vec::new();
    for p in &config.partners {
        let (last, ok) = runs::latest(&conn, p.id.as_str())?;
        let next = scheduler::next_run(p, &config);
        rows.push((p, last, ok, next));
    }
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|(p, last, ok, next)| {
                serde_json::json!({
                    "partner": p.id.as_str(),
                    "name": p.name,
                    "schedule": p.schedule.expr,
                    "last_run": last,
                    "last_success_at": ok.as_ref().and_then(|r| r.finished_at.clone()),
                    "next_run": next.map(|t| t.to_rfc3339()),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    for (p, last, ok, next) in rows {
        println!("{} ({})", p.id, p.name);
        match last {
            None => println!("  last run:  never"),
            Some(r) => {
                println!(
                    "  last run:  #{} {} at {} ({})",
                    r.id,
                    r.result,
                    r.finished_at.as_deref().unwrap_or(&r.started_at),
                    r.trigger
                );
                let c = r.counts;
                println!(
                    "  counts:    {} seen, {} new, {} updated, {} unchanged, {} deleted, {} rejected",
                    c.records_seen, c.inserted, c.updated, c.unchanged, c.deleted, c.rejected
                );
                if let Some(e) = r.error {
                    println!("  error:     {e}");
                }
            }
        }
        if let Some(ok) = ok {
            println!(
                "  last ok:   {}",
                ok.finished_at.as_deref().unwrap_or(&ok.started_at)
            );
        }
        println!(
            "  next run:  {}",
            next.map(|t| t.to_rfc3339())
                .unwrap_or_else(|| "none".into())
        );
    }
    Ok(ExitCode::SUCCESS)
}
