//! Serving a service: its routes plus health, behind request tracing, a body limit and JSON answers for
//! unknown routes. `bind` takes an address (port 0 picks a free one, which tests use) and reports the
//! address actually bound.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::http::ApiError;

/// The largest request body a service accepts; larger ones are answered 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The service's routes with the layers every service has.
pub fn app(routes: Router) -> Router {
    routes
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
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
}

/// A bound, not yet serving, HTTP server.
pub struct Server {
    listener: TcpListener,
    app: Router,
}

impl Server {
    pub async fn bind(address: SocketAddr, routes: Router) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        Ok(Self {
            listener,
            app: app(routes),
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
        axum::serve(self.listener, self.app)
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
            if let Err(error) = axum::serve(self.listener, self.app).await {
                tracing::error!(%error, "server stopped");
            }
        });
        (address, task)
    }
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
