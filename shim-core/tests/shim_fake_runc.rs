//! Shim over a scripted runc: runc calls that hang, fail or meet a paused init's exit on demand,
//! which real runc cannot stage here; the "container" is a plain child of the fake. shim-core's
//! `log` records are captured, to see that the failures it goes on after are logged.

#[path = "fixtures/common.rs"]
mod common;
#[path = "fixtures/recorder.rs"]
mod recorder;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::sync::mpsc::channel;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::{mkfifo, TempDir};
use recorder::{Recorder, Sink};
use shim_core::config::DEFAULT_SETTLE_LIMIT;
use shim_core::io::IoSpec;
use shim_core::{Config, CreateOptions, CreateRequest, Error, ExecRequest, SingleShim, Status};

static REAPER: OnceLock<reaper::Reaper> = OnceLock::new();

/// Bound on anything that should happen: a hang fails the test instead of stalling the suite.
const HANG: Duration = Duration::from_secs(60);

/// The fake: logs `<command> <args>` per call to `calls`, then sources `$D/<command>` if present
/// (`$log` is runc's `--log`).
/// `create` and `exec` start `$D/container` in the background with runc's stdio and write its pid
/// (then source `$D/<command>` too, which may spoil the pid file).
const SCRIPT: &str = r#"#!/bin/sh
D="$(dirname "$0")"
log="$4"
shift 6 # --root R --log L --log-format json
cmd="$1"; shift
echo "$cmd $*" >> "$D/calls"
if [ "$cmd" = create ] || [ "$cmd" = exec ]; then
  prev=""
  for a in "$@"; do [ "$prev" = "--pid-file" ] && pidfile="$a"; prev="$a"; done
  # Without job control a background job's stdin is /dev/null: hand it runc's stdin as fd 3.
  exec 3<&0
  sh "$D/container" <&3 3<&- &
  echo $! > "$pidfile"
  [ -f "$D/$cmd" ] && . "$D/$cmd"
  exit 0
fi
[ -f "$D/$cmd" ] && . "$D/$cmd"
exit 0
"#;

struct Fake {
    dir: TempDir,
    shim: Arc<SingleShim>,
    events: Arc<Recorder>,
}

impl Fake {
    /// A shim whose runc is the fake; the container runs `container` (sh).
    fn new(container: &str) -> Fake {
        let dir = TempDir::new("shim-fake-runc");
        std::fs::write(dir.join("runc"), SCRIPT).unwrap();
        std::fs::set_permissions(dir.join("runc"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("container"), container).unwrap();
        std::fs::create_dir_all(dir.join("bundle")).unwrap();
        let events = Arc::new(Recorder::default());
        let config = Config {
            namespace: "fake".into(),
            workdir: dir.join("work"),
            runtime_root: dir.join("root"),
            criu: None,
            systemd_cgroup: false,
            runc_timeout: HANG,
            settle_limit: DEFAULT_SETTLE_LIMIT,
            watch_oom: false,
        };
        let reaper = REAPER.get().unwrap().clone();
        let shim = SingleShim::new(config, reaper, Box::new(Sink(Arc::clone(&events)))).unwrap();
        Fake {
            dir,
            shim: Arc::new(shim),
            events,
        }
    }

    /// What `runc <command>` does (sourced shell).
    fn behave(&self, command: &str, body: &str) {
        std::fs::write(self.dir.join(command), body).unwrap();
    }

    fn create(&self, io: IoSpec) -> u32 {
        self.shim
            .create(CreateRequest {
                id: "c1".into(),
                bundle: self.dir.join("bundle"),
                runtime: self.dir.join("runc").display().to_string(),
                rootfs: Vec::new(),
                io,
                checkpoint: String::new(),
                parent_checkpoint: String::new(),
                options: CreateOptions::default(),
            })
            .unwrap()
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
}

/// Run `f` on a thread and wait for it at most HANG: a hang fails the test with `what`.
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG)
        .unwrap_or_else(|_| panic!("{what} hung"))
}

fn sigkill(pid: u32) {
    // SAFETY: kill(2) with plain integers.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
}

