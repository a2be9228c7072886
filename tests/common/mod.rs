//! Shared test fixtures: fake partners as real HTTP servers on 127.0.0.1, temp configs, and the real
//! `tributary` binary run as a one-shot command or as a daemon.
#![allow(dead_code)]

pub mod console;

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Response, StatusCode};
use axum::routing::get;
use axum::Router;

pub const BIN: &str = env!("CARGO_BIN_EXE_tributary");

/// What a fake partner serves, changeable mid-test.
#[derive(Clone)]
pub struct Feed {
    pub status: u16,
    pub body: Vec<u8>,
    pub etag: Option<String>,
    pub content_type: &'static str,
}

#[derive(Default)]
pub struct Seen {
    pub requests: usize,
    pub not_modified: usize,
    pub if_none_match: Vec<Option<String>>,
    pub user_agents: Vec<String>,
}

#[derive(Clone)]
pub struct FakePartner {
    pub addr: SocketAddr,
    pub feed: Arc<Mutex<Feed>>,
    pub seen: Arc<Mutex<Seen>>,
    gate: Gate,
}

/// Holds a fake partner's answers while shut, so a test can act while a sync is provably in
/// flight (its request arrived and is waiting) instead of hoping a sleep lands inside it.
#[derive(Clone)]
struct Gate {
    shut: Arc<tokio::sync::watch::Sender<bool>>,
    waiting: Arc<std::sync::atomic::AtomicUsize>,
}

impl FakePartner {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn set(&self, f: impl FnOnce(&mut Feed)) {
        let mut feed = self.feed.lock().unwrap();
        f(&mut feed);
    }

    pub fn requests(&self) -> usize {
        self.seen.lock().unwrap().requests
    }

    /// From now on, requests wait (unanswered) until [`FakePartner::open`].
    pub fn hold(&self) {
        self.gate.shut.send_replace(true);
    }

    /// Answers the waiting requests, and the ones after.
    pub fn open(&self) {
        self.gate.shut.send_replace(false);
    }

    /// Waits until `n` requests are being held; panics after 20 s.
    pub fn wait_held(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.gate.waiting.load(std::sync::atomic::Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "no request reached the held partner"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

type PartnerState = (Arc<Mutex<Feed>>, Arc<Mutex<Seen>>, Gate);

async fn serve_feed(State(p): State<PartnerState>, headers: HeaderMap) -> Response<Body> {
    let mut shut = p.2.shut.subscribe();
    if *shut.borrow_and_update() {
        p.2.waiting
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = shut.wait_for(|s| !*s).await;
        p.2.waiting
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
    let feed = p.0.lock().unwrap().clone();
    let inm = headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let mut seen = p.1.lock().unwrap();
    seen.requests += 1;
    seen.if_none_match.push(inm.clone());
    seen.user_agents.push(
        headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
    );
    let mut b = Response::builder();
    if let Some(etag) = &feed.etag {
        b = b.header("etag", etag);
        if feed.status == 200 && inm.as_deref() == Some(etag.as_str()) {
            seen.not_modified += 1;
            return b
                .status(StatusCode::NOT_MODIFIED)
                .body(Body::empty())
                .unwrap();
        }
    }
    b.status(feed.status)
        .header("content-type", feed.content_type)
        .body(Body::from(feed.body))
        .unwrap()
}

/// Starts a fake partner on 127.0.0.1 serving `feed` at every path, on its own thread and runtime
/// so it outlives any one test's runtime.
pub fn fake_partner(feed: Feed) -> FakePartner {
    let feed = Arc::new(Mutex::new(feed));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let gate = Gate {
        shut: Arc::new(tokio::sync::watch::channel(false).0),
        waiting: Default::default(),
    };
    let state = (feed.clone(), seen.clone(), gate.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            let app = Router::new().fallback(get(serve_feed)).with_state(state);
            let _ = axum::serve(listener, app).await;
        });
    });
    FakePartner {
        addr,
        feed,
        seen,
        gate,
    }
}

pub fn ics_feed(body: &str, etag: Option<&str>) -> Feed {
    Feed {
        status: 200,
        body: body.as_bytes().to_vec(),
        etag: etag.map(String::from),
        content_type: "text/calendar",
    }
}

pub fn json_feed(body: &str) -> Feed {
    Feed {
        status: 200,
        body: body.as_bytes().to_vec(),
        etag: None,
        content_type: "application/json",
    }
}

/// A port nothing listened on a moment ago: only for a partner that must refuse connections
/// (never for a server of ours to bind later; those bind port 0).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A temp dir holding `tributary.toml` with the given partners section. The daemon listens on
/// `127.0.0.1:0` (the OS picks the port) and writes the address it bound to `bound-address` in
/// the dir, which the harness waits on: no port is picked, released and raced for.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

/// How long a daemon may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(20);

impl TestEnv {
    pub fn new(partners_toml: &str) -> TestEnv {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[store]\npath = \"data/tributary.db\"\n\n[server]\nlisten = \"127.0.0.1:0\"\n\n[scheduler]\ndefault_schedule = \"0 0 3 * * *\"\n\n{partners_toml}"
        );
        std::fs::write(dir.path().join("tributary.toml"), text).unwrap();
        TestEnv { dir }
    }

