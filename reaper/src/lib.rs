//! reaper: make this process a subreaper, reap every child, and deliver each exit exactly once.
//!
//! One thread per process reaps with `waitpid(-1, WNOHANG)` whenever SIGCHLD arrives (recorded by
//! the signal handler in a bitmask, with a self-pipe to wake the thread; that thread unblocks the
//! handled signals, so they are taken even when every other thread blocks them). Exits go to the
//! waiters (or callbacks, [`Reaper::watch_with_since`]) registered for that pid, or into a bounded buffer of unclaimed exits that
//! [`Reaper::watch`] can claim later, and then to every [`Reaper::subscribe_all`] receiver.

mod error;
mod exit;
mod reaper;
mod registry;
mod waiter;
mod wakeup;

pub use error::Error;
pub use exit::Exit;
pub use reaper::{restore_child_signals, Builder, Reaper, Spawned};
pub use waiter::ExitWaiter;
