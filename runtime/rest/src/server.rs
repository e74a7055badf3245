//! Serving the API from a thread of its own, for callers without a tokio runtime.

use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;

use tokio::sync::watch;
use tracing::warn;

use crate::{Error, Jobs, Result, router};

/// How long dropping the server waits for requests in flight.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// The API being served; dropping it shuts the server down (see [`RestServer::detach`]).
#[derive(Debug)]
pub struct RestServer {
    addr: SocketAddr,
    shutdown: Option<watch::Sender<bool>>,
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
    let (shutdown, stop) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("rest api".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(error) => return warn!("the REST API server did not start: {error}"),
                };
                let serving = axum::serve(listener, router(jobs))
                    .with_graceful_shutdown(stopped(stop.clone()))
                    .into_future();
                // Requests in flight get the grace to finish; a connection that stays open
                // (idle, or a request never finished) must not keep the process alive.
                let grace = async {
                    stopped(stop).await;
                    tokio::time::sleep(SHUTDOWN_GRACE).await;
                };
                tokio::select! {
                    result = serving => if let Err(error) = result {
                        warn!("the REST API server stopped: {error}");
                    },
                    () = grace => warn!(
                        "the REST API server still had connections open {} s after it was \
                         asked to stop; closing them",
                        SHUTDOWN_GRACE.as_secs()
                    ),
                }
            });
            // Nor does a request still blocked in a handler (a savepoint being waited for).
            runtime.shutdown_background();
        })
        .map_err(Error::Start)?;
    Ok(RestServer { addr, shutdown: Some(shutdown), thread: Some(thread) })
}

/// Resolves once the server is asked to stop; never for a detached server (whose sender
/// was dropped without asking).
async fn stopped(mut stop: watch::Receiver<bool>) {
    if stop.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
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
            let _ = shutdown.send(true);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn a_connection_left_open_does_not_hold_the_shutdown() {
        let server = serve(bind("127.0.0.1:0").unwrap(), Jobs::new()).unwrap();
        let mut idle = std::net::TcpStream::connect(server.local_addr()).unwrap();
        let mut half = std::net::TcpStream::connect(server.local_addr()).unwrap();
        half.write_all(b"GET /jobs HTTP/1.1\r\nHost: x\r\n").unwrap(); // never finished
        idle.flush().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let (done, dropped) = std::sync::mpsc::channel();
        let start = Instant::now();
        std::thread::spawn(move || {
            drop(server);
            let _ = done.send(());
        });
        dropped.recv_timeout(Duration::from_secs(20)).expect("the server stops");
        assert!(start.elapsed() < SHUTDOWN_GRACE + Duration::from_secs(2), "{:?}", start.elapsed());
    }
}
