//! logpulsed: the Tinybird-compatible HTTP daemon over the logpulse engine.
#![deny(unsafe_code)]

pub mod alerts;
pub mod app;
pub mod auth;
pub mod backend;
pub mod config;
pub mod error;
pub mod ingest;
pub mod meta_files;
pub mod metrics;
pub mod params;
pub mod render;
pub mod routes;
pub mod serve;
pub mod sql;
pub mod syslog;
pub mod tail;
pub mod tls;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use tracing::{error, info};

use crate::app::{AppInner, AppState};
use crate::auth::Auth;
use crate::config::Config;
use logpulse_model::{MetaStore, Storage};

/// Opens storage, binds, serves until SIGTERM/SIGINT, then drains and syncs.
pub async fn run(config: Config) -> anyhow::Result<()> {
    raise_fd_limit();
    // Everything the daemon creates is its own: data dir 0700, files 0600.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    create_private_dir(&config.data_dir)?;
    make_private(&config.data_dir);
    let (storage, meta): (Arc<dyn Storage>, Arc<dyn MetaStore>) = backend::open(&config).await?;
    let (auth, workspace_id) = {
        let (meta, dir, admin) = (
            meta.clone(),
            config.data_dir.clone(),
            config.admin_token.clone(),
        );
        tokio::task::spawn_blocking(move || -> anyhow::Result<(Auth, String)> {
            let workspace_id = workspace_id(meta.as_ref())?;
            Ok((Auth::load(meta, &dir, admin)?, workspace_id))
        })
        .await??
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let alerts = match config.alerts.eval_interval {
        Some(_) => Some(Arc::new(alerts::Alerting::start(
            config.alerts.clone(),
            storage.clone(),
            &config.data_dir,
        )?)),
        None => None,
    };
    let evaluator = alerts.clone().and_then(|a| a.spawn());
    let tail = tail::Hub::new(
        storage.clone(),
        config.tail_clients_max,
        config.tail_buffer_rows,
    );
    tokio::spawn(tail.clone().run(tail::POLL_INTERVAL));
    let state: AppState = Arc::new(AppInner {
        storage: storage.clone(),
        auth,
        config: config.clone(),
        metrics: Default::default(),
        created_at: created_at(&config.data_dir),
        sql: sql::SqlEngine::new(storage.clone(), config.sql)
            .context("starting the SQL runtime")?,
        workspace_id,
        shutting_down: AtomicBool::new(false),
        ingest_slots: tokio::sync::Semaphore::new(config.ingest_concurrency_max),
        pipe_body_slots: tokio::sync::Semaphore::new(routes::pipes::BODIES_AT_ONCE),
        body_buffers: Default::default(),
        alerts,
        tail: tail.clone(),
    });
    if state.auth.shared() {
        tokio::spawn(refresh_tokens(state.clone()));
    }
    let tls = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(c), Some(k)) => Some(tls::Tls::load(c, k)?),
        _ => None,
    };
    let mut listeners = syslog_listeners(&config, &state, tls.clone()).await?;
    if let Some(t) = &tls {
        listeners.push(tokio::spawn(tls::reload_on_sighup(t.clone())));
    }
    let router = app::app(state.clone());
    let shed_router = app::shed_app(state.clone());
    info!(%addr, tls = tls.is_some(), data_dir = %config.data_dir.display(), "listening");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let st = state.clone();
    let shutdown = async move {
        shutdown_signal().await;
        info!("shutdown signal received; finishing in-flight requests");
        st.shutting_down.store(true, Ordering::Relaxed);
        // Tail streams never end by themselves: end them so the drain can.
        st.tail.close();
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    };
    let header_timeout = std::time::Duration::from_millis(config.header_read_timeout_ms);
    serve::serve(
        listener,
        tls,
        router,
        shed_router,
        config.max_connections,
        header_timeout,
        shutdown,
    )
    .await;
    for l in listeners {
        l.abort();
    }
    if let Some(e) = evaluator {
        e.abort();
    }
    let res = tokio::task::spawn_blocking(move || storage.close()).await?;
    match res {
        Ok(()) => info!("storage synced and closed"),
        Err(e) => {
            error!(error = %e, "closing storage failed");
            return Err(e.into());
        }
    }
    Ok(())
}

