use super::convert;
use crate::auth::Owner;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use stasis_store::ListQuery;
use stasis_types::state::PublicState;
use stasis_types::wire::{ListedSandbox, Metadata};
use stasis_types::SandboxState;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// What the SDKs put in the query: `state` repeated or comma-separated (JS and Python differ),
/// `metadata` as a URL-encoded `k=v&k2=v2` string, `limit`, `nextToken`.
struct Params {
    states: Vec<SandboxState>,
    metadata: Metadata,
    limit: u32,
    next_token: Option<String>,
}

fn internal_states(public: PublicState) -> &'static [SandboxState] {
    match public {
        PublicState::Running => &[SandboxState::Creating, SandboxState::Running, SandboxState::Resuming],
        PublicState::Paused => &[SandboxState::Pausing, SandboxState::Paused],
    }
}

fn parse(raw: Option<&str>, default_states: &[PublicState]) -> Result<Params, ApiError> {
    let mut publics = Vec::new();
    let mut p = Params { states: vec![], metadata: Metadata::new(), limit: DEFAULT_LIMIT, next_token: None };
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "state" => {
                for s in v.split(',').filter(|s| !s.is_empty()) {
                    publics.push(s.parse::<PublicState>().map_err(ApiError::BadRequest)?);
                }
            }
            "metadata" => {
                // Both SDKs percent-encode each key and value before building the string.
                for (mk, mv) in form_urlencoded::parse(v.as_bytes()) {
                    p.metadata.insert(unquote(&mk)?, unquote(&mv)?);
                }
            }
            "limit" => {
                p.limit = v.parse().ok().filter(|l| (1..=MAX_LIMIT).contains(l)).ok_or_else(|| {
                    ApiError::BadRequest(format!("limit must be a whole number from 1 to {MAX_LIMIT}"))
                })?;
            }
            "nextToken" | "next_token" => p.next_token = Some(v.into_owned()).filter(|t| !t.is_empty()),
            _ => {}
        }
    }
    if publics.is_empty() {
        publics.extend_from_slice(default_states);
    }
    publics.dedup();
    p.states = publics.into_iter().flat_map(|s| internal_states(s).iter().copied()).collect();
    Ok(p)
}

fn unquote(s: &str) -> Result<String, ApiError> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ApiError::BadRequest(format!("metadata {s:?} is not UTF-8 once decoded")))
}

/// `GET /v2/sandboxes`: running and paused sandboxes, filtered by `state` and `metadata`,
/// paged by `limit` / `nextToken` with the next token in the `x-next-token` header.
#[utoipa::path(get, path = "/v2/sandboxes",
    params(("state" = Option<String>, Query), ("metadata" = Option<String>, Query), ("limit" = Option<u32>, Query), ("nextToken" = Option<String>, Query)),
    responses((status = 200, body = Vec<ListedSandbox>), (status = 400, body = stasis_types::wire::ErrorBody)))]
pub async fn list_v2(State(state): State<AppState>, owner: Owner, RawQuery(raw): RawQuery) -> Result<(HeaderMap, axum::Json<Vec<ListedSandbox>>), ApiError> {
    let p = parse(raw.as_deref(), &[PublicState::Running, PublicState::Paused])?;
    let page = state
        .lifecycle
        .list(&owner.0, ListQuery { owner: None, states: p.states, metadata: p.metadata, limit: p.limit, next_token: p.next_token })
        .await?;
    let mut headers = HeaderMap::new();
    if let Some(token) = page.next_token {
        headers.insert("x-next-token", HeaderValue::from_str(&token).map_err(|_| ApiError::Internal("unprintable page token".into()))?);
    }
    Ok((headers, axum::Json(page.items.iter().map(convert::listed).collect())))
}

/// `GET /sandboxes` (legacy): every running sandbox, filtered by `metadata`.
#[utoipa::path(get, path = "/sandboxes", params(("metadata" = Option<String>, Query)), responses((status = 200, body = Vec<ListedSandbox>)))]
pub async fn list_running(State(state): State<AppState>, owner: Owner, RawQuery(raw): RawQuery) -> Result<axum::Json<Vec<ListedSandbox>>, ApiError> {
    let p = parse(raw.as_deref(), &[PublicState::Running])?;
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let q = ListQuery { owner: None, states: p.states.clone(), metadata: p.metadata.clone(), limit: MAX_LIMIT, next_token: token };
        let page = state.lifecycle.list(&owner.0, q).await?;
        out.extend(page.items.iter().map(convert::listed));
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(axum::Json(out)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sdk_query_styles_parse() {
        let p = parse(Some("state=paused&state=running&limit=3"), &[]).unwrap();
        assert!(p.states.contains(&SandboxState::Paused) && p.states.contains(&SandboxState::Running));
        let p = parse(Some("state=paused%2Crunning&metadata=a%3D1%26b%3D2&nextToken=xyz"), &[]).unwrap();
        // What the SDKs send for {"label": "a b&c=d/é?%"}: quoted, form-encoded, then URL-encoded.
        let q = parse(Some("metadata=label%3Da%2520b%2526c%253Dd%252F%25C3%25A9%253F%2525"), &[]).unwrap();
        assert_eq!(q.metadata.get("label").map(String::as_str), Some("a b&c=d/é?%"));
        assert!(p.states.contains(&SandboxState::Paused) && p.states.contains(&SandboxState::Running));
        assert_eq!(p.metadata.get("a").map(String::as_str), Some("1"));
        assert_eq!(p.metadata.get("b").map(String::as_str), Some("2"));
        assert_eq!(p.next_token.as_deref(), Some("xyz"));
        let p = parse(None, &[PublicState::Paused]).unwrap();
        assert_eq!(p.states, vec![SandboxState::Pausing, SandboxState::Paused]);
    }

    #[test]
    fn bad_queries_are_400() {
        assert!(parse(Some("state=gone"), &[]).is_err());
        assert!(parse(Some("limit=0"), &[]).is_err());
        assert!(parse(Some("limit=-3"), &[]).is_err());
        assert!(parse(Some("limit=100000"), &[]).is_err());
    }
}
