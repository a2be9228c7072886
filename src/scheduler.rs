//! When syncs run: one loop per partner fires on its cron schedule (in the configured time zone);
//! a per-partner lock means a sync never overlaps itself, and a semaphore caps how many run at once.
//! Manual triggers go through the same [`Runner`], so they obey the same rules.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{watch, Mutex, Semaphore};

use crate::config::{Config, Partner};
use crate::sync::{sync_partner, SyncContext, SyncOptions, SyncReport};

/// Runs syncs with the no-overlap and concurrency rules.
pub struct Runner {
    ctx: SyncContext,
    locks: HashMap<String, Arc<Mutex<()>>>,
    slots: Arc<Semaphore>,
}

impl Runner {
    pub fn new(ctx: SyncContext, config: &Config) -> Runner {
        let locks = config
            .partners
            .iter()
            .map(|p| (p.id.to_string(), Arc::new(Mutex::new(()))))
            .collect();
        Runner {
            ctx,
            locks,
            slots: Arc::new(Semaphore::new(config.scheduler.max_concurrent)),
        }
    }

    pub fn context(&self) -> &SyncContext {
        &self.ctx
    }

    /// Syncs a partner now unless it is already syncing (then `None`). Waits for a free slot.
    pub async fn run(&self, partner: &Partner, opts: &SyncOptions) -> Option<SyncReport> {
        let lock = self.locks.get(partner.id.as_str())?.clone();
        let Ok(_guard) = lock.try_lock() else {
            tracing::info!(partner = %partner.id, "sync already running; not starting another");
            return None;
        };
        let _slot = self.slots.acquire().await.ok()?;
        Some(sync_partner(&self.ctx, partner, opts).await)
    }

    /// Syncs the given partners concurrently (within the slot limit) and returns their reports.
    pub async fn run_many(
        self: &Arc<Self>,
        partners: &[Partner],
        opts: &SyncOptions,
    ) -> Vec<SyncReport> {
        let mut set = tokio::task::JoinSet::new();
        for (i, p) in partners.iter().enumerate() {
            let (me, p, opts) = (self.clone(), p.clone(), opts.clone());
            set.spawn(async move { (i, me.run(&p, &opts).await) });
        }
        let mut out: Vec<(usize, SyncReport)> = Vec::new();
        while let Some(res) = set.join_next().await {
            match res {
                Ok((i, Some(r))) => out.push((i, r)),
                Ok((_, None)) => {}
                Err(e) => tracing::error!(error = %e, "sync task failed"),
            }
        }
        out.sort_by_key(|(i, _)| *i);
        out.into_iter().map(|(_, r)| r).collect()
    }
}

/// The next time a partner's schedule fires, in the scheduler's time zone.
pub fn next_run(partner: &Partner, config: &Config) -> Option<chrono::DateTime<Utc>> {
    let now = Utc::now().with_timezone(&config.scheduler.timezone);
    partner
        .schedule
        .cron
        .after(&now)
        .next()
        .map(|t| t.with_timezone(&Utc))
}

/// Runs every partner's schedule until `shutdown` turns true; in-flight syncs finish first.
/// Partners that never synced successfully are synced once at start, so a new install has data
/// without waiting for the first cron tick.
pub async fn run(
    runner: Arc<Runner>,
    config: Arc<Config>,
    never_synced: Vec<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut set = tokio::task::JoinSet::new();
    for partner in config.partners.clone() {
        let runner = runner.clone();
        let config = config.clone();
        let mut shutdown = shutdown.clone();
        let sync_now = never_synced.contains(&partner.id.to_string());
        set.spawn(async move {
            if sync_now {
                let opts = SyncOptions {
                    full: false,
                    trigger: "startup".into(),
                };
                runner.run(&partner, &opts).await;
                if *shutdown.borrow() {
                    return;
                }
            }
            loop {
                let Some(next) = next_run(&partner, &config) else {
                    tracing::warn!(partner = %partner.id, "schedule has no future run");
                    return;
                };
                let wait = (next - Utc::now()).to_std().unwrap_or_default();
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => return,
                }
                if *shutdown.borrow() {
                    return;
                }
                let opts = SyncOptions {
                    full: false,
                    trigger: "schedule".into(),
                };
                // A sync in progress is allowed to finish (or roll back) before the loop stops.
                runner.run(&partner, &opts).await;
                if *shutdown.borrow() {
                    return;
                }
            }
        });
    }
    let _ = shutdown.changed().await;
    while set.join_next().await.is_some() {}
}
