//! Long computations with the GIL released and Ctrl-C honoured: the work
//! runs on a scoped thread while the calling thread waits without the GIL,
//! checking for signals every few milliseconds; on KeyboardInterrupt the
//! work is asked to stop (it keeps what is complete) and the exception is
//! raised once it has.

use crate::errors::RunError;
use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Run `work(stop)` without the GIL; `stop` is set on Ctrl-C.
pub fn run<T: Send>(py: Python<'_>, work: impl FnOnce(&Arc<AtomicBool>) -> T + Send) -> PyResult<T> {
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::scope(|scope| {
        let handle = scope.spawn(|| work(&stop));
        let mut interrupted = None;
        loop {
            py.detach(|| {
                let t = Instant::now();
                while !handle.is_finished() && t.elapsed() < Duration::from_millis(50) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            if handle.is_finished() {
                break;
            }
            if interrupted.is_none() {
                if let Err(e) = py.check_signals() {
                    stop.store(true, Ordering::Relaxed);
                    interrupted = Some(e);
                }
            }
        }
        let out = handle
            .join()
            .map_err(|_| RunError::new_err("internal error: the computation panicked (a bug in myriad)"))?;
        match interrupted {
            Some(e) => Err(e),
            None => Ok(out),
        }
    })
}
