//! `tributary sync`: syncs now in this process (all partners or the named ones), a line per
//! partner as each finishes, then a summary; exit 1 when any failed or was held.

use std::process::ExitCode;
use std::sync::Arc;

use tokio::sync::watch;

use tributary::config::Config;
use tributary::metrics::Metrics;
use tributary::sync::{Outcome, SyncOptions};

use super::{open_store, runner};

pub async fn sync(
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
            "{:<24} {:<10} {} records: {} new, {} updated, {} unchanged, {} deleted, {} rejected, {} warned; {} feed(s) not modified ({:.2}s)",
            r.partner,
            o.as_str(),
            c.records_seen,
            c.inserted,
            c.updated,
            c.unchanged,
            c.deleted,
            c.rejected,
            c.warned,
            c.feeds_unchanged,
            r.duration.as_secs_f64()
        ),
    }
}
