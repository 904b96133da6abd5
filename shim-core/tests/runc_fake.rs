//! Runc against a fake runc script: exact argv of every command, error wording, drain and timeout.

#[path = "fixtures/common.rs"]
mod common;

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::TempDir;
use shim_core::runc::{
    CheckpointOpts, CreateOpts, ExecOpts, RestoreOpts, Runc, RuncConfig, RuncOp, RuncStdio,
};

static REAPER: OnceLock<reaper::Reaper> = OnceLock::new();

/// A fake runc in a temp dir: records argv (one per line), env and stdin, then runs `behaviour`
/// (shell; `$log` is the --log path, `$D` the dir).
struct Fake {
    dir: TempDir,
}

const SCRIPT: &str = r#"#!/bin/sh
D="$(dirname "$0")"
: > "$D/argv"
for a in "$@"; do printf '%s\n' "$a" >> "$D/argv"; done
env > "$D/env"
log=""; prev=""
for a in "$@"; do
  [ "$prev" = "--log" ] && log="$a"
  if [ "$prev" = "--process" ]; then cp "$a" "$D/process.json"; stat -c '%a' "$a" > "$D/process.mode"; fi
  prev="$a"
done
case " $* " in *" update "*) cat > "$D/stdin";; esac
. "$D/behaviour"
"#;

