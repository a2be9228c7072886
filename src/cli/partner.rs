//! `tributary partner purge ID`: withdraws a removed partner's records at once instead of after
//! the grace period, behind the mass-deletion guard's confirmation (`--force`), as a sync that
//! would delete too much is held until run again with `--force`.

use std::process::ExitCode;

use anyhow::Context;

use tributary::config::Config;
use tributary::store::{withdrawal, Store};

/// Exit code of a purge held for confirmation (like a held sync: it did nothing).
const HELD: u8 = 1;

pub fn purge(config: &Config, id: &str, force: bool) -> anyhow::Result<ExitCode> {
    if config.partner(id).is_some() {
        eprintln!(
            "error: partner {id:?} is still configured; remove its [[partners]] block first \
             (its next sync would bring its records back)"
        );
        return Ok(ExitCode::from(2));
    }
    let store = Store::open(&config.store.path)?;
    store.register_partners(
        &config.partners,
        Some(config.sync.removed_partner_grace_days),
    )?;
    let mut conn = store.writer();
    let tx = conn.transaction().context("cannot start a transaction")?;
    if withdrawal::known(&tx, id)?.is_none() {
        let mut known: Vec<String> = tx
            .prepare("SELECT id FROM partners ORDER BY id")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        known.retain(|k| config.partner(k).is_none());
        eprintln!(
            "error: the store knows no partner {id:?}; removed partners it knows: {}",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
        return Ok(ExitCode::from(2));
    }
    let live: (i64, i64) = tx.query_row(
        "SELECT COALESCE(SUM(kind = 'organisations'), 0), COALESCE(SUM(kind = 'events'), 0)
         FROM source_records WHERE partner_id = ?1 AND deleted_at IS NULL",
        rusqlite::params![id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if live.0 + live.1 > 0 && !force {
        eprintln!(
            "held, nothing applied: purging partner {id} would withdraw all of its {} organisations \
             and {} events at once (the mass-deletion guard holds any deletion of more than \
             max_delete_share); check the id, then run again with --force to apply",
            live.0, live.1
        );
        return Ok(ExitCode::from(HELD));
    }
    let now = chrono::Utc::now();
    let w = tributary::resolve::withdraw_partner(&tx, id, &config.dedupe, now)?;
    tx.commit().context("cannot commit the purge")?;
    println!(
        "partner {id}: withdrew {} organisations and {} events",
        w.organisations, w.events
    );
    Ok(ExitCode::SUCCESS)
}
