//! `cargo xtask demo`: a busybox container through our shim, standalone, step by step with shim-ctl.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::run::{cargo, step, target_dir, which};

const CONTAINER: &str = "demo";

pub fn run() -> Result<()> {
    crate::deps::run()?;
    step(
        "build shim-runc-v1 and shim-ctl",
        cargo().args(["build", "-p", "shim-runc-v1", "-p", "shim-ctl"]),
    )?;
    // The shim outlives shim-ctl (as it outlives containerd's spawn): adopt it so we can reap it.
    // SAFETY: plain prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let dir = std::env::temp_dir().join(format!("shim-demo-{}", std::process::id()));
    let result = demo(&dir);
    cleanup(&dir);
    result
}

fn demo(dir: &Path) -> Result<()> {
    let bundle = dir.join(CONTAINER);
    say("Lay out an OCI bundle: a busybox rootfs and a config.json from `runc spec`.");
    make_bundle(&bundle)?;
    println!("    {}", bundle.display());

    say("Start a shim for it the way containerd does (listening socket on fd 3, address file written).");
    ctl(
        dir,
        &[
            "spawn",
            path(&bundle),
            "--runtime-root",
            path(&dir.join("runc")),
        ],
    )?;

    let out = dir.join("stdout");
    mkfifo(&out)?;
    let reader = follow_output(&out)?;
    say("Create the container: the shim runs `runc create`, its stdout goes to a fifo we read.");
    ctl(
        dir,
        &[
            "create",
            "--stdout",
            path(&out),
            "--stderr",
            path(&out),
            path(&bundle),
        ],
    )?;

    say("Start it, then look at it.");
    ctl(dir, &["start"])?;
    ctl(dir, &["state"])?;

    say("Exec a second process into the running container; shim-ctl exits with its code (5).");
    let code = ctl_status(
        dir,
        &[
            "exec",
            "--",
            "sh",
            "-c",
            "echo hello from an exec; ps; exit 5",
        ],
    )?;
    println!("    exec exited with {code}");

    say("List the container's processes, with the exec id each pid belongs to.");
    ctl(dir, &["pids"])?;

    say("Kill the init with SIGKILL (a shell as pid 1 ignores SIGTERM), wait for it, delete it.");
    ctl(dir, &["kill", "KILL"])?;
    ctl(dir, &["wait"])?;
    ctl(dir, &["state"])?;
    ctl(dir, &["delete"])?;

    say("As containerd does after Delete: ask the shim for its pid and SIGKILL it.");
    let info = Command::new(shim_ctl())
        .args(["--bundle", path(&bundle), "--json", "info"])
        .output()?;
    let pid = serde_json::from_slice::<serde_json::Value>(&info.stdout)
        .ok()
        .and_then(|v| v["shim_pid"].as_i64())
        .context("shim-ctl info did not give the shim pid")?;
    // SAFETY: plain kill/waitpid on the pid the shim reported (adopted by us as subreaper).
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
        libc::waitpid(pid as i32, std::ptr::null_mut(), 0);
    }
    println!("    shim {pid} stopped");
    let _ = reader.join();
    say("Done: created, started, exec'd into, inspected, killed, waited and deleted through our shim.");
    Ok(())
}

fn say(text: &str) {
    println!("\n==> {text}");
}

fn shim_ctl() -> PathBuf {
    target_dir().join("debug/shim-ctl")
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// Run `shim-ctl --bundle <bundle> ARGS`, echoing the command line; fail on non-zero exit.
fn ctl(dir: &Path, args: &[&str]) -> Result<()> {
    let code = ctl_status(dir, args)?;
    if code != 0 {
        bail!("shim-ctl {} exited with {code}", args.join(" "));
    }
    Ok(())
}

fn ctl_status(dir: &Path, args: &[&str]) -> Result<i32> {
    let bundle = dir.join(CONTAINER);
    let mut cmd = Command::new(shim_ctl());
    if args[0] != "spawn" && args[0] != "create" {
        cmd.args(["--bundle", path(&bundle)]);
    }
    let shown: Vec<String> = args
        .iter()
        .map(|a| {
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.to_string()
            }
        })
        .collect();
    println!("  $ shim-ctl {}", shown.join(" "));
    let status = cmd
        .args(args)
        .stdin(Stdio::null())
        .status()
        .context("run shim-ctl")?;
    Ok(status.code().unwrap_or(128))
}

fn make_bundle(bundle: &Path) -> Result<()> {
    let bin = bundle.join("rootfs/bin");
    std::fs::create_dir_all(&bin)?;
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .context("busybox not found")?;
    std::fs::copy(busybox, bin.join("busybox"))?;
    for tool in ["sh", "echo", "sleep", "ps", "cat", "ls"] {
        std::os::unix::fs::symlink("busybox", bin.join(tool))?;
    }
    let runc = which("runc").context("runc not found: run cargo xtask deps")?;
    let status = Command::new(runc)
        .arg("spec")
        .current_dir(bundle)
        .status()?;
    if !status.success() {
        bail!("runc spec failed");
    }
    let config = bundle.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&config)?)?;
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!([
        "sh",
        "-c",
        "echo hello from the container; while true; do sleep 1; done"
    ]);
    spec["process"]["env"] = serde_json::json!(["PATH=/bin"]);
    spec["root"]["readonly"] = false.into();
    spec["linux"]["cgroupsPath"] = format!("/shim-demo-{}", std::process::id()).into();
    std::fs::write(&config, serde_json::to_vec_pretty(&spec)?)?;
    Ok(())
}

fn mkfifo(p: &Path) -> Result<()> {
    let c = std::ffi::CString::new(path(p))?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        bail!(
            "mkfifo {}: {}",
            p.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Print the container's output as it arrives, prefixed, until the shim closes the fifo.
fn follow_output(fifo: &Path) -> Result<std::thread::JoinHandle<()>> {
    let fifo = fifo.to_path_buf();
    Ok(std::thread::spawn(move || {
        if let Ok(f) = std::fs::File::open(&fifo) {
            for line in BufReader::new(f).lines().map_while(Result::ok) {
                println!("    container | {line}");
            }
        }
    }))
}

fn cleanup(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
