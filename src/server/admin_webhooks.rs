//! Admin routes for webhook subscribers under `/admin/webhooks`: list them with how far behind
//! each is, register and remove subscribers (configured ones come and go with the config), and
//! take a dead-lettered subscriber back into delivery.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{blocking, ApiError, AppState};
use crate::config::PartnerId;
use crate::store::webhooks::{self, NewSubscriber, Refused, Subscriber};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    id: String,
    url: String,
    secret: String,
    kinds: Option<Vec<String>>,
    #[serde(default)]
    partners: Vec<String>,
    from: Option<String>,
}

fn with_lag(subs: Vec<Subscriber>, head: i64) -> serde_json::Value {
    let list: Vec<serde_json::Value> = subs
        .into_iter()
        .map(|s| {
            let behind = (head - s.acknowledged).max(0);
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("behind".into(), behind.into());
            }
            v
        })
        .collect();
    serde_json::json!({ "head": head, "subscribers": list })
}

/// `GET /admin/webhooks`
pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let st = state.clone();
    let (subs, head) = blocking(move || {
        let conn = st.store.reader()?;
        Ok((webhooks::list(&conn)?, webhooks::head(&conn)?))
    })
    .await?;
    Ok(Json(with_lag(subs, head)).into_response())
}

fn checked(req: Registration, allow_private: bool) -> Result<NewSubscriber, ApiError> {
    let id = PartnerId::parse(&req.id)
        .map_err(|e| ApiError::bad_param("id", e))?
        .as_str()
        .to_string();
    let url =
        crate::config::webhook_target_url(&req.url).map_err(|e| ApiError::bad_param("url", e))?;
    crate::webhooks::target::check_url(&url, allow_private)
        .map_err(|e| ApiError::bad_param("url", e))?;
    if req.secret.trim().len() < 16 {
        return Err(ApiError::bad_param(
            "secret",
            "must be at least 16 characters: every delivery is signed with it",
        ));
    }
    let mut problems = Vec::new();
    let kinds = crate::config::webhook_kinds(req.kinds.as_deref(), "kinds", &mut problems);
    if let Some(p) = problems.first() {
        return Err(ApiError::bad_param("kinds", &p.message));
    }
    let from_now = match req.from.as_deref() {
        None | Some("now") => true,
        Some("beginning") => false,
        Some(other) => {
            return Err(ApiError::bad_param(
                "from",
                format!("{other:?} must be \"now\" or \"beginning\""),
            ))
        }
    };
    Ok(NewSubscriber {
        id,
        url: url.to_string(),
        kinds,
        partners: req.partners,
        from_now,
        secret: Some(req.secret.trim().to_string()),
    })
}

/// `POST /admin/webhooks` — `{"id", "url", "secret", "kinds"?, "partners"?, "from"?}`.
pub async fn register(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: Registration =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_param("body", e))?;
    let new = checked(req, state.config().webhooks.allow_private_targets)?;
    let st = state.clone();
    let now = crate::store::timestamp(chrono::Utc::now());
    let id = new.id.clone();
    let outcome = blocking(move || {
        let conn = st.store.writer();
        match webhooks::register(&conn, &new, &now)? {
            Ok(()) => Ok(Ok(webhooks::get(&conn, &new.id)?)),
            Err(r) => Ok(Err(r)),
        }
    })
    .await?;
    match outcome {
        Ok(Some(s)) => Ok((StatusCode::CREATED, Json(s)).into_response()),
        Ok(None) => Err(ApiError::internal(
            "the subscriber vanished after registration",
        )),
        Err(_) => Err(ApiError {
            status: StatusCode::CONFLICT,
            code: "exists",
            message: format!("id: a subscriber {id:?} already exists"),
        }),
    }
}

/// `DELETE /admin/webhooks/{id}`
pub async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let st = state.clone();
    let key = id.clone();
    let outcome = blocking(move || Ok(webhooks::remove(&st.store.writer(), &key)?)).await?;
    match outcome {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(Refused::Configured) => Err(ApiError {
            status: StatusCode::CONFLICT,
            code: "configured",
            message: format!(
                "{id} is configured in [[webhooks.subscribers]]; remove it there and reload"
            ),
        }),
        Err(_) => Err(ApiError::not_found(format!("no webhook subscriber {id}"))),
    }
}

/// `POST /admin/webhooks/{id}/retry` — a dead-lettered subscriber resumes from the change it
/// last acknowledged.
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let st = state.clone();
    let key = id.clone();
    let found = blocking(move || {
        let conn = st.store.writer();
        if webhooks::retry(&conn, &key)? {
            Ok(webhooks::get(&conn, &key)?)
        } else {
            Ok(None)
        }
    })
    .await?;
    match found {
        Some(s) => Ok(Json(s).into_response()),
        None => Err(ApiError::not_found(format!("no webhook subscriber {id}"))),
    }
}
