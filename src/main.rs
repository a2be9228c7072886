//! The `tributary` command: parses the CLI, loads the config and dispatches to the command's
//! module under `cli/`. Exit codes: 0 ok, 1 runtime failure (a sync failed, the store cannot be
//! opened), 2 usage or config error.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cli::export::{ExportFormat, ExportKind};
use cli::resync::ResyncRequest;
use cli::LogFormat;
use tributary::config;

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

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    cli::init_logging(cli.log_format);
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
        return cli::check_config::check_config(&config, &path);
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
            Command::Run => cli::run::run(config, path, address_file).await,
            Command::Sync {
                partners,
                full,
                force,
            } => cli::sync::sync(config, partners, full, force).await,
            Command::Status { json } => cli::status::status(config, json),
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
                cli::resync::resync(config, address_file, token_file, how).await
            }
            Command::Export { kind, format, out } => cli::export::export(config, kind, format, out),
            Command::Partner {
                action: PartnerAction::Purge { id, force },
            } => cli::partner::purge(&config, &id, force),
        }
    });
    // A sync's blocking work still running when `run` returns (after SIGTERM's grace) is left
    // behind: its transaction never commits, so the store rolls it back.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", cli::describe(&e));
            ExitCode::from(1)
        }
    }
}