fn an_init_that_exits_while_paused_is_resumed_after_its_exit_is_recorded() {
    let fake = Fake::new("exec sleep 1000");
    let (entered, gate) = (fake.dir.join("entered"), fake.dir.join("gate"));
    mkfifo(&entered);
    mkfifo(&gate);
    // `runc resume` says it has begun, then waits for the test.
    fake.behave(
        "resume",
        &format!(
            "echo in > {}; read _ < {}",
            entered.display(),
            gate.display()
        ),
    );
    let pid = fake.create(IoSpec::default());
    fake.shim.start("c1").unwrap();
    fake.shim.pause().unwrap();
    assert_eq!(fake.shim.state("c1").unwrap().status, Status::Paused);

    sigkill(pid);
    bounded("runc resume", move || std::fs::read(&entered).unwrap());
    // runc resume is running now, and the exit is already recorded.
    let state = fake.shim.state("c1").unwrap();
    assert_eq!((state.status, state.exit_status), (Status::Stopped, 137));
    assert_eq!(fake.shim.wait("c1").unwrap().status, 137);
    std::fs::write(&gate, "go\n").unwrap();

    let events = fake.events.until("c1", HANG);
    assert_eq!((events[0].pid, events[0].exit_status), (pid, 137));
    let calls = fake.calls();
    assert_eq!(
        calls.last().map(String::as_str),
        Some("resume c1"),
        "{calls:?}"
    );
}

fn a_slow_runc_kill_all_for_the_init_does_not_hold_up_an_execs_exit() {
    let fake = Fake::new("exec sleep 1000");
    // No pid namespace of its own: the init's exit is followed by `runc kill --all`, which
    // says it has begun and then waits for the test.
    std::fs::write(
        fake.dir.join("bundle/config.json"),
        r#"{"linux":{"namespaces":[{"type":"mount"}]}}"#,
    )
    .unwrap();
    let (entered, gate) = (fake.dir.join("entered"), fake.dir.join("gate"));
    mkfifo(&entered);
    mkfifo(&gate);
    fake.behave(
        "kill",
        &format!(
            r#"case " $* " in *" --all "*) echo in > {}; read _ < {};; esac"#,
            entered.display(),
            gate.display()
        ),
    );
    let init = fake.create(IoSpec::default());
    fake.shim.start("c1").unwrap();
    fake.shim
        .exec(ExecRequest {
            id: "e1".into(),
            io: IoSpec::default(),
            spec_json: br#"{"args":["sleep"]}"#.to_vec(),
        })
        .unwrap();
    let exec = fake.shim.start("e1").unwrap();

    sigkill(init);
    bounded("runc kill --all", move || std::fs::read(&entered).unwrap());
    // The init's exit is stuck in runc; the exec's exit is recorded all the same.
    sigkill(exec);
    let shim = Arc::clone(&fake.shim);
    let e1 = bounded("the exec's Wait", move || shim.wait("e1").unwrap());
    assert_eq!(e1.status, 137);
    assert_eq!(fake.shim.state("c1").unwrap().status, Status::Running);

    std::fs::write(&gate, "go\n").unwrap();
    assert_eq!(fake.shim.wait("c1").unwrap().status, 137);
    let events = fake.events.until("c1", HANG);
    let order: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(order, ["e1", "c1"]);
    assert!(fake.calls().contains(&"kill --all c1 9".to_string()));
}

fn a_failed_runc_delete_leaves_the_io_open_for_a_retry() {
    let fake = Fake::new("exec cat");
    let (stdin, stdout) = (fake.dir.join("stdin"), fake.dir.join("stdout"));
    mkfifo(&stdin);
    mkfifo(&stdout);
    let lines = {
        let (tx, rx) = channel();
        let path = stdout.clone();
        std::thread::spawn(move || {
            let reader = BufReader::new(std::fs::File::open(path).unwrap());
            for line in reader.lines() {
                let _ = tx.send(line.unwrap());
            }
        });
        rx
    };
    let pid = fake.create(IoSpec {
        stdin: stdin.display().to_string(),
        stdout: stdout.display().to_string(),
        ..Default::default()
    });
    fake.behave(
        "delete",
        r#"echo '{"level":"error","msg":"cgroup busy","time":"t"}' >> "$log"; exit 1"#,
    );
    match fake.shim.delete() {
        Err(Error::Runtime(m)) => assert_eq!(m, "failed to delete task: cgroup busy"),
        other => panic!("want runc's delete error, got {other:?}"),
    }
    assert_eq!(fake.shim.state("c1").unwrap().status, Status::Created);

    // stdin and stdout still work: the container echoes a line through both.
    bounded("writing stdin", move || {
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(&stdin)
            .unwrap();
        w.write_all(b"still open\n").unwrap();
    });
    let line = lines
        .recv_timeout(HANG)
        .expect("no output after the failed delete");
    assert_eq!(line, "still open");

    fake.behave("delete", "exit 0");
    sigkill(pid);
    let deleted = fake.shim.delete().unwrap();
    assert_eq!(deleted.pid, pid);
    assert_eq!(fake.calls().last().map(String::as_str), Some("delete c1"));
}