impl Fake {
    fn new(behaviour: &str) -> Fake {
        let dir = TempDir::new("runc-fake");
        std::fs::write(dir.join("runc"), SCRIPT).unwrap();
        std::fs::set_permissions(dir.join("runc"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("behaviour"), behaviour).unwrap();
        Fake { dir }
    }

    fn config(&self) -> RuncConfig {
        RuncConfig {
            binary: self.dir.join("runc"),
            root: PathBuf::from("/run/test-root/ns"),
            log: self.dir.join("log.json"),
            criu: None,
            systemd_cgroup: false,
            timeout: Duration::from_secs(30),
        }
    }

    fn runc(&self) -> Runc {
        self.runc_with(self.config())
    }

    fn runc_with(&self, cfg: RuncConfig) -> Runc {
        Runc::new(cfg, REAPER.get().unwrap().clone())
    }

    fn argv(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("argv"))
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    /// argv after the global flags, which must be exactly the usual ones.
    fn command(&self) -> Vec<String> {
        let argv = self.argv();
        let log = self.dir.join("log.json").display().to_string();
        assert_eq!(
            argv[..6],
            [
                "--root",
                "/run/test-root/ns",
                "--log",
                &log,
                "--log-format",
                "json"
            ]
        );
        argv[6..].to_vec()
    }
}

fn v(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn global_flags_include_criu_and_systemd_cgroup() {
    let fake = Fake::new("exit 0");
    let mut cfg = fake.config();
    cfg.criu = Some(PathBuf::from("/usr/sbin/criu"));
    cfg.systemd_cgroup = true;
    fake.runc_with(cfg).start("c1").unwrap();
    let log = fake.dir.join("log.json").display().to_string();
    assert_eq!(
        fake.argv(),
        v(&[
            "--root",
            "/run/test-root/ns",
            "--log",
            &log,
            "--log-format",
            "json",
            "--criu",
            "/usr/sbin/criu",
            "--systemd-cgroup",
            "start",
            "c1"
        ])
    );
}

fn create_adds_console_socket_no_pivot_and_no_new_keyring_only_when_asked() {
    let fake = Fake::new("exit 0");
    let runc = fake.runc();
    let opts = CreateOpts {
        pid_file: "/b/init.pid".into(),
        ..Default::default()
    };
    runc.create("c1", Path::new("/b"), &opts, RuncStdio::captured())
        .unwrap();
    assert_eq!(
        fake.command(),
        v(&[
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/b/init.pid",
            "c1"
        ])
    );
    let opts = CreateOpts {
        pid_file: "/b/init.pid".into(),
        console_socket: Some("/tmp/pty1/pty.sock".into()),
        no_pivot: true,
        no_new_keyring: true,
    };
    runc.create("c1", Path::new("/b"), &opts, RuncStdio::captured())
        .unwrap();
    assert_eq!(
        fake.command(),
        v(&[
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/b/init.pid",
            "--console-socket",
            "/tmp/pty1/pty.sock",
            "--no-pivot",
            "--no-new-keyring",
            "c1"
        ])
    );
}

fn start_kill_delete_pause_and_resume_pass_go_runc_argv() {
    let fake = Fake::new("exit 0");
    let runc = fake.runc();
    runc.start("c1").unwrap();
    assert_eq!(fake.command(), v(&["start", "c1"]));
    runc.kill("c1", 15, false).unwrap();
    assert_eq!(fake.command(), v(&["kill", "c1", "15"]));
    runc.kill("c1", 9, true).unwrap();
    assert_eq!(fake.command(), v(&["kill", "--all", "c1", "9"]));
    runc.delete("c1", false).unwrap();
    assert_eq!(fake.command(), v(&["delete", "c1"]));
    runc.delete("c1", true).unwrap();
    assert_eq!(fake.command(), v(&["delete", "--force", "c1"]));
    runc.pause("c1").unwrap();
    assert_eq!(fake.command(), v(&["pause", "c1"]));
    runc.resume("c1").unwrap();
    assert_eq!(fake.command(), v(&["resume", "c1"]));
}

fn exec_passes_a_private_process_file_and_removes_it() {
    let fake = Fake::new("exit 0");
    let json = br#"{"args":["sh"],"cwd":"/"}"#;
    let opts = ExecOpts {
        pid_file: "/b/e1.pid".into(),
        console_socket: None,
    };
    fake.runc()
        .exec("c1", json, &opts, RuncStdio::captured())
        .unwrap();
    let cmd = fake.command();
    assert_eq!(cmd.len(), 7, "{cmd:?}");
    assert_eq!(cmd[0], "exec");
    assert_eq!(cmd[1], "--process");
    let name = cmd[2]
        .strip_prefix("/tmp/runc-process")
        .expect("process file in /tmp");
    assert!(
        !name.is_empty() && name.chars().all(|c| c.is_ascii_digit()),
        "{}",
        cmd[2]
    );
    assert_eq!(cmd[3..], v(&["--detach", "--pid-file", "/b/e1.pid", "c1"]));
    assert_eq!(std::fs::read(fake.dir.join("process.json")).unwrap(), json);
    assert_eq!(
        std::fs::read_to_string(fake.dir.join("process.mode"))
            .unwrap()
            .trim(),
        "600"
    );
    assert!(
        !Path::new(&cmd[2]).exists(),
        "process file removed after runc returned"
    );

    let opts = ExecOpts {
        pid_file: "/b/e2.pid".into(),
        console_socket: Some("/tmp/pty2/pty.sock".into()),
    };
    fake.runc()
        .exec("c1", json, &opts, RuncStdio::captured())
        .unwrap();
    let cmd = fake.command();
    assert_eq!(
        cmd[3..],
        v(&[
            "--console-socket",
            "/tmp/pty2/pty.sock",
            "--detach",
            "--pid-file",
            "/b/e2.pid",
            "c1"
        ])
    );
}

fn ps_parses_the_json_pid_array() {
    let fake = Fake::new("echo '[12,34]'; echo 'noise' >&2");
    assert_eq!(fake.runc().ps("c1").unwrap(), vec![12, 34]);
    assert_eq!(fake.command(), v(&["ps", "--format", "json", "c1"]));
    let fake = Fake::new("echo null");
    assert_eq!(fake.runc().ps("c1").unwrap(), Vec::<u32>::new());
    let fake = Fake::new("echo garbage");
    let err = fake.runc().ps("c1").unwrap_err();
    assert_eq!(err.op, RuncOp::Ps);
}

fn update_pipes_the_resources_to_stdin() {
    let fake = Fake::new("exit 0");
    let json = br#"{"memory":{"limit":1048576}}"#;
    fake.runc().update("c1", json).unwrap();
    assert_eq!(fake.command(), v(&["update", "--resources", "-", "c1"]));
    assert_eq!(std::fs::read(fake.dir.join("stdin")).unwrap(), json);
}

fn checkpoint_argv_leaves_running_unless_exit() {
    let fake = Fake::new("exit 0");
    let mut opts = CheckpointOpts {
        image_path: "/ck/1".into(),
        work_path: "/w/criu-work".into(),
        ..Default::default()
    };
    fake.runc().checkpoint("c1", &opts).unwrap();
    assert_eq!(
        fake.command(),
        v(&[
            "checkpoint",
            "--image-path",
            "/ck/1",
            "--work-path",
            "/w/criu-work",
            "--leave-running",
            "c1"
        ])
    );
    opts.exit = true;
    opts.open_tcp = true;
    opts.external_unix_sockets = true;
    opts.terminal = true;
    opts.file_locks = true;
    opts.empty_namespaces = vec!["network".into(), "ipc".into()];
    fake.runc().checkpoint("c1", &opts).unwrap();
    assert_eq!(
        fake.command(),
        v(&[
            "checkpoint",
            "--image-path",
            "/ck/1",
            "--work-path",
            "/w/criu-work",
            "--tcp-established",
            "--ext-unix-sk",
            "--shell-job",
            "--file-locks",
            "--empty-ns",
            "network",
            "--empty-ns",
            "ipc",
            "c1"
        ])
    );
}

fn restore_argv_uses_single_dash_no_subreaper() {
    let fake = Fake::new("exit 0");
    let opts = RestoreOpts {
        image_path: "/ck".into(),
        work_path: "/w".into(),
        pid_file: "/b/init.pid".into(),
        ..Default::default()
    };
    fake.runc()
        .restore("c1", Path::new("/b"), &opts, RuncStdio::captured())
        .unwrap();
    assert_eq!(
        fake.command(),
        v(&[
            "restore",
            "--image-path",
            "/ck",
            "--work-path",
            "/w",
            "--detach",
            "--pid-file",
            "/b/init.pid",
            "-no-subreaper",
            "--bundle",
            "/b",
            "c1"
        ])
    );
    let opts = RestoreOpts {
        image_path: "/ck".into(),
        work_path: "/w".into(),
        parent_path: Some("/p".into()),
        pid_file: "/b/init.pid".into(),
        console_socket: Some("/s".into()),
        no_pivot: true,
    };
    fake.runc()
        .restore("c1", Path::new("/b"), &opts, RuncStdio::captured())
        .unwrap();
    assert_eq!(
        fake.command(),
        v(&[
            "restore",
            "--image-path",
            "/ck",
            "--work-path",
            "/w",
            "--parent-path",
            "/p",
            "--detach",
            "--pid-file",
            "/b/init.pid",
            "--console-socket",
            "/s",
            "--no-pivot",
            "-no-subreaper",
            "--bundle",
            "/b",
            "c1"
        ])
    );
}

const LOG_LINES: &str = r#"
printf '%s\n' '{"level":"warning","msg":"w1","time":"t"}' >> "$log"
printf '%s\n' '{"level":"error","msg":"first error","time":"t"}' >> "$log"
printf '%s\n' '{"level":"error","msg":" container_linux.go:380: starting container process caused: exec: \"/bin/nope\": no such file \n","time":"t"}' >> "$log"
printf '%s\n' '{"level":"info","msg":"after","time":"t"}' >> "$log"
echo 'this goes to stderr' >&2
exit 1
"#;

fn error_is_the_last_error_line_of_log_json_with_the_op_prefix() {
    let fake = Fake::new(LOG_LINES);
    let opts = CreateOpts {
        pid_file: "/b/init.pid".into(),
        ..Default::default()
    };
    let err = fake
        .runc()
        .create("c1", Path::new("/b"), &opts, RuncStdio::captured())
        .unwrap_err();
    let msg = r#"container_linux.go:380: starting container process caused: exec: "/bin/nope": no such file"#;
    assert_eq!(err.op, RuncOp::Create);
    assert_eq!(err.message, msg);
    assert_eq!(err.to_string(), format!("OCI runtime create failed: {msg}"));
    for (op, prefix) in [
        (RuncOp::Start, "OCI runtime start failed: "),
        (RuncOp::Pause, "OCI runtime pause failed: "),
        (RuncOp::Resume, "OCI runtime resume failed: "),
        (RuncOp::Delete, "failed to delete task: "),
    ] {
        let runc = fake.runc();
        let err = match op {
            RuncOp::Start => runc.start("c1"),
            RuncOp::Pause => runc.pause("c1"),
            RuncOp::Resume => runc.resume("c1"),
            _ => runc.delete("c1", false),
        }
        .unwrap_err();
        assert_eq!(err.to_string(), format!("{prefix}{msg}"));
    }
}

fn stale_error_lines_from_earlier_calls_are_ignored() {
    let fake = Fake::new("echo 'it broke' >&2; exit 2");
    std::fs::write(
        fake.dir.join("log.json"),
        "{\"level\":\"error\",\"msg\":\"stale\",\"time\":\"t\"}\n",
    )
    .unwrap();
    let err = fake.runc().start("c1").unwrap_err();
    let bin = fake.dir.join("runc").display().to_string();
    assert_eq!(
        err.message,
        format!("{bin} did not terminate successfully: exit status 2: it broke")
    );
    assert_eq!(err.to_string(), format!("OCI runtime start failed: {bin} did not terminate successfully: exit status 2: it broke"));
}

fn exit_status_text_without_output() {
    let fake = Fake::new("exit 3");
    let err = fake.runc().pause("c1").unwrap_err();
    let bin = fake.dir.join("runc").display().to_string();
    assert_eq!(
        err.to_string(),
        format!("OCI runtime pause failed: {bin} did not terminate successfully: exit status 3")
    );
}

fn kill_and_update_errors_are_the_raw_go_runc_text() {
    let fake = Fake::new("echo '{\"level\":\"error\",\"msg\":\"container not running\"}' >> \"$log\"; echo 'container not running' >&2; exit 1");
    let bin = fake.dir.join("runc").display().to_string();
    let err = fake.runc().kill("c1", 9, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{bin} did not terminate successfully: exit status 1: container not running")
    );
    let err = fake.runc().update("c1", b"{}").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{bin} did not terminate successfully: exit status 1: container not running")
    );
}

fn does_not_exist_is_recognised() {
    let fake = Fake::new(
        "echo '{\"level\":\"error\",\"msg\":\"container does not exist\"}' >> \"$log\"; exit 1",
    );
    let err = fake.runc().delete("c1", false).unwrap_err();
    assert!(err.is_not_exist(), "{err}");
    assert_eq!(
        err.to_string(),
        "failed to delete task: container does not exist"
    );
}

fn timeout_kills_runc_and_says_so() {
    let fake = Fake::new("echo started; exec sleep 60");
    let mut cfg = fake.config();
    cfg.timeout = Duration::from_millis(300);
    let err = fake.runc_with(cfg).start("c1").unwrap_err();
    assert!(
        err.message.contains("timed out after 0.3s and was killed"),
        "{err}"
    );
    assert!(err.message.ends_with(": started"), "{err}");
}

fn large_output_on_both_streams_does_not_deadlock() {
    let fake = Fake::new(
        "head -c 300000 /dev/zero | tr '\\0' o; head -c 300000 /dev/zero | tr '\\0' e >&2; exit 4",
    );
    let err = fake.runc().kill("c1", 9, false).unwrap_err();
    assert!(
        err.message.contains("exit status 4: "),
        "{}",
        &err.message[..100]
    );
    assert!(err.message.matches('o').count() >= 300000);
    assert!(err.message.matches('e').count() >= 300000);
}

fn given_stdout_is_runcs_stdout_and_our_copy_is_closed() {
    let fake = Fake::new("echo to-the-container; echo err-too >&2");
    let (mut out_r, out_w) = os_pipe::pipe().unwrap();
    let (mut err_r, err_w) = os_pipe::pipe().unwrap();
    let stdio = RuncStdio {
        stdin: None,
        stdout: Some(OwnedFd::from(out_w)),
        stderr: Some(OwnedFd::from(err_w)),
    };
    fake.runc()
        .create("c1", Path::new("/b"), &CreateOpts::default(), stdio)
        .unwrap();
    // read_to_string returns only if no copy of the write ends is left open anywhere.
    let mut s = String::new();
    out_r.read_to_string(&mut s).unwrap();
    assert_eq!(s, "to-the-container\n");
    s.clear();
    err_r.read_to_string(&mut s).unwrap();
    assert_eq!(s, "err-too\n");
    assert_eq!(fake.command(), v(&["create", "--bundle", "/b", "c1"]));
}

fn notify_socket_is_not_passed_to_runc() {
    let fake = Fake::new("exit 0");
    fake.runc().start("c1").unwrap();
    let env = std::fs::read_to_string(fake.dir.join("env")).unwrap();
    assert!(!env.contains("NOTIFY_SOCKET"), "{env}");
    assert!(
        env.contains("SHIM_CORE_TEST_MARK=1"),
        "the rest of the environment is kept"
    );
}

/// A runc that is not there is worded as the Go shim words it (Go's os/exec error, after Go's
/// failed attempt to read a log.json runc never wrote), as containerd's own tests expect:
/// `OCI runtime create failed: unable to retrieve OCI runtime error (open <bundle>/log.json: no
/// such file or directory): exec: "no-runc": executable file not found in $PATH`.
fn missing_runc_on_path_is_worded_like_go_exec() {
    let fake = Fake::new("exit 0");
    let name = format!("no-runc-{}", std::process::id());
    let mut cfg = fake.config();
    cfg.binary = PathBuf::from(&name);
    let log = fake.dir.join("log.json").display().to_string();
    let not_found = format!("exec: \"{name}\": executable file not found in $PATH");
    let opts = CreateOpts {
        pid_file: "/b/init.pid".into(),
        ..Default::default()
    };
    let err = fake
        .runc_with(cfg.clone())
        .create("c1", Path::new("/b"), &opts, RuncStdio::captured())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "OCI runtime create failed: unable to retrieve OCI runtime error \
             (open {log}: no such file or directory): {not_found}"
        )
    );
    // Commands Go does not explain from the log give the bare exec error.
    let err = fake
        .runc_with(cfg.clone())
        .kill("c1", 9, false)
        .unwrap_err();
    assert_eq!(err.to_string(), not_found);
    // Once the log exists (an exec after the create), only the exec error is left.
    std::fs::write(fake.dir.join("log.json"), "").unwrap();
    let exec = ExecOpts {
        pid_file: "/b/e1.pid".into(),
        console_socket: None,
    };
    let err = fake
        .runc_with(cfg)
        .exec("c1", b"{}", &exec, RuncStdio::captured())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("OCI runtime exec failed: {not_found}")
    );
}

