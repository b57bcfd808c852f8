//! The daemon, `poststelle run`: one task per mailbox, the SLA escalation loop, the outbox
//! sender and the HTTP listener, all on one cancellation token. On a stop signal the mailbox
//! tasks finish the batch in flight and stop fetching, the sender finishes the mail it is
//! sending, and the process exits within the configured deadline.
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use sd_notify::NotifyState;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, MailboxKind};
use crate::diag::{Problem, Wanted};
use crate::metrics::Metrics;
use crate::outbox::sender::{Mailer, Outcome, Sender, SetupError, Watch};
use crate::source::{self, Ctx};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Mailer(#[from] SetupError),
    #[error("{0}")]
    Lock(#[from] crate::store::LockError),
    #[error(transparent)]
    Problem(#[from] Problem),
    #[error("{0}")]
    Status(#[from] crate::status::StatusError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// Runs until `stop` resolves (SIGTERM/SIGINT in the binary), then shuts down gracefully.
pub async fn run(
    config: Arc<Config>,
    store: Store,
    stop: impl Future<Output = ()>,
) -> Result<(), AppError> {
    // On SQLite the lock file makes this the only instance: no lease rows, no renewals.
    let lock = store.single_instance_lock()?;
    let settings = &config.settings;
    take_over_dead(&store, settings.instance_id).await?;
    let metrics = Arc::new(Metrics::new());
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let sender_wake = Arc::new(Notify::new());
    let sla_wake = Arc::new(Notify::new());
    let ctx = Arc::new(Ctx {
        store: store.clone(),
        config: config.clone(),
        metrics: metrics.clone(),
        holder: crate::holder::this_process(settings.instance_id),
        exclusive: lock.is_some(),
        sender_wake: sender_wake.clone(),
        sla_wake: sla_wake.clone(),
        parse_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    });

    // Announces this instance while it lives, so that instances share the mailboxes.
    if !ctx.exclusive {
        let instance_lease = format!("instance:{}", ctx.holder);
        store
            .acquire_lease(&instance_lease, &ctx.holder, settings.daemon.lease)
            .await?;
        tracker.spawn(heartbeat(ctx.clone(), instance_lease, cancel.clone()));
    }
    for mb in &settings.mailboxes {
        // Created before READY, so that a new user finds new/ to drop mail into.
        if let MailboxKind::Maildir { path } = &mb.kind {
            let dir = settings.data_dir.join(path);
            source::maildir::ensure(&dir).map_err(|e| {
                Problem::at_path(
                    &format!("create the Maildir of mailbox \"{}\" at", mb.name),
                    &dir,
                    Wanted::Directory,
                    &e,
                )
            })?;
        }
        tracker.spawn(source::run_mailbox(ctx.clone(), mb.clone(), cancel.clone()));
    }
    tracker.spawn(crate::jobs::escalation::run(
        store.clone(),
        config.clone(),
        Arc::new(crate::jobs::escalation::SystemClock),
        sla_wake,
        sender_wake.clone(),
        cancel.clone().cancelled_owned(),
    ));
    tracker.spawn(crate::jobs::status::run(
        store.clone(),
        config.clone(),
        sender_wake.clone(),
        cancel.clone().cancelled_owned(),
    ));
    tracker.spawn(maintenance_notices(
        store.clone(),
        config.clone(),
        sender_wake.clone(),
        cancel.clone(),
    ));
    // Returns at once when the configuration deletes nothing.
    tracker.spawn(crate::jobs::retention::run_daily(
        store.clone(),
        config.clone(),
        cancel.clone(),
    ));
    let mailer = Mailer::from_settings(&settings.outbox, &settings.data_dir)?;
    tracker.spawn(send_loop(
        store.clone(),
        config.clone(),
        mailer,
        metrics.clone(),
        sender_wake,
        cancel.clone(),
    ));
    if let Some(addr) = settings.daemon.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| AppError::Io {
                what: format!("listening on {addr} (daemon.metrics_listen)"),
                source,
            })?;
        tracing::info!(%addr, "serving /metrics and /healthz");
        let app = axum::Router::new()
            .route("/metrics", get(serve_metrics))
            .route("/healthz", get(serve_health))
            .with_state((store.clone(), metrics.clone()));
        let token = cancel.clone();
        tracker.spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(token.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "HTTP listener failed");
            }
        });
    }
    if let Some(addr) = settings.status.listen {
        serve_status(&config, &store, addr, &tracker, &cancel).await?;
    }
    tracker.close();
    tracing::info!(
        holder = %ctx.holder,
        mailboxes = settings.mailboxes.len(),
        data_dir = %settings.data_dir.display(),
        "poststelle running"
    );
    notify(&[
        NotifyState::Ready,
        NotifyState::Status("watching mailboxes"),
    ]);

    // The main loop: pings systemd's watchdog while the tasks are alive, until the stop signal.
    let watchdog = sd_notify::watchdog_enabled().map(|d| d / 2);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(watchdog.unwrap_or(Duration::from_secs(3600))) => {
                if watchdog.is_some() && !tracker.is_empty() {
                    notify(&[NotifyState::Watchdog]);
                }
            }
        }
    }

    let deadline = settings.daemon.shutdown_timeout;
    tracing::info!(
        deadline_s = deadline.as_secs(),
        "stopping: finishing the batch in flight"
    );
    notify(&[NotifyState::Stopping]);
    cancel.cancel();
    if tokio::time::timeout(deadline, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            deadline_s = deadline.as_secs(),
            "tasks did not stop within the deadline; exiting anyway"
        );
    } else {
        tracing::info!("stopped");
    }
    store.close().await;
    Ok(())
}

