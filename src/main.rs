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
use tributary::metrics::Metrics;
use tributary::scheduler::{self, Runner};
use tributary::server::{self, AppState};
use tributary::store::{runs, Store, StoreError};
use tributary::sync::{Outcome, SyncContext, SyncOptions};

#[path = "cli/partner.rs"]
mod partner_cmd;

// Syncs allocate and free millions of small values on several threads at once; under the system
// allocator the same syncs took 15% longer (docs/benchmarks.md, with the memory trade-off).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// `run` writes the address it listens on here once bound (useful with server.listen port 0);
    /// `resync` reads the daemon's address from it when server.listen has port 0
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "TRIBUTARY_BOUND_ADDRESS_FILE"
    )]
    bound_address_file: Option<PathBuf>,
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
        /// Ignore cache validators and cursors: re-read every feed from its start
        #[arg(long)]
        full: bool,
        /// Apply deletions even past a partner's max_delete_share
        #[arg(long)]
        force: bool,
    },
    /// Show each partner's last run, result, counts and next run
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Validate the config and print every problem with its key path
    CheckConfig,
    /// Ask the running daemon (admin API) to sync now: all partners or the named ones
    Resync {
        partners: Vec<String>,
        /// Ignore cache validators and cursors: re-read every feed from its start
        #[arg(long)]
        full: bool,
        /// Apply deletions even past a partner's max_delete_share
        #[arg(long)]
        force: bool,
        /// Wait for the syncs to finish and print their results
        #[arg(long)]
        wait: bool,
        /// Read the admin token from this file instead of the config's admin source (under
        /// systemd the config names the service's credential, which only the service can read)
        #[arg(long, value_name = "FILE", env = "TRIBUTARY_ADMIN_TOKEN_FILE")]
        token_file: Option<PathBuf>,
    },
    /// Partner lifecycle: `partner purge ID [--force]` withdraws a removed partner's records now
    Partner {
        #[command(subcommand)]
        action: PartnerAction,
    },
    /// Write the merged data to a file or stdout
    Export {
        #[arg(long, value_enum)]
        kind: ExportKind,
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Output file (default: stdout)
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PartnerAction {
    /// Withdraw a removed partner's records at once instead of after the grace period
    Purge {
        id: String,
        /// Confirm the withdrawal (the mass-deletion guard holds it otherwise)
        #[arg(long)]
        force: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportKind {
    Organisations,
    Events,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    Json,
    Csv,
    Ics,
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
    let address_file = cli.bound_address_file;
    if let Command::CheckConfig = command {
        let needs = config::check_runtime(&config);
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
            Command::Run => run(config, path, address_file).await,
            Command::Sync {
                partners,
                full,
                force,
            } => sync(config, partners, full, force).await,
            Command::Status { json } => status(config, json),
            Command::CheckConfig => Ok(ExitCode::SUCCESS),
            Command::Resync {
                partners,
                full,
                force,
                wait,
                token_file,
            } => {
                let how = ResyncRequest {
                    partners,
                    full,
                    force,
                    wait,
                };
                resync(config, address_file, token_file, how).await
            }
            Command::Export { kind, format, out } => export(config, kind, format, out),
            Command::Partner {
                action: PartnerAction::Purge { id, force },
            } => partner_cmd::purge(&config, &id, force),
        }
    });
    // A sync's blocking work still running when `run` returns (after SIGTERM's grace) is left
    // behind: its transaction never commits, so the store rolls it back.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::from(1)
        }
    }
}