/// A runc named by a path that does not exist (or cannot be executed) is Go's fork/exec error.
fn missing_runc_at_a_path_is_worded_like_go_fork_exec() {
    let fake = Fake::new("exit 0");
    let log = fake.dir.join("log.json").display().to_string();
    let missing = fake.dir.join("no-runc");
    let mut cfg = fake.config();
    cfg.binary = missing.clone();
    let err = fake.runc_with(cfg.clone()).start("c1").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "OCI runtime start failed: unable to retrieve OCI runtime error \
             (open {log}: no such file or directory): fork/exec {}: no such file or directory",
            missing.display()
        )
    );
    std::fs::write(&missing, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&missing, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = fake.runc_with(cfg).pause("c1").unwrap_err();
    assert!(
        err.to_string().ends_with(&format!(
            "fork/exec {}: permission denied",
            missing.display()
        )),
        "{err}"
    );
}

fn runc_children_get_pdeathsig_kill() {
    // The script execs python3 (pdeathsig survives execve) to read PR_GET_PDEATHSIG (2).
    let probe = "import ctypes; s = ctypes.c_int(); ctypes.CDLL(None).prctl(2, ctypes.byref(s)); print(s.value)";
    let fake = Fake::new(&format!("exec python3 -c '{probe}' > \"$D/pdeathsig\""));
    fake.runc().start("c1").unwrap();
    let sig = std::fs::read_to_string(fake.dir.join("pdeathsig")).unwrap();
    assert_eq!(sig.trim(), libc::SIGKILL.to_string());
}