/// Renews this instance's lease until shutdown, then gives it up; takes it anew when it ran
/// out (the database was away for a while).
async fn heartbeat(ctx: Arc<Ctx>, name: String, cancel: CancellationToken) {
    let lease = ctx.config.settings.daemon.lease;
    while !cancel.is_cancelled() {
        source::sleep_or(&cancel, lease / 3).await;
        if cancel.is_cancelled() {
            break;
        }
        let renewed = match ctx.store.renew_lease(&name, &ctx.holder, lease).await {
            Ok(false) => ctx.store.acquire_lease(&name, &ctx.holder, lease).await,
            other => other,
        };
        if let Err(e) = renewed {
            tracing::warn!(error = %e, "renewing the instance lease failed");
        }
    }
    let _ = ctx.store.release_lease(&name, &ctx.holder).await;
}

/// Sends what the outbox holds: at once when a mailbox task filed something, else when the
/// next retry falls due. A pass goes on while rows are due, claiming a few at a time (mail to
/// single people ahead of a fan-out's notices) and [`crate::outbox::sender::Mailer::parallel`]
/// at once; on shutdown it claims no more and finishes the mails in flight.
async fn send_loop(
    store: Store,
    config: Arc<Config>,
    mailer: Mailer,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    let sender = Sender {
        store: &store,
        config: &config,
        mailer: &mailer,
    };
    let stop = || cancel.is_cancelled();
    let each = |o: Outcome| metrics.outbox(o.as_str());
    let watch = Watch {
        stop: Some(&stop),
        each: Some(&each),
    };
    while !cancel.is_cancelled() {
        if let Err(e) = sender.send_watched(i64::MAX, watch).await {
            tracing::warn!(error = %e, "sending failed; retrying shortly");
        }
        let wait = next_due(&store).await.unwrap_or(Duration::from_secs(5));
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = cancel.cancelled() => {}
        }
    }
}

/// Time until the next outbox row falls due (or its claim by another instance runs out).
async fn next_due(store: &Store) -> Option<Duration> {
    let wait = match store.next_outbox_due().await.ok()? {
        None => Duration::from_secs(60),
        Some(at) => {
            let micros = at.saturating_sub(crate::store::now_micros()).max(0) as u64;
            Duration::from_micros(micros)
        }
    };
    Some(wait.clamp(Duration::from_millis(200), Duration::from_secs(60)))
}