    /// The bundled demo config and data, copied so the test owns its store.
    pub fn demo() -> TestEnv {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let demo_dst = dir.path().join("demo");
        std::fs::create_dir_all(&demo_dst).unwrap();
        for entry in std::fs::read_dir(root.join("config/demo")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), demo_dst.join(entry.file_name())).unwrap();
        }
        let text = std::fs::read_to_string(root.join("config/tributary.toml")).unwrap();
        let text = text
            .replace("127.0.0.1:8080", "127.0.0.1:0")
            .replace("../data/tributary.db", "data/tributary.db");
        std::fs::write(dir.path().join("tributary.toml"), text).unwrap();
        TestEnv { dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("tributary.toml")
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("data/tributary.db")
    }

    /// Where the daemon writes the address it bound (`TRIBUTARY_BOUND_ADDRESS_FILE`).
    pub fn address_file(&self) -> PathBuf {
        self.dir.path().join("bound-address")
    }

    /// The running daemon's base URL, from the address it reported.
    pub fn base(&self) -> String {
        let addr =
            std::fs::read_to_string(self.address_file()).expect("the daemon reported its address");
        format!("http://{}", addr.trim())
    }

    /// The binary with this env's config and address file.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(self.config())
            .env("TRIBUTARY_BOUND_ADDRESS_FILE", self.address_file())
            .env("RUST_LOG", "warn");
        cmd
    }

    pub fn cmd(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Starts the daemon and waits until `/healthz` answers.
    pub fn start(&self) -> Daemon {
        self.start_with(&[])
    }

    /// Starts the daemon with extra environment variables.
    pub fn start_with(&self, env: &[(&str, &str)]) -> Daemon {
        let mut d = self.spawn_with(env);
        d.wait_healthy(self);
        d
    }

    /// Starts the daemon without waiting for it; its stderr is collected (see [`Daemon::log`]).
    pub fn spawn_with(&self, env: &[(&str, &str)]) -> Daemon {
        // An address left by an earlier daemon of this env must not be mistaken for this one's.
        let _ = std::fs::remove_file(self.address_file());
        let mut cmd = self.command();
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .arg("run")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Daemon {
            child,
            base: String::new(),
            log,
        }
    }
}

pub struct Daemon {
    pub child: Child,
    pub base: String,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    /// Waits for the address file, then for `/healthz` to answer 200 there.
    pub fn wait_healthy(&mut self, env: &TestEnv) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if std::fs::metadata(env.address_file()).is_ok() {
                break;
            }
            self.assert_alive();
            assert!(
                Instant::now() < deadline,
                "daemon reported no address: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let base = env.base();
        loop {
            if let Ok(r) = blocking_get(&format!("{base}/healthz")) {
                if r.0 == 200 {
                    break;
                }
            }
            self.assert_alive();
            assert!(
                Instant::now() < deadline,
                "daemon did not come up: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.base = base;
    }

    fn assert_alive(&mut self) {
        if let Some(st) = self.child.try_wait().unwrap() {
            std::thread::sleep(Duration::from_millis(50));
            panic!("daemon exited ({st}): {}", self.log());
        }
    }

    /// Everything the daemon wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the daemon's stderr holds `needle`; panics after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the daemon's log: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the daemon serves a config with `n` partners (as `/healthz` lists them):
    /// after a SIGHUP, the point from which the new config answers every request.
    pub fn wait_for_partners(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let health = json(&format!("{}/healthz", self.base));
            if health["partners"].as_array().map(Vec::len) == Some(n) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no reload to {n} partners: {health}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the daemon to exit on its own; returns its exit code and its stderr.
    pub fn wait_exit(mut self, timeout: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Let the reader thread drain what is left in the pipe.
                std::thread::sleep(Duration::from_millis(50));
                return (st.code(), self.log());
            }
            assert!(
                Instant::now() < deadline,
                "daemon kept running: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and wait; returns the exit status code.
    pub fn stop(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            assert!(Instant::now() < deadline, "daemon did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET returning (status, headers, body) without an async runtime in the test.
pub fn blocking_get(url: &str) -> Result<(u16, reqwest::header::HeaderMap, String), String> {
    get_with(url, &[])
}

pub fn get_with(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, reqwest::header::HeaderMap, String), String> {
    let (status, h, body) = get_bytes(url, headers)?;
    Ok((status, h, String::from_utf8_lossy(&body).into_owned()))
}

/// GET with headers; the body as raw bytes.
pub fn get_bytes(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), String> {
    let url = url.to_string();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            // No redirects and no automatic decompression: tests see what the server sent.
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_gzip()
                .build()
                .map_err(|e| e.to_string())?;
            let mut req = client.get(&url);
            for (k, v) in &headers {
                req = req.header(k, v);
            }
            let resp = req.send().await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let h = resp.headers().clone();
            let body = resp.bytes().await.map_err(|e| e.to_string())?.to_vec();
            Ok((status, h, body))
        })
    })
    .join()
    .map_err(|_| "request thread panicked".to_string())?
}

/// POST with optional bearer token; returns (status, body).
pub fn post(url: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let (url, token, body) = (url.to_string(), token.map(String::from), body.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut req = reqwest::Client::new()
                .post(&url)
                .header("content-type", "application/json")
                .body(body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap())
        })
    })
    .join()
    .unwrap()
}

