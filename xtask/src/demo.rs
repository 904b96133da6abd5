//! `cargo xtask demo`: a busybox container through our shim, started standalone, step by step with shim-ctl.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::run::{cargo, step, target_dir, which};

const CONTAINER: &str = "demo";
/// The namespace the standalone shim serves: runc's state goes to `<dir>/runc/<namespace>`.
const NAMESPACE: &str = "demo";
/// What shim-runc-v1 logs (msg="serving") once its ttrpc server accepts calls (see its main.rs).
const SERVING: &str = "serving";
/// How long the shim may take to start serving before the demo gives up.
const START_LIMIT: Duration = Duration::from_secs(30);

pub fn run() -> Result<()> {
    crate::deps::run()?;
    step(
        "build shim-runc-v1 and shim-ctl",
        cargo().args(["build", "-p", "shim-runc-v1", "-p", "shim-ctl"]),
    )?;
    // A shim started by `shim-ctl spawn` outlives shim-ctl (as it outlives containerd's spawn):
    // adopt it so we can reap it.
    // SAFETY: plain prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let mut demo =
        Demo::new(std::env::temp_dir().join(format!("shim-demo-{}", std::process::id())));
    let result = demo.run();
    demo.cleanup();
    result
}

/// The demo's directory, what runs in it, and the environment the echoed `export`s set.
struct Demo {
    dir: PathBuf,
    bin: PathBuf,
    /// The standalone shim, while it runs.
    shim: Option<Child>,
    /// The shim `shim-ctl spawn` started (adopted by us), while it runs.
    spawned: Option<i32>,
    /// `SHIM_CTL_*` variables as exported so far, passed to every shim-ctl we run.
    env: Vec<(&'static str, String)>,
}

impl Demo {
    fn new(dir: PathBuf) -> Demo {
        Demo {
            dir,
            bin: target_dir().join("debug"),
            shim: None,
            spawned: None,
            env: Vec::new(),
        }
    }

    fn bundle(&self) -> PathBuf {
        self.dir.join(CONTAINER)
    }

    fn run(&mut self) -> Result<()> {
        let bundle = self.bundle();
        let runc_root = self.dir.join("runc");
        let workdir = self.dir.join("work");
        let socket = format!("unix://{}", self.dir.join("shim.sock").display());

        say("Lay out an OCI bundle: a busybox rootfs and a config.json from `runc spec`.");
        make_bundle(&bundle)?;
        println!("    {}", bundle.display());

        say("Put the freshly built shim-runc-v1 and shim-ctl first on PATH.");
        println!("  $ export PATH={}:$PATH", shell_word(path(&self.bin)));

        say(
            "Start our shim standalone: it listens where -socket says (containerd instead hands it \
             a listening socket as fd 3). No containerd here, so its events go to /bin/true. \
             Its log is <workdir>/shim.stdout.log, shown as `shim |`.",
        );
        std::fs::create_dir_all(&workdir)?;
        let log = workdir.join("shim.stdout.log");
        mkfifo(&log)?;
        let serving = follow_lines(&log, "shim", Some(SERVING));
        let args = [
            "-namespace",
            NAMESPACE,
            "-workdir",
            path(&workdir),
            "-runtime-root",
            path(&runc_root),
            "-socket",
            &socket,
            "-containerd-binary",
            "/bin/true",
        ];
        let mut shown = vec!["cd", path(&bundle), "&&", "shim-runc-v1"];
        shown.extend(args);
        shown.push("&");
        echo(&shown);
        let child = Command::new(self.bin.join("shim-runc-v1"))
            .args(args)
            .current_dir(&bundle)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting shim-runc-v1")?;
        self.shim = Some(child);
        match serving.recv_timeout(START_LIMIT) {
            Ok(()) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the shim exited before serving"),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!("the shim did not log {SERVING:?} within {START_LIMIT:?}")
            }
        }

        say("Tell shim-ctl once where the shim listens and which bundle it serves.");
        self.export("SHIM_CTL_ADDRESS", socket.clone());
        self.export("SHIM_CTL_BUNDLE", path(&bundle).to_string());

        say(
            "Create the container: the shim runs `runc create`; its stdout goes to a fifo we read.",
        );
        let out = self.dir.join("stdout");
        echo(&["mkfifo", path(&out)]);
        mkfifo(&out)?;
        echo(&["cat", path(&out), "&"]);
        let _ = follow_lines(&out, "container", None);
        let out = path(&out);
        self.ctl(&["create", "--stdout", out, "--stderr", out, path(&bundle)])?;

        say("Start it, then look at it.");
        self.ctl(&["start"])?;
        self.ctl(&["state"])?;

        say("Exec a second process into the running container; shim-ctl exits with its code (5).");
        let code = self.ctl_status(&[
            "exec",
            "--",
            "sh",
            "-c",
            "echo hello from an exec; ps; exit 5",
        ])?;
        println!("    exec exited with {code}");

        say("List the container's processes, with the exec id each pid belongs to.");
        self.ctl(&["pids"])?;

        say("Kill the init with SIGKILL (a shell as pid 1 ignores SIGTERM), wait for it, delete it.");
        self.ctl(&["kill", "KILL"])?;
        self.ctl(&["wait"])?;
        self.ctl(&["state"])?;
        self.ctl(&["delete"])?;