type HttpState = (Store, Arc<Metrics>);

async fn serve_metrics(State((store, metrics)): State<HttpState>) -> impl IntoResponse {
    if let Ok(n) = store.outbox_pending().await {
        metrics.set_outbox_pending(n);
    }
    if let Ok(n) = store.outbox_uncertain().await {
        metrics.set_outbox_uncertain(n);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
}

async fn serve_health(State((_, metrics)): State<HttpState>) -> impl IntoResponse {
    let late = metrics.overdue();
    if late.is_empty() {
        (StatusCode::OK, "ok\n".to_string())
    } else {
        let text: String = late
            .iter()
            .map(|(name, since)| format!("mailbox {name}: not polled for {} s\n", since.as_secs()))
            .collect();
        (StatusCode::SERVICE_UNAVAILABLE, text)
    }
}

/// Every half minute, the maintenance notices that are due: reminders, start notices and
/// completion at the planned end (`announce::run_due`); flapping alerts that are quiet again
/// and the incident notices monitoring made due; their mails go out at once.
async fn maintenance_notices(
    store: Store,
    config: Arc<Config>,
    sender_wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    const EVERY: Duration = Duration::from_secs(30);
    loop {
        match crate::announce::run_due(&store, &config, jiff::Timestamp::now()).await {
            Ok(sent) if !sent.is_empty() => sender_wake.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "maintenance notices: will try again"),
        }
        // Monitoring: keys quiet long enough are stable again (their staff hear it), then
        // the incident notices due — opened, restored, back — for confirmed incidents.
        match crate::ticket::alerts::settle(&store, &config, jiff::Timestamp::now()).await {
            Ok(n) if n > 0 => sender_wake.notify_one(),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "alerts: settling flapping keys will be tried again")
            }
        }
        match crate::announce::incident::announce_due(&store, &config, jiff::Timestamp::now()).await
        {
            Ok(sent) if !sent.is_empty() => sender_wake.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "incident notices: will try again"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// The public status page on a listener of its own: rendered once before the listener
/// opens (so that it never serves an empty site when the store answers), then kept current.
async fn serve_status(
    config: &Arc<Config>,
    store: &Store,
    addr: std::net::SocketAddr,
    tracker: &TaskTracker,
    cancel: &CancellationToken,
) -> Result<(), AppError> {
    let status = Arc::new(crate::status::Status::new(config.clone(), store.clone())?);
    if let Err(e) = status.render(jiff::Timestamp::now()).await {
        tracing::error!(error = %e, "status page: the first rendering failed; retrying");
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Io {
            what: format!("listening on {addr} (status.listen)"),
            source,
        })?;
    tracing::info!(%addr, "serving the public status page");
    let s = &config.settings.status;
    tracker.spawn(status.clone().keep_current(cancel.clone()));
    tracker.spawn(crate::status::http::serve_connections(
        listener,
        crate::status::http::router(status),
        s.header_timeout,
        s.max_connections,
        cancel.clone(),
    ));
    Ok(())
}

/// Takes over at once what a process of this instance left behind when it died (SIGKILL, a
/// crash, power loss): its mailbox leases, which another instance would wait `lease_seconds`
/// for, and its claims on outgoing mail, which would wait `claim_seconds`. On SQLite the lock
/// file proves that no other daemon runs, so every lease is free.
async fn take_over_dead(store: &Store, instance_id: u8) -> Result<(), StoreError> {
    let taken = store
        .take_over_dead(|holder| crate::holder::is_gone(holder, instance_id))
        .await?;
    for holder in &taken.leases {
        tracing::info!(%holder, "took over the leases of a process that is gone");
    }
    for (holder, rows) in &taken.claims {
        tracing::info!(%holder, rows, "released outgoing mail claimed by a process that is gone");
    }
    Ok(())
}

fn notify(state: &[NotifyState]) {
    // Not under systemd, there is no socket and nothing to tell.
    if let Err(e) = sd_notify::notify(state) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}