fn main() {
    std::env::remove_var("XDG_RUNTIME_DIR");
    std::env::set_var("NOTIFY_SOCKET", "/run/notify-test.sock");
    std::env::set_var("SHIM_CORE_TEST_MARK", "1");
    let (reaper, _signals) = reaper::Reaper::builder().start().expect("start the reaper");
    REAPER.set(reaper).ok();
    let mut trials = trials::trials!(
        None;
        global_flags_include_criu_and_systemd_cgroup,
        create_adds_console_socket_no_pivot_and_no_new_keyring_only_when_asked,
        start_kill_delete_pause_and_resume_pass_go_runc_argv,
        exec_passes_a_private_process_file_and_removes_it,
        ps_parses_the_json_pid_array,
        update_pipes_the_resources_to_stdin,
        checkpoint_argv_leaves_running_unless_exit,
        restore_argv_uses_single_dash_no_subreaper,
        error_is_the_last_error_line_of_log_json_with_the_op_prefix,
        stale_error_lines_from_earlier_calls_are_ignored,
        exit_status_text_without_output,
        kill_and_update_errors_are_the_raw_go_runc_text,
        does_not_exist_is_recognised,
        timeout_kills_runc_and_says_so,
        large_output_on_both_streams_does_not_deadlock,
        given_stdout_is_runcs_stdout_and_our_copy_is_closed,
        notify_socket_is_not_passed_to_runc,
        missing_runc_on_path_is_worded_like_go_exec,
        missing_runc_at_a_path_is_worded_like_go_fork_exec,
    );
    let no_python = (!Path::new("/usr/bin/python3").exists()).then_some("/usr/bin/python3");
    trials.push(trials::trial(
        "runc_children_get_pdeathsig_kill",
        no_python,
        runc_children_get_pdeathsig_kill,
    ));
    trials::run_in_order(trials);
}
