//! The public status page (issue 18): a listener of its own (`[status] listen`), apart from
//! the internal `/metrics` one, serving only what is public — per platform its state now,
//! running and upcoming maintenance, incidents of the last 90 days and availability per
//! month — as HTML (German, English), `/status.json`, `/maintenance.ics` and `/feed.atom`,
//! and RFC 8058 one-click unsubscribing for the lists that offer it.
//!
//! Rendered when the data changes, served from memory: a task reads a fingerprint of the
//! tables shown ([`crate::store::status_page::fingerprint`], five aggregates) every
//! `status.refresh_seconds` and renders every page and feed anew when it differs, when a
//! maintenance starts or ends, and once a minute (the running month's availability moves
//! while an outage lasts). A page whose bytes did not change keeps its ETag and Last-Modified.
//! The rendered site is one `Arc` swapped under a lock held only to clone it, so requests
//! never wait for rendering or for the database. Polling rather than a signal from the
//! commands: `maintenance` and `incident` run as processes of their own, on other
//! instances too, and the database is the one thing they share.
//!
//! Privacy by construction: [`model`] has no field for a ticket, a member, an address, a
//! list or a note, and only the public part of an incident's timeline (what its notices
//! said; never who wrote it, nor the reason of a class raise).
pub mod http;
pub mod model;
pub mod render;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use jiff::Timestamp;

use crate::config::Config;
use crate::store::{Store, StoreError};
use model::Public;
use render::{LANGS, RenderError, Renderer};

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Render(#[from] RenderError),
    #[error("the status page's logo {path}: {source}")]
    Logo {
        path: String,
        source: std::io::Error,
    },
}

/// One page or feed as served: its bytes and what the caching headers say about them.
#[derive(Debug)]
pub struct Resource {
    pub body: Bytes,
    pub content_type: &'static str,
    /// A strong validator: a hash of the bytes.
    pub etag: String,
    /// When these bytes were first rendered (IMF-fixdate) and as an instant.
    pub last_modified: String,
    pub modified: Timestamp,
    /// `Content-Language` of a page in one language.
    pub language: Option<&'static str>,
}

