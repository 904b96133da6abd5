//! shim_core::vital: a vital thread that fails or panics ends the whole process with
//! `vital::DIED`, saying why on stderr and in the log. harness = false: each case runs in a child
//! process (this binary again), since the process exits.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::process::Command;
use std::time::Duration;

/// Set in the child: which vital thread to start ("fails", "ends" or "panics"), and where to log.
const CASE_ENV: &str = "VITAL_TEST_CASE";
const LOG_ENV: &str = "VITAL_TEST_LOG";
/// The child's exit code if the process outlives its vital thread.
const SURVIVED: i32 = 99;

fn main() {
    if let Ok(case) = std::env::var(CASE_ENV) {
        child(&case);
    }
    trials::run_in_order(trials::trials!(
        None;
        a_vital_thread_that_fails_ends_the_process_with_died_and_says_why,
        a_vital_thread_whose_work_is_over_leaves_the_process_running,
        a_vital_thread_that_panics_ends_the_process_with_died_and_says_why,
    ));
}

/// The child: log as the shim does, start the vital thread, and wait for the process to end.
fn child(case: &str) -> ! {
    let log = std::env::var_os(LOG_ENV).map(std::path::PathBuf::from);
    let _ = shim_host::logrus::init(log.as_deref(), &[], true);
    let spawned = match case {
        "fails" => shim_core::vital::spawn("worker", || Err("poll: EBADF".into())),
        "ends" => shim_core::vital::spawn("worker", || Ok(())),
        _ => shim_core::vital::spawn("worker", || panic!("boom")),
    };
    let Ok(handle) = spawned else {
        std::process::exit(SURVIVED + 1);
    };
    if case == "ends" {
        // Its work is over: the thread ends and the process goes on.
        let _ = handle.join();
        std::process::exit(SURVIVED);
    }
    // The vital thread ends the process; this bound only keeps a broken one from hanging.
    std::thread::sleep(Duration::from_secs(60));
    std::process::exit(SURVIVED);
}

/// Run this binary as the child for `case`: (exit code, stderr, log).
fn run_child(case: &str) -> (Option<i32>, String, String) {
    let dir = std::env::temp_dir().join(format!("vital-test-{}-{case}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("log");
    nix::unistd::mkfifo(&log_path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // Held open read-write from before the child starts, so what it logs stays until read.
    let mut log = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&log_path)
        .unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .env(CASE_ENV, case)
        .env(LOG_ENV, &log_path)
        .output()
        .unwrap();
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = log.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        String::from_utf8_lossy(&text).into_owned(),
    )
}

fn a_vital_thread_that_fails_ends_the_process_with_died_and_says_why() {
    let (code, stderr, log) = run_child("fails");
    assert_eq!(code, Some(shim_core::vital::DIED), "stderr: {stderr}");
    assert!(
        stderr.contains("vital thread worker failed: poll: EBADF; exiting"),
        "{stderr}"
    );
    assert!(log.contains("level=error"), "{log}");
    assert!(
        log.contains("msg=\"vital thread died, shim exiting\""),
        "{log}"
    );
    assert!(log.contains("thread=worker"), "{log}");
}

/// An orderly end (its owner dropped the other end of its channel) is no death.
fn a_vital_thread_whose_work_is_over_leaves_the_process_running() {
    let (code, stderr, _) = run_child("ends");
    assert_eq!(code, Some(SURVIVED), "stderr: {stderr}");
}

fn a_vital_thread_that_panics_ends_the_process_with_died_and_says_why() {
    let (code, stderr, log) = run_child("panics");
    assert_eq!(code, Some(shim_core::vital::DIED), "stderr: {stderr}");
    assert!(
        stderr.contains("vital thread worker panicked: boom; exiting"),
        "{stderr}"
    );
    assert!(log.contains("why=\"panicked: boom\""), "{log}");
}