/// Every log record of this test binary, as `LEVEL message key=value...` (in the shim, the facade's
/// backend is its logrus-format log; here a list).
fn logs() -> &'static std::sync::Mutex<Vec<String>> {
    struct Capture(std::sync::Mutex<Vec<String>>);
    struct Pairs(String);
    impl<'kvs> log::kv::VisitSource<'kvs> for Pairs {
        fn visit_pair(
            &mut self,
            key: log::kv::Key<'kvs>,
            value: log::kv::Value<'kvs>,
        ) -> Result<(), log::kv::Error> {
            self.0.push_str(&format!(" {key}={value}"));
            Ok(())
        }
    }
    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata) -> bool {
            true
        }
        fn log(&self, r: &log::Record) {
            let mut line = Pairs(format!("{} {}", r.level(), r.args()));
            let _ = r.key_values().visit(&mut line);
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(line.0);
        }
        fn flush(&self) {}
    }
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    let capture = CAPTURE.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Default::default())));
        log::set_logger(c).expect("one logger per test binary");
        log::set_max_level(log::LevelFilter::Trace);
        c
    });
    &capture.0
}

/// Waits (bounded by HANG) for a log record containing every needle, and returns it.
fn logged(needles: &[&str]) -> String {
    let deadline = std::time::Instant::now() + HANG;
    loop {
        let lines = logs().lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(line) = lines.iter().find(|l| needles.iter().all(|n| l.contains(n))) {
            return line.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log record with {needles:?} in {lines:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// runc's error for a failed call, as runc writes it to log.json, then failure.
fn runc_fails_with(message: &str) -> String {
    format!(r#"echo '{{"level":"error","msg":"{message}","time":"t"}}' >> "$log"; exit 1"#)
}

fn a_runc_resume_that_fails_after_a_paused_inits_exit_is_logged() {
    let fake = Fake::new("exec sleep 1000");
    fake.behave("resume", &runc_fails_with("resume refused by the fake"));
    let pid = fake.create(IoSpec::default());
    fake.shim.start("c1").unwrap();
    fake.shim.pause().unwrap();
    sigkill(pid);
    // The exit is recorded and published whatever resume says; its failure is logged.
    let events = fake.events.until("c1", HANG);
    assert_eq!((events[0].pid, events[0].exit_status), (pid, 137));
    let line = logged(&["runc resume after the exit of a paused init"]);
    assert!(
        line.starts_with("WARN ")
            && line.contains("id=c1")
            && line.contains("resume refused by the fake"),
        "{line}"
    );
    fake.shim.delete().unwrap();
}

fn a_runc_delete_that_fails_after_a_failed_create_is_logged() {
    let fake = Fake::new("exit 0");
    // runc create "succeeds" but leaves no pid: the create fails after runc made the container,
    // and the cleanup (runc delete --force) fails too.
    fake.behave("create", r#"echo not-a-pid > "$pidfile""#);
    fake.behave("delete", &runc_fails_with("delete refused by the fake"));
    let created = fake.shim.create(CreateRequest {
        id: "c1".into(),
        bundle: fake.dir.join("bundle"),
        runtime: fake.dir.join("runc").display().to_string(),
        rootfs: Vec::new(),
        io: IoSpec::default(),
        checkpoint: String::new(),
        parent_checkpoint: String::new(),
        options: CreateOptions::default(),
    });
    assert!(created.is_err(), "{created:?}");
    assert_eq!(
        fake.calls().last().map(String::as_str),
        Some("delete --force c1")
    );
    let line = logged(&["runc delete after a failed create"]);
    assert!(
        line.starts_with("WARN ")
            && line.contains("id=c1")
            && line.contains("delete refused by the fake"),
        "{line}"
    );
}

fn main() {
    logs();
    let (reaper, _signals) = reaper::Reaper::builder().start().expect("start the reaper");
    REAPER.set(reaper).ok();
    trials::run_in_order(trials::trials!(
        None;
        an_init_that_exits_while_paused_is_resumed_after_its_exit_is_recorded,
        a_slow_runc_kill_all_for_the_init_does_not_hold_up_an_execs_exit,
        a_failed_runc_delete_leaves_the_io_open_for_a_retry,
        a_runc_resume_that_fails_after_a_paused_inits_exit_is_logged,
        a_runc_delete_that_fails_after_a_failed_create_is_logged,
    ));
}
