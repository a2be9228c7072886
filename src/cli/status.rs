//! `tributary status`: each partner's last run, last success and next run, read from the store
//! read-only (safe beside a running daemon; a missing store is "never run", not created).

use std::process::ExitCode;

use tributary::config::Config;
use tributary::scheduler;
use tributary::store::{runs, Store, StoreError};

pub fn status(config: Config, json: bool) -> anyhow::Result<ExitCode> {
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
                    "  counts:    {} seen, {} new, {} updated, {} unchanged, {} deleted, {} rejected, {} warned",
                    c.records_seen,
                    c.inserted,
                    c.updated,
                    c.unchanged,
                    c.deleted,
                    c.rejected,
                    c.warned
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
