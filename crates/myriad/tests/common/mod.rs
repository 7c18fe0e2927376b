//! Helpers shared by the command-line tests: run the binary, read its
//! errors, write input files.
#![allow(dead_code)] // each test file uses a subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test: this build's, or `MYRIAD_BIN` when set (to run
/// the regression tests against an older build and see them fail).
pub fn bin() -> String {
    std::env::var("MYRIAD_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_myriad").to_string())
}

/// Run `myriad` with `args`.
pub fn myriad(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().expect("run myriad")
}

/// `myriad run SCENARIO --out OUT -q EXTRA...`.
pub fn run_quietly(scenario: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"];
    args.extend_from_slice(extra);
    myriad(&args)
}

/// Its standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The path of a shipped scenario, `scenarios/<name>.toml`.
pub fn shipped(name: &str) -> String {
    format!("{}/../../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"))
}

/// The files of a run folder (not its subfolders) but `summary.json`,
/// which holds timings: name and bytes, sorted by name.
pub fn output_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().unwrap() != "summary.json")
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// Write `text` to `dir/name` and return the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Serve `app` on 127.0.0.1 (a free port) from a thread of its own, for the
/// life of the test process; returns the base URL `http://ADDR/v1`.
pub fn serve_v1(app: axum::Router) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}/v1", rx.recv().unwrap())
}
