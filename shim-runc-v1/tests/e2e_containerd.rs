//! End-to-end checklist (contract §8) through containerd 1.6 and `ctr`, for each configured shim.
//!
//! Shims: `E2E_SHIMS=go,ours` runs every row for both (ours = `<target>/debug/shim-runc-v1`,
//! skipped with a reason when not built, a failure under `SHIM_REQUIRE_ROOT_TESTS=1`); else
//! `E2E_SHIM=<path>`; default the Go shim.
//! Needs root, containerd, ctr and runc; skips otherwise unless `SHIM_REQUIRE_ROOT_TESTS=1`.
//! Each (row, shim) outcome goes to `$E2E_RESULTS` (e2e/report.rs; `cargo xtask test` prints it).
//! Row 28 (restore) is NOT-RUNNABLE where criu cannot dump (this kernel). Row 29 calls Update
//! through our ttrpc client (ctr 1.6 has no `task update`); row 34 checks that nothing is lost
//! until attach, not that the writer was blocked (no event to wait on). Row 36 is not in the
//! table: IO and the shim's log after a containerd restart (contract §7.1). Rows 37 (50 short
//! execs at once, 20 rounds; 5 for Go) and 38 (1 GiB of stdout, counted and hashed) are not in
//! the table either: they load the IO paths.

mod e2e;

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use e2e::containerd::{sh_quote, Containerd, CTR_BOUND};
use e2e::each_shim;
use e2e::probe::ManualShim;
use e2e::proc::{self, Exit};
use e2e::report::Ran;
use e2e::sys;
use e2e_kit::cgroup::{self, Limit};
use e2e_kit::ctr::{sh, task_status, wait_text, with_pty, PRINT_PTY_SIZE};

const SLEEP: &[&str] = &["sleep", "1000"];
const PROCESS_BOUND: Duration = Duration::from_secs(20);

/// Kills and deletes `id`, waiting for its delete event: a barrier after which every event
/// about earlier actions has been seen.
fn kill_and_delete(cd: &Containerd, id: &str) {
    cd.ctr(&["t", "kill", "-s", "SIGKILL", id]).expect_code(0);
    cd.events.wait("/tasks/exit", id);
    cd.ctr(&["t", "rm", id]).expect_code(0);
    cd.events.wait("/tasks/delete", id);
}

/// The error ctr shows for a refused state transition: Go answers Unknown, and so must we
/// (the issue asks for containerd's error codes where it shows them).
fn refused(msg: &str) -> String {
    format!("{msg}: unknown")
}

fn proc_stat_fields(pid: i32) -> Vec<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split_whitespace().map(str::to_string).collect()
}

fn row01_run_prints_output_returns_exit_code_and_publishes_lifecycle_events() {
    each_shim("row01", |shim| {
        let cd = Containerd::start(&shim.setup(), "r01");
        let out = cd.run(&[], "t1", &sh("echo out; echo err >&2; exit 3"));
        out.expect_code(3);
        assert!(
            out.stdout.contains("out") && out.stderr.contains("err"),
            "{out}"
        );
        cd.events.wait("/tasks/create", "t1");
        cd.events.wait("/tasks/start", "t1");
        let exit = cd.events.wait("/tasks/exit", "t1");
        assert_eq!(exit.field("id").as_deref(), Some("t1"), "{exit:?}");
        assert_eq!(exit.field("exit_status").as_deref(), Some("3"), "{exit:?}");
        let del = cd.events.wait("/tasks/delete", "t1");
        assert_eq!(del.field("exit_status").as_deref(), Some("3"), "{del:?}");
    });
}