/// An error and its causes on one line, without repeating a cause its parent already quoted.
fn describe(e: &anyhow::Error) -> String {
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

fn init_logging(format: LogFormat) {
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

fn open_store(config: &Config) -> anyhow::Result<Arc<Store>> {
    let store = Store::open(&config.store.path)?;
    store.register_partners(
        &config.partners,
        Some(config.sync.removed_partner_grace_days),
    )?;
    Ok(Arc::new(store))
}

fn runner(
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

async fn run(
    mut config: Config,
    config_path: PathBuf,
    address_file: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let store = open_store(&config)?;
    let listener = listen(&mut config, address_file.as_deref()).await?;
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::new());
    // Syncs stop first (on SIGTERM); the HTTP server answers until they have.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (server_stop_tx, server_stop_rx) = watch::channel(false);
    // A token source that cannot be read stops the start before anything claims to be running.
    let admin_token = server::admin::load_token(&config.admin.token)
        .context("the admin token cannot be read (admin.token_file / admin.token_env)")?;
    let runner = runner(&config, store.clone(), metrics.clone(), stop_rx.clone())?;
    tracing::info!(
        listen = %config.server.listen,
        store = %config.store.path.display(),
        partners = config.partners.len(),
        "tributary running"
    );
    if admin_token.is_none() {
        tracing::warn!("no admin token configured: the admin API answers 503");
    }
    let app_config = Arc::new(arc_swap::ArcSwap::new(config.clone()));
    let app = server::router(AppState {
        store: store.clone(),
        config: app_config.clone(),
        admin_token: admin_token.map(Into::into),
        runner: Some(runner.clone()),
        metrics,
        cache: Arc::new(server::cache::ResponseCache::new(
            config.server.response_cache_bytes,
        )),
    });
    let limits = server::ServeLimits {
        header_read_timeout: config.server.header_read_timeout,
        max_connections: config.server.max_connections,
    };
    let server = tokio::spawn(server::serve(listener, app, limits, server_stop_rx));
    let (config_tx, config_rx) = watch::channel(config.clone());
    let sched = tokio::spawn(scheduler::run(runner.clone(), config_rx, stop_rx));
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    if let Some(every) = sd_notify::watchdog_enabled() {
        tokio::spawn(watchdog(store.clone(), every / 2));
    }

    let mut signals = Signals::new()?;
    let config_tx = Arc::new(config_tx);
    let reloading = Arc::new(std::sync::Mutex::new(()));
    loop {
        match signals.next().await {
            Signal::Stop => break,
            Signal::Reload => {
                // Off the signal loop: recording partners waits for a sync's write lock, and a
                // SIGTERM meanwhile must still be heard.
                let (path, live, runner, store, tx, turn) = (
                    config_path.clone(),
                    app_config.clone(),
                    runner.clone(),
                    store.clone(),
                    config_tx.clone(),
                    reloading.clone(),
                );
                tokio::task::spawn_blocking(move || {
                    let _one_at_a_time = turn.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
                    reload(&path, &live, &runner, &store, &tx);
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
                });
            }
        }
    }
    let grace = config.server.stop_grace;
    tracing::info!(
        grace_secs = grace.as_secs(),
        "stopping: syncs still fetching give up; syncs writing may finish"
    );
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    let _ = stop_tx.send(true);
    // A second SIGTERM (or SIGINT) cuts the grace short.
    let finished = tokio::select! {
        r = tokio::time::timeout(grace, sched) => r.is_ok(),
        _ = signals.next() => false,
    };
    if !finished {
        tracing::warn!(
            "syncs still running at the end of server.stop_grace_secs: stopping anyway; their \
             transactions roll back and the runs show as interrupted at the next start"
        );
    }
    let _ = server_stop_tx.send(true);
    match server.await {
        Ok(()) => {}
        Err(e) => return Err(e).context("HTTP server task failed"),
    }
    tracing::info!(clean = finished, "stopped");
    Ok(ExitCode::SUCCESS)
}

/// Binds `server.listen`. With port 0 the OS picks a free port: the bound address replaces it in
/// the running config (and in a base URL derived from it), is logged ("tributary running"), and is written to
/// `address_file` when one is named, so whoever started us can find us without a port race.
async fn listen(
    config: &mut Config,
    address_file: Option<&std::path::Path>,
) -> anyhow::Result<tokio::net::TcpListener> {
    let wanted = config.server.listen;
    let listener = tokio::net::TcpListener::bind(wanted)
        .await
        .with_context(|| format!("cannot listen on {wanted} (server.listen)"))?;
    let bound = listener
        .local_addr()
        .with_context(|| format!("cannot read the address bound for {wanted}"))?;
    config.server.listen = bound;
    fill_bound_port(config, bound.port());
    if let Some(file) = address_file {
        // Written whole under another name, then renamed: a reader never sees half an address.
        let mut tmp = file.as_os_str().to_owned();
        tmp.push(".tmp");
        std::fs::write(&tmp, format!("{bound}\n"))
            .and_then(|()| std::fs::rename(&tmp, file))
            .with_context(|| format!("cannot write the bound address to {}", file.display()))?;
    }
    Ok(listener)
}

/// A base URL left at port 0 (derived from a `listen` with port 0) takes the port bound.
fn fill_bound_port(config: &mut Config, port: u16) {
    if config.server.base_url.port() == Some(0) {
        let _ = config.server.base_url.set_port(Some(port));
    }
}

enum Signal {
    Stop,
    Reload,
}

/// SIGTERM/SIGINT (stop) and SIGHUP (reload), registered once so none is missed between waits.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        let listen = |kind| signal(kind).context("cannot listen for signals");
        Ok(Signals {
            term: listen(SignalKind::terminate())?,
            int: listen(SignalKind::interrupt())?,
            hup: listen(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}

/// Re-reads the config file; a bad one is refused and the old one kept.
fn reload(
    path: &std::path::Path,
    live: &arc_swap::ArcSwap<Config>,
    runner: &Runner,
    store: &Store,
    configs: &watch::Sender<Arc<Config>>,
) {
    let mut new = match config::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "config reload refused; keeping the running config");
            return;
        }
    };
    let old = live.load_full();
    if new.server.listen.port() == 0 {
        new.server.listen = old.server.listen;
        fill_bound_port(&mut new, old.server.listen.port());
    }
    for (what, changed) in [
        ("server.listen", old.server.listen != new.server.listen),
        ("store.path", old.store.path != new.store.path),
        (
            "scheduler.max_concurrent",
            old.scheduler.max_concurrent != new.scheduler.max_concurrent,
        ),
        (
            "admin",
            format!("{:?}", old.admin.token) != format!("{:?}", new.admin.token),
        ),
    ] {
        if changed {
            tracing::warn!(key = what, "this setting changes only on restart");
        }
    }
    if let Err(e) =
        store.register_partners(&new.partners, Some(new.sync.removed_partner_grace_days))
    {
        tracing::error!(error = %e, "config reload refused: cannot record partners");
        return;
    }
    let new = Arc::new(new);
    runner.reconfigure(&new);
    live.store(new.clone());
    let _ = configs.send(new.clone());
    tracing::info!(partners = new.partners.len(), "config reloaded");
}

/// Pings systemd's watchdog while the store answers, so a wedged daemon is restarted.
async fn watchdog(store: Arc<Store>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let st = store.clone();
        let healthy = tokio::task::spawn_blocking(move || st.probe().is_ok())
            .await
            .unwrap_or(false);
        if healthy && tributary::store::damage_seen().is_none() {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        } else {
            tracing::error!("store does not answer; withholding the watchdog ping");
        }
    }
}

