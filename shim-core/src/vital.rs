//! Vital threads: a thread the shim cannot live without ends the whole process, loudly, when it
//! fails or panics, so containerd sees the shim die and cleans up instead of waiting forever.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::{self, JoinHandle};

/// Exit code of a shim whose vital thread died.
pub const DIED: i32 = 70;

/// Spawn `f` as the vital thread `name`. `Ok(())` is an orderly end (its work is over: the
/// owner dropped its end); if it returns `Err` or panics, the reason is logged and the process
/// exits with [`DIED`].
pub fn spawn<F>(name: &str, f: F) -> std::io::Result<JoinHandle<()>>
where
    F: FnOnce() -> Result<(), String> + Send + 'static,
{
    let owned = name.to_string();
    thread::Builder::new()
        .name(owned.clone())
        .spawn(move || run(&owned, f))
}

/// Run `f` as vital work `name` on the calling thread (a shim's main thread serving, say), with
/// the same guard as [`spawn`]: `Ok(())` returns, `Err` or a panic ends the process with [`DIED`].
pub fn run<F>(name: &str, f: F)
where
    F: FnOnce() -> Result<(), String>,
{
    let why = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => return,
        Ok(Err(e)) => format!("failed: {e}"),
        Err(p) => format!("panicked: {}", panic_text(p.as_ref())),
    };
    die(name, &why);
}

/// Log why vital thread `name` is gone and end the process.
pub fn die(name: &str, why: &str) -> ! {
    log::error!(thread:% = name, why:% = why; "vital thread died, shim exiting");
    log::logger().flush();
    eprintln!("shim: vital thread {name} {why}; exiting");
    std::process::exit(DIED);
}

/// The message of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}
