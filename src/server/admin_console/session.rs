//! Console sign-in: the admin token, entered once on a form, is exchanged for a session cookie
//! (HttpOnly, SameSite=Strict, Secure over https, expiring). Each session carries a CSRF token every
//! state-changing form must send back; failed sign-ins are rate limited per client and logged.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use maud::html;
use serde::Deserialize;

use super::{page, Console, BASE};
use crate::server::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "tributary_admin";

/// Sessions held at once; past this the oldest is dropped, so no client can grow memory by signing
/// in over and over.
const MAX_SESSIONS: usize = 256;

/// A signed-in admin.
#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
    expires: Instant,
    created: Instant,
}

/// Sessions in memory (a restart signs everyone out) and the failed-sign-in limiter.
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
    /// Wrong tokens counted per client (governor), and the clients over their limit until when:
    /// a locked-out client is refused before its token is even compared, so a guess made while
    /// locked out, right or wrong, tells it nothing.
    failures: DefaultKeyedRateLimiter<IpAddr>,
    locked: Mutex<HashMap<IpAddr, Instant>>,
}

impl Default for Sessions {
    fn default() -> Self {
        // Five wrong tokens per client, then one more a minute: enough for typos, far too slow
        // to guess a token.
        let quota = Quota::per_minute(NonZeroU32::MIN)
            .allow_burst(NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN));
        Sessions {
            live: Mutex::new(HashMap::new()),
            failures: RateLimiter::keyed(quota),
            locked: Mutex::new(HashMap::new()),
        }
    }
}

/// How long a client that used up its failed sign-ins is refused.
const LOCKOUT: Duration = Duration::from_secs(60);

/// Clients remembered at once by the limiter before it forgets those quiet again.
const MAX_CLIENTS: usize = 10_000;

/// 32 random bytes as hex, from the operating system's generator.
fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}

impl Sessions {
    fn create(&self, lifetime: Duration) -> Option<(String, Session)> {
        let id = random_token()?;
        let now = Instant::now();
        let session = Session {
            csrf: random_token()?,
            expires: now + lifetime,
            created: now,
        };
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS {
            if let Some(oldest) = live
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone())
            {
                live.remove(&oldest);
            }
        }
        live.insert(id.clone(), session.clone());
        Some((id, session))
    }

    fn locked_out(&self, ip: IpAddr) -> bool {
        let mut locked = self.locked.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match locked.get(&ip) {
            Some(until) if *until > now => true,
            Some(_) => {
                locked.remove(&ip);
                false
            }
            None => false,
        }
    }

    /// Counts a wrong token; true when the client has now used up its attempts.
    fn failed(&self, ip: IpAddr) -> bool {
        if self.failures.len() > MAX_CLIENTS {
            self.failures.retain_recent();
        }
        if self.failures.check_key(&ip).is_ok() {
            return false;
        }
        let mut locked = self.locked.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if locked.len() >= MAX_CLIENTS {
            locked.retain(|_, until| *until > now);
        }
        if locked.len() < MAX_CLIENTS {
            locked.insert(ip, now + LOCKOUT);
        }
        true
    }

    /// The live session a cookie names, if any.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        match live.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                live.remove(id);
                None
            }
            None => None,
        }
    }

    fn end(&self, id: &str) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// The session id a request's `Cookie` header carries.
fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
}

