//! An isolated session: the library's handle on a session that runs in a
//! worker process.
//!
//! It takes the same request bytes and gives the same response bytes as an
//! in-process [`Session`](crate::Session); only the outcomes a process
//! boundary adds are new (`workerUnavailable`, `workerCrashed`,
//! `deadlineExceeded`, `cancelled`). After the last three its worker is gone
//! and the session is empty: the next request runs in a fresh worker, which
//! gets the session's dump key, print delivery and print streaming again, so
//! the host can open anew or load a dump it took earlier.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use super::{
    frame, pool,
    process::{Control, EndedBy, WorkerProcess},
    watchdog,
};
use crate::{
    DecodeLimits, WireMessage,
    codec::read_message,
    protocol::{ErrorCode, ProtocolError},
    schema::monty_wire_capnp as wire,
    session::{PrintSink, error_response},
};

/// How long past its time budget a request may run before its worker is
/// killed: room for the worker to raise `TimeoutError` itself (and keep the
/// session), and to encode and send the answer.
pub const DEADLINE_GRACE: Duration = Duration::from_secs(1);

/// The environment variable naming the worker binary when a host passes none.
pub const WORKER_ENV: &str = "MONTY_WIRE_WORKER";

/// The request a host is in, shared with the threads that may cancel it.
#[derive(Default)]
pub(crate) struct Running(Mutex<Option<Arc<Control>>>);

impl Running {
    fn lock(&self) -> MutexGuard<'_, Option<Arc<Control>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Kills the worker of the request in flight, if one is; an idle session
    /// is left alone.
    pub(crate) fn cancel(&self) {
        if let Some(control) = self.lock().as_ref() {
            control.kill(EndedBy::Cancel);
        }
    }
}

/// What the library must know of a request before its worker sees it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// It runs Python: it has a deadline when the session has a time limit.
    RunsPython,
    /// `setDumpKey`: a fresh worker gets it again.
    SetDumpKey,
    /// `setPrintDelivery`: a fresh worker gets it again.
    SetPrintDelivery,
    Other,
}

impl Kind {
    /// Reads only the request's arm; bytes that are no request are the
    /// worker's to refuse.
    fn of(request: &[u8]) -> Self {
        use wire::request::Which;
        let Ok(message) = read_message(request, &DecodeLimits::default()) else {
            return Self::Other;
        };
        let Ok(root) = message.get_root::<wire::request::Reader<'_>>() else {
            return Self::Other;
        };
        match root.which() {
            Ok(
                Which::Run(_)
                | Which::Start(_)
                | Which::ResumeCall(_)
                | Which::ResumeOsCall(_)
                | Which::ResumeNameLookup(_)
                | Which::ResolveFutures(_)
                | Which::Abort(_)
                | Which::FeedRun(_)
                | Which::FeedStart(_)
                | Which::CallFunction(_),
            ) => Self::RunsPython,
            Ok(Which::SetDumpKey(_)) => Self::SetDumpKey,
            Ok(Which::SetPrintDelivery(_)) => Self::SetPrintDelivery,
            _ => Self::Other,
        }
    }
}

/// Whether a response message says `ok`.
fn is_ok(response: &[u8]) -> bool {
    read_message(response, &DecodeLimits::default())
        .ok()
        .and_then(|message| {
            let root = message.get_root::<wire::response::Reader<'_>>().ok()?;
            Some(matches!(root.which(), Ok(wire::response::Which::Ok(()))))
        })
        .unwrap_or(false)
}

/// A session whose engine runs in a worker process.
pub struct IsolatedSession {
    /// The worker binary, or why there is none.
    binary: Result<PathBuf, String>,
    /// `None` before the first request and after the worker ended.
    worker: Option<WorkerProcess>,
    running: Arc<Running>,
    print_sink: Option<PrintSink>,
    /// The last `setDumpKey` request the worker accepted, for its successor.
    dump_key: Option<Vec<u8>>,
    /// The last `setPrintDelivery` request the worker accepted, likewise.
    print_delivery: Option<Vec<u8>>,
}

impl IsolatedSession {
    /// A session served by `binary worker` (see [`WORKER_ENV`] for `None`).
    /// Its worker is taken from the pool now; if none can start, every
    /// request says why (`workerUnavailable`) and tries again.
    #[must_use]
    pub fn open(binary: Option<PathBuf>) -> Self {
        let binary = binary
            .or_else(|| std::env::var_os(WORKER_ENV).map(PathBuf::from))
            .ok_or_else(|| {
                format!(
                    "no worker binary: pass the path of the monty-wire executable to \
                     monty_wire_session_open_isolated, or set {WORKER_ENV}"
                )
            });
        let mut session = Self {
            binary,
            worker: None,
            running: Arc::default(),
            print_sink: None,
            dump_key: None,
            print_delivery: None,
        };
        // Failing here is reported by the first request.
        let _ = session.ensure_worker();
        session
    }