impl Resource {
    fn new(
        body: Vec<u8>,
        content_type: &'static str,
        language: Option<&'static str>,
        now: Timestamp,
    ) -> Resource {
        use sha2::Digest;
        let hash = sha2::Sha256::digest(&body);
        let etag = format!(
            "\"{}\"",
            hash[..12]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        // Seconds only: HTTP dates have no fractions, and If-Modified-Since compares them.
        let modified = Timestamp::from_second(now.as_second()).unwrap_or(now);
        Resource {
            body: Bytes::from(body),
            content_type,
            etag,
            last_modified: http_date(modified),
            modified,
            language,
        }
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110's IMF-fixdate).
pub fn http_date(t: Timestamp) -> String {
    t.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Every page and feed, by `<lang> <path>` (`de /`, `en /platform/portal`, `- /status.json`).
#[derive(Debug, Default)]
pub struct Site {
    pub resources: HashMap<String, Arc<Resource>>,
    /// The status the pages show, for the unsubscribe pages' layout.
    pub public: Option<Arc<Public>>,
}

pub fn key(lang: &str, path: &str) -> String {
    format!("{lang} {path}")
}

/// What the listener shares: the site as last rendered and what is needed to act.
pub struct Status {
    pub config: Arc<Config>,
    pub store: Store,
    pub renderer: Renderer,
    site: RwLock<Arc<Site>>,
}

impl Status {
    pub fn new(config: Arc<Config>, store: Store) -> Result<Status, StatusError> {
        let renderer = Renderer::new(&config)?;
        Ok(Status {
            config,
            store,
            renderer,
            site: RwLock::new(Arc::new(Site::default())),
        })
    }

    /// The site as last rendered (empty before the first rendering).
    pub fn site(&self) -> Arc<Site> {
        match self.site.read() {
            Ok(s) => Arc::clone(&s),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Renders every page and feed from the store at `now` and swaps them in; a resource
    /// whose bytes are unchanged keeps its validators. The next instant at which the status
    /// changes on its own (a maintenance starts or ends).
    pub async fn render(&self, now: Timestamp) -> Result<Option<Timestamp>, StatusError> {
        let config = &self.config;
        let inputs = model::load(&self.store, config, now).await?;
        let (public, next) = model::build(config, &inputs, now);
        let mut fresh: Vec<(String, Vec<u8>, &'static str, Option<&'static str>)> = Vec::new();
        fresh.push((
            key("-", "/status.json"),
            render::json(&public)?,
            "application/json",
            None,
        ));
        fresh.push((
            key("-", "/status.css"),
            self.renderer.stylesheet(config)?.into_bytes(),
            "text/css; charset=utf-8",
            None,
        ));
        if let Some(path) = &config.settings.status.logo_file {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|source| StatusError::Logo {
                    path: path.display().to_string(),
                    source,
                })?;
            let ct = crate::config::status_logo_type(path).unwrap_or("application/octet-stream");
            fresh.push((key("-", "/logo"), bytes, ct, None));
        }
        for lang in LANGS {
            let ctx = render::context(config, &public, lang, serde_json::json!({}));
            fresh.push((
                key(lang, "/"),
                self.renderer.page(lang, "index", ctx)?.into_bytes(),
                "text/html; charset=utf-8",
                Some(lang),
            ));
            for p in &public.platforms {
                let ctx = render::context(config, &public, lang, serde_json::json!({ "p": p }));
                fresh.push((
                    key(lang, &format!("/platform/{}", p.name)),
                    self.renderer.page(lang, "platform", ctx)?.into_bytes(),
                    "text/html; charset=utf-8",
                    Some(lang),
                ));
            }
            fresh.push((
                key(lang, "/maintenance.ics"),
                render::ics(config, &inputs.maintenances, lang)?,
                "text/calendar; charset=utf-8",
                Some(lang),
            ));
            fresh.push((
                key(lang, "/feed.atom"),
                render::atom(config, &public, &inputs.maintenances, lang),
                "application/atom+xml; charset=utf-8",
                Some(lang),
            ));
        }
        let old = self.site();
        let mut resources = HashMap::with_capacity(fresh.len());
        let mut changed = 0;
        for (k, body, ct, language) in fresh {
            let kept = old
                .resources
                .get(&k)
                .filter(|r| r.body.as_ref() == body.as_slice())
                .cloned();
            let r = kept.unwrap_or_else(|| {
                changed += 1;
                Arc::new(Resource::new(body, ct, language, now))
            });
            resources.insert(k, r);
        }
        if changed > 0 {
            tracing::info!(changed, pages = resources.len(), "status page rendered");
        }
        let site = Arc::new(Site {
            resources,
            public: Some(Arc::new(public)),
        });
        match self.site.write() {
            Ok(mut s) => *s = site,
            Err(poisoned) => *poisoned.into_inner() = site,
        }
        Ok(next)
    }

    /// Keeps the site current until `stop`: reads the fingerprint every refresh interval and
    /// renders when it changed, at the next boundary, and at least once a minute.
    pub async fn keep_current(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        const AT_LEAST: Duration = Duration::from_secs(60);
        let every = self.config.settings.status.refresh;
        let mut last = None;
        let mut due = Instant::now();
        let mut boundary: Option<Timestamp> = None;
        loop {
            let now = Timestamp::now();
            match crate::store::status_page::fingerprint(&self.store).await {
                Ok(fp) => {
                    let moved = last.as_ref() != Some(&fp);
                    let crossed = boundary.is_some_and(|b| b <= now);
                    if moved || crossed || Instant::now() >= due {
                        match self.render(now).await {
                            Ok(next) => {
                                last = Some(fp);
                                boundary = next;
                                due = Instant::now() + AT_LEAST;
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "status page: rendering failed; the last rendering stays");
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "status page: reading the store failed"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}