async fn sync(
    config: Config,
    names: Vec<String>,
    full: bool,
    force: bool,
) -> anyhow::Result<ExitCode> {
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
    // A one-shot sync is stopped by the signal's default action, not by this channel.
    let (_keep, never) = watch::channel(false);
    let runner = runner(&config, store, Arc::new(Metrics::new()), never)?;
    let opts = SyncOptions {
        full,
        trigger: "cli".into(),
        force,
    };
    let started = std::time::Instant::now();
    // A progress bar on a terminal; plain lines (one per partner as it finishes) otherwise.
    let bar = std::io::IsTerminal::is_terminal(&std::io::stdout()).then(|| {
        let pb = indicatif::ProgressBar::new(partners.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{bar:30}] {pos}/{len} partners {msg}",
        ) {
            pb.set_style(style.progress_chars("=> "));
        }
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        pb
    });
    let mut waiting = tokio::task::JoinSet::new();
    for p in &partners {
        match runner.start(p.id.as_str(), opts.clone()).await {
            Ok(t) => {
                waiting.spawn(t.wait());
            }
            Err(e) => eprintln!("error: {}: {e}", p.id),
        }
    }
    let (mut done, mut failed) = (0usize, 0usize);
    while let Some(joined) = waiting.join_next().await {
        let Ok(Some(r)) = joined else { continue };
        done += 1;
        if matches!(r.outcome, Outcome::Failed | Outcome::Held) {
            failed += 1;
        }
        let line = summary_line(&r);
        match &bar {
            Some(pb) => {
                pb.println(line);
                pb.inc(1);
            }
            None => println!("{line}"),
        }
    }
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    println!(
        "{} partner(s) synced, {} failed, in {:.2}s",
        done - failed,
        failed,
        started.elapsed().as_secs_f64()
    );
    Ok(if failed > 0 || done < partners.len() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn summary_line(r: &tributary::sync::SyncReport) -> String {
    let c = &r.counts;
    match r.outcome {
        Outcome::Failed | Outcome::Held => format!(
            "{:<24} {:<10} {}",
            r.partner,
            r.outcome.as_str().to_uppercase(),
            r.error.as_deref().unwrap_or("unknown error")
        ),
        o => format!(
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

fn status(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    // Read-only: safe beside a running daemon, whose live run stays `running`.
    let store = match Store::open_read_only(&config.store.path) {
        Ok(s) => Some(s),
        Err(StoreError::Missing { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let conn = store.as_ref().map(|s| s.reader()).transpose()?;
    // A run still `running` with no process holding the store died with its process; the
    // next writer to open the store marks it interrupted.
    let writer_active = Store::writer_active(&config.store.path);
    let mut rows = Vec::new();
    for p in &config.partners {
        let (last, ok) = match &conn {
            Some(conn) => runs::latest(conn, p.id.as_str())?,
            None => (None, None),
        };
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
                let stale = r.result == "running" && !writer_active;
                println!(
                    "  last run:  #{} {}{} at {} ({})",
                    r.id,
                    r.result,
                    if stale {
                        " (no process is syncing: its process stopped)"
                    } else {
                        ""
                    },
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

struct ResyncRequest {
    partners: Vec<String>,
    full: bool,
    force: bool,
    wait: bool,
}

/// The admin token `resync` sends: `--token-file`, else the config's token file as found in
/// `$CREDENTIALS_DIRECTORY` (a unit or `systemd-run` that loads the same credential), else the
/// config's own source.
fn cli_token(config: &Config, token_file: Option<PathBuf>) -> anyhow::Result<Option<String>> {
    use tributary::config::AdminToken;
    if let Some(file) = token_file {
        return Ok(server::admin::load_token(&AdminToken::File(file))?);
    }
    if let (AdminToken::File(path), Some(dir)) = (
        &config.admin.token,
        std::env::var_os("CREDENTIALS_DIRECTORY"),
    ) {
        if let Some(name) = path.file_name() {
            let here = PathBuf::from(dir).join(name);
            if here.is_file() {
                return Ok(server::admin::load_token(&AdminToken::File(here))?);
            }
        }
    }
    Ok(server::admin::load_token(&config.admin.token)?)
}

async fn resync(
    config: Config,
    address_file: Option<PathBuf>,
    token_file: Option<PathBuf>,
    how: ResyncRequest,
) -> anyhow::Result<ExitCode> {
    let ResyncRequest {
        partners,
        full,
        force,
        wait,
    } = how;
    for n in &partners {
        if config.partner(n).is_none() {
            let known: Vec<_> = config.partners.iter().map(|p| p.id.as_str()).collect();
            eprintln!(
                "error: no partner {n:?} in the config (known: {})",
                known.join(", ")
            );
            return Ok(ExitCode::from(2));
        }
    }
    let Some(token) = cli_token(&config, token_file)? else {
        eprintln!(
            "error: no admin token: pass --token-file, or set the variable named by admin.token_env (default TRIBUTARY_ADMIN_TOKEN) or admin.token_file"
        );
        return Ok(ExitCode::from(2));
    };
    let mut url = config.server.base_url.clone();
    // Talk to the daemon on its listen address, not through a proxy in front of it.
    let listen = daemon_address(&config, address_file.as_deref())?;
    let host = if listen.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        listen.ip().to_string()
    };
    let _ = url.set_scheme("http");
    let _ = url.set_host(Some(&host));
    let _ = url.set_port(Some(listen.port()));
    url.set_path("/admin/resync");
    let client = reqwest::Client::builder()
        .timeout(if wait {
            std::time::Duration::from_secs(3600)
        } else {
            std::time::Duration::from_secs(30)
        })
        .build()?;
    let resp = client
        .post(url.clone())
        .bearer_auth(token)
        .json(
            &serde_json::json!({"partners": partners, "full": full, "force": force, "wait": wait}),
        )
        .send()
        .await
        .with_context(|| {
            format!("cannot reach the daemon at {url} (is `tributary run` running?)")
        })?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        let msg = body["error"]["message"].as_str().unwrap_or("no message");
        eprintln!("error: the daemon answered {status}: {msg}");
        return Ok(ExitCode::from(1));
    }
    let mut failed = false;
    for run in body["runs"].as_array().into_iter().flatten() {
        let partner = run["partner"].as_str().unwrap_or("?");
        let id = run["run_id"].as_i64().unwrap_or(0);
        let joined = if run["joined"].as_bool().unwrap_or(false) {
            " (joined the sync already running)"
        } else {
            ""
        };
        match run["result"].as_str() {
            None => println!("{partner:<24} run #{id} started{joined}"),
            Some("failed") | Some("held") => {
                failed = true;
                println!(
                    "{partner:<24} run #{id} {}: {}",
                    run["result"].as_str().unwrap_or("failed").to_uppercase(),
                    run["error"].as_str().unwrap_or("unknown error")
                );
            }
            Some(r) => println!("{partner:<24} run #{id} {r}{joined}"),
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The daemon's address: `server.listen`, or with port 0 the address the daemon wrote to the
/// bound-address file.
fn daemon_address(
    config: &Config,
    address_file: Option<&std::path::Path>,
) -> anyhow::Result<std::net::SocketAddr> {
    let listen = config.server.listen;
    if listen.port() != 0 {
        return Ok(listen);
    }
    let Some(file) = address_file else {
        anyhow::bail!("server.listen has port 0, so the daemon's port is only known from the file it wrote: pass --bound-address-file (or set TRIBUTARY_BOUND_ADDRESS_FILE)");
    };
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the daemon's address from {}", file.display()))?;
    text.trim()
        .parse()
        .with_context(|| format!("{} does not hold an address:port", file.display()))
}

fn export(
    config: Config,
    kind: ExportKind,
    format: ExportFormat,
    out: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    use tributary::model::{CanonicalEvent, CanonicalOrganisation, RecordKind};
    use tributary::publish;
    use tributary::store::entities;

    // Read-only: an export never migrates or rewrites the store under a running daemon.
    let store = Store::open_read_only(&config.store.path)?;
    let conn = store.reader()?;
    let credits = tributary::server::licences::attributions(&config);
    let text = match kind {
        ExportKind::Organisations => {
            let items: Vec<CanonicalOrganisation> =
                entities::all_live(&conn, RecordKind::Organisations)?
                    .iter()
                    .map(|b| serde_json::from_str(b))
                    .collect::<Result<_, _>>()
                    .context("a stored organisation is unreadable")?;
            match format {
                ExportFormat::Json => publish::export::json(&items, &credits)?,
                ExportFormat::Csv => publish::export::organisations_csv(&items, &credits)?,
                ExportFormat::Ics => {
                    eprintln!("error: --format ics needs --kind events");
                    return Ok(ExitCode::from(2));
                }
            }
        }
        ExportKind::Events => {
            let items: Vec<CanonicalEvent> = entities::all_live(&conn, RecordKind::Events)?
                .iter()
                .map(|b| serde_json::from_str(b))
                .collect::<Result<_, _>>()
                .context("a stored event is unreadable")?;
            match format {
                ExportFormat::Json => publish::export::json(&items, &credits)?,
                ExportFormat::Csv => publish::export::events_csv(&items, &credits)?,
                ExportFormat::Ics => {
                    let (_, at) = entities::last_change(&conn)?;
                    let now = at
                        .and_then(|s| chrono::DateTime::parse_from_rfc3339(&s).ok())
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .unwrap_or_else(chrono::Utc::now);
                    let opts = publish::ical::CalendarOptions {
                        name: publish::CALENDAR_NAME,
                        description: Some(publish::CALENDAR_DESCRIPTION),
                        now,
                        uid_domain: publish::UID_DOMAIN,
                    };
                    let mut cal = publish::ical::Assembler::new(&opts, 0);
                    cal.credit(
                        &tributary::server::licences::attributions_for(&config, RecordKind::Events),
                        &tributary::server::licences::list_url(&config),
                    );
                    for event in &items {
                        cal.push(&publish::ical::Piece {
                            fragment: &publish::ical::fragment(event, publish::UID_DOMAIN),
                            sequence: 0,
                            withdrawn: false,
                        });
                    }
                    cal.finish()
                }
            }
        }
    };
    match out {
        Some(path) => std::fs::write(&path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            use std::io::Write;
            std::io::stdout().write_all(text.as_bytes())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