/// Whether the browser reached us over https: the public URL says so, or the proxy in front does.
fn over_https(state: &AppState, headers: &HeaderMap) -> bool {
    state.config().server.base_url.scheme() == "https"
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

fn set_cookie(value: &str, max_age: u64, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path={BASE}; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The client's address, when the server recorded it on the request.
pub struct Client(Option<SocketAddr>);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Client(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// A signed-in request: the extractor answers a page-level refusal when there is no live session.
pub struct SignedIn {
    pub id: String,
    pub session: Session,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, Response> {
        let console = parts.extensions.get::<std::sync::Arc<Console>>().cloned();
        let found = console.and_then(|c| {
            let id = cookie_value(&parts.headers)?;
            c.sessions.get(&id).map(|session| SignedIn { id, session })
        });
        match found {
            Some(s) => Ok(s),
            // A page asked for: go and sign in, then come back. A form sent: refuse, so nothing is
            // applied on a stale tab without the admin seeing why.
            None if parts.method == axum::http::Method::GET => {
                let back = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or(BASE);
                let to = format!(
                    "{BASE}/sign-in?next={}",
                    url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
                );
                Err((StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response())
            }
            None => Err(refusal(
                StatusCode::UNAUTHORIZED,
                "You are not signed in (or your session has expired). Nothing was changed.",
            )),
        }
    }
}

impl SignedIn {
    /// Checks a form's CSRF token against the session's, in constant time.
    pub fn check_csrf(&self, given: &str) -> Result<(), CsrfRefused> {
        if constant_time_eq::constant_time_eq(given.as_bytes(), self.session.csrf.as_bytes()) {
            Ok(())
        } else {
            tracing::warn!("admin console form refused: missing or wrong CSRF token");
            Err(CsrfRefused)
        }
    }
}

/// A form whose CSRF token is not its session's.
pub struct CsrfRefused;

impl IntoResponse for CsrfRefused {
    fn into_response(self) -> Response {
        refusal(
            StatusCode::FORBIDDEN,
            "This form is out of date or did not come from this console. Nothing was changed; \
             go back, reload the page and try again.",
        )
    }
}

/// A plain page saying why a request was refused.
pub fn refusal(status: StatusCode, why: &str) -> Response {
    let body = page(
        "Not done",
        None,
        html! {
            h1 { "Not done" }
            p role="alert" { (why) }
            p { a href={ (BASE) "/sign-in" } { "Sign in" } }
        },
    );
    (status, body).into_response()
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only a path inside the console may be returned to: never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with(BASE) && !n.starts_with("//") && !n.contains('\\') => {
            n.to_string()
        }
        _ => format!("{BASE}/review"),
    }
}

fn sign_in_page(next: &str, error: Option<&str>) -> super::Page {
    page(
        "Sign in",
        None,
        html! {
            h1 { "Sign in to the admin console" }
            @if let Some(e) = error {
                p.error role="alert" #sign-in-error { (e) }
            }
            form method="post" action={ (BASE) "/sign-in" } {
                input type="hidden" name="next" value=(next);
                p {
                    label for="token" { "Admin token" }
                    br;
                    input #token type="password" name="token" autocomplete="current-password" required autofocus;
                }
                p { button type="submit" { "Sign in" } }
            }
            p.hint { "The token is the one the bearer-token admin API uses (admin.token_env or admin.token_file)." }
        },
    )
}

/// `GET /admin/console/sign-in`.
pub async fn sign_in_form(axum::extract::Query(q): axum::extract::Query<NextQuery>) -> Response {
    sign_in_page(&safe_next(q.next.as_deref()), None).into_response()
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    token: String,
    next: Option<String>,
}

/// `POST /admin/console/sign-in`: a right token starts a session; a wrong one is logged with the
/// client's address and counted against it.
pub async fn sign_in(
    State(state): State<AppState>,
    Extension(console): Extension<std::sync::Arc<Console>>,
    Client(client): Client,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let Some(expected) = state.admin_token.as_deref() else {
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "No admin token is configured (admin.token_env or admin.token_file): the console is closed.",
        );
    };
    let ip = client.map(|c| c.ip()).unwrap_or(IpAddr::from([0, 0, 0, 0]));
    // Checked before the token, so a client over its limit learns nothing from its guesses.
    if console.sessions.locked_out(ip) {
        tracing::warn!(client = ?client, "admin console sign-in refused: too many failed attempts");
        return too_many(&next);
    }
    let ok = constant_time_eq::constant_time_eq(form.token.trim().as_bytes(), expected.as_bytes());
    if !ok {
        tracing::warn!(client = ?client, "admin console sign-in refused: wrong token");
        if console.sessions.failed(ip) {
            return too_many(&next);
        }
        return (
            StatusCode::UNAUTHORIZED,
            sign_in_page(&next, Some("That token is not right.")),
        )
            .into_response();
    }
    let lifetime = state.config().admin.session_lifetime;
    let Some((id, _)) = console.sessions.create(lifetime) else {
        return refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "No random numbers to start a session with.",
        );
    };
    tracing::info!(client = ?client, "admin console sign-in");
    let cookie = set_cookie(&id, lifetime.as_secs(), over_https(&state, &headers));
    (
        StatusCode::SEE_OTHER,
        [(header::SET_COOKIE, cookie), (header::LOCATION, next)],
    )
        .into_response()
}

fn too_many(next: &str) -> Response {
    let mut resp = (
        StatusCode::TOO_MANY_REQUESTS,
        sign_in_page(
            next,
            Some("Too many failed sign-ins from this address. Wait a minute and try again."),
        ),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
    resp
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /admin/console/sign-out`: ends the session and clears the cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    Extension(console): Extension<std::sync::Arc<Console>>,
    signed: SignedIn,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r.into_response();
    }
    console.sessions.end(&signed.id);
    let cookie = set_cookie("", 0, over_https(&state, &headers));
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, format!("{BASE}/sign-in")),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_end() {
        let s = Sessions::default();
        let (id, session) = s.create(Duration::from_secs(60)).unwrap();
        assert_eq!(s.get(&id).unwrap().csrf, session.csrf);
        assert_ne!(id, session.csrf);
        s.end(&id);
        assert!(s.get(&id).is_none());
        let (id, _) = s.create(Duration::ZERO).unwrap();
        assert!(s.get(&id).is_none(), "an expired session is gone");
    }

    #[test]
    fn sessions_are_bounded() {
        let s = Sessions::default();
        let first = s.create(Duration::from_secs(60)).unwrap().0;
        for _ in 0..MAX_SESSIONS {
            s.create(Duration::from_secs(60)).unwrap();
        }
        assert!(s.get(&first).is_none(), "the oldest made room");
        assert!(s.live.lock().unwrap().len() <= MAX_SESSIONS);
    }

    #[test]
    fn failed_sign_ins_lock_the_client_out() {
        let s = Sessions::default();
        let (ip, other) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        for _ in 0..5 {
            assert!(!s.failed(ip));
            assert!(!s.locked_out(ip));
        }
        assert!(s.failed(ip), "the sixth wrong token in a minute");
        assert!(s.locked_out(ip));
        assert!(!s.locked_out(other), "other clients are not affected");
    }

    #[test]
    fn only_console_paths_are_returned_to() {
        assert_eq!(
            safe_next(Some("https://evil.example/")),
            "/admin/console/review"
        );
        assert_eq!(safe_next(Some("//evil.example/")), "/admin/console/review");
        assert_eq!(
            safe_next(Some("/admin/console/partners")),
            "/admin/console/partners"
        );
    }

    #[test]
    fn reads_the_session_cookie_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; tributary_admin=abc ; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_value(&h).as_deref(), Some("abc"));
    }
}
