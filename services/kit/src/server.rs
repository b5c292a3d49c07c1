//! Serving a service: its routes plus health, behind the kit's hardening (`hardening`: body limit,
//! timeout, rate limit, request ids in the tracing span, CORS, security headers) and JSON answers for
//! unknown routes. `bind` takes an address (port 0 picks a free one, which tests use) and reports the
//! address actually bound.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use tokio::net::TcpListener;

use crate::hardening::Hardening;
use crate::http::ApiError;

/// The largest request body a service accepts by default; larger ones are answered 413
/// (`ORDERFLOW_HTTP_MAX_BODY_BYTES` changes it).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The service's routes with the layers every service has.
pub fn app(routes: Router, hardening: &Hardening) -> Router {
    let routes = routes
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", None, "no such route")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                None,
                "method not allowed on this route",
            )
        })
        .layer(DefaultBodyLimit::max(hardening.max_body_bytes));
    hardening.apply(routes)
}

/// A bound, not yet serving, HTTP server.
pub struct Server {
    listener: TcpListener,
    app: Router,
}

impl Server {
    /// Bind `address` and serve `routes` hardened as the environment says ([`Hardening::from_env`]).
    pub async fn bind(address: SocketAddr, routes: Router) -> anyhow::Result<Self> {
        Self::bind_with(address, routes, &Hardening::from_env()?).await
    }

    /// Bind `address` and serve `routes` with an explicit hardening (tests use tight limits).
    pub async fn bind_with(
        address: SocketAddr,
        routes: Router,
        hardening: &Hardening,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        Ok(Self {
            listener,
            app: app(routes, hardening),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serve until ctrl-c or SIGTERM.
    pub async fn run(self) -> anyhow::Result<()> {
        tracing::info!(address = %self.local_addr(), "listening");
        axum::serve(self.listener, with_peer(self.app))
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        Ok(())
    }

    /// Serve in the background; for tests and for running several services in one process.
    pub fn spawn(self) -> SocketAddr {
        self.spawn_task().0
    }

    /// Serve in the background, with the task, which a test aborts to stop this instance.
    pub fn spawn_task(self) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let address = self.local_addr();
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(self.listener, with_peer(self.app)).await {
                tracing::error!(%error, "server stopped");
            }
        });
        (address, task)
    }
}

/// The peer's address in every request's extensions: the rate limit is per client address.
fn with_peer(
    app: Router,
) -> axum::extract::connect_info::IntoMakeServiceWithConnectInfo<Router, SocketAddr> {
    app.into_make_service_with_connect_info::<SocketAddr>()
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
