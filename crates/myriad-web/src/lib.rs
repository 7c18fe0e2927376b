//! myriad-web: the dashboard behind `myriad serve`, a thin layer over
//! `myriad-sim`.
//!
//! - [`serve`]: binds the address (loopback by default; anything else only
//!   with an access token) and serves the page and the JSON API;
//! - [`access`]: the token check every request passes;
//! - [`past`]: runs already in the runs folder, read from their
//!   `summary.json` and `timeseries.csv`;
//! - [`live`]: runs started from the page, stepped on their own thread by
//!   the same `run_to_folder` as `myriad run`, with a sink that streams
//!   rows, holds the run when paused and answers agent queries between
//!   steps;
//! - [`api`]: the routes and their errors (HTTP 4xx with the text the
//!   command line would print);
//! - [`assets`]: the page (HTML, CSS, JavaScript), embedded so that it
//!   works offline.

#![deny(missing_docs)]

pub mod access;
pub mod api;
pub mod assets;
pub mod live;
pub mod past;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

/// How `myriad serve` was asked to run.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Address to bind [default: 127.0.0.1].
    pub bind: IpAddr,
    /// Port (0: any free port, printed at start).
    pub port: u16,
    /// Folder of runs: listed, and where runs started from the page go.
    pub runs: PathBuf,
    /// Folder of scenario files offered on the page.
    pub scenarios: PathBuf,
    /// The access token (`None`: none needed, allowed on loopback only).
    pub token: Option<String>,
    /// Worker threads of each run started from the page [default: all cores].
    pub threads: Option<usize>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Serving beyond this machine without a token.
    #[error(
        "refusing to serve on {0} without an access token: anyone who can reach this address could start runs and \
         read results. Give --token TOKEN (or --token auto to have one made and printed; or set MYRIAD_TOKEN), \
         or bind to 127.0.0.1"
    )]
    NoToken(IpAddr),
    /// The token given is too short to protect anything.
    #[error("the access token must have at least 16 characters (got {0})")]
    WeakToken(usize),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The runs folder.
    #[error("runs folder {path}: {source}")]
    Runs {
        /// The folder.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Anything else while serving.
    #[error("{0}")]
    Other(String),
}

/// A random token of 32 hexadecimal characters from the kernel's generator.
pub fn new_token() -> Result<String, ServeError> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| ServeError::Other(format!("cannot read /dev/urandom for a token: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Check the options, bind, print the address (with the token, if any)
/// on standard output and serve until Ctrl-C. `ready` is called with the
/// bound address before serving (tests use port 0).
pub fn serve(opts: ServeOptions, ready: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    if let Some(t) = &opts.token {
        if t.len() < 16 {
            return Err(ServeError::WeakToken(t.len()));
        }
    } else if !opts.bind.is_loopback() {
        return Err(ServeError::NoToken(opts.bind));
    }
    std::fs::create_dir_all(&opts.runs).map_err(|source| ServeError::Runs {
        path: opts.runs.clone(),
        source,
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ServeError::Other(format!("cannot start the async runtime: {e}")))?;
    let addr = SocketAddr::new(opts.bind, opts.port);
    let state = Arc::new(api::AppState::new(&opts, runtime.handle().clone()));
    let served = runtime.block_on({
        let state = state.clone();
        async move {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| ServeError::Bind { addr, source })?;
            let app = api::router(state.clone());
            ready(bound);
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = tokio::signal::ctrl_c().await;
                    state.stop_all();
                })
                .await
                .map_err(|e| ServeError::Other(format!("the server stopped: {e}")))
        }
    });
    // Live runs stop after their current step and write their outputs.
    state.stop_all();
    state.join_runs();
    served
}

/// The address to open in a browser (with the token when there is one).
pub fn page_url(addr: SocketAddr, token: Option<&str>) -> String {
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        match addr.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        }
    };
    match token {
        Some(t) => format!("http://{host}:{}/?token={t}", addr.port()),
        None => format!("http://{host}:{}/", addr.port()),
    }
}
