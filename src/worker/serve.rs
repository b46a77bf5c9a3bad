//! The worker's side: a session engine serving one library over its
//! standard input (`monty-wire worker`).
//!
//! The worker reads frames until its library goes away (the end of its
//! input), handing each request to one [`Session`] exactly as an in-process
//! session would. Between requests it sizes its limits from the session's:
//! its heap ceiling (monty's allocator, which must be this process's global
//! allocator), an address-space backstop where the OS has one, and the time
//! budget it tells the library, which kills it past that budget plus a
//! grace.

use std::{
    io::{self, Read, Write},
    sync::{Arc, Mutex},
    time::Duration,
};

use monty_types::{PrintStream, ResourceLimits, memory_limit_with_headroom};

use super::frame::{self, FromWorker, NO_BUDGET, ToWorker};
use crate::{PROTOCOL_VERSION, Session};

/// The heap an isolated session may hold when its limits set no
/// `maxMemory`: past it the worker ends (status 65) and the host gets
/// `workerCrashed` with `outOfMemory`.
pub const DEFAULT_MEMORY_CEILING: usize = 2 << 30;

/// Added to a REPL's time budget when it type-checks each snippet: the
/// check runs before the snippet, outside monty's clocks.
const TYPE_CHECK_ALLOWANCE: Duration = Duration::from_secs(30);

/// How a worker arms its heap ceiling: `monty_alloc::set_hard_limit`, for a
/// program whose global allocator is `monty_alloc::LimitedAllocator`.
pub type ArmCeiling = fn(Option<usize>) -> Result<(), &'static str>;

/// The heap ceiling, over the worker's baseline, for a session with these
/// limits: its `maxMemory` (or [`DEFAULT_MEMORY_CEILING`]) plus the headroom
/// monty's own workers leave for raising `MemoryError` and type checking.
#[must_use]
pub fn memory_ceiling(limits: Option<&ResourceLimits>) -> usize {
    let soft = limits.and_then(|l| l.max_memory).unwrap_or(DEFAULT_MEMORY_CEILING);
    memory_limit_with_headroom(Some(soft), true).unwrap_or(soft)
}

/// The longest the next request that runs Python may take, for the session's
/// limits: its feed or turn limit (the smaller), plus the sleeps it may make
/// (`maxTotalSleep`, which monty's clocks do not count). `None` without a
/// time limit.
fn time_budget(session: &Session) -> Option<Duration> {
    let limits = session.limits()?;
    let running = match (limits.max_feed_duration, limits.max_turn_duration) {
        (Some(feed), Some(turn)) => feed.min(turn),
        (feed, turn) => feed.or(turn)?,
    };
    let checking = if session.type_checks_snippets() {
        TYPE_CHECK_ALLOWANCE
    } else {
        Duration::ZERO
    };
    Some(
        running
            .saturating_add(limits.max_total_sleep.unwrap_or_default())
            .saturating_add(checking),
    )
}

/// The frame channel: the library's end of a socket on standard input
/// (Unix, read through [`frame::PollingReader`]), or standard input and
/// output (elsewhere).
struct Channel {
    input: Box<dyn Read>,
    output: Arc<Mutex<Box<dyn Write + Send>>>,
}

#[cfg(unix)]
fn channel() -> io::Result<Channel> {
    use std::os::{fd::AsFd, unix::net::UnixStream};
    let socket = UnixStream::from(io::stdin().as_fd().try_clone_to_owned()?);
    let output = socket.try_clone()?;
    Ok(Channel {
        input: Box::new(io::BufReader::with_capacity(64 << 10, frame::PollingReader(socket))),
        output: Arc::new(Mutex::new(Box::new(output))),
    })
}

#[cfg(not(unix))]
fn channel() -> io::Result<Channel> {
    Ok(Channel {
        input: Box::new(io::BufReader::with_capacity(64 << 10, io::stdin())),
        output: Arc::new(Mutex::new(Box::new(io::stdout()))),
    })
}

fn send(
    output: &Mutex<Box<dyn Write + Send>>,
    scratch: &mut Vec<u8>,
    kind: FromWorker,
    parts: &[&[u8]],
) -> io::Result<()> {
    let mut output = output.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    frame::write_frame(&mut *output, scratch, kind as u32, parts)
}

fn ready(output: &Mutex<Box<dyn Write + Send>>, scratch: &mut Vec<u8>) -> io::Result<()> {
    send(
        output,
        scratch,
        FromWorker::Ready,
        &[&PROTOCOL_VERSION.to_le_bytes(), &[0; 4]],
    )
}

