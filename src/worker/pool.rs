//! Workers kept ready, per worker binary, so opening an isolated session
//! does not wait for a process to start.
//!
//! Opening takes an idle worker; closing a session whose worker is healthy
//! resets it (an empty session in the same process) and keeps it for the
//! next, up to [`SESSIONS_PER_WORKER`], when a new one is started in its
//! place. When an opening takes the last idle worker, [`PREWARMED`] more are
//! started in the background. Replacing each worker as it is taken would
//! start a process per session, only to end it when the session's own
//! worker came back. A worker whose request was cut off (a crash, a
//! deadline, a cancel) is never kept: it is gone by then.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{LazyLock, Mutex, MutexGuard, PoisonError},
};

use super::process::{StartError, WorkerProcess};

/// Idle workers kept ready per worker binary.
pub const PREWARMED: usize = 2;
/// Sessions one worker process serves before it is retired: each leaves a
/// little behind (allocator fragmentation, the type checker's caches).
pub const SESSIONS_PER_WORKER: u32 = 64;

#[derive(Default)]
struct Pool {
    idle: Vec<WorkerProcess>,
    /// Workers being started in the background for this pool.
    starting: usize,
}

static POOLS: LazyLock<Mutex<HashMap<PathBuf, Pool>>> = LazyLock::new(Default::default);

fn lock() -> MutexGuard<'static, HashMap<PathBuf, Pool>> {
    POOLS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A worker for a new session: an idle one if there is one, else a new one;
/// a pool left without an idle or starting worker is topped up in the
/// background.
pub(crate) fn checkout(path: &Path) -> Result<WorkerProcess, StartError> {
    loop {
        let (idle, ran_out) = {
            let mut pools = lock();
            let pool = pools.entry(path.to_owned()).or_default();
            // The one idle longest: a worker just handed back may still be
            // clearing its last session.
            let idle = (!pool.idle.is_empty()).then(|| pool.idle.remove(0));
            (idle, pool.idle.is_empty() && pool.starting == 0)
        };
        if ran_out {
            refill(path);
        }
        let Some(mut worker) = idle else {
            return WorkerProcess::spawn(path).map(|mut worker| {
                worker.sessions = 1;
                worker
            });
        };
        // One that died while idle, or does not come back from its reset,
        // is dropped (and reaped), and the next one tried.
        if !worker.has_exited() && worker.await_ready().is_ok() {
            worker.sessions += 1;
            return Ok(worker);
        }
    }
}

/// Takes back the worker of a session that ended with its worker healthy.
pub(crate) fn checkin(path: &Path, mut worker: WorkerProcess) {
    if worker.sessions >= SESSIONS_PER_WORKER || worker.reset().is_err() {
        // A retired worker's place is taken by a new one now, before an
        // opening finds the pool short.
        drop(worker);
        refill(path);
        return;
    }
    let mut pools = lock();
    let pool = pools.entry(path.to_owned()).or_default();
    if pool.idle.len() < PREWARMED {
        pool.idle.push(worker);
    }
}

/// Starts workers in the background until the pool has [`PREWARMED`] idle
/// or starting. A binary that fails to start is not retried here: the next
/// checkout reports why.
fn refill(path: &Path) {
    let missing = {
        let mut pools = lock();
        let pool = pools.entry(path.to_owned()).or_default();
        let missing = PREWARMED.saturating_sub(pool.idle.len() + pool.starting);
        pool.starting += missing;
        missing
    };
    for _ in 0..missing {
        let owned = path.to_owned();
        let started = std::thread::Builder::new()
            .name("monty-wire-prewarm".into())
            .stack_size(256 << 10)
            .spawn(move || {
                let worker = WorkerProcess::spawn(&owned);
                let mut pools = lock();
                let pool = pools.entry(owned).or_default();
                pool.starting -= 1;
                if let Ok(mut worker) = worker {
                    worker.sessions = 0;
                    if pool.idle.len() < PREWARMED {
                        pool.idle.push(worker);
                    }
                }
            });
        if started.is_err() {
            lock().entry(path.to_owned()).or_default().starting -= 1;
        }
    }
}

/// Ends every idle worker (tests use this to count what is left).
pub fn drain() {
    let idle: Vec<WorkerProcess> = lock().values_mut().flat_map(|pool| pool.idle.drain(..)).collect();
    drop(idle);
}
