//! The public listener: what it answers and how it protects itself.
//!
//! - Only GET and HEAD (and POST to an unsubscribe link); anything else is `405` with `Allow`.
//! - Pages from memory with a strong ETag and Last-Modified; `If-None-Match` (or, without
//!   it, `If-Modified-Since`) answers `304` without a body. `Vary: Accept-Language` where the
//!   language is negotiated (`?lang=en|de` wins over `Accept-Language`; German by default).
//! - Every answer carries a Content-Security-Policy that allows no script at all,
//!   `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` (an unsubscribe link
//!   must not leak to the imprint's server) and `X-Frame-Options: DENY`.
//! - A client must send a request's header within `status.header_timeout_seconds` (also the
//!   time a kept-alive connection may sit idle), and at most 16 KiB of it; an unsubscribe
//!   POST's body at most 1 KiB within the same time. At most `status.max_connections` are
//!   served at once; more wait in the kernel's accept queue. So a thousand slow clients hold
//!   a thousand cheap tasks for a few seconds each, and the next client is served.
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use jiff::Timestamp;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::render::{LANGS, context};
use super::{Resource, Status, key};
use crate::ticket::notices::{LinkOutcome, unsubscribe_by_link};

/// No script, no plugin, no framing; styles, images and forms from this site only.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   base-uri 'none'; frame-ancestors 'none'";
/// Larger heads are refused (431); hyper's minimum buffer is 8 KiB.
const MAX_HEAD: usize = 16 * 1024;
/// An unsubscribe POST carries `List-Unsubscribe=One-Click` and nothing more.
const MAX_BODY: usize = 1024;
/// How long pages may be reused without asking: short, so a new incident shows soon.
const CACHE: &str = "public, max-age=30";

/// The routes of the public site.
pub fn router(status: Arc<Status>) -> Router {
    Router::new()
        .route("/", get(page_index))
        .route("/platform/{name}", get(page_platform))
        .route("/status.json", get(neutral))
        .route("/status.css", get(neutral))
        .route("/logo", get(neutral))
        .route("/maintenance.ics", get(localized))
        .route("/feed.atom", get(localized))
        .route(
            "/unsubscribe/{link}",
            get(unsubscribe_form).post(unsubscribe_post),
        )
        .fallback(fallback)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(status)
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// `?lang=` first, then the highest-weighted of German and English in `Accept-Language`,
/// then German.
pub fn language(query: Option<&str>, headers: &HeaderMap) -> &'static str {
    if let Some(q) = query {
        for pair in q.split('&') {
            if let Some(v) = pair.strip_prefix("lang=")
                && let Some(l) = LANGS.iter().find(|l| v.eq_ignore_ascii_case(l))
            {
                return l;
            }
        }
    }
    let Some(accept) = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    else {
        return LANGS[0];
    };
    let mut best: Option<(&'static str, f32)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim();
        let primary = tag.split('-').next().unwrap_or("");
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let Some(lang) = LANGS.iter().find(|l| primary.eq_ignore_ascii_case(l)) else {
            continue;
        };
        if q > 0.0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((lang, q));
        }
    }
    best.map_or(LANGS[0], |(l, _)| l)
}

/// Whether the client's copy is current: `If-None-Match` decides when present (RFC 9110
/// §13.2.2), else `If-Modified-Since`.
fn fresh(headers: &HeaderMap, r: &Resource) -> bool {
    if let Some(inm) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        return inm
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == r.etag);
    }
    let Some(ims) = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    if ims == r.last_modified {
        return true;
    }
    jiff::fmt::strtime::parse("%a, %d %b %Y %H:%M:%S GMT", ims)
        .and_then(|t| t.to_datetime())
        .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC))
        .is_ok_and(|z| z.timestamp() >= r.modified)
}

fn serve(headers: &HeaderMap, r: &Resource, negotiated: bool) -> Response {
    let mut b = Response::builder()
        .header(header::ETAG, &r.etag)
        .header(header::LAST_MODIFIED, &r.last_modified)
        .header(header::CACHE_CONTROL, CACHE);
    if negotiated {
        b = b.header(header::VARY, "Accept-Language");
    }
    if let Some(l) = r.language {
        b = b.header(header::CONTENT_LANGUAGE, l);
    }
    let res = if fresh(headers, r) {
        b.status(StatusCode::NOT_MODIFIED).body(Body::empty())
    } else {
        b.header(header::CONTENT_TYPE, r.content_type)
            .body(Body::from(r.body.clone()))
    };
    res.unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn not_ready() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "5")],
        "Die Statusseite wird vorbereitet. / The status page is being prepared.\n",
    )
        .into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Nicht gefunden. / Not found.\n",
    )
        .into_response()
}

/// A page in the negotiated language.
fn localized_page(status: &Status, req: &Request, path: &str) -> Response {
    let lang = language(req.uri().query(), req.headers());
    let site = status.site();
    if site.public.is_none() {
        return not_ready();
    }
    match site.resources.get(&key(lang, path)) {
        Some(r) => serve(req.headers(), r, true),
        None => not_found(),
    }
}

async fn page_index(State(status): State<Arc<Status>>, req: Request) -> Response {
    localized_page(&status, &req, "/")
}

async fn page_platform(
    State(status): State<Arc<Status>>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    localized_page(&status, &req, &format!("/platform/{name}"))
}

async fn localized(State(status): State<Arc<Status>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    localized_page(&status, &req, &path)
}

