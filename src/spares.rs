//! Bounded per-thread free lists: what a hot path allocated and gave up,
//! kept for the next time the same thread needs one. Per thread, so taking
//! and keeping need no lock; a thread that is exiting frees what it is
//! given instead.

use std::{cell::RefCell, thread::LocalKey};

/// One thread's free list.
pub(crate) type Spares<T> = RefCell<Vec<T>>;

/// Keeps `item` in this thread's `list` while it holds fewer than `limit`;
/// drops it otherwise.
pub(crate) fn keep<T>(list: &'static LocalKey<Spares<T>>, item: T, limit: usize) {
    let _ = list.try_with(|spares| {
        if let Ok(mut spares) = spares.try_borrow_mut()
            && spares.len() < limit
        {
            spares.push(item);
        }
    });
}

/// Takes an item from this thread's `list` that `fits`, if there is one.
pub(crate) fn take<T>(list: &'static LocalKey<Spares<T>>, fits: impl Fn(&T) -> bool) -> Option<T> {
    list.try_with(|spares| {
        let mut spares = spares.try_borrow_mut().ok()?;
        let found = spares.iter().position(fits)?;
        Some(spares.swap_remove(found))
    })
    .ok()
    .flatten()
}
