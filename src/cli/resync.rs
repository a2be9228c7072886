//! `tributary resync`: asks the running daemon's admin API to sync now, with the admin token from
//! `--token-file`, the service's credential or the config's source, and prints each run's result.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use tributary::config::Config;
use tributary::server;

pub struct ResyncRequest {
    pub partners: Vec<String>,
    pub full: bool,
    pub force: bool,
    pub wait: bool,
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

pub async fn resync(
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