fn row02_shim_keeps_the_process_attributes_containerd_gave_it() {
    each_shim("row02", |shim| {
        let cd = Containerd::start(&shim.setup(), "r02");
        cd.run_detached("t2", SLEEP);
        let pid = cd.shim_pid("t2");
        let fd = |n: u32| {
            fs::read_link(format!("/proc/{pid}/fd/{n}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        assert_eq!(fd(0), "/dev/null");
        assert!(fd(1).starts_with("pipe:"), "fd 1 is {}", fd(1));
        assert!(fd(2).starts_with("pipe:"), "fd 2 is {}", fd(2));
        assert!(fd(3).starts_with("socket:"), "fd 3 is {}", fd(3));
        let cwd = fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
        assert_eq!(cwd, cd.bundle("t2"));
        let env = fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert!(
            env.split(|b| *b == 0).any(|v| v == b"GOMAXPROCS=2"),
            "environment lacks GOMAXPROCS=2"
        );
        let oom = |p: i32| -> i32 {
            fs::read_to_string(format!("/proc/{p}/oom_score_adj"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        assert_eq!(oom(pid), (oom(cd.daemon_pid()) + 1).min(1000));
        let stat = proc_stat_fields(pid);
        assert_eq!(stat[2], pid.to_string(), "shim must lead its process group");
        let daemon = proc_stat_fields(cd.daemon_pid());
        assert_eq!(stat[3], daemon[3], "shim keeps containerd's session");
    });
}

fn row03_bundle_and_workdir_hold_the_expected_files() {
    each_shim("row03", |shim| {
        let cd = Containerd::start(&shim.setup(), "r03");
        cd.run_detached("t2", SLEEP);
        let b = cd.bundle("t2");
        let address = fs::read_to_string(b.join("address")).unwrap();
        let key = format!("{}/{}/t2", cd.socket().display(), cd.ns);
        let mut sum = Command::new("sh");
        sum.args(["-c", &format!("printf %s {} | sha256sum", sh_quote(&key))]);
        let hash = proc::run(sum, CTR_BOUND, None).stdout;
        let hash = hash.split_whitespace().next().unwrap_or_default();
        assert_eq!(address, format!("unix:///run/containerd/s/{hash}"));
        for f in ["shim.pid", "init.pid"] {
            let v = fs::read_to_string(b.join(f)).unwrap();
            assert!(v.parse::<u32>().is_ok(), "{f} holds {v:?}");
        }
        for f in ["config.json", "log.json"] {
            assert!(b.join(f).is_file(), "{f} missing in {}", b.display());
        }
        assert!(b.join("rootfs").is_dir());
        let mode = fs::metadata(&b).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "bundle mode");
        for f in ["shim.stdout.log", "shim.stderr.log"] {
            let m = fs::metadata(cd.workdir("t2").join(f)).unwrap();
            assert!(m.file_type().is_fifo(), "{f} is not a FIFO");
        }
    });
}

fn row04_exec_returns_its_exit_code_with_started_and_exit_events_only() {
    each_shim("row04", |shim| {
        let cd = Containerd::start(&shim.setup(), "r04");
        cd.run_detached("t2", SLEEP);
        cd.ctr(&[
            "t",
            "exec",
            "--exec-id",
            "e1",
            "t2",
            "/bin/sh",
            "-c",
            "exit 5",
        ])
        .expect_code(5);
        let started = cd.events.wait("/tasks/exec-started", "t2");
        assert_eq!(started.field("exec_id").as_deref(), Some("e1"));
        let exit = cd
            .events
            .wait_for("exit of e1", |e| e.is_exit_of("t2", "e1"));
        assert_eq!(exit.field("exit_status").as_deref(), Some("5"), "{exit:?}");
        kill_and_delete(&cd, "t2");
        let stray: Vec<_> = cd
            .events
            .all()
            .into_iter()
            .filter(|e| {
                e.topic == "/tasks/exec-added"
                    || (e.topic == "/tasks/delete" && e.field("id").as_deref() == Some("e1"))
            })
            .collect();
        assert!(stray.is_empty(), "unexpected exec events: {stray:?}");
    });
}

fn row05_exec_of_a_missing_binary_reports_the_runc_error() {
    each_shim("row05", |shim| {
        let cd = Containerd::start(&shim.setup(), "r05");
        cd.run_detached("t2", SLEEP);
        let out = cd.ctr(&["t", "exec", "--exec-id", "e2", "t2", "/bin/nonexistent"]);
        out.expect_error(
            "OCI runtime exec failed: exec failed: unable to start container process: \
             exec: \"/bin/nonexistent\"",
        );
        out.expect_error("no such file or directory: unknown");
    });
}

fn row06_create_failure_reports_the_runc_error_and_removes_the_bundle() {
    each_shim("row06", |shim| {
        let cd = Containerd::start(&shim.setup(), "r06");
        let out = cd.run(&[], "f1", &["/bin/nonexistent"]);
        out.expect_error(
            "OCI runtime create failed: runc create failed: unable to start container process: \
             exec: \"/bin/nonexistent\"",
        );
        out.expect_error("no such file or directory: unknown");
        assert!(!cd.bundle("f1").exists(), "bundle of f1 left behind");
    });
}

fn row07_tty_run_gets_a_pty_of_the_client_size() {
    each_shim("row07", |shim| {
        let cd = Containerd::start(&shim.setup(), "r07");
        let script = format!("tty; {PRINT_PTY_SIZE}; exit 7");
        let args = cd.run_args(&["-t"], "t3", &sh(&script));
        let out = with_pty(&cd, "cols 100 rows 30", &args);
        out.expect_code(7);
        assert!(out.stdout.contains("/dev/pts/0"), "{out}");
        assert!(out.stdout.contains("size=30 100"), "{out}");
        // Contract §6.1/§6.4: `--console-socket <tmp>/pty<random>/pty.sock`, where <tmp> is
        // $XDG_RUNTIME_DIR, else the temp dir (containerd passes its environment on).
        let tmp = std::env::var("XDG_RUNTIME_DIR")
            .or_else(|_| std::env::var("TMPDIR"))
            .ok()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "/tmp".into());
        let calls = cd.runc_calls();
        let create = calls
            .lines()
            .find(|l| l.contains(" create ") && l.ends_with(" t3"))
            .unwrap_or_else(|| panic!("no runc create of t3:\n{calls}"));
        let socket = flag_value(create, "--console-socket")
            .unwrap_or_else(|| panic!("runc create without --console-socket: {create}"));
        let dir = socket
            .strip_suffix("/pty.sock")
            .and_then(|d| d.strip_prefix(&format!("{}/pty", tmp.trim_end_matches('/'))))
            .unwrap_or_else(|| panic!("console socket {socket} is not {tmp}/pty…/pty.sock"));
        assert!(
            !dir.is_empty() && !dir.contains('/'),
            "console socket {socket} is not in a fresh pty… directory"
        );
    });
}

/// The word after `flag` in a logged command line.
fn flag_value<'a>(line: &'a str, flag: &str) -> Option<&'a str> {
    let mut words = line.split_whitespace();
    words.find(|w| *w == flag)?;
    words.next()
}

fn row08_tty_exec_is_resized_to_the_client_size() {
    each_shim("row08", |shim| {
        let cd = Containerd::start(&shim.setup(), "r08");
        cd.run_detached("t2", SLEEP);
        let args: Vec<String> = ["t", "exec", "-t", "--exec-id", "tt1", "t2", "/bin/sh", "-c"]
            .iter()
            .map(|s| s.to_string())
            .chain([PRINT_PTY_SIZE.to_string()])
            .collect();
        let out = with_pty(&cd, "cols 120 rows 40", &args);
        out.expect_code(0);
        assert!(out.stdout.contains("size=40 120"), "{out}");
    });
}

fn row09_pause_and_resume_change_status_and_publish_events() {
    each_shim("row09", |shim| {
        let cd = Containerd::start(&shim.setup(), "r09");
        cd.run_detached("t2", SLEEP);
        cd.ctr(&["t", "pause", "t2"]).expect_code(0);
        assert_eq!(task_status(&cd, "t2").as_deref(), Some("PAUSED"));
        cd.events.wait("/tasks/paused", "t2");
        cd.ctr(&["t", "resume", "t2"]).expect_code(0);
        assert_eq!(task_status(&cd, "t2").as_deref(), Some("RUNNING"));
        cd.events.wait("/tasks/resumed", "t2");
    });
}

fn row10_pausing_a_paused_task_is_refused() {
    each_shim("row10", |shim| {
        let cd = Containerd::start(&shim.setup(), "r10");
        cd.run_detached("t2", SLEEP);
        cd.ctr(&["t", "pause", "t2"]).expect_code(0);
        cd.ctr(&["t", "pause", "t2"])
            .expect_error(&refused("cannot pause a paused container"));
    });
}

fn row11_resuming_a_running_task_is_refused() {
    each_shim("row11", |shim| {
        let cd = Containerd::start(&shim.setup(), "r11");
        cd.run_detached("t2", SLEEP);
        cd.ctr(&["t", "resume", "t2"])
            .expect_error(&refused("cannot resume a running process"));
    });
}

fn row12_exec_in_a_paused_task_is_refused() {
    each_shim("row12", |shim| {
        let cd = Containerd::start(&shim.setup(), "r12");
        cd.run_detached("t2", SLEEP);
        cd.ctr(&["t", "pause", "t2"]).expect_code(0);
        cd.ctr(&["t", "exec", "--exec-id", "e3", "t2", "true"])
            .expect_error(&refused("cannot exec in a paused state"));
    });
}

fn row13_duplicate_exec_id_is_refused() {
    each_shim("row13", |shim| {
        let cd = Containerd::start(&shim.setup(), "r13");
        cd.run_detached("t2", SLEEP);
        let exec = ["t", "exec", "-d", "--exec-id", "e4", "t2", "sleep", "1000"];
        cd.ctr(&exec).expect_code(0);
        cd.ctr(&exec).expect_error("id e4: already exists");
    });
}

fn row14_kill_of_an_unknown_exec_is_not_found() {
    each_shim("row14", |shim| {
        let cd = Containerd::start(&shim.setup(), "r14");
        cd.run_detached("t2", SLEEP);
        cd.ctr(&["t", "kill", "--exec-id", "nope", "t2"])
            .expect_error("process nope does not exist: not found");
    });
}

fn row15_kill_of_an_exited_exec_is_not_found() {
    each_shim("row15", |shim| {
        let cd = Containerd::start(&shim.setup(), "r15");
        cd.run_detached("t2", SLEEP);
        cd.ctr(&["t", "exec", "-d", "--exec-id", "e5", "t2", "true"])
            .expect_code(0);
        cd.events
            .wait_for("exit of e5", |e| e.is_exit_of("t2", "e5"));
        cd.ctr(&["t", "kill", "--exec-id", "e5", "t2"])
            .expect_error("process already finished: not found");
    });
}

fn row16_ps_names_init_and_execs_and_marks_other_pids() {
    each_shim("row16", |shim| {
        let cd = Containerd::start(&shim.setup(), "r16");
        cd.run_detached("t2", &sh("sleep 1000 & wait"));
        cd.ctr(&["t", "exec", "-d", "--exec-id", "e9", "t2", "sleep", "1000"])
            .expect_code(0);
        cd.events.wait("/tasks/exec-started", "t2");
        let out = cd.ctr(&["t", "ps", "t2"]);
        out.expect_code(0);
        let init = cd.init_pid("t2").to_string();
        let line_of = |needle: &str| out.stdout.lines().find(|l| l.contains(needle));
        let init_line = line_of("ExecID:t2,").unwrap_or_else(|| panic!("{out}"));
        assert!(init_line.starts_with(&init), "{out}");
        assert!(line_of("ExecID:e9,").is_some(), "{out}");
        assert!(
            out.stdout.lines().any(|l| l.trim_end().ends_with(" -")),
            "no unknown pid shown as '-': {out}"
        );
    });
}

fn row17_kill_all_with_sigkill_ends_the_task_with_137() {
    each_shim("row17", |shim| {
        let cd = Containerd::start(&shim.setup(), "r17");
        cd.run_detached("t9", &sh("sleep 1000 & sleep 1000 & wait"));
        cd.ctr(&["t", "kill", "-a", "-s", "SIGKILL", "t9"])
            .expect_code(0);
        let exit = cd.events.wait("/tasks/exit", "t9");
        assert_eq!(
            exit.field("exit_status").as_deref(),
            Some("137"),
            "{exit:?}"
        );
        assert!(
            cd.runc_calls()
                .lines()
                .any(|l| l.ends_with("kill --all t9 9")),
            "no `runc kill --all t9 9`:\n{}",
            cd.runc_calls()
        );
        let rm = cd.ctr(&["t", "rm", "t9"]);
        rm.expect_code(0);
        assert!(rm.stderr.contains("exit code 137"), "{rm}");
    });
}

/// Starts t9 and kills its init, waiting for the exit: a stopped task.
fn stopped_task(cd: &Containerd) {
    cd.run_detached("t9", SLEEP);
    cd.ctr(&["t", "kill", "-s", "SIGKILL", "t9"]).expect_code(0);
    cd.events.wait("/tasks/exit", "t9");
}

fn row18_kill_of_a_stopped_init_is_not_found_but_kill_all_succeeds() {
    each_shim("row18", |shim| {
        let cd = Containerd::start(&shim.setup(), "r18");
        stopped_task(&cd);
        cd.ctr(&["t", "kill", "t9"])
            .expect_error("process already finished: not found");
        cd.ctr(&["t", "kill", "-a", "t9"]).expect_code(0);
    });
}

fn row19_exec_and_pause_on_a_stopped_task_are_refused() {
    each_shim("row19", |shim| {
        let cd = Containerd::start(&shim.setup(), "r19");
        stopped_task(&cd);
        cd.ctr(&["t", "exec", "--exec-id", "x", "t9", "true"])
            .expect_error(&refused("cannot exec in a stopped state"));
        cd.ctr(&["t", "pause", "t9"])
            .expect_error(&refused("cannot pause a stopped container"));
    });
}

fn row20_deleting_a_deleted_task_is_not_found() {
    each_shim("row20", |shim| {
        let cd = Containerd::start(&shim.setup(), "r20");
        stopped_task(&cd);
        cd.ctr(&["t", "rm", "t9"]).expect_code(0);
        cd.ctr(&["t", "rm", "t9"])
            .expect_error("no running task found: task t9 not found: not found");
    });
}

fn row21_stdin_is_copied_and_its_eof_reaches_the_container() {
    each_shim("row21", |shim| {
        let cd = Containerd::start(&shim.setup(), "r21");
        let watch = cd.events.watch();
        // Hold stdin until the task runs (the ctr EOF race, contract §6.3).
        let feed = proc::feed_after(
            move || {
                watch.wait("/tasks/start", "t7");
            },
            b"a\nb\n",
        );
        let args = cd.run_args(&["--rm"], "t7", &sh("cat; echo done"));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = proc::run(cd.ctr_cmd(&refs), CTR_BOUND, Some(feed));
        out.expect_code(0);
        assert_eq!(out.stdout, "a\nb\ndone\n", "{out}");
    });
}

fn row22_null_io_prints_nothing_and_keeps_the_exit_code() {
    each_shim("row22", |shim| {
        let cd = Containerd::start(&shim.setup(), "r22");
        let out = cd.run(&["--rm", "--null-io"], "t5", &sh("echo x; exit 4"));
        out.expect_code(4);
        assert!(!out.stdout.contains('x'), "{out}");
        let create = cd.events.wait("/tasks/create", "t5");
        assert!(create.body.contains("\"io\":{}"), "{create:?}");
    });
}

fn row23_file_log_uri_appends_both_streams_to_one_file() {
    each_shim("row23", |shim| {
        let cd = Containerd::start(&shim.setup(), "r23");
        let log = cd.dir.join("logs/t6.log");
        let uri = format!("file://{}", log.display());
        // The shim's copiers may still be writing when ctr returns: wait, bounded, for the lines.
        let read_until = |needles: &[&str]| -> String {
            let deadline = Instant::now() + PROCESS_BOUND;
            loop {
                let text = fs::read_to_string(&log).unwrap_or_default();
                if needles.iter().all(|n| text.contains(n)) || Instant::now() >= deadline {
                    return text;
                }
                thread::sleep(Duration::from_millis(50));
            }
        };
        // Two containers log into the same file, one after the other: the second appends.
        cd.run(
            &["--rm", "--log-uri", &uri],
            "t6",
            &sh("echo o6a; echo e6 >&2; echo o6b"),
        )
        .expect_code(0);
        let first = read_until(&["o6a\n", "o6b\n", "e6\n"]);
        cd.run(&["--rm", "--log-uri", &uri], "t6b", &sh("echo o6c"))
            .expect_code(0);
        let text = read_until(&["o6c\n"]);
        assert!(
            text.starts_with(&first),
            "the second container did not append: {first:?} then {text:?}"
        );
        let at = |line: &str| {
            text.find(line)
                .unwrap_or_else(|| panic!("{line:?} missing: {text:?}"))
        };
        assert!(
            at("o6a\n") < at("o6b\n") && at("o6b\n") < at("o6c\n"),
            "stdout out of order: {text:?}"
        );
        let mode = fs::metadata(&log).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        if !shim.expect().file_log_keeps_stderr && !text.contains("e6\n") {
            return Ran::PassedWith("known Go race taken: stderr never reached the log".into());
        }
        assert!(at("e6\n") < at("o6c\n"), "stderr lost or late: {text:?}");
        Ran::Passed
    });
}

fn row24_binary_log_uri_fails_in_go_and_works_when_the_namespace_comes_from_argv() {
    each_shim("row24", |shim| {
        let cd = Containerd::start(&shim.setup(), "r24");
        let out_file = cd.dir.join("logger.out");
        let meta = cd.dir.join("logger.meta");
        let logger = cd.dir.join("logger.sh");
        let script = format!(
            "#!/bin/sh\n\
             echo \"args=$* ns=$CONTAINER_NAMESPACE id=$CONTAINER_ID\" > {meta}\n\
             /bin/cat <&3 5>&- >> {out} &\n\
             /bin/cat <&4 5>&- >> {out} &\n\
             exec 5>&-\n\
             wait\n\
             echo done >> {meta}\n",
            meta = sh_quote(&meta.to_string_lossy()),
            out = sh_quote(&out_file.to_string_lossy()),
        );
        fs::write(&logger, script).unwrap();
        fs::set_permissions(&logger, fs::Permissions::from_mode(0o755)).unwrap();
        let uri = format!("binary://{}?foo=bar", logger.display());
        let out = cd.run(
            &["--rm", "--log-uri", &uri],
            "t24",
            &sh("echo to-logger; echo err-logger >&2"),
        );
        if !shim.expect().binary_log_uri_works {
            out.expect_error(
                "failed to create init process I/O: namespace is required: failed precondition",
            );
            return;
        }
        out.expect_code(0);
        // The logger finishes on its own after the pipes close; no event tells us when.
        let deadline = Instant::now() + PROCESS_BOUND;
        while !fs::read_to_string(&meta)
            .unwrap_or_default()
            .contains("done")
        {
            assert!(Instant::now() < deadline, "logger did not finish");
            thread::sleep(Duration::from_millis(50));
        }
        let m = fs::read_to_string(&meta).unwrap();
        assert!(
            m.contains(&format!("args=foo bar ns={} id=t24", cd.ns)),
            "{m}"
        );
        let text = fs::read_to_string(&out_file).unwrap();
        assert!(
            text.contains("to-logger") && text.contains("err-logger"),
            "{text}"
        );
    });
}

fn row25_no_pivot_reaches_runc_create() {
    // ctr sends `--no-pivot` as the CreateOptions Any {no_pivot_root: true}. Neither shim logs
    // the Any it received, so it is observed through its one effect: `--no-pivot` on runc
    // create, which nothing but that field adds (a run without it gets no `--no-pivot`).
    each_shim("row25", |shim| {
        let cd = Containerd::start(&shim.setup(), "r25");
        cd.run(&["--rm", "--no-pivot"], "t10", &sh("exit 0"))
            .expect_code(0);
        cd.run(&["--rm"], "t11", &sh("exit 0")).expect_code(0);
        let calls = cd.runc_calls();
        let create_of = |id: &str| {
            calls
                .lines()
                .find(|l| l.contains(" create ") && l.ends_with(&format!(" {id}")))
                .unwrap_or_else(|| panic!("no runc create of {id}:\n{calls}"))
        };
        assert!(
            create_of("t10").contains(" --no-pivot "),
            "runc create without --no-pivot:\n{calls}"
        );
        assert!(
            !create_of("t11").contains("--no-pivot"),
            "--no-pivot without the option:\n{calls}"
        );
    });
}

fn row26_memory_limit_oom_gives_oom_events_and_137() {
    each_shim("row26", |shim| {
        let cd = Containerd::start(&shim.setup(), "r26");
        let hog = "head -c 200000000 /dev/zero | tail -c 150000000 > /dev/null";
        cd.run(&["--rm", "--memory-limit", "20971520"], "t26", &sh(hog))
            .expect_code(137);
        cd.events.wait("/tasks/oom", "t26");
    });
}

fn row27_checkpoint_runs_runc_checkpoint_and_reports_the_criu_failure() {
    each_shim("row27", |shim| {
        let cd = Containerd::start(&shim.setup(), "r27");
        cd.run_detached("t2", SLEEP);
        let image = cd.dir.join("ckpt");
        let out = cd.ctr(&[
            "t",
            "checkpoint",
            "--image-path",
            &image.to_string_lossy(),
            "t2",
        ]);
        let work = cd.workdir("t2").join("criu-work");
        let want = format!(
            "checkpoint --image-path {} --work-path {} --leave-running t2",
            image.display(),
            work.display()
        );
        let calls = cd.runc_calls();
        // containerd pauses the task around the checkpoint (and resumes it even on failure).
        let line_of = |what: &str| {
            calls
                .lines()
                .position(|l| l.contains(what))
                .unwrap_or_else(|| panic!("no `{what}` in:\n{calls}"))
        };
        let (pause, checkpoint, resume) =
            (line_of(" pause t2"), line_of(&want), line_of(" resume t2"));
        assert!(
            pause < checkpoint && checkpoint < resume,
            "want pause, checkpoint, resume in order:\n{calls}"
        );
        let ran = if out.code() == Some(0) {
            cd.events.wait("/tasks/checkpointed", "t2");
            Ran::PassedWith("criu worked here: the success path was checked".into())
        } else {
            let dump = cd.bundle("t2").join("criu-dump.log");
            out.expect_error("criu failed: type DUMP");
            out.expect_error(&format!("path= {}: unknown", dump.display()));
            Ran::PassedWith(format!(
                "failure path checked; the success path cannot run here ({})",
                criu_error(&cd, "t2")
            ))
        };
        assert_eq!(task_status(&cd, "t2").as_deref(), Some("RUNNING"));
        ran
    });
}

/// The last error line of the criu dump log copied into `id`'s bundle: why criu failed.
fn criu_error(cd: &Containerd, id: &str) -> String {
    let criu = fs::read_to_string(cd.bundle(id).join("criu-dump.log")).unwrap_or_default();
    let line = criu.lines().rev().find(|l| l.contains("Error"));
    // criu's lines start with a time stamp, `(00.037028) Error (…): …`.
    line.map(|l| l.trim())
        .map(|l| match l.split_once(") ") {
            Some((stamp, rest)) if stamp.starts_with('(') => rest,
            _ => l,
        })
        .map(|l| format!("criu: {l}"))
        .unwrap_or_else(|| "criu failed".into())
}

fn row28_restore_needs_a_checkpoint_image_which_criu_cannot_make_on_this_kernel() {
    // Restore starts from a checkpoint image. Try to make one for real: where criu cannot dump
    // (this kernel's vDSO layout), the row cannot run, and says so with criu's own words.
    each_shim("row28", |shim| {
        let cd = Containerd::start(&shim.setup(), "r28");
        cd.run_detached("t28", SLEEP);
        let image = cd.dir.join("ckpt28");
        let out = cd.ctr(&[
            "t",
            "checkpoint",
            "--image-path",
            &image.to_string_lossy(),
            "t28",
        ]);
        if out.code() != Some(0) {
            out.expect_error("criu failed");
            return Ran::NotRunnable(format!(
                "criu cannot dump here, so there is no image to restore ({})",
                criu_error(&cd, "t28")
            ));
        }
        panic!("criu can dump on this machine: automate the restore path of row 28 ({image:?})");
    });
}

fn row29_update_through_the_shim_api_changes_the_cgroup() {
    // ctr 1.6 has no `task update`: call the shim's Update directly, reaching its socket inside
    // the private mount namespace through /proc/<holder>/root.
    each_shim("row29", |shim| {
        let cd = Containerd::start(&shim.setup(), "r29");
        cd.run_detached("r29", SLEEP);
        let address = fs::read_to_string(cd.bundle("r29").join("address")).expect("address file");
        let socket = address.trim().trim_start_matches("unix://");
        let via = format!("unix:///proc/{}/root{socket}", cd.holder_pid());
        let client =
            shim_proto::shim::ShimClient::new(ttrpc::Client::connect(&via).expect("dial the shim"));
        let resources = serde_json::json!({"memory": {"limit": 52428800}, "cpu": {"shares": 512}});
        let req = shim_proto::shim::UpdateTaskRequest {
            resources: Some(shim_proto::pack_json(
                shim_proto::type_url::OCI_LINUX_RESOURCES,
                &resources,
            )),
        };
        client
            .update(
                ttrpc::context::with_timeout(CTR_BOUND.as_nanos() as i64),
                &req,
            )
            .expect("Update");
        let calls = cd.runc_calls();
        assert!(
            calls
                .lines()
                .any(|l| l.ends_with(" update --resources - r29")),
            "no `runc … update --resources - r29` in:\n{calls}"
        );
        // cgroup v1 or v2, whichever this host has.
        let cgroup = format!("/{}/r29", cd.ns);
        let version = cgroup::Version::of_host();
        for (limit, value) in [(Limit::Memory, 52428800), (Limit::CpuShares, 512)] {
            assert_eq!(
                cgroup::read(&cgroup::file(&cgroup, limit)),
                limit.expected(version, value)
            );
        }
    });
}

fn row30_killed_shim_is_cleaned_up_by_containerd() {
    each_shim("row30", |shim| {
        let cd = Containerd::start(&shim.setup(), "r30");
        cd.run_detached("t30", SLEEP);
        cd.ctr(&[
            "t",
            "exec",
            "-d",
            "--exec-id",
            "e30",
            "t30",
            "sleep",
            "1000",
        ])
        .expect_code(0);
        let started = cd.events.wait("/tasks/exec-started", "t30");
        let exec: i32 = started
            .field("pid")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no pid in {started:?}"));
        let init = cd.init_pid("t30");
        let procs = |cg: &std::path::Path| -> Vec<i32> {
            fs::read_to_string(cg.join("cgroup.procs"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        };
        let cgroups = cd.task_cgroups("t30");
        assert!(!cgroups.is_empty(), "t30 has no memory or pids cgroup");
        for cg in &cgroups {
            let p = procs(cg);
            assert!(
                p.contains(&init) && p.contains(&exec),
                "{} holds {p:?}, not init {init} and exec {exec}",
                cg.display()
            );
        }
        sys::signal(cd.shim_pid("t30"), sys::SIGKILL);
        let exit = cd.events.wait("/tasks/exit", "t30");
        assert_eq!(
            exit.field("exit_status").as_deref(),
            Some("137"),
            "{exit:?}"
        );
        cd.events.wait("/tasks/delete", "t30");
        assert!(!cd.bundle("t30").exists(), "bundle left behind");
        assert!(
            sys::wait_pid_gone(init, PROCESS_BOUND),
            "container init survived"
        );
        assert!(
            sys::wait_pid_gone(exec, PROCESS_BOUND),
            "exec process survived"
        );
        assert!(
            cd.runc_calls()
                .lines()
                .any(|l| l.ends_with("delete --force t30")),
            "{}",
            cd.runc_calls()
        );
        for cg in &cgroups {
            let left = procs(cg);
            assert!(left.is_empty(), "{} still holds {left:?}", cg.display());
        }
        // The holder's mountinfo is the namespace containerd and the shims mount in (its
        // /run/containerd tmpfs shows it is): nothing of the task is left mounted there.
        assert!(
            !cd.mounts_under(std::path::Path::new("/run/containerd"))
                .is_empty(),
            "not the private mount namespace"
        );
        let left = cd.mounts_under(&cd.dir);
        assert!(left.is_empty(), "mounts left behind: {left:?}");
    });
}

fn row31_init_killed_while_containerd_is_down_shows_stopped_and_137() {
    each_shim("row31", |shim| {
        let mut cd = Containerd::start(&shim.setup(), "r31");
        cd.run_detached("r31", SLEEP);
        let init = cd.init_pid("r31");
        cd.stop_daemon();
        sys::signal(init, sys::SIGKILL);
        assert!(sys::wait_pid_gone(init, PROCESS_BOUND));
        let retries = shim.expect().exit_published_after_restart;
        // containerd is away: read the shim's log fifo as containerd would, until the shim says
        // its publish of this exit failed (Go's line names no id: it is the only event in flight).
        let line = first_log_line(&cd.workdir("r31").join("shim.stdout.log"), move |l| {
            l.contains("msg=\"post event\"") && (!retries || l.contains("id=r31"))
        });
        assert!(
            line.is_some(),
            "no failed publish logged while containerd was down"
        );
        cd.start_daemon();
        assert_eq!(task_status(&cd, "r31").as_deref(), Some("STOPPED"));
        if retries {
            // containerd drains the shim's log again: the retry went through (publish exit 0).
            let published = wait_text(PROCESS_BOUND, || {
                cd.log()
                    .lines()
                    .find(|l| l.contains("msg=\"published event\"") && l.contains("id=r31"))
                    .map(String::from)
            });
            let line = published.expect("the exit was never delivered after the restart");
            let attempts: u32 = line
                .split("attempts=")
                .nth(1)
                .and_then(|a| a.split_whitespace().next()?.parse().ok())
                .unwrap_or(0);
            assert!(attempts >= 2, "delivered without a retry: {line}");
        }
        let rm = cd.ctr(&["t", "rm", "r31"]);
        rm.expect_code(0);
        assert!(rm.stderr.contains("exit code 137"), "{rm}");
        if !retries {
            // Go drops an event whose publish failed (contract §4.1): up to the delete, which
            // containerd publishes after the task is gone, no exit of r31 arrived.
            cd.events.wait("/tasks/delete", "r31");
            let exits: Vec<_> = cd
                .events
                .all()
                .into_iter()
                .filter(|e| e.is("/tasks/exit", "r31"))
                .collect();
            assert!(exits.is_empty(), "the lost exit arrived: {exits:?}");
        }
    });
}

fn row32_shim_killed_while_containerd_is_down_is_cleaned_up_at_load() {
    each_shim("row32", |shim| {
        let mut cd = Containerd::start(&shim.setup(), "r32");
        cd.run_detached("r32", SLEEP);
        let shim_pid = cd.shim_pid("r32");
        cd.stop_daemon();
        sys::signal(shim_pid, sys::SIGKILL);
        assert!(sys::wait_pid_gone(shim_pid, PROCESS_BOUND));
        cd.start_daemon();
        let log = cd.log();
        let about = |needle: &str| {
            log.lines()
                .any(|l| l.contains(needle) && l.contains("id=r32"))
        };
        assert!(
            about("connecting to shim") && about("connection refused"),
            "{log}"
        );
        assert!(about("cleaning up after shim dead"), "{log}");
        assert_eq!(task_status(&cd, "r32"), None);
        assert!(!cd.bundle("r32").exists(), "bundle left behind");
    });
}

fn row33_sigterm_of_a_reconnected_shim_is_cleaned_up_through_connection_eof() {
    each_shim("row33", |shim| {
        let mut cd = Containerd::start(&shim.setup(), "r33");
        cd.run_detached("r33", SLEEP);
        cd.restart_daemon();
        assert_eq!(task_status(&cd, "r33").as_deref(), Some("RUNNING"));
        sys::signal(cd.shim_pid("r33"), sys::SIGTERM);
        let exit = cd.events.wait("/tasks/exit", "r33");
        assert_eq!(
            exit.field("exit_status").as_deref(),
            Some("137"),
            "{exit:?}"
        );
        cd.events.wait("/tasks/delete", "r33");
        assert!(!cd.bundle("r33").exists(), "bundle left behind");
    });
}

fn row34_output_nobody_reads_waits_for_attach_and_none_is_lost() {
    // With `run -d` nobody reads the fifo: 1 MiB cannot fit the fifo and pipe buffers, so the
    // container has to wait for a reader. `ctr t attach` must then get every byte, and the task
    // must finish. (That the writer is blocked meanwhile has no event to wait on: not asserted.)
    // `run -d` opens the fifos and copies from them until it exits right after Start: bytes it
    // read but had not written yet when it exited are gone, which is ctr's loss, not the shim's.
    // So the container writes only once `run -d` has returned: it waits for a file the test
    // puts into its rootfs (a host directory) afterwards.
    each_shim("row34", |shim| {
        let cd = Containerd::start(&shim.setup(), "r34");
        let script = "until [ -e /r34-go ]; do sleep 0.01; done; \
                      head -c 1048576 /dev/zero | tr '\\0' x; echo; echo end";
        let detached = cd.run(&["-d"], "r34", &sh(script));
        detached.expect_code(0);
        std::fs::write(cd.rootfs().join("r34-go"), "").expect("the go file in the rootfs");
        let attach = cd.ctr(&["t", "attach", "r34"]);
        attach.expect_code(0);
        let out = format!("{}{}", detached.stdout, attach.stdout).replace("\r", "");
        cd.events.wait("/tasks/exit", "r34");
        let whole = 1048576 + "\nend\n".len();
        if !shim.expect().attach_gets_every_byte && out.len() < whole {
            // Still the contract's row: the writer waited for a reader and attach resumed it
            // (more than the pipe and fifo buffers could hold reached it).
            assert!(
                out.len() > 256 * 1024,
                "attach resumed nothing: {}",
                out.len()
            );
            assert!(out.bytes().all(|b| b == b'x' || b == b'\n'), "bytes added");
            return Ran::PassedWith(format!(
                "known Go race taken: the exit overtook the last {} bytes",
                whole - out.len()
            ));
        }
        assert_eq!(out.len(), whole, "bytes lost or added");
        assert!(
            out.ends_with("x\nend\n"),
            "{}",
            &out[out.len().saturating_sub(40)..]
        );
        Ran::Passed
    });
}

fn row35_criu_path_flag_is_fatal_for_go_and_accepted_by_ours() {
    each_shim("row35", |shim| {
        let mut m = ManualShim::start(shim, "r35", &["-criu-path", "/usr/sbin/criu"]);
        if shim.expect().accepts_criu_path_flag {
            let pid = m.shim_info().expect("ShimInfo over fd 3");
            assert_eq!(pid as i32, m.pid());
        } else {
            let (exit, stderr) = m.wait_exit(PROCESS_BOUND);
            assert_eq!(exit, Exit::Code(2), "stderr: {stderr}");
            assert!(
                stderr.contains("flag provided but not defined: -criu-path"),
                "{stderr}"
            );
        }
    });
}

fn row36_io_and_the_shim_log_resume_after_a_containerd_restart() {
    // Contract §7.1: a reconnected task keeps working, IO included, and the shim's log lines
    // resume in the new containerd's log (shim_debug forwards the shim's log fifo).
    each_shim("row36", |shim| {
        let mut cd = Containerd::start(&shim.setup(), "r36");
        cd.run_detached("r36", SLEEP);
        cd.restart_daemon();
        let restarted_log = cd.log_of_this_generation();
        let exec = cd.ctr(&[
            "t",
            "exec",
            "--exec-id",
            "x36",
            "r36",
            "/bin/sh",
            "-c",
            "echo exec-out; echo exec-err >&2",
        ]);
        exec.expect_code(0);
        assert!(
            exec.stdout.contains("exec-out") && exec.stderr.contains("exec-err"),
            "{exec}"
        );
        // New output of the task itself: a line written into its init's stdout (the pipe the
        // shim copies from), after the restart, must reach an attached client.
        let attach = Attached::start(&cd, "r36");
        cd.ctr(&[
            "t",
            "exec",
            "--exec-id",
            "p36",
            "r36",
            "/bin/sh",
            "-c",
            "echo init-out-after-restart > /proc/1/fd/1",
        ])
        .expect_code(0);
        let seen = attach.wait_line(|l| l.contains("init-out-after-restart"));
        assert!(seen, "attach got no new output: {:?}", attach.finish());
        // The shim logged after the restart and containerd forwarded it.
        let needle = shim.expect().log_line_after_exec;
        let line = wait_text(PROCESS_BOUND, || {
            fs::read_to_string(&restarted_log)
                .unwrap_or_default()
                .lines()
                .find(|l| l.contains(needle))
                .map(String::from)
        });
        assert!(
            line.is_some(),
            "no shim log line ({needle}) in the restarted containerd's log:\n{}",
            fs::read_to_string(&restarted_log).unwrap_or_default()
        );
    });
}

/// Row 37: execs started at once per round (the rounds are per shim: expect.rs).
const STRESS_EXECS: u32 = 50;

/// The exit code of exec `i` of `round` in row 37: a different one for neighbours.
fn stress_code(round: u32, i: u32) -> i32 {
    ((round * 7 + i) % 64) as i32
}

fn row37_fifty_concurrent_short_execs_keep_every_output_and_exit_code() {
    // 50 `ctr t exec` at once into one container, each printing one line and exiting with a
    // code of its own, 20 rounds (Go: 5). Every exit code ctr reports must be right, and for
    // ours every exec must start, its line reach ctr and its exit be reported; Go's losses of
    // any of these are recorded instead (expect.rs).
    each_shim("row37", |shim| {
        let cd = Containerd::start(&shim.setup(), "r37");
        cd.run_detached("r37", SLEEP);
        let started = Instant::now();
        let (mut lost, mut hung, mut failed) = (Vec::new(), Vec::new(), Vec::new());
        let rounds = shim.expect().stress_rounds;
        for round in 0..rounds {
            let round_started = Instant::now();
            let outs: Vec<(u32, proc::Output)> = thread::scope(|s| {
                let execs: Vec<_> = (0..STRESS_EXECS)
                    .map(|i| {
                        let cd = &cd;
                        s.spawn(move || {
                            let id = format!("s{round}-{i}");
                            let script =
                                format!("echo out-{round}-{i}; exit {}", stress_code(round, i));
                            let argv = ["t", "exec", "--exec-id", &id, "r37", "/bin/sh", "-c"];
                            let mut args = argv.to_vec();
                            args.push(&script);
                            (i, cd.ctr(&args))
                        })
                    })
                    .collect();
                execs
                    .into_iter()
                    .map(|h| h.join().expect("exec thread"))
                    .collect()
            });
            for (i, out) in outs {
                let id = format!("s{round}-{i}");
                let code = stress_code(round, i);
                if out.exit == Exit::TimedOut {
                    // Killed at the bound: whatever it printed so far says nothing.
                    hung.push(id);
                    continue;
                }
                if out.code() != Some(code) && out.stderr.contains("ctr: ") {
                    // ctr's own error (the exec did not start): not an exit code.
                    let why = out.stderr.lines().find(|l| l.contains("ctr: "));
                    failed.push(format!("{id}: {}", why.unwrap_or_default()));
                    continue;
                }
                out.expect_code(code);
                if out.stdout != format!("out-{round}-{i}\n") {
                    lost.push(format!("{id}: {:?}", out.stdout));
                }
            }
            eprintln!(
                "row37 [{}]: round {round} in {:.1?}",
                shim.name,
                round_started.elapsed()
            );
        }
        let total = rounds * STRESS_EXECS;
        eprintln!(
            "row37 [{}]: {total} execs in {:.1?}: {} outputs lost, {} exits never reported, \
             {} failed to start",
            shim.name,
            started.elapsed(),
            lost.len(),
            hung.len(),
            failed.len()
        );
        let expect = shim.expect();
        assert!(
            lost.is_empty() || !expect.short_exec_output_kept,
            "{} of {total} outputs lost: {lost:?}",
            lost.len()
        );
        assert!(
            hung.is_empty() || !expect.short_exec_exit_reported,
            "{} of {total} exits never reached ctr: {hung:?}",
            hung.len()
        );
        assert!(
            failed.is_empty() || !expect.short_exec_always_starts,
            "{} of {total} execs failed: {failed:?}",
            failed.len()
        );
        let mut notes = Vec::new();
        if !lost.is_empty() {
            notes.push(format!("{} of {total} outputs lost", lost.len()));
        }
        if !hung.is_empty() {
            notes.push(format!(
                "{} exits not reported within {CTR_BOUND:?} ({} exit publishes failed)",
                hung.len(),
                failed_exit_publishes(&cd)
            ));
        }
        if !failed.is_empty() {
            notes.push(format!(
                "{} execs failed, first {:?}",
                failed.len(),
                failed[0]
            ));
        }
        if notes.is_empty() {
            return Ran::Passed;
        }
        Ran::PassedWith(format!("known Go races taken: {}", notes.join("; ")))
    });
}

/// How many exit events the shim logged as failing to publish.
fn failed_exit_publishes(cd: &Containerd) -> usize {
    cd.log()
        .lines()
        .filter(|l| l.contains("msg=\"post event\"") && l.contains("/tasks/exit"))
        .count()
}

/// Row 38: what the container writes, 1 MiB of `seq 1 190000` output 1024 times.
const GIB: u64 = 1 << 30;
const BLOCK: usize = 1 << 20;
const ONE_GIB_OF_SEQ: &str = "seq 1 190000 | head -c 1048576 > /r38-block || exit 1; \
     i=0; while [ $i -lt 1024 ]; do cat /r38-block || exit 1; i=$((i+1)); done";
/// Bound for the 1 GiB run (a hang fails the row, not the suite).
const GIB_BOUND: Duration = Duration::from_secs(600);

/// `sha256sum` running, fed through its stdin; `finish` closes it and returns the hex digest.
struct Sha256 {
    proc: proc::Proc,
    child: std::process::Child,
}

impl Sha256 {
    fn start() -> Sha256 {
        let mut cmd = Command::new("sha256sum");
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let (proc, child) = proc::Proc::spawn(&mut cmd).expect("spawn sha256sum");
        Sha256 { proc, child }
    }

    fn input(&mut self) -> std::process::ChildStdin {
        self.child.stdin.take().expect("sha256sum stdin")
    }

    fn finish(mut self) -> String {
        use std::io::Read;
        drop(self.child.stdin.take());
        let mut out = String::new();
        let stdout = self.child.stdout.as_mut().expect("sha256sum stdout");
        stdout.read_to_string(&mut out).expect("read sha256sum");
        let exit = self.proc.wait_timeout(PROCESS_BOUND);
        assert_eq!(exit, Exit::Code(0), "sha256sum");
        out.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

/// Runs `cmd` (bounded), counting and hashing its stdout as it arrives: (bytes, sha256, exit,
/// stderr).
fn hash_stdout(mut cmd: Command, bound: Duration) -> (u64, String, Exit, String) {
    use std::io::{Read, Write};
    use std::process::Stdio;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut sum = Sha256::start();
    let mut into_sum = sum.input();
    let (producer, mut child) = proc::Proc::spawn(&mut cmd).expect("spawn the producer");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let copier = thread::spawn(move || {
        let (mut buf, mut bytes) = (vec![0u8; 1 << 16], 0u64);
        while let Ok(n @ 1..) = out.read(&mut buf) {
            into_sum.write_all(&buf[..n]).expect("feed sha256sum");
            bytes += n as u64;
        }
        bytes
    });
    let stderr = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let exit = producer.wait_timeout(bound);
    if exit == Exit::TimedOut {
        producer.kill_group();
    }
    let bytes = copier.join().expect("copier");
    let digest = sum.finish();
    (bytes, digest, exit, stderr.join().unwrap_or_default())
}

/// The sha256 of row 38's stream, made here the way the container makes it.
fn one_gib_of_seq_digest() -> String {
    use std::io::Write;
    let mut block: Vec<u8> = (1..=190_000u32)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    assert!(block.len() >= BLOCK);
    block.truncate(BLOCK);
    let mut sum = Sha256::start();
    let mut input = sum.input();
    for _ in 0..GIB / BLOCK as u64 {
        input.write_all(&block).expect("feed sha256sum");
    }
    drop(input);
    sum.finish()
}

fn row38_one_gib_of_stdout_reaches_ctr_whole() {
    // `ctr run` of a container writing 1 GiB (not one repeating byte: 1 MiB of seq output over
    // and over) to stdout; ctr's stdout is counted and hashed as it arrives.
    each_shim("row38", |shim| {
        let cd = Containerd::start(&shim.setup(), "r38");
        let expected = one_gib_of_seq_digest();
        let args = cd.run_args(&["--rm"], "r38", &sh(ONE_GIB_OF_SEQ));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = Instant::now();
        let (bytes, digest, exit, stderr) = hash_stdout(cd.ctr_cmd(&refs), GIB_BOUND);
        eprintln!(
            "row38 [{}]: {bytes} bytes in {:.1?}",
            shim.name,
            started.elapsed()
        );
        assert_eq!(exit, Exit::Code(0), "ctr run: {stderr}");
        assert_eq!(bytes, GIB, "bytes lost or added");
        assert_eq!(digest, expected, "the stream arrived changed");
    });
}

/// `ctr t attach <id>` running, its stdout lines collected on a thread.
struct Attached {
    proc: proc::Proc,
    lines: std::sync::mpsc::Receiver<String>,
    seen: std::cell::RefCell<Vec<String>>,
    reader: Option<thread::JoinHandle<()>>,
}

impl Attached {
    fn start(cd: &Containerd, id: &str) -> Attached {
        use std::io::BufRead;
        let mut cmd = cd.ctr_cmd(&["t", "attach", id]);
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let (proc, mut child) = proc::Proc::spawn(&mut cmd).expect("spawn ctr t attach");
        let out = child.stdout.take().expect("attach stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        let reader = thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Attached {
            proc,
            lines,
            seen: Default::default(),
            reader: Some(reader),
        }
    }

    /// Waits (bounded) for a line satisfying `pred`.
    fn wait_line(&self, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + PROCESS_BOUND;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = pred(&l);
                    self.seen.borrow_mut().push(l);
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        false
    }

    /// Stops attach (SIGKILL: ctr cannot forward it to the task); returns the lines seen.
    fn finish(mut self) -> Vec<String> {
        self.stop();
        self.seen.take()
    }

    fn stop(&mut self) {
        self.proc.kill_group();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The first line of a log fifo matching `pred`, read with a bound (the writer holds it open).
fn first_log_line(
    fifo: &std::path::Path,
    pred: impl Fn(&str) -> bool + Send + 'static,
) -> Option<String> {
    use std::io::BufRead;
    let file = std::fs::File::open(fifo).ok()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let found = std::io::BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .find(|l| pred(l));
        let _ = tx.send(found);
    });
    rx.recv_timeout(PROCESS_BOUND).ok().flatten()
}

fn main() {
    trials::run(trials::trials!(
        e2e::missing();
        row01_run_prints_output_returns_exit_code_and_publishes_lifecycle_events,
        row02_shim_keeps_the_process_attributes_containerd_gave_it,
        row03_bundle_and_workdir_hold_the_expected_files,
        row04_exec_returns_its_exit_code_with_started_and_exit_events_only,
        row05_exec_of_a_missing_binary_reports_the_runc_error,
        row06_create_failure_reports_the_runc_error_and_removes_the_bundle,
        row07_tty_run_gets_a_pty_of_the_client_size,
        row08_tty_exec_is_resized_to_the_client_size,
        row09_pause_and_resume_change_status_and_publish_events,
        row10_pausing_a_paused_task_is_refused,
        row11_resuming_a_running_task_is_refused,
        row12_exec_in_a_paused_task_is_refused,
        row13_duplicate_exec_id_is_refused,
        row14_kill_of_an_unknown_exec_is_not_found,
        row15_kill_of_an_exited_exec_is_not_found,
        row16_ps_names_init_and_execs_and_marks_other_pids,
        row17_kill_all_with_sigkill_ends_the_task_with_137,
        row18_kill_of_a_stopped_init_is_not_found_but_kill_all_succeeds,
        row19_exec_and_pause_on_a_stopped_task_are_refused,
        row20_deleting_a_deleted_task_is_not_found,
        row21_stdin_is_copied_and_its_eof_reaches_the_container,
        row22_null_io_prints_nothing_and_keeps_the_exit_code,
        row23_file_log_uri_appends_both_streams_to_one_file,
        row24_binary_log_uri_fails_in_go_and_works_when_the_namespace_comes_from_argv,
        row25_no_pivot_reaches_runc_create,
        row26_memory_limit_oom_gives_oom_events_and_137,
        row27_checkpoint_runs_runc_checkpoint_and_reports_the_criu_failure,
        row28_restore_needs_a_checkpoint_image_which_criu_cannot_make_on_this_kernel,
        row29_update_through_the_shim_api_changes_the_cgroup,
        row30_killed_shim_is_cleaned_up_by_containerd,
        row31_init_killed_while_containerd_is_down_shows_stopped_and_137,
        row32_shim_killed_while_containerd_is_down_is_cleaned_up_at_load,
        row33_sigterm_of_a_reconnected_shim_is_cleaned_up_through_connection_eof,
        row34_output_nobody_reads_waits_for_attach_and_none_is_lost,
        row35_criu_path_flag_is_fatal_for_go_and_accepted_by_ours,
        row36_io_and_the_shim_log_resume_after_a_containerd_restart,
        row37_fifty_concurrent_short_execs_keep_every_output_and_exit_code,
        row38_one_gib_of_stdout_reaches_ctr_whole,
    ));
}
