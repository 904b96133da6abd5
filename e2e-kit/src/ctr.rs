//! Small helpers of the rows of any checklist: shell argv, task status, a ctr under a pty.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::containerd::{Containerd, CTR_BOUND};
use crate::proc::{self, Output};

/// Waits inside the container until the pty has a size (ctr sends it only after start), then
/// prints it as `size=<rows> <cols>`. Bounded to 10 s.
pub const PRINT_PTY_SIZE: &str = "i=0; while :; do s=$(stty size 2>/dev/null); \
     [ -n \"$s\" ] && [ \"$s\" != \"0 0\" ] && break; i=$((i+1)); [ $i -ge 100 ] && break; \
     sleep 0.1; done; echo \"size=$s\"";

/// `/bin/sh -c <script>` as an argv.
pub fn sh(script: &str) -> Vec<&str> {
    vec!["/bin/sh", "-c", script]
}

/// The STATUS column of `ctr t ls` for `id` (`RUNNING`, `PAUSED`, `STOPPED`), `None` if absent.
pub fn task_status(cd: &Containerd, id: &str) -> Option<String> {
    let ls = cd.ctr(&["t", "ls"]);
    ls.expect_code(0);
    ls.stdout.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.first() == Some(&id)).then(|| f.last().unwrap_or(&"").to_string())
    })
}

/// Runs a ctr command line under `script` so it has a pty; `stty` sets the outer size first.
pub fn with_pty(cd: &Containerd, stty: &str, args: &[String]) -> Output {
    let line = format!("stty {stty}; {}", cd.ctr_shell(args));
    let mut cmd = Command::new("script");
    cmd.args(["-eqc", &line, "/dev/null"]);
    proc::run(cmd, CTR_BOUND, None)
}

/// Re-check `probe` until it yields, within `bound`. Only for what offers no event to wait on
/// (containerd's log file, a file a logger writes).
pub fn wait_text(bound: Duration, probe: impl Fn() -> Option<String>) -> Option<String> {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
