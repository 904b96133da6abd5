//! `shim-ctl spawn` starting a shim the way containerd does, for the Go shim and for our shim-runc-v1.

mod common;

use common::*;
use std::path::Path;

/// A shim started by `shim-ctl spawn`: re-parented to us (we are a subreaper), killed and reaped on drop.
struct Spawned {
    pid: i32,
    socket: std::path::PathBuf,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn become_subreaper() {
    // SAFETY: plain prctl; makes orphaned shims our children so we can reap them.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

fn spawn(b: &Bundle, shim: &Path) -> Result<Spawned, String> {
    become_subreaper();
    let o = shim_ctl(&[
        "--json",
        "spawn",
        b.dir.to_str().unwrap(),
        "--namespace",
        NAMESPACE,
        "--workdir",
        b.workdir.to_str().unwrap(),
        "--runtime-root",
        b.runc_root.to_str().unwrap(),
        "--shim",
        shim.to_str().unwrap(),
    ]);
    if !o.status.success() {
        return Err(format!("spawn failed: {}", stderr(&o)));
    }
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    Ok(Spawned {
        pid: v["pid"].as_i64().unwrap() as i32,
        socket: v["socket"].as_str().unwrap().into(),
    })
}

/// create, start, state, exec, kill, wait, delete through the spawned shim.
fn drive(b: &Bundle) -> Result<(), String> {
    let bundle = b.dir.to_str().unwrap();
    let step = |args: &[&str]| -> Result<String, String> {
        let o = shim_ctl(&[&["--bundle", bundle][..], args].concat());
        if o.status.success() {
            Ok(stdout(&o))
        } else {
            Err(format!("{args:?}: {:?}: {}", o.status.code(), stderr(&o)))
        }
    };
    step(&["create", bundle])?;
    step(&["start"])?;
    let state = step(&["--json", "state"])?;
    let state: serde_json::Value = serde_json::from_str(&state).map_err(|e| e.to_string())?;
    if state["status"] != "running" {
        return Err(format!("state after start: {state}"));
    }
    let o = shim_ctl(&[
        "--bundle",
        bundle,
        "exec",
        "--",
        "sh",
        "-c",
        "echo hi; exit 7",
    ]);
    if o.status.code() != Some(7) || stdout(&o) != "hi\n" {
        return Err(format!(
            "exec: {:?} {:?} {}",
            o.status.code(),
            stdout(&o),
            stderr(&o)
        ));
    }
    step(&["kill", "KILL"])?;
    let waited = step(&["wait"])?;
    if !waited.contains("killed by SIGKILL") {
        return Err(format!("wait: {waited}"));
    }
    step(&["delete"])?;
    Ok(())
}

/// The layout `spawn` leaves (address, shim.pid, log fifos, own session), then a whole container
/// lifecycle through the spawned shim.
fn spawn_starts_the_shim_like_containerd_and_it_runs_a_container(kind: Kind) {
    let b = Bundle::new("spawn", &["sleep", "1000"]);
    let shim = spawn(&b, &kind.binary()).unwrap();
    let address = std::fs::read_to_string(b.dir.join("address")).unwrap();
    assert_eq!(
        address,
        format!("unix://{}", b.dir.join("shim.sock").display())
    );
    assert_eq!(
        std::fs::read_to_string(b.dir.join("shim.pid")).unwrap(),
        shim.pid.to_string()
    );
    for fifo in ["shim.stdout.log", "shim.stderr.log"] {
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata(b.workdir.join(fifo))
            .unwrap()
            .file_type()
            .is_fifo());
    }
    // The shim outlived `shim-ctl spawn` and leads its own session.
    let sid = nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(shim.pid))).unwrap();
    assert_eq!(sid.as_raw(), shim.pid);
    let info = json(shim_ctl(&[
        "--bundle",
        b.dir.to_str().unwrap(),
        "--json",
        "info",
    ]));
    assert_eq!(info["shim_pid"].as_i64(), Some(i64::from(shim.pid)));
    drive(&b).unwrap();
}

fn spawn_refuses_a_bundle_without_config_json() {
    let tmp = TempDir::new("spbad");
    let o = shim_ctl(&["spawn", tmp.0.to_str().unwrap(), "--shim", "/bin/true"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("error: usage: "), "{}", stderr(&o));
    assert!(stderr(&o).contains("no config.json"), "{}", stderr(&o));
}

fn spawn_of_a_shim_that_exits_at_once_is_a_transport_error_and_cleans_up() {
    let b = Bundle::new("spdead", &["sleep", "1000"]);
    let o = shim_ctl(&["spawn", b.path(), "--shim", "/bin/false"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("error: transport: shim /bin/false did not answer ("),
        "{}",
        stderr(&o)
    );
    assert!(!b.dir.join("address").exists());
    assert!(!b.dir.join("shim.pid").exists());
}

fn main() {
    let go = missing(Kind::Go);
    trials::run(vec![
        trials::trial(
            "spawn_starts_the_go_shim_like_containerd_and_it_runs_a_container",
            go.as_deref(),
            || spawn_starts_the_shim_like_containerd_and_it_runs_a_container(Kind::Go),
        ),
        trials::trial(
            "spawn_starts_our_shim_like_containerd_and_it_runs_a_container",
            missing(Kind::Ours).as_deref(),
            || spawn_starts_the_shim_like_containerd_and_it_runs_a_container(Kind::Ours),
        ),
        trials::trial(
            "spawn_refuses_a_bundle_without_config_json",
            None,
            spawn_refuses_a_bundle_without_config_json,
        ),
        trials::trial(
            "spawn_of_a_shim_that_exits_at_once_is_a_transport_error_and_cleans_up",
            go.as_deref(),
            spawn_of_a_shim_that_exits_at_once_is_a_transport_error_and_cleans_up,
        ),
    ]);
}
