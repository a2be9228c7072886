//! nginx serving fixed bytes from disk: the benches' yardstick for what serving the same response
//! costs a well-tuned static server on this machine.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nginx serving `files` (name → bytes) from `dir/www` as `content_type`, on a port of its own:
/// the child and its `host:port`.
pub fn start(
    dir: &Path,
    files: &[(String, Vec<u8>)],
    content_type: &str,
) -> Result<(Child, String), String> {
    let www = dir.join("www");
    std::fs::create_dir_all(&www).map_err(|e| e.to_string())?;
    for (name, body) in files {
        std::fs::write(www.join(name), body).map_err(|e| e.to_string())?;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())?;
    let d = dir.display();
    let conf = format!(
        "worker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\n{}events {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/nt; proxy_temp_path {d}/nt; fastcgi_temp_path {d}/nt; uwsgi_temp_path {d}/nt; scgi_temp_path {d}/nt;\n  server {{ listen 127.0.0.1:{port}; root {}; location / {{ default_type {content_type}; etag on; }} }}\n}}\n",
        if running_as_root() { "user root;\n" } else { "" },
        www.display()
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
    let mut child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("nginx (apt-get install nginx): {e}"))?;
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err("nginx did not start".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((child, addr))
}

/// Stops nginx and its workers: SIGTERM to the master, which takes its workers down (a SIGKILL
/// would leave them running, orphaned, holding the port).
pub fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
