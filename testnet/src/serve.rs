//! A static file server on loopback: the demo mirror, and the Debian mirror
//! of the end-to-end tests, served over real HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use tokio::sync::oneshot;

/// A running file server; stops when dropped.
pub struct FileServer {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

async fn file(State(root): State<PathBuf>, Path(path): Path<String>) -> impl IntoResponse {
    if path.split('/').any(|c| c == ".." || c.is_empty()) {
        return (StatusCode::BAD_REQUEST, Vec::new());
    }
    match tokio::fs::read(root.join(&path)).await {
        Ok(bytes) => (StatusCode::OK, bytes),
        Err(_) => (StatusCode::NOT_FOUND, Vec::new()),
    }
}

impl FileServer {
    /// Serves the files below `root` on `127.0.0.1:0`.
    pub fn start(root: PathBuf) -> Result<FileServer> {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("binding the file server")?;
        listener.set_nonblocking(true)?;
        let addr: SocketAddr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("file-server".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let app = Router::new()
                        .route("/{*path}", axum::routing::get(file))
                        .with_state(root);
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })?;
        Ok(FileServer {
            url: format!("http://{addr}"),
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
