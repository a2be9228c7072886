//! `tributary run`: the daemon's lifecycle. Binds the listener, serves HTTP and runs the
//! scheduler until SIGTERM/SIGINT (syncs stop first, within `server.stop_grace_secs`), reloads the
//! config on SIGHUP, and pings systemd's watchdog while the store answers.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;

use tributary::config::{self, Config};
use tributary::metrics::Metrics;
use tributary::scheduler::{self, Runner};
use tributary::server::{self, AppState};
use tributary::store::Store;

use super::{open_store, runner};

pub async fn run(
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
    let places = Arc::new(server::places_loader::PlacesLoader::default());
    // Loaded while the daemon starts, so the first distance search does not wait for it.
    if let Some(path) = &config.store.postcode_centroids {
        places.start(store.clone(), path.clone());
    }
    let app = server::router(AppState {
        store: store.clone(),
        config: app_config.clone(),
        admin_token: admin_token.map(Into::into),
        runner: Some(runner.clone()),
        metrics: metrics.clone(),
        cache: Arc::new(server::cache::ResponseCache::new(
            config.server.response_cache_bytes,
        )),
        places,
        credits: Arc::default(),
    });
    let limits = server::ServeLimits {
        header_read_timeout: config.server.header_read_timeout,
        max_connections: config.server.max_connections,
    };
    let server = tokio::spawn(server::serve(listener, app, limits, server_stop_rx));
    let (config_tx, config_rx) = watch::channel(config.clone());
    let sched = tokio::spawn(scheduler::run(runner.clone(), config_rx, stop_rx.clone()));
    tokio::spawn(tributary::webhooks::run(
        store.clone(),
        app_config.clone(),
        metrics,
        stop_rx,
    ));
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
pub fn fill_bound_port(config: &mut Config, port: u16) {
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