    /// A session that has no worker, for this reason: every request says so.
    #[must_use]
    pub fn unavailable(why: String) -> Self {
        Self {
            binary: Err(why),
            worker: None,
            running: Arc::default(),
            print_sink: None,
            dump_key: None,
            print_delivery: None,
        }
    }

    /// What a host's `cancel` reaches without waiting for the session.
    pub(crate) fn running(&self) -> Arc<Running> {
        Arc::clone(&self.running)
    }

    /// Sends print output to `sink` as it is written; `None` stops that.
    pub fn set_print_sink(&mut self, sink: Option<PrintSink>) {
        self.print_sink = sink;
    }

    /// Makes sure the session has a worker, ready for a request.
    fn ensure_worker(&mut self) -> Result<(), ProtocolError> {
        let unavailable = |why: String| ProtocolError::new(ErrorCode::WorkerUnavailable, why);
        if self.worker.is_none() {
            let binary = self.binary.as_ref().map_err(|why| unavailable(why.clone()))?;
            let mut worker = pool::checkout(binary).map_err(unavailable)?;
            // The settings a session keeps for its life, as the old worker
            // had them.
            let settings = [(&self.dump_key, "dump key"), (&self.print_delivery, "print delivery")];
            for (request, what) in settings {
                let Some(request) = request else { continue };
                let answer = worker.exchange(request, None).map_err(|e| unavailable(e.to_string()))?;
                if !is_ok(capnp::Word::words_to_bytes(&answer)) {
                    return Err(unavailable(format!("a new worker refused the session's {what}")));
                }
            }
            self.worker = Some(worker);
        }
        let worker = self.worker.as_mut().expect("set above");
        if worker.stream_prints(self.print_sink.is_some()).is_err() {
            let ended = self.worker.take().expect("set above").end();
            return Err(ended);
        }
        Ok(())
    }

    /// Handles one request message in the worker and returns its response.
    pub fn handle_bytes(&mut self, request: &[u8]) -> WireMessage {
        if request.len() > frame::MAX_PAYLOAD {
            return error_response(ProtocolError::new(
                ErrorCode::LimitExceeded,
                format!(
                    "a {}-byte request is larger than an isolated session takes ({} bytes)",
                    request.len(),
                    frame::MAX_PAYLOAD
                ),
            ));
        }
        let kind = Kind::of(request);
        if let Err(error) = self.ensure_worker() {
            return error_response(error);
        }
        let worker = self.worker.as_mut().expect("ensured above");
        let control = Arc::clone(worker.control());
        // A budget too far away to name as an instant is no deadline.
        let deadline = match (kind, worker.budget()) {
            (Kind::RunsPython, Some(budget)) => Instant::now()
                .checked_add(budget.saturating_add(DEADLINE_GRACE))
                .map(|at| watchdog::arm(&control, at, EndedBy::Deadline)),
            _ => None,
        };
        *self.running.lock() = Some(Arc::clone(&control));
        let answer = worker.exchange(request, self.print_sink.as_mut());
        self.running.lock().take();
        drop(deadline);
        // A worker killed as its answer arrived is gone all the same: the
        // session is empty, and the host is told why rather than handed an
        // answer about a session that no longer exists.
        match answer {
            Ok(words) if control.ended_by().is_none() => {
                let response = WireMessage::from_words(words);
                // Only a setting's answer is read: a turn pays nothing.
                let kept = match kind {
                    Kind::SetDumpKey => Some(&mut self.dump_key),
                    Kind::SetPrintDelivery => Some(&mut self.print_delivery),
                    Kind::RunsPython | Kind::Other => None,
                };
                if let Some(kept) = kept
                    && is_ok(response.as_bytes())
                {
                    *kept = Some(request.to_vec());
                }
                response
            }
            _ => error_response(self.worker.take().expect("a worker served the request").end()),
        }
    }
}

impl Drop for IsolatedSession {
    fn drop(&mut self) {
        if let (Some(worker), Ok(binary)) = (self.worker.take(), &self.binary) {
            pool::checkin(binary, worker);
        }
    }
}