pub fn json(url: &str) -> serde_json::Value {
    let (status, _, body) = blocking_get(url).unwrap();
    assert_eq!(status, 200, "GET {url} answered {status}: {body}");
    serde_json::from_str(&body).unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Opens the test's store file directly (a real SQLite file) for assertions.
pub fn db(env: &TestEnv) -> rusqlite::Connection {
    rusqlite::Connection::open(env.db()).unwrap()
}

/// Status, content type and body by normalised path and query.
type Pages = Arc<Mutex<std::collections::HashMap<String, (u16, &'static str, Vec<u8>)>>>;

/// A fake partner website or API on 127.0.0.1 serving different bodies per path and query (query
/// parameters in any order), 404 elsewhere; records every request's path and query.
#[derive(Clone)]
pub struct FakeSite {
    pub addr: SocketAddr,
    pages: Pages,
    pub hits: Arc<Mutex<Vec<String>>>,
}

fn page_key(path_and_query: &str) -> String {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    pairs.sort();
    format!("{path}?{}", pairs.join("&"))
}

impl FakeSite {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Serves `body` at `path_and_query` from now on.
    pub fn put(&self, path_and_query: &str, content_type: &'static str, body: impl Into<Vec<u8>>) {
        self.put_status(path_and_query, 200, content_type, body);
    }

    /// Answers `path_and_query` with `status` (an error page, say) from now on.
    pub fn put_status(
        &self,
        path_and_query: &str,
        status: u16,
        content_type: &'static str,
        body: impl Into<Vec<u8>>,
    ) {
        self.pages.lock().unwrap().insert(
            page_key(path_and_query),
            (status, content_type, body.into()),
        );
    }

    /// Serves a fixture file from `tests/fixtures/`, with `{base}` replaced by this site's URL.
    pub fn put_fixture(&self, path_and_query: &str, content_type: &'static str, fixture: &str) {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(fixture),
        )
        .unwrap();
        self.put(
            path_and_query,
            content_type,
            text.replace("{base}", &self.url("")),
        );
    }

    pub fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

type SiteState = (Pages, Arc<Mutex<Vec<String>>>);

async fn serve_site(State(s): State<SiteState>, uri: axum::http::Uri) -> Response<Body> {
    let pq = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    s.1.lock().unwrap().push(pq.clone());
    match s.0.lock().unwrap().get(&page_key(&pq)) {
        Some((status, ct, body)) => Response::builder()
            .status(*status)
            .header("content-type", *ct)
            .body(Body::from(body.clone()))
            .unwrap(),
        None => Response::builder()
            .status(404)
            .body(Body::from("not found"))
            .unwrap(),
    }
}

pub fn fake_site() -> FakeSite {
    let pages = Arc::new(Mutex::new(std::collections::HashMap::new()));
    let hits = Arc::new(Mutex::new(Vec::new()));
    let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let state = (pages.clone(), hits.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            let app = Router::new().fallback(get(serve_site)).with_state(state);
            let _ = axum::serve(listener, app).await;
        });
    });
    FakeSite { addr, pages, hits }
}

/// The Python interpreter the consumer tests run: `$TRIBUTARY_PYTHON` (`.ci/run` points it at the
/// virtual environment it installs the pinned consumers into), else `python3`.
pub fn python() -> String {
    std::env::var("TRIBUTARY_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether `program probe…` succeeds. Outside CI a missing tool is a loud skip (`false`); in CI
/// it fails the test, since `.ci/run` installs every tool the tests use.
pub fn tool_available(program: &str, probe: &[&str], what: &str) -> bool {
    let ok = Command::new(program)
        .args(probe)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} is required in CI (.ci/run installs it)"
        );
        eprintln!("skipping {what}: not installed (bash .ci/run installs it)");
    }
    ok
}

/// Runs a consumer command; `None` (skip) only outside CI when the tool is not installed.
pub fn consumer(
    program: &str,
    args: &[&str],
    probe: &[&str],
    what: &str,
) -> Option<Vec<serde_json::Value>> {
    if !tool_available(program, probe, what) {
        return None;
    }
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{what} failed: {}", stderr(&out));
    Some(serde_json::from_slice(&out.stdout).unwrap())
}