/// Binds and starts the configured syslog listeners.
async fn syslog_listeners(
    config: &Config,
    state: &AppState,
    tls: Option<Arc<tls::Tls>>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::new();
    if let Some(addr) = config.syslog_tls_listen {
        let tls = tls.context("syslog_tls_listen needs tls_cert_file and tls_key_file")?;
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding syslog tls {addr}"))?;
        info!(addr = %l.local_addr()?, "syslog tls listening");
        tasks.push(tokio::spawn(syslog::serve_tcp(l, Some(tls), state.clone())));
    }
    if let Some(addr) = config.syslog_tcp_listen {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding syslog tcp {addr}"))?;
        info!(addr = %l.local_addr()?, "syslog tcp listening");
        tasks.push(tokio::spawn(syslog::serve_tcp(l, None, state.clone())));
    }
    if let Some(addr) = config.syslog_udp_listen {
        let s = tokio::net::UdpSocket::bind(addr)
            .await
            .with_context(|| format!("binding syslog udp {addr}"))?;
        info!(addr = %s.local_addr()?, "syslog udp listening");
        tasks.push(tokio::spawn(syslog::serve_udp(s, state.clone())));
    }
    Ok(tasks)
}

/// Creates the data dir (mode 0700) if it does not exist yet.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) => Err(anyhow::anyhow!("creating data dir {}: {e}", dir.display())),
    }
}

/// Takes group and other permissions away from a data dir made by an older
/// build (0755, files 0644) and from the files directly in it (the dir being
/// 0700 closes everything below). Never fails the start: a chmod that is not
/// permitted is a warning.
fn make_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let chmod = |p: &Path, mode: u32| -> bool {
        if mode & 0o077 == 0 {
            return false;
        }
        let private = std::fs::Permissions::from_mode(mode & 0o700);
        match std::fs::set_permissions(p, private) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(path = %p.display(), mode = format!("{:o}", mode & 0o777), error = %e,
                    "could not take group/other permissions away");
                false
            }
        }
    };
    let Ok(meta) = std::fs::metadata(dir) else {
        return;
    };
    let mode = meta.permissions().mode();
    if chmod(dir, mode) {
        info!(data_dir = %dir.display(), was = format!("{:o}", mode & 0o777),
            "data dir was accessible to group/other: made it 0700");
    }
    let files = std::fs::read_dir(dir).into_iter().flatten().flatten();
    let fixed = files
        .filter_map(|e| Some((e.path(), e.metadata().ok()?)))
        .filter(|(_, m)| m.is_file())
        .filter(|(p, m)| chmod(p, m.permissions().mode()))
        .count();
    if fixed > 0 {
        info!(data_dir = %dir.display(), files = fixed,
            "files of the data dir were accessible to group/other: made them owner-only");
    }
}

/// Raises the soft open-files limit to the hard one: each connection and
/// segment file takes a descriptor.
fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        lim.current = lim.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, lim) {
            tracing::warn!(error = %e, "could not raise the open-files limit");
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}

/// When the workspace id was made (so: the data dir), as Tinybird writes
/// times in its catalog.
fn created_at(data_dir: &Path) -> String {
    let t = std::fs::metadata(data_dir.join("workspace-id"))
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| std::time::SystemTime::now());
    let t: chrono::DateTime<chrono::Utc> = t.into();
    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// A stable id for `GET /v0/workspace`, made on first start (kept by the
/// backend's [`MetaStore`], so every node of a cluster reports the same).
fn workspace_id(meta: &dyn MetaStore) -> anyhow::Result<String> {
    Ok(meta.value_or_init("workspace-id", &|| {
        auth::generate_token()[3..35].to_string()
    })?)
}

/// Re-reads the tokens every second when other nodes change them too.
async fn refresh_tokens(state: AppState) {
    let mut tick = tokio::time::interval(TOKEN_REFRESH);
    loop {
        tick.tick().await;
        let st = state.clone();
        match tokio::task::spawn_blocking(move || st.auth.refresh()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not re-read tokens; keeping the last ones")
            }
            Err(e) => tracing::warn!(error = %e, "token refresh failed"),
        }
    }
}

/// How often tokens shared by several nodes are re-read.
const TOKEN_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);
