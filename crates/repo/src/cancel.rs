//! Whether the call this thread runs was cancelled: an async handle's call whose
//! future was dropped (see `crate::asynchronous`). Transactions refuse to begin
//! or commit for it, and a wait for a lock ends.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    /// Set while this thread runs a call of an async handle: whether the call's
    /// future was dropped (see `crate::asynchronous`).
    static CANCELLED: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread as a call that `flag` cancels: from the moment it is
/// set, no transaction begins or commits, and a wait for a lock ends.
#[cfg(feature = "tokio")]
pub(crate) fn cancellable<T>(flag: Arc<AtomicBool>, f: impl FnOnce() -> T) -> T {
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            CANCELLED.with(|c| c.borrow_mut().take());
        }
    }
    CANCELLED.with(|c| *c.borrow_mut() = Some(flag));
    let _clear = Clear;
    f()
}

/// Whether the call this thread runs was cancelled.
pub(crate) fn cancelled() -> bool {
    CANCELLED.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::SeqCst))
    })
}
