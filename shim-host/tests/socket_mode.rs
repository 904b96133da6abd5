//! Binding a server's socket file 0600 leaves the process's umask alone: other threads creating
//! files meanwhile (a test making a rootfs, a shim making a bundle dir) get their usual modes.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use shim_host::server::{self, Listen, Respond, Service};

/// Rounds of binding; the dir-making thread runs for as long as they last.
const ROUNDS: usize = 2000;

/// A service that serves nothing: only the listener matters here.
struct Nothing;

impl Service for Nothing {
    fn serves(&self, _: &str) -> bool {
        false
    }
    fn call(&self, _: &str, _: &str, _: &[u8], _: Box<dyn Respond>) {}
}

/// The process's umask, read without changing it (the umask call would race the threads here).
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn binding_a_socket_never_changes_the_mode_of_dirs_other_threads_create() {
    let tmp = std::env::temp_dir().join(format!("shim-host-socket-mode-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let expected = 0o777 & !umask();
    let binding = Arc::new(AtomicBool::new(true));

    let dirs = {
        let (tmp, binding) = (tmp.clone(), Arc::clone(&binding));
        std::thread::spawn(move || {
            let mut wrong = Vec::new();
            let mut n = 0;
            while binding.load(Ordering::Relaxed) {
                let dir = tmp.join(format!("dir-{n}"));
                std::fs::create_dir(&dir).unwrap();
                let got = mode(&dir);
                if got != expected {
                    wrong.push(format!("{}: {got:o}", dir.display()));
                }
                std::fs::remove_dir(&dir).unwrap();
                n += 1;
            }
            (n, wrong)
        })
    };
    let sock = tmp.join("ttrpc.sock");
    let address = format!("unix://{}", sock.display());
    for _ in 0..ROUNDS {
        let bound = server::bind(Listen::Address(&address), Arc::new(Nothing));
        assert!(bound.is_ok(), "binding {address}");
        assert_eq!(mode(&sock), 0o600, "the socket file's mode");
        drop(bound);
        std::fs::remove_file(&sock).unwrap();
    }
    binding.store(false, Ordering::Relaxed);
    let (made, wrong) = dirs.join().unwrap();
    let _ = std::fs::remove_dir_all(&tmp);

    assert!(made > 0, "the other thread made no dir");
    assert!(
        wrong.is_empty(),
        "{} of {made} dirs made while sockets were bound did not get mode {expected:o}: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}
