//! `tributary export`: the merged records written whole, as JSON, CSV or (events) iCalendar, with
//! each partner's licence and attribution, read from the store read-only.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::ValueEnum;

use tributary::config::Config;
use tributary::store::Store;

#[derive(Clone, Copy, ValueEnum)]
pub enum ExportKind {
    Organisations,
    Events,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Json,
    Csv,
    Ics,
}

pub fn export(
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
                    cal.credit(&tributary::server::licences::attributions_for(
                        &config,
                        RecordKind::Events,
                    ));
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