async fn neutral(State(status): State<Arc<Status>>, req: Request) -> Response {
    let site = status.site();
    if site.public.is_none() {
        return not_ready();
    }
    match site.resources.get(&key("-", req.uri().path())) {
        Some(r) => serve(req.headers(), r, false),
        None => not_found(),
    }
}

/// Unknown paths: 404 for GET and HEAD, 405 for every other method.
async fn fallback(method: Method) -> Response {
    if method == Method::GET || method == Method::HEAD {
        not_found()
    } else {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
            "",
        )
            .into_response()
    }
}

/// `a***@example.org`: enough for members to recognise their address, little for others.
fn masked(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// The unsubscribe page in the negotiated language, never cached.
fn unsubscribe_page(
    status: &Status,
    lang: &str,
    code: StatusCode,
    extra: serde_json::Value,
) -> Response {
    let site = status.site();
    let empty = super::model::Public {
        schema: super::model::SCHEMA,
        updated_at: None,
        platforms: Vec::new(),
    };
    let public = site.public.as_deref().unwrap_or(&empty);
    let ctx = context(&status.config, public, lang, extra);
    match status.renderer.page(lang, "unsubscribe", ctx) {
        Ok(html) => (
            code,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                (header::CONTENT_LANGUAGE, lang),
            ],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "status page: the unsubscribe page failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The token of a signed link, if its MAC holds.
fn checked(status: &Status, link: &str) -> Option<String> {
    let keys = status.config.settings.reply.keys.as_ref()?;
    crate::verp::check_unsubscribe_link(keys, link, Timestamp::now())
}

fn invalid(status: &Status, lang: &str, link: &str) -> Response {
    tracing::warn!(
        link,
        "one-click unsubscribe: a link whose signature does not hold"
    );
    unsubscribe_page(
        status,
        lang,
        StatusCode::NOT_FOUND,
        serde_json::json!({ "step": "invalid" }),
    )
}

/// GET: the confirmation form; unsubscribes nothing (link checkers and mail scanners open
/// links).
async fn unsubscribe_form(
    State(status): State<Arc<Status>>,
    Path(link): Path<String>,
    req: Request,
) -> Response {
    let lang = language(req.uri().query(), req.headers());
    let Some(token) = checked(&status, &link) else {
        return invalid(&status, lang, &link);
    };
    let message_id = crate::verp::Token::Unsubscribe(token)
        .message_id(&status.config.settings.outbox.message_id_domain);
    let sent = match crate::store::notices::sent_notice(&status.store, &message_id).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "one-click unsubscribe: reading the notice failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let Some((list, recipient)) = sent else {
        return unsubscribe_page(
            &status,
            lang,
            StatusCode::NOT_FOUND,
            serde_json::json!({ "step": "unknown" }),
        );
    };
    let path = format!(
        "{}/unsubscribe/{link}",
        super::render::base_path(&status.config)
    );
    unsubscribe_page(
        &status,
        lang,
        StatusCode::OK,
        serde_json::json!({ "step": "confirm", "list": list, "address": masked(&recipient), "path": path }),
    )
}

/// POST (RFC 8058 one-click, or the form): unsubscribes, audited.
async fn unsubscribe_post(
    State(status): State<Arc<Status>>,
    Path(link): Path<String>,
    req: Request,
) -> Response {
    let lang = language(req.uri().query(), req.headers());
    let Some(token) = checked(&status, &link) else {
        return invalid(&status, lang, &link);
    };
    let limit = status.config.settings.status.header_timeout;
    let body = tokio::time::timeout(limit, axum::body::to_bytes(req.into_body(), MAX_BODY)).await;
    let body: Bytes = match body {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        Err(_) => return StatusCode::REQUEST_TIMEOUT.into_response(),
    };
    // RFC 8058 §3.1: the body names the one-click action; anything else is no such request.
    let one_click = String::from_utf8_lossy(&body)
        .split('&')
        .any(|p| p.trim() == "List-Unsubscribe=One-Click");
    if !one_click {
        return (
            StatusCode::BAD_REQUEST,
            "expected List-Unsubscribe=One-Click\n",
        )
            .into_response();
    }
    match unsubscribe_by_link(&status.store, &status.config, &token, Timestamp::now()).await {
        Ok(LinkOutcome::Unsubscribed { list }) | Ok(LinkOutcome::NoMember { list }) => {
            unsubscribe_page(
                &status,
                lang,
                StatusCode::OK,
                serde_json::json!({ "step": "done", "list": list }),
            )
        }
        Ok(LinkOutcome::Refused { list }) => unsubscribe_page(
            &status,
            lang,
            StatusCode::FORBIDDEN,
            serde_json::json!({ "step": "refused", "list": list }),
        ),
        Ok(LinkOutcome::Unknown) => unsubscribe_page(
            &status,
            lang,
            StatusCode::NOT_FOUND,
            serde_json::json!({ "step": "unknown" }),
        ),
        Err(e) => {
            tracing::error!(error = %e, "one-click unsubscribe failed; the member may try again");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// Accepts and serves connections until `stop`, each with the header timeout and size
/// limit, at most `max_connections` at once; then lets the requests in flight finish
/// (bounded by the daemon's shutdown deadline).
pub async fn serve_connections(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    max_connections: u32,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(max_connections as usize));
    let tracker = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            () = stop.cancelled() => break,
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of file descriptors, mostly: wait rather than spin.
                    tracing::warn!(error = %e, "status page: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let stop = stop.clone();
        tracker.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(MAX_HEAD)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                served = conn.as_mut() => {
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "status page: connection ended");
                    }
                }
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    tracker.close();
    tracker.wait().await;
}
