//! Kills workers whose request outlives its deadline.
//!
//! One thread for the whole library, started on first use, sleeps until the
//! earliest armed deadline. Arming a later deadline than the one it sleeps
//! towards does not wake it, so a turn loop under a time limit costs a map
//! insert and removal per request, not a thread wake-up.

use std::{
    collections::BTreeMap,
    sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, PoisonError, Weak},
    time::Instant,
};

use super::process::{Control, EndedBy};

struct Armed {
    deadlines: BTreeMap<(Instant, u64), (Weak<Control>, EndedBy)>,
    next_id: u64,
    /// The deadline the thread sleeps towards; `None` while it waits for one.
    sleeping_until: Option<Instant>,
    started: bool,
}

struct Watchdog {
    armed: Mutex<Armed>,
    wake: Condvar,
}

static WATCHDOG: LazyLock<Watchdog> = LazyLock::new(|| Watchdog {
    armed: Mutex::new(Armed {
        deadlines: BTreeMap::new(),
        next_id: 0,
        sleeping_until: None,
        started: false,
    }),
    wake: Condvar::new(),
});

fn lock() -> MutexGuard<'static, Armed> {
    WATCHDOG.armed.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A deadline in force until dropped.
pub(crate) struct Deadline {
    key: (Instant, u64),
}

impl Drop for Deadline {
    fn drop(&mut self) {
        lock().deadlines.remove(&self.key);
    }
}

/// Kills `control`'s worker for `why` if the returned guard is still alive
/// at `at`.
pub(crate) fn arm(control: &Arc<Control>, at: Instant, why: EndedBy) -> Deadline {
    let mut armed = lock();
    let key = (at, armed.next_id);
    armed.next_id += 1;
    armed.deadlines.insert(key, (Arc::downgrade(control), why));
    if !armed.started {
        armed.started = true;
        // Without the thread no deadline holds; a library that cannot start
        // one has no other way to keep this promise.
        std::thread::Builder::new()
            .name("monty-wire-watchdog".into())
            .stack_size(64 << 10)
            .spawn(watch)
            .expect("start the monty-wire watchdog thread");
    }
    if armed.sleeping_until.is_none_or(|until| at < until) {
        WATCHDOG.wake.notify_one();
    }
    Deadline { key }
}

fn watch() {
    let mut armed = lock();
    loop {
        let now = Instant::now();
        while let Some(entry) = armed.deadlines.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (control, why) = entry.remove();
            if let Some(control) = control.upgrade() {
                control.kill(why);
            }
        }
        armed = match armed.deadlines.first_key_value().map(|(key, _)| key.0) {
            Some(until) => {
                armed.sleeping_until = Some(until);
                WATCHDOG
                    .wake
                    .wait_timeout(armed, until.saturating_duration_since(now))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => {
                armed.sleeping_until = None;
                WATCHDOG.wake.wait(armed).unwrap_or_else(PoisonError::into_inner)
            }
        };
    }
}
