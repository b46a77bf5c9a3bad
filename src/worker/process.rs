//! A worker process as the library sees it: started, greeted, spoken to in
//! frames, and ended, with an account of how it ended.

#[cfg(unix)]
use std::io::Write;
use std::{
    io::{self, BufReader, Read},
    path::Path,
    process::{Child, ChildStderr, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU8, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use capnp::Word;
use monty_types::{OOM_EXIT_CODE, PrintStream};

use super::{
    frame::{self, NO_BUDGET, Received, ToWorker},
    watchdog,
};
use crate::{
    PROTOCOL_VERSION,
    protocol::{ErrorCode, ProtocolError, WorkerExit},
    session::PrintSink,
};

/// How long a new or reset worker may take to say it is ready.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a worker's standard error a crash report keeps.
const STDERR_TAIL: usize = 4096;
/// The largest frame a worker may send: a response of the largest message
/// the library writes (see `DecodeLimits`), with room to spare.
const MAX_FRAME: usize = frame::MAX_PAYLOAD;

/// Why the library ended a worker, when it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum EndedBy {
    /// The host cancelled its request, or closed its session during it.
    Cancel = 1,
    /// Its request ran past the session's time budget plus the grace.
    Deadline = 2,
    /// It did not say it was ready in time.
    Handshake = 3,
}

/// What the library shares with threads other than the one talking to the
/// worker (a host's `cancel`, the watchdog): the right to kill it.
pub(crate) struct Control {
    /// `None` once the worker has been reaped, so its process id is never
    /// signalled after the system may have reused it.
    child: Mutex<Option<Child>>,
    ended_by: AtomicU8,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Control {
    /// Kills the worker now, recording why (the first reason stands). A
    /// worker already reaped is left alone.
    pub(crate) fn kill(&self, why: EndedBy) {
        let mut child = lock(&self.child);
        if let Some(child) = child.as_mut() {
            let _ = self
                .ended_by
                .compare_exchange(0, why as u8, Ordering::AcqRel, Ordering::Acquire);
            // An error means it has already exited; reaping reports how.
            let _ = child.kill();
        }
    }

    /// Whether the library has killed the worker, and why.
    pub(crate) fn ended_by(&self) -> Option<EndedBy> {
        match self.ended_by.load(Ordering::Acquire) {
            1 => Some(EndedBy::Cancel),
            2 => Some(EndedBy::Deadline),
            3 => Some(EndedBy::Handshake),
            _ => None,
        }
    }

    /// Whether the process has ended on its own (it is reaped if so).
    fn has_exited(&self) -> bool {
        lock(&self.child)
            .as_mut()
            .is_none_or(|child| !matches!(child.try_wait(), Ok(None)))
    }
}

/// The library's end of the frame channel.
#[cfg(unix)]
type Channel = std::os::unix::net::UnixStream;

/// Writes to the worker that can never raise `SIGPIPE` in the host: a worker
/// that died makes a write fail with `EPIPE`, and a host that has not
/// ignored the signal would otherwise be killed by it.
#[cfg(unix)]
struct Writer(Channel);

#[cfg(unix)]
impl Write for Writer {
    #[cfg(not(target_vendor = "apple"))]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is this stream's own, open for the call;
        // `buf` is readable for `buf.len()` bytes.
        let sent = unsafe { libc::send(self.0.as_raw_fd(), buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
        usize::try_from(sent).map_err(|_| io::Error::last_os_error())
    }

    /// Apple's systems have no `MSG_NOSIGNAL`; the socket was made with
    /// `SO_NOSIGPIPE` instead (see [`no_sigpipe`]).
    #[cfg(target_vendor = "apple")]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(target_vendor = "apple")]
fn no_sigpipe(socket: &Channel) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: the descriptor is the socket's own; the option value is a
    // c_int that lives for the call, and its size is passed with it.
    let status = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NOSIGPIPE,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if status == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_vendor = "apple"))]
#[cfg(unix)]
#[allow(clippy::unnecessary_wraps)]
fn no_sigpipe(_socket: &Channel) -> io::Result<()> {
    Ok(())
}

#[cfg(not(unix))]
type Writer = std::process::ChildStdin;

/// A running worker process and the frame channel to it.
pub(crate) struct WorkerProcess {
    control: Arc<Control>,
    reader: BufReader<Box<dyn Read + Send>>,
    writer: Writer,
    stderr: Option<JoinHandle<Vec<u8>>>,
    /// The time budget of the session's next request that runs Python, as
    /// the worker last said.
    budget: Option<Duration>,
    /// Whether the worker sends print output as it is written.
    streaming: bool,
    /// A `Reset` was sent and its `Ready` not yet read.
    reset_pending: bool,
    /// Sessions this process has served, counting the current one.
    pub(crate) sessions: u32,
    scratch: Vec<u8>,
}

/// The worker failed to start or greet; why, for people.
pub(crate) type StartError = String;

impl WorkerProcess {
    /// Starts `path worker` and waits for its greeting.
    pub(crate) fn spawn(path: &Path) -> Result<Self, StartError> {
        let mut command = Command::new(path);
        command.arg("worker").stdout(Stdio::null()).stderr(Stdio::piped());
        let cannot = |e: io::Error| format!("cannot start the worker {}: {e}", path.display());
        let (child, reader, writer) = Self::start(command).map_err(cannot)?;
        Self::greet(child, reader, writer)
    }

    /// Unix: one socket carries frames both ways, as the worker's standard
    /// input; reads poll it a moment before sleeping ([`frame::PollingReader`]).
    #[cfg(unix)]
    fn start(mut command: Command) -> io::Result<(Child, Box<dyn Read + Send>, Writer)> {
        let (ours, theirs) = Channel::pair()?;
        no_sigpipe(&ours)?;
        command.stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)));
        let child = command.spawn()?;
        // The command holds the worker's end until dropped: only then does
        // the worker's death close the channel.
        drop(command);
        Ok((child, Box::new(frame::PollingReader(ours.try_clone()?)), Writer(ours)))
    }

    /// Elsewhere: the worker's standard input and output.
    #[cfg(not(unix))]
    fn start(mut command: Command) -> io::Result<(Child, Box<dyn Read + Send>, Writer)> {
        command.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = command.spawn()?;
        let reader = child.stdout.take().expect("piped");
        let writer = child.stdin.take().expect("piped");
        Ok((child, Box::new(reader), writer))
    }

    fn greet(mut child: Child, reader: Box<dyn Read + Send>, writer: Writer) -> Result<Self, StartError> {
        let stderr = child.stderr.take().and_then(|stderr| {
            std::thread::Builder::new()
                .name("monty-wire-worker-stderr".into())
                .stack_size(64 << 10)
                .spawn(move || tail(stderr))
                .ok()
        });
        let mut worker = Self {
            control: Arc::new(Control {
                child: Mutex::new(Some(child)),
                ended_by: AtomicU8::new(0),
            }),
            reader: BufReader::with_capacity(64 << 10, reader),
            writer,
            stderr,
            budget: None,
            streaming: false,
            reset_pending: true,
            sessions: 0,
            scratch: Vec::new(),
        };
        worker.await_ready()?;
        Ok(worker)
    }

    /// Reads the greeting of a new or reset worker, if one is due.
    pub(crate) fn await_ready(&mut self) -> Result<(), StartError> {
        if !self.reset_pending {
            return Ok(());
        }
        let armed = watchdog::arm(&self.control, Instant::now() + HANDSHAKE_TIMEOUT, EndedBy::Handshake);
        let greeting = frame::read_from_worker(&mut self.reader, MAX_FRAME);
        drop(armed);
        match greeting {
            Ok(Received::Ready { protocol }) if protocol == PROTOCOL_VERSION => {
                self.reset_pending = false;
                self.budget = None;
                Ok(())
            }
            Ok(Received::Ready { protocol }) => Err(format!(
                "the worker speaks protocol {protocol}, and this library protocol {PROTOCOL_VERSION}: \
                 use the worker built with this library"
            )),
            Ok(_) => Err("the worker sent something else before saying it was ready".to_owned()),
            Err(err) => {
                let ended = self.end_now();
                Err(format!(
                    "the worker did not start: {} ({err})",
                    if ended.message.is_empty() {
                        "no reason given"
                    } else {
                        &ended.message
                    }
                ))
            }
        }
    }

    /// The handle other threads kill it by.
    pub(crate) fn control(&self) -> &Arc<Control> {
        &self.control
    }

    /// The time budget of the session's next request that runs Python.
    pub(crate) fn budget(&self) -> Option<Duration> {
        self.budget
    }

    /// Whether the process has ended on its own while idle.
    pub(crate) fn has_exited(&self) -> bool {
        self.control.has_exited()
    }

    fn send(&mut self, kind: ToWorker, payload: &[u8]) -> io::Result<()> {
        frame::write_frame(&mut self.writer, &mut self.scratch, kind as u32, &[payload])
    }

    /// Tells the worker whether to send print output as it is written.
    pub(crate) fn stream_prints(&mut self, on: bool) -> io::Result<()> {
        if self.streaming != on {
            self.send(
                if on {
                    ToWorker::StreamPrints
                } else {
                    ToWorker::QuietPrints
                },
                &[],
            )?;
            self.streaming = on;
        }
        Ok(())
    }

    /// Asks the worker to start an empty session; its greeting is read
    /// before its next use ([`Self::await_ready`]).
    pub(crate) fn reset(&mut self) -> io::Result<()> {
        self.stream_prints(false)?;
        self.send(ToWorker::Reset, &[])?;
        self.reset_pending = true;
        Ok(())
    }

    /// Sends a request and returns the response message, handing print
    /// output to `sink` as it arrives. An error means the channel broke: the
    /// worker died, was killed, or broke the framing; [`Self::end`] says how.
    pub(crate) fn exchange(&mut self, request: &[u8], mut sink: Option<&mut PrintSink>) -> io::Result<Vec<Word>> {
        self.send(ToWorker::Request, request)?;
        loop {
            match frame::read_from_worker(&mut self.reader, MAX_FRAME)? {
                Received::Response { words, budget } => {
                    self.budget = (budget != NO_BUDGET).then(|| Duration::from_nanos(budget));
                    return Ok(words);
                }
                Received::Print { stderr, text } => {
                    if let Some(sink) = sink.as_mut() {
                        sink(
                            if stderr {
                                PrintStream::Stderr
                            } else {
                                PrintStream::Stdout
                            },
                            &text,
                        );
                    }
                }
                Received::Ready { .. } => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the worker greeted in the middle of a request",
                    ));
                }
            }
        }
    }

    /// Ends the worker (if it has not ended) and says how it ended, as the
    /// answer to the request it was serving.
    pub(crate) fn end(mut self) -> ProtocolError {
        self.end_now()
    }

    fn end_now(&mut self) -> ProtocolError {
        let status = self.reap();
        let stderr_tail = self
            .stderr
            .take()
            .and_then(|reader| reader.join().ok())
            .map(|tail| String::from_utf8_lossy(&tail).into_owned())
            .unwrap_or_default();
        match self.control.ended_by() {
            Some(EndedBy::Cancel) => ProtocolError::new(
                ErrorCode::Cancelled,
                "the request was cancelled and its worker killed; the session is empty",
            ),
            Some(EndedBy::Deadline) => ProtocolError::new(
                ErrorCode::DeadlineExceeded,
                "the request ran past the session's time limits and the grace, and its worker was killed; \
                 the session is empty",
            ),
            Some(EndedBy::Handshake) => ProtocolError::new(
                ErrorCode::WorkerUnavailable,
                format!("the worker did not say it was ready within {HANDSHAKE_TIMEOUT:?}; {stderr_tail}"),
            ),
            None => crashed(status, stderr_tail),
        }
    }

    /// Waits for the process to end, killing it if it does not end on its
    /// own shortly after its channel closed, and reaps it.
    fn reap(&mut self) -> Option<ExitStatus> {
        let mut child = lock(&self.control.child).take()?;
        // A worker that ends itself (past its memory ceiling) closes its
        // channel as it exits: give it a moment to finish exiting, so its
        // status is its own and not the kill below.
        let patience = Instant::now() + Duration::from_millis(200);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < patience => std::thread::sleep(Duration::from_millis(1)),
                _ => break,
            }
        }
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        // Closing the channel ends an idle worker; killing ends a busy one.
        if let Some(mut child) = lock(&self.control.child).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The answer for a worker that died on its own.
