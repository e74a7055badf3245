//! Serving the API from a thread of its own, for callers without a tokio runtime.

use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;

use tokio::sync::oneshot;
use tracing::warn;

use crate::{Error, Jobs, Result, router};

/// The API being served; dropping it shuts the server down (see [`RestServer::detach`]).
#[derive(Debug)]
pub struct RestServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Listens on `addr` (`host:port`; port 0 picks a free one).
pub fn bind(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).map_err(|source| Error::Bind { addr: addr.to_string(), source })
}

/// Serves the API over `jobs` on `listener`, from a thread of its own.
pub fn serve(listener: TcpListener, jobs: Jobs) -> Result<RestServer> {
    let addr = listener.local_addr().map_err(Error::Start)?;
    listener.set_nonblocking(true).map_err(Error::Start)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("rest api")
        .enable_all()
        .build()
        .map_err(Error::Start)?;
    let (shutdown, stop) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("rest api".into())
        .spawn(move || {
            runtime.block_on(async move {
                let result = async {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    axum::serve(listener, router(jobs))
                        .with_graceful_shutdown(async move {
                            // A detached server has dropped the sender: it serves on.
                            if stop.await.is_err() {
                                std::future::pending::<()>().await;
                            }
                        })
                        .await
                }
                .await;
                if let Err(error) = result {
                    warn!("the REST API server stopped: {error}");
                }
            });
        })
        .map_err(Error::Start)?;
    Ok(RestServer { addr, shutdown: Some(shutdown), thread: Some(thread) })
}

impl RestServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Lets the server run until the process ends.
    pub fn detach(mut self) {
        drop(self.shutdown.take());
        drop(self.thread.take());
    }
}

impl Drop for RestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