        say("Stop the shim: ask it for its pid, send SIGTERM (it shuts down cleanly and exits 0).");
        self.ctl(&["info"])?;
        let mut child = self.shim.take().context("the shim is not running")?;
        let pid = i32::try_from(child.id())?;
        echo(&["kill", "-TERM", &pid.to_string()]);
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let status = child.wait()?;
        // Its last log lines come before the verdict: the log ends when the shim has exited.
        while let Ok(()) = serving.recv_timeout(START_LIMIT) {}
        println!("    shim {pid}: {status}");

        say(
            "The containerd way instead: `shim-ctl spawn` hands a shim its listening socket as fd 3 \
             and writes <bundle>/address and shim.pid, so the bundle alone finds the shim.",
        );
        self.unset("SHIM_CTL_ADDRESS");
        self.ctl(&["spawn", path(&bundle), "--runtime-root", path(&runc_root)])?;
        let pid_file = bundle.join("shim.pid");
        let pid = std::fs::read_to_string(&pid_file)
            .with_context(|| format!("reading {}", pid_file.display()))?;
        self.spawned = Some(pid.trim().parse().context("shim.pid")?);
        self.ctl(&["info"])?;
        say("As containerd does after Delete: SIGKILL the shim.");
        if let Some(pid) = self.spawned.take() {
            echo(&["kill", "-KILL", &pid.to_string()]);
            kill_and_reap(pid);
            println!("    shim {pid} stopped");
        }

        say("Done: created, started, exec'd into, inspected, killed, waited and deleted through our shim.");
        Ok(())
    }

    /// `export NAME=VALUE`, echoed, and passed to every later shim-ctl.
    fn export(&mut self, name: &'static str, value: String) {
        echo(&["export", &format!("{name}={value}")]);
        self.env.retain(|(n, _)| *n != name);
        self.env.push((name, value));
    }

    fn unset(&mut self, name: &'static str) {
        echo(&["unset", name]);
        self.env.retain(|(n, _)| *n != name);
    }

    /// Runs `shim-ctl ARGS` as echoed; fails on a non-zero exit.
    fn ctl(&self, args: &[&str]) -> Result<()> {
        let code = self.ctl_status(args)?;
        if code != 0 {
            bail!("shim-ctl {} exited with {code}", args.join(" "));
        }
        Ok(())
    }

    fn ctl_status(&self, args: &[&str]) -> Result<i32> {
        let mut shown = vec!["shim-ctl"];
        shown.extend(args);
        echo(&shown);
        let status = self
            .shim_ctl()
            .args(args)
            .stdin(Stdio::null())
            .status()
            .context("run shim-ctl")?;
        Ok(status.code().unwrap_or(128))
    }

    /// shim-ctl with exactly the environment the echoed exports give it (and nothing inherited).
    fn shim_ctl(&self) -> Command {
        let mut cmd = Command::new(self.bin.join("shim-ctl"));
        for var in [
            "SHIM_CTL_ADDRESS",
            "SHIM_CTL_BUNDLE",
            "SHIM_CTL_ID",
            "SHIM_CTL_NAMESPACE",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Whatever happened: kill the shims, force-delete the container, remove the directory.
    fn cleanup(&mut self) {
        if let Some(mut child) = self.shim.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(pid) = self.spawned.take() {
            kill_and_reap(pid);
        }
        let _ = Command::new("runc")
            .arg("--root")
            .arg(self.dir.join("runc").join(NAMESPACE))
            .args(["delete", "--force", CONTAINER])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// SIGKILL and reap a shim we adopted as subreaper (a no-op when it is already gone).
fn kill_and_reap(pid: i32) {
    // SAFETY: plain kill/waitpid on a pid a shim reported; it is our child (we are its subreaper).
    unsafe {
        if libc::kill(pid, libc::SIGKILL) == 0 {
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
}

fn say(text: &str) {
    println!("\n==> {text}");
}

/// Prints `  $ ARGS` as a person would type it (shell metacharacters quoted, `&&`/`&` as is).
fn echo(args: &[&str]) {
    let shown: Vec<String> = args.iter().map(|a| shell_word(a)).collect();
    println!("  $ {}", shown.join(" "));
}

fn shell_word(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:=,+@%".contains(c);
    if arg == "&&" || arg == "&" || (!arg.is_empty() && arg.chars().all(plain)) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
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

/// Prints the lines written to `fifo`, prefixed `<tag> |`, until its last writer closes it.
/// The receiver gets one message when a line contains `ready` (and is dropped at EOF).
fn follow_lines(fifo: &Path, tag: &'static str, ready: Option<&'static str>) -> mpsc::Receiver<()> {
    let fifo = fifo.to_path_buf();
    let (tx, rx) = mpsc::channel();
    // Detached: it ends at EOF, or with the process if the writer never comes.
    std::thread::spawn(move || {
        let Ok(f) = std::fs::File::open(&fifo) else {
            return;
        };
        for line in BufReader::new(f).lines().map_while(Result::ok) {
            println!("    {tag} | {line}");
            if ready.is_some_and(|r| line.contains(r)) {
                let _ = tx.send(());
            }
        }
    });
    rx
}