fn crashed(status: Option<ExitStatus>, stderr_tail: String) -> ProtocolError {
    let exit_code = status.and_then(|s| s.code()).unwrap_or(-1);
    #[cfg(unix)]
    let signal = status
        .and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s))
        .unwrap_or(0);
    #[cfg(not(unix))]
    let signal = 0;
    let out_of_memory = exit_code == OOM_EXIT_CODE;
    let how = if out_of_memory {
        "went past its memory ceiling".to_owned()
    } else if signal != 0 {
        format!("was ended by signal {signal}")
    } else {
        format!("exited with status {exit_code}")
    };
    let mut error = ProtocolError::new(
        ErrorCode::WorkerCrashed,
        format!("the session's worker process {how} during the request; the session is empty"),
    );
    error.worker_exit = Some(WorkerExit {
        exit_code,
        signal,
        out_of_memory,
        stderr_tail,
    });
    error
}

/// Reads a worker's standard error to its end, keeping the last
/// [`STDERR_TAIL`] bytes.
fn tail(mut stderr: ChildStderr) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stderr.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * STDERR_TAIL {
                    kept.drain(..kept.len() - STDERR_TAIL);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if kept.len() > STDERR_TAIL {
        kept.drain(..kept.len() - STDERR_TAIL);
    }
    kept
}