/// Serves requests on this process's standard input until the library
/// closes it; `Ok` then. `arm` is the process's heap ceiling (see
/// [`ArmCeiling`]).
///
/// # Errors
/// The channel broke (the library went away mid-frame) or a frame broke the
/// framing rules.
pub fn serve(arm: ArmCeiling) -> io::Result<()> {
    let Channel { mut input, output } = channel()?;
    let mut scratch = Vec::new();
    let mut session = Session::new();
    let mut limits = Limits::default();
    limits.apply(&session, arm)?;
    ready(&output, &mut scratch)?;
    while let Some((kind, payload)) = frame::read_to_worker(&mut input)? {
        match kind {
            ToWorker::Request => {
                let response = session.handle_bytes(&payload);
                drop(payload);
                limits.apply(&session, arm)?;
                let budget =
                    time_budget(&session).map_or(NO_BUDGET, |b| b.as_nanos().try_into().unwrap_or(NO_BUDGET - 1));
                send(
                    &output,
                    &mut scratch,
                    FromWorker::Response,
                    &[&budget.to_le_bytes(), response.as_bytes()],
                )?;
            }
            ToWorker::StreamPrints => {
                let output = Arc::clone(&output);
                let mut scratch = Vec::new();
                session.set_print_sink(Some(Box::new(move |stream, text: &str| {
                    let kind = match stream {
                        PrintStream::Stdout => FromWorker::Stdout,
                        PrintStream::Stderr => FromWorker::Stderr,
                    };
                    // A library that went away ends this worker at its next
                    // response; the text is in that response anyway.
                    let _ = send(&output, &mut scratch, kind, &[text.as_bytes()]);
                })));
            }
            ToWorker::QuietPrints => session.set_print_sink(None),
            ToWorker::Reset => {
                // The old session's memory is returned before the new
                // ceiling is measured from the baseline.
                drop(std::mem::take(&mut session));
                limits.apply(&session, arm)?;
                ready(&output, &mut scratch)?;
            }
        }
    }
    Ok(())
}

/// The ceilings in force, re-armed when the session's limits change them.
#[derive(Default)]
struct Limits {
    ceiling: Option<usize>,
}

impl Limits {
    fn apply(&mut self, session: &Session, arm: ArmCeiling) -> io::Result<()> {
        let ceiling = memory_ceiling(session.limits());
        // monty's allocator measures the budget from the leanest the
        // process has been at an arming, so it is armed after every request
        // (a session can shrink); the address space only when it changes.
        arm(Some(ceiling)).map_err(io::Error::other)?;
        if self.ceiling != Some(ceiling) {
            self.ceiling = Some(ceiling);
            address_space::limit(ceiling);
        }
        Ok(())
    }
}

/// The backstop under the heap ceiling: an address-space limit (`RLIMIT_AS`)
/// of what the process maps now, plus the ceiling, plus room for the
/// session's stack (at most 4 GiB) and a margin. It stops memory monty's
/// allocator does not count; allocations past it fail, and the allocator
/// ends the worker as it does past its ceiling.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod address_space {
    /// The session's stack, at its largest, and libraries' own mappings.
    const ROOM: u64 = (4 << 30) + (1 << 30);

    pub(super) fn limit(ceiling: usize) {
        let Some(mapped) = mapped_bytes() else { return };
        let limit = mapped.saturating_add(ceiling as u64).saturating_add(ROOM);
        let rlimit = libc::rlimit {
            rlim_cur: limit,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: `setrlimit` reads the struct we pass, which lives for the
        // call; lowering or raising the soft limit under an infinite hard
        // limit is always permitted.
        unsafe { libc::setrlimit(libc::RLIMIT_AS, &raw const rlimit) };
    }

    /// The process's virtual size, from `/proc/self/statm` (in pages).
    fn mapped_bytes() -> Option<u64> {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_whitespace().next()?.parse().ok()?;
        // SAFETY: `sysconf` only reads a configuration value.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Some(pages.saturating_mul(u64::try_from(page).ok()?))
    }
}

/// Elsewhere the heap ceiling stands alone: macOS accepts `RLIMIT_AS` but
/// does not enforce it, and Windows has no such limit.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod address_space {
    pub(super) fn limit(_ceiling: usize) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_is_max_memory_or_the_default_plus_headroom() {
        let default = memory_ceiling(None);
        assert!(default > DEFAULT_MEMORY_CEILING && default < DEFAULT_MEMORY_CEILING + (64 << 20));
        let limits = ResourceLimits::default().max_memory(100 << 20);
        let ceiling = memory_ceiling(Some(&limits));
        assert!(ceiling > 100 << 20 && ceiling < 164 << 20);
    }
}
