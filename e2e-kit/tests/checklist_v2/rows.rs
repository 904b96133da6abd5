//! The rows. Each uses task ids of its own (`r<nn>…`), so shared rows can run side by side in
//! one containerd; what a row cannot check here it says in its outcome's note.

use std::fs;
use std::thread;
use std::time::Duration;

use e2e_kit::containerd::{Containerd, CTR_BOUND, RUNTIME_V2};
use e2e_kit::ctr::{sh, task_status, with_pty, PRINT_PTY_SIZE};
use e2e_kit::events::{Event, EVENT_BOUND};
use e2e_kit::proc::{self, Output};
use e2e_kit::report::Ran;
use e2e_kit::rootfs;
use e2e_kit::sys;

use super::run::{Body, Row};
use super::shims::{self, ShimKind, OURS_BIN, OURS_RUNTIME};

const SLEEP: &[&str] = &["sleep", "1000"];
const PROCESS_BOUND: Duration = Duration::from_secs(20);
/// How long to wait for an event a shim is known to lose at times (then it is taken as lost).
const LOST_BOUND: Duration = Duration::from_secs(5);

pub const ROWS: &[Row] = &[
    Row {
        name: "row01",
        body: Body::Shared(row01_run_to_exit_with_output_and_lifecycle_events_in_order),
    },
    Row {
        name: "row02",
        body: Body::Shared(row02_kill_gives_137_and_a_second_kill_is_not_found),
    },
    Row {
        name: "row03",
        body: Body::Shared(row03_exec_code_output_events_and_unknown_exec_id),
    },
    Row {
        name: "row04",
        body: Body::Shared(row04_twenty_concurrent_execs_keep_their_codes_and_output),
    },
    Row {
        name: "row05",
        body: Body::Shared(row05_pause_and_resume_with_events_and_exec_refused_while_paused),
    },
    Row {
        name: "row06",
        body: Body::Shared(row06_tty_run_gets_a_pty_of_the_client_size),
    },
    Row {
        name: "row07",
        body: Body::Shared(row07_piped_stdin_and_its_eof_reach_the_container),
    },
    Row {
        name: "row08",
        body: Body::Shared(row08_ps_lists_init_exec_and_other_processes),
    },
    Row {
        name: "row09",
        body: Body::Shared(row09_delete_of_a_running_task_is_refused),
    },
    Row {
        name: "row10",
        body: Body::Shared(row10_metrics_show_cgroup_v1_memory_usage),
    },
    Row {
        name: "row11",
        body: Body::Shared(row11_oom_event_before_exit_137),
    },
    Row {
        name: "row12",
        body: Body::Shared(row12_group_label_shares_one_shim),
    },
    Row {
        name: "row13",
        body: Body::Shared(row13_checkpoint_reports_the_criu_failure),
    },
    Row {
        name: "row14",
        body: Body::Shared(row14_one_mib_of_stdout_arrives_byte_exact),
    },
    Row {
        name: "row15",
        body: Body::Shared(row15_ids_with_dot_dot_are_refused_before_any_shim),
    },
    Row {
        name: "row16",
        body: Body::Shared(row16_killed_shim_is_deleted_by_containerd),
    },
    Row {
        name: "row17",
        body: Body::Shared(row17_runtime_given_as_an_absolute_path),
    },
    Row {
        name: "row18",
        body: Body::Alone(row18_task_survives_a_containerd_restart_and_its_exit_is_reported),
    },
    Row {
        name: "row19",
        body: Body::Alone(row19_the_installed_shim_runs_by_its_runtime_name_from_path),
    },
    Row {
        name: "row20",
        body: Body::Shared(row20_a_group_whose_shim_died_gets_a_new_shim),
    },
    Row {
        name: "row21",
        body: Body::Shared(row21_a_second_exec_of_a_running_exec_id_already_exists),
    },
    Row {
        name: "row22",
        body: Body::Shared(row22_shim_ctl_finds_the_task_s_shim_and_drives_it),
    },
];

/// `ctr t kill -s SIGKILL`, then the exit (137) and `ctr t rm`; the task is gone.
fn kill_and_remove(cd: &Containerd, id: &str) {
    cd.ctr(&["t", "kill", "-s", "SIGKILL", id]).expect_code(0);
    cd.events.wait("/tasks/exit", id);
    cd.ctr(&["t", "rm", id]).expect_code(0);
    assert_eq!(task_status(cd, id), None, "{id} still listed");
}

/// Index of the first event satisfying `pred` in `events`.
fn position(events: &[Event], what: &str, pred: impl Fn(&Event) -> bool) -> usize {
    events
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("no {what} in {events:?}"))
}

/// The last line of a failing ctr's stderr (what it said), for notes.
fn said(out: &Output) -> String {
    out.stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Judges what reached ctr of a process's output: stdout must be `want_out` and stderr hold
/// `want_err`. A shim known to lose output (Go, see expect.rs) may deliver a prefix of either
/// (the tail lost); that is noted, not failed.
fn output_ok(
    kind: ShimKind,
    out: &Output,
    want_out: &str,
    want_err: &str,
    notes: &mut Vec<String>,
) {
    // Through a pty (`script`): CRs added, and the client tty's echo of a NUL, `^@`, at
    // times (where it lands in the output depends on timing).
    let stdout = out.stdout.replace('\r', "").replace("^@", "");
    let stderr = out.stderr.replace('\r', "");
    let out_ok = stdout == want_out;
    let err_ok = stderr.contains(want_err);
    if out_ok && err_ok {
        return;
    }
    let cut = want_out.starts_with(&stdout) && (err_ok || want_err.starts_with(&stderr));
    assert!(
        cut && !kind.expect().output_never_lost,
        "want stdout {want_out:?} and stderr with {want_err:?}, got {stdout:?} and {stderr:?}:\n{out}"
    );
    let lost: Vec<&str> = [("stdout", out_ok), ("stderr", err_ok)]
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(s, _)| *s)
        .collect();
    notes.push(format!(
        "known Go race taken: {} of `{}` lost",
        lost.join(" and "),
        out.what.rsplit(" -c ").next().unwrap_or_default()
    ));
}

/// `Passed`, or `PassedWith` the notes.
fn ran(notes: Vec<String>) -> Ran {
    if notes.is_empty() {
        Ran::Passed
    } else {
        Ran::PassedWith(notes.join("; "))
    }
}

fn exec_args<'a>(id: &'a str, exec_id: &'a str, argv: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["t", "exec", "--exec-id", exec_id, id];
    a.extend_from_slice(argv);
    a
}

fn row01_run_to_exit_with_output_and_lifecycle_events_in_order(
    cd: &Containerd,
    kind: ShimKind,
) -> Ran {
    let out = cd.run(&[], "r01", &sh("echo out; echo err >&2; exit 3"));
    out.expect_code(3);
    let mut notes = Vec::new();
    output_ok(kind, &out, "out\n", "err\n", &mut notes);
    let exit = cd.events.wait("/tasks/exit", "r01");
    assert_eq!(exit.field("exit_status").as_deref(), Some("3"), "{exit:?}");
    // ctr returned after the Delete: a delete event sent is on its way already.
    let strict = kind.expect().delete_event_always_sent;
    let bound = if strict { EVENT_BOUND } else { LOST_BOUND };
    let Some(del) = cd
        .events
        .wait_within(bound, |e| e.is("/tasks/delete", "r01"))
    else {
        assert!(
            !strict,
            "no /tasks/delete for r01:\n{}",
            cd.events.transcript()
        );
        notes.push("known Go race taken: /tasks/delete lost".into());
        return ran(notes);
    };
    assert_eq!(del.field("exit_status").as_deref(), Some("3"), "{del:?}");
    let all = cd.events.all();
    let order: Vec<usize> = [
        "/tasks/create",
        "/tasks/start",
        "/tasks/exit",
        "/tasks/delete",
    ]
    .iter()
    .map(|t| position(&all, t, |e| e.is(t, "r01")))
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "create, start, exit, delete out of order: {order:?}\n{}",
        cd.events.transcript()
    );
    ran(notes)
}

fn row02_kill_gives_137_and_a_second_kill_is_not_found(cd: &Containerd, _: ShimKind) -> Ran {
    cd.run_detached("r02", SLEEP);
    cd.ctr(&["t", "kill", "-s", "SIGKILL", "r02"])
        .expect_code(0);
    let exit = cd.events.wait("/tasks/exit", "r02");
    assert_eq!(
        exit.field("exit_status").as_deref(),
        Some("137"),
        "{exit:?}"
    );
    let again = cd.ctr(&["t", "kill", "-s", "SIGKILL", "r02"]);
    again.expect_error("not found");
    let rm = cd.ctr(&["t", "rm", "r02"]);
    rm.expect_code(0);
    assert!(rm.stderr.contains("exit code 137"), "{rm}");
    Ran::PassedWith(format!("second kill: {}", said(&again)))
}

fn row03_exec_code_output_events_and_unknown_exec_id(cd: &Containerd, kind: ShimKind) -> Ran {
    cd.run_detached("r03", SLEEP);
    let out = cd.ctr(&exec_args(
        "r03",
        "x3",
        &sh("echo exec-out; echo exec-err >&2; exit 5"),
    ));
    out.expect_code(5);
    let mut notes = Vec::new();
    output_ok(kind, &out, "exec-out\n", "exec-err\n", &mut notes);
    let exit = cd
        .events
        .wait_for("exit of x3", |e| e.is_exit_of("r03", "x3"));
    assert_eq!(exit.field("exit_status").as_deref(), Some("5"), "{exit:?}");
    let all = cd.events.all();
    let of_x3 = |topic: &'static str| {
        move |e: &Event| e.topic == topic && e.field("exec_id").as_deref() == Some("x3")
    };
    let added = position(&all, "exec-added of x3", of_x3("/tasks/exec-added"));
    let started = position(&all, "exec-started of x3", of_x3("/tasks/exec-started"));
    let exited = position(&all, "exit of x3", |e| e.is_exit_of("r03", "x3"));
    assert!(
        added < started && started < exited,
        "exec-added, exec-started, exit out of order:\n{}",
        cd.events.transcript()
    );
    let unknown = cd.ctr(&["t", "kill", "--exec-id", "nope", "r03"]);
    // Go's runc v2 words it `process does not exist <id>` (its v1 shim, and our v1 front, the
    // other way round); both shims must say it the same.
    unknown.expect_error("process does not exist nope");
    unknown.expect_error("not found");
    notes.push(format!("unknown exec id: {}", said(&unknown)));
    ran(notes)
}

fn row04_twenty_concurrent_execs_keep_their_codes_and_output(
    cd: &Containerd,
    kind: ShimKind,
) -> Ran {
    cd.run_detached("r04", SLEEP);
    // Per exec: (i, what was wrong, whether only output was lost: the exit code right and
    // each stream empty or cut short).
    let results: Vec<(i32, Option<String>, bool)> = thread::scope(|s| {
        let handles: Vec<_> = (1..=20)
            .map(|i| {
                s.spawn(move || {
                    let exec_id = format!("c{i}");
                    let script = format!("echo out-{i}; echo err-{i} >&2; exit {i}");
                    let out = cd.ctr(&exec_args("r04", &exec_id, &sh(&script)));
                    let (o, e) = (format!("out-{i}\n"), format!("err-{i}\n"));
                    let ok = out.code() == Some(i) && out.stdout == o && out.stderr.contains(&e);
                    let cut = out.code() == Some(i)
                        && o.starts_with(&out.stdout)
                        && (out.stderr.contains(&e) || e.starts_with(&out.stderr));
                    (i, (!ok).then(|| format!("exec {i}: {out}")), cut)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("exec thread"))
            .collect()
    });
    let wrong: Vec<&(i32, Option<String>, bool)> =
        results.iter().filter(|(_, w, _)| w.is_some()).collect();
    let only_lost = wrong.iter().all(|(_, _, cut)| *cut);
    let known = !wrong.is_empty() && only_lost && !kind.expect().output_never_lost;
    if !known {
        let text: Vec<&str> = wrong.iter().filter_map(|(_, w, _)| w.as_deref()).collect();
        assert!(wrong.is_empty(), "{}", text.join("\n"));
    }
    for i in 1..=20 {
        let exec_id = format!("c{i}");
        let exit = cd.events.wait_for(&format!("exit of {exec_id}"), |e| {
            e.is_exit_of("r04", &exec_id)
        });
        assert_eq!(exit.field("exit_status"), Some(i.to_string()), "{exit:?}");
    }
    if known {
        let execs: Vec<String> = wrong.iter().map(|(i, _, _)| format!("c{i}")).collect();
        return Ran::PassedWith(format!(
            "known Go race taken: output lost by exec {} (exit codes right)",
            execs.join(", ")
        ));
    }
    Ran::Passed
}

fn row05_pause_and_resume_with_events_and_exec_refused_while_paused(
    cd: &Containerd,
    _: ShimKind,
) -> Ran {
    cd.run_detached("r05", SLEEP);
    cd.ctr(&["t", "pause", "r05"]).expect_code(0);
    cd.events.wait("/tasks/paused", "r05");
    assert_eq!(task_status(cd, "r05").as_deref(), Some("PAUSED"));
    let refused = cd.ctr(&exec_args("r05", "x5", &["true"]));
    refused.expect_error("paused");
    cd.ctr(&["t", "resume", "r05"]).expect_code(0);
    cd.events.wait("/tasks/resumed", "r05");
    assert_eq!(task_status(cd, "r05").as_deref(), Some("RUNNING"));
    cd.ctr(&exec_args("r05", "x5b", &sh("exit 0")))
        .expect_code(0);
    Ran::PassedWith(format!("exec while paused: {}", said(&refused)))
}

fn row06_tty_run_gets_a_pty_of_the_client_size(cd: &Containerd, kind: ShimKind) -> Ran {
    let script = format!("tty; {PRINT_PTY_SIZE}; exit 7");
    let args = cd.run_args(&["-t"], "r06", &sh(&script));
    let out = with_pty(cd, "cols 100 rows 30", &args);
    out.expect_code(7);
    let mut notes = Vec::new();
    output_ok(kind, &out, "/dev/pts/0\nsize=30 100\n", "", &mut notes);
    ran(notes)
}

fn row07_piped_stdin_and_its_eof_reach_the_container(cd: &Containerd, kind: ShimKind) -> Ran {
    let watch = cd.events.watch();
    // Hold stdin until the task runs (ctr's EOF race, design.md).
    let feed = proc::feed_after(
        move || {
            watch.wait("/tasks/start", "r07");
        },
        b"a\nb\n",
    );
    let args = cd.run_args(&[], "r07", &sh("cat; echo done"));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = proc::run(cd.ctr_cmd(&refs), CTR_BOUND, Some(feed));
    out.expect_code(0);
    let mut notes = Vec::new();
    output_ok(kind, &out, "a\nb\ndone\n", "", &mut notes);
    ran(notes)
}

fn row08_ps_lists_init_exec_and_other_processes(cd: &Containerd, _: ShimKind) -> Ran {
    cd.run_detached("r08", &sh("sleep 1000 & wait"));
    cd.ctr(&["t", "exec", "-d", "--exec-id", "p8", "r08", "sleep", "1000"])
        .expect_code(0);
    let started = cd.events.wait_for("exec-started of p8", |e| {
        e.topic == "/tasks/exec-started" && e.field("exec_id").as_deref() == Some("p8")
    });
    let exec_pid = started.field("pid").unwrap_or_default();
    let out = cd.ctr(&["t", "ps", "r08"]);
    out.expect_code(0);
    let init = cd.init_pid("r08").to_string();
    let line_of = |pid: &str| {
        out.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(pid))
            .unwrap_or_else(|| panic!("pid {pid} not listed:\n{out}"))
            .to_string()
    };
    // Go names only execs (ProcessDetails{ExecID}); the init and its child show `-`.
    line_of(&init);
    let exec_line = line_of(&exec_pid);
    // ctr 1.6 prints `&ProcessDetails{ExecID:p8,…}`, 1.7 and 2.1 `exec_id:"p8"`.
    let named = ["ExecID:p8,", "exec_id:\"p8\""];
    assert!(
        named.iter().any(|n| exec_line.contains(n)),
        "exec not named: {exec_line}\n{out}"
    );
    let listed = out.stdout.lines().skip(1).filter(|l| !l.trim().is_empty());
    assert!(listed.count() >= 3, "the init's sleep is missing:\n{out}");
    Ran::Passed
}

fn row09_delete_of_a_running_task_is_refused(cd: &Containerd, _: ShimKind) -> Ran {
    cd.run_detached("r09", SLEEP);
    let rm = cd.ctr(&["t", "rm", "r09"]);
    rm.expect_error("must be stopped before deletion");
    assert_eq!(task_status(cd, "r09").as_deref(), Some("RUNNING"));
    // The client library asks the status first and refuses: the shim's Delete is not reached.
    Ran::PassedWith(format!("refused before the shim: {}", said(&rm)))
}

fn row10_metrics_show_cgroup_v1_memory_usage(cd: &Containerd, _: ShimKind) -> Ran {
    cd.run_detached("r10", SLEEP);
    let out = cd.ctr(&["t", "metrics", "r10"]);
    out.expect_code(0);
    let value = |key: &str| -> Option<u64> {
        out.stdout.lines().find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(key)).then(|| f.next()?.parse().ok())?
        })
    };
    let usage = value("memory.usage_in_bytes")
        .unwrap_or_else(|| panic!("no memory.usage_in_bytes:\n{out}"));
    assert!(usage > 0, "memory usage 0:\n{out}");
    let pids = value("pids.current").unwrap_or_else(|| panic!("no pids.current:\n{out}"));
    assert!(pids >= 1, "no pids:\n{out}");
    Ran::Passed
}

fn row11_oom_event_before_exit_137(cd: &Containerd, kind: ShimKind) -> Ran {
    // tail holds 150 MB in memory: over the 32 MiB limit, the kernel OOM-kills it. After a
    // second: Go's shim watches the cgroup only once the task started, and an OOM in the
    // first milliseconds went unreported (containerd 1.7, once in 10 runs).
    let hog = "sleep 1; head -c 200000000 /dev/zero | tail -c 150000000 > /dev/null";
    cd.run(&["--memory-limit", "33554432"], "r11", &sh(hog))
        .expect_code(137);
    cd.events.wait("/tasks/exit", "r11");
    cd.events.wait("/tasks/oom", "r11");
    let all = cd.events.all();
    let oom = position(&all, "/tasks/oom of r11", |e| e.is("/tasks/oom", "r11"));
    let exit = position(&all, "/tasks/exit of r11", |e| e.is("/tasks/exit", "r11"));
    if oom > exit && !kind.expect().oom_before_exit {
        return Ran::PassedWith("known Go race taken: the OOM event came after the exit".into());
    }
    assert!(oom < exit, "oom after exit:\n{}", cd.events.transcript());
    Ran::Passed
}

fn row12_group_label_shares_one_shim(cd: &Containerd, _: ShimKind) -> Ran {
    let label = "io.containerd.runc.v2.group=g12";
    for id in ["r12a", "r12b"] {
        cd.run(&["-d", "--label", label], id, SLEEP).expect_code(0);
        cd.events.wait("/tasks/start", id);
    }
    let (a, b) = (cd.shim_pid("r12a"), cd.shim_pid("r12b"));
    assert_eq!(a, b, "two shims for one group");
    assert_eq!(cd.shim_address("r12a"), cd.shim_address("r12b"));
    // One more without the label gets a shim of its own.
    cd.run_detached("r12c", SLEEP);
    assert_ne!(
        cd.shim_pid("r12c"),
        a,
        "an ungrouped task joined the group shim"
    );
    // Not waiting for /tasks/delete: Go's shim publishes it, and under containerd 2.1 the
    // shim may exit (Shutdown after the group's last Delete) before sending it.
    kill_and_remove(cd, "r12a");
    assert!(
        !sys::wait_pid_gone(a, Duration::from_millis(300)),
        "the group shim left with one task still running"
    );
    assert_eq!(task_status(cd, "r12b").as_deref(), Some("RUNNING"));
    kill_and_remove(cd, "r12b");
    assert!(
        sys::wait_pid_gone(a, PROCESS_BOUND),
        "the group shim stayed after its last task was deleted"
    );
    Ran::Passed
}

/// The last error line of criu's dump log in `id`'s bundle or work dir: why criu failed.
fn criu_error(cd: &Containerd, id: &str) -> String {
    let logs = [
        cd.bundle(id).join("criu-dump.log"),
        cd.workdir(id).join("criu-dump.log"),
    ];
    let criu = logs
        .iter()
        .find_map(|p| fs::read_to_string(p).ok())
        .unwrap_or_default();
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

fn row13_checkpoint_reports_the_criu_failure(cd: &Containerd, _: ShimKind) -> Ran {
    cd.run_detached("r13", SLEEP);
    let image = cd.dir.join("ckpt13");
    let out = cd.ctr(&[
        "t",
        "checkpoint",
        "--image-path",
        &image.to_string_lossy(),
        "r13",
    ]);
    let calls = cd.runc_calls();
    assert!(
        calls
            .lines()
            .any(|l| l.contains("checkpoint") && l.ends_with(" r13")),
        "no runc checkpoint of r13:\n{calls}"
    );
    let ran = if out.code() == Some(0) {
        cd.events.wait("/tasks/checkpointed", "r13");
        Ran::PassedWith("criu worked here: the success path was checked".into())
    } else {
        out.expect_error("criu failed");
        Ran::PassedWith(format!(
            "failure path checked; the success path cannot run here ({})",
            criu_error(cd, "r13")
        ))
    };
    assert_eq!(task_status(cd, "r13").as_deref(), Some("RUNNING"));
    ran
}

fn row14_one_mib_of_stdout_arrives_byte_exact(cd: &Containerd, kind: ShimKind) -> Ran {
    rootfs::applets(&cd.rootfs(), &["seq"]).expect("seq applet");
    const MIB: usize = 1 << 20;
    let out = cd.run(&[], "r14", &sh("seq 1 200000 | head -c 1048576"));
    out.expect_code(0);
    let want: String = (1..=200000).map(|n| format!("{n}\n")).collect();
    let want = &want[..MIB];
    let short = out.stdout.len() < MIB && want.starts_with(out.stdout.as_str());
    if short && !kind.expect().output_never_lost {
        return Ran::PassedWith(format!(
            "known Go race taken: the last {} bytes were lost",
            MIB - out.stdout.len()
        ));
    }
    if out.stdout != want {
        let at = out
            .stdout
            .bytes()
            .zip(want.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(out.stdout.len().min(MIB));
        panic!(
            "{} bytes, first difference at byte {at} (want {MIB})",
            out.stdout.len()
        );
    }
    Ran::Passed
}

fn row15_ids_with_dot_dot_are_refused_before_any_shim(cd: &Containerd, _: ShimKind) -> Ran {
    let before = cd.shim_pids();
    let mut said_by = Vec::new();
    for id in ["r15..x", "../r15"] {
        let out = cd.run(&[], id, &sh("exit 0"));
        out.expect_error("must match");
        said_by.push(format!("{id}: {}", said(&out)));
    }
    let after = cd.shim_pids();
    let new: Vec<_> = after.iter().filter(|p| !before.contains(p)).collect();
    // Rows beside this one may start shims: only one started for an r15 id would count.
    for pid in new {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(!cmdline.contains("r15"), "a shim started: {cmdline}");
    }
    let v2 = cd.bundle("x");
    let bundles = v2.parent().expect("bundle parent");
    let left: Vec<_> = fs::read_dir(bundles)
        .map(|rd| {
            rd.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .filter(|n| n.contains("r15"))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "bundles made: {left:?}");
    Ran::PassedWith(format!(
        "refused by containerd (metadata validation), no shim ran: {}",
        said_by.join("; ")
    ))
}

fn row16_killed_shim_is_deleted_by_containerd(cd: &Containerd, _: ShimKind) -> Ran {
    cd.run_detached("r16", SLEEP);
    let init = cd.init_pid("r16");
    let shim = cd.shim_pid("r16");
    sys::signal(shim, sys::SIGKILL);
    let exit = cd.events.wait("/tasks/exit", "r16");
    assert_eq!(
        exit.field("exit_status").as_deref(),
        Some("137"),
        "{exit:?}"
    );
    assert!(
        sys::wait_pid_gone(init, PROCESS_BOUND),
        "container init survived its shim"
    );
    let calls = cd.runc_calls();
    assert!(
        calls.lines().any(|l| l.ends_with("delete --force r16")),
        "no `runc … delete --force r16` (the shim's delete):\n{calls}"
    );
    let status = task_status(cd, "r16");
    let rm = cd.ctr(&["t", "rm", "r16"]);
    let ran = match status.as_deref() {
        None => {
            // containerd already removed the task of a dead shim.
            rm.expect_error("not found");
            Ran::PassedWith("containerd removed the task itself".into())
        }
        Some(s) => {
            rm.expect_code(0);
            Ran::PassedWith(format!("shown as {s} until `ctr t rm`"))
        }
    };
    assert_eq!(task_status(cd, "r16"), None, "task still listed");
    cd.ctr(&["c", "rm", "r16"]).expect_code(0);
    assert!(!cd.bundle("r16").exists(), "bundle left behind");
    ran
}

fn row17_runtime_given_as_an_absolute_path(cd: &Containerd, kind: ShimKind) -> Ran {
    let shim = cd.setup.runtime.shim().to_string_lossy().into_owned();
    let rootfs = cd.rootfs().to_string_lossy().into_owned();
    let base = ["run", "--runtime", &shim, "--env", "PATH=/bin"];
    let with = |extra: &[&str], id: &str| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        a.extend_from_slice(&["--rootfs", &rootfs, id, "/bin/sh", "-c", "echo abs; exit 2"]);
        cd.ctr(&a)
    };
    let out = with(&[], "r17");
    out.expect_code(2);
    let mut notes = Vec::new();
    output_ok(kind, &out, "abs\n", "", &mut notes);
    // ctr sends runc options only for the runtime named io.containerd.runc.v2.
    let wrapper = cd.runc_wrapper().to_string_lossy().into_owned();
    let refused = with(&["--runc-binary", &wrapper], "r17b");
    refused.expect_error("only supported for");
    ran(notes)
}

fn row18_task_survives_a_containerd_restart_and_its_exit_is_reported(
    cd: &mut Containerd,
    kind: ShimKind,
) -> Ran {
    cd.run_detached("r18", SLEEP);
    let init = cd.init_pid("r18");
    let shim = cd.shim_pid("r18");
    cd.restart_daemon();
    assert_eq!(task_status(cd, "r18").as_deref(), Some("RUNNING"));
    let out = cd.ctr(&exec_args("r18", "x18", &sh("echo after-restart")));
    out.expect_code(0);
    let mut notes = Vec::new();
    output_ok(kind, &out, "after-restart\n", "", &mut notes);
    cd.stop_daemon();
    assert!(
        !sys::wait_pid_gone(shim, Duration::ZERO),
        "the shim died with containerd"
    );
    sys::signal(init, sys::SIGKILL);
    assert!(
        sys::wait_pid_gone(init, PROCESS_BOUND),
        "init survived SIGKILL"
    );
    // At debug level containerd logs each event it takes: the exit may reach it before `ctr
    // events` has subscribed again, and the log still shows it came.
    cd.log_debug();
    cd.start_daemon();
    if cd.setup.build.version != "1.6" {
        // containerd 1.7 and 2.x load a shim whose task lists no pids as one "leaked" by a
        // crash: they delete it at once, before serving, and publish nothing. The exit is not
        // reported at all, whichever shim: record it, check the cleanup.
        assert_eq!(task_status(cd, "r18"), None, "the dead task was kept");
        let log = cd.log_of_this_generation();
        let log = fs::read_to_string(&log).unwrap_or_default();
        assert!(
            log.lines()
                .any(|l| l.contains("cleaning leaked shim process") && l.contains("id=r18")),
            "no leaked-shim cleanup of r18:\n{log}"
        );
        assert!(
            sys::wait_pid_gone(shim, PROCESS_BOUND),
            "the shim of r18 was not stopped"
        );
        cd.ctr(&["c", "rm", "r18"]).expect_code(0);
        notes.push(format!(
            "containerd {} deleted the task at load (\"cleaning leaked shim process\"): \
             no exit event, no exit code",
            cd.setup.build.version
        ));
        return ran(notes);
    }
    // containerd 1.6 keeps the task: stopped, and the shim's exit event, retried while
    // containerd was away, arrives.
    assert_eq!(task_status(cd, "r18").as_deref(), Some("STOPPED"));
    let delivered = cd
        .events
        .wait_within(PROCESS_BOUND, |e| e.is("/tasks/exit", "r18"));
    if let Some(e) = &delivered {
        assert_eq!(e.field("exit_status").as_deref(), Some("137"), "{e:?}");
    }
    // Not seen by `ctr events`: taken before it subscribed? (The only exit in this namespace
    // while containerd was down is r18's: the other rows' tasks still run.)
    let taken_early = delivered.is_none() && exit_taken_by_this_containerd(cd);
    let rm = cd.ctr(&["t", "rm", "r18"]);
    rm.expect_code(0);
    assert!(rm.stderr.contains("exit code 137"), "{rm}");
    match (delivered, kind.expect().exit_delivered_after_restart) {
        (Some(_), _) => ran(notes),
        (None, _) if taken_early => {
            notes.push(
                "the exit reached containerd before `ctr events` subscribed (containerd's log)"
                    .into(),
            );
            ran(notes)
        }
        (None, false) => {
            notes.push("known: the exit event was lost".into());
            ran(notes)
        }
        (None, true) => panic!(
            "the exit that happened while containerd was down never arrived:\n{}",
            cd.events.transcript()
        ),
    }
}

fn row19_the_installed_shim_runs_by_its_runtime_name_from_path(
    cd: &mut Containerd,
    kind: ShimKind,
) -> Ran {
    // Ours: `cargo xtask install --prefix P`, P/bin on containerd's PATH, runtime
    // io.containerd.rsrunc.v2. Go's: its io.containerd.runc.v2, found on PATH as installed.
    let (runtime, shim) = match kind {
        ShimKind::Go => (RUNTIME_V2, cd.setup.runtime.shim().to_path_buf()),
        ShimKind::Ours => {
            let bin = shims::installed_ours().unwrap_or_else(|e| panic!("{e}"));
            cd.add_to_path(&bin);
            cd.restart_daemon();
            (OURS_RUNTIME, bin.join(OURS_BIN))
        }
    };
    let rootfs = cd.rootfs().to_string_lossy().into_owned();
    let run = |flags: &[&str], id: &str, argv: &[&str]| {
        let mut a = vec!["run", "--runtime", runtime, "--env", "PATH=/bin"];
        a.extend_from_slice(flags);
        a.extend_from_slice(&["--rootfs", &rootfs, id]);
        a.extend_from_slice(argv);
        cd.ctr(&a)
    };
    let out = run(&[], "r19", &sh("echo installed; exit 4"));
    out.expect_code(4);
    let mut notes = Vec::new();
    output_ok(kind, &out, "installed\n", "", &mut notes);
    run(&["-d"], "r19b", SLEEP).expect_code(0);
    cd.events.wait("/tasks/start", "r19b");
    let pid = cd.shim_pid("r19b");
    let exe = fs::read_link(format!("/proc/{pid}/exe")).expect("the shim's exe");
    let want = fs::canonicalize(&shim).unwrap_or(shim);
    assert_eq!(exe, want, "runtime {runtime} ran another shim");
    kill_and_remove(cd, "r19b");
    notes.push(format!("--runtime {runtime} ran {}", exe.display()));
    ran(notes)
}

fn row20_a_group_whose_shim_died_gets_a_new_shim(cd: &Containerd, _: ShimKind) -> Ran {
    let label = "io.containerd.runc.v2.group=g20";
    cd.run(&["-d", "--label", label], "r20a", SLEEP)
        .expect_code(0);
    cd.events.wait("/tasks/start", "r20a");
    let old = cd.shim_pid("r20a");
    let address = cd.shim_address("r20a");
    sys::signal(old, sys::SIGKILL);
    let exit = cd.events.wait("/tasks/exit", "r20a");
    assert_eq!(
        exit.field("exit_status").as_deref(),
        Some("137"),
        "{exit:?}"
    );
    assert!(sys::wait_pid_gone(old, PROCESS_BOUND), "the shim survived");
    // The group's next container: its old address answers no more, a new shim serves it.
    cd.run(&["-d", "--label", label], "r20b", SLEEP)
        .expect_code(0);
    cd.events.wait("/tasks/start", "r20b");
    let new = cd.shim_pid("r20b");
    assert_ne!(new, old, "the dead shim's pid serves r20b");
    let same_address = cd.shim_address("r20b") == address;
    kill_and_remove(cd, "r20b");
    if task_status(cd, "r20a").is_some() {
        cd.ctr(&["t", "rm", "r20a"]).expect_code(0);
    }
    cd.ctr(&["c", "rm", "r20a"]).expect_code(0);
    Ran::PassedWith(format!(
        "new shim on {} address",
        if same_address { "the same" } else { "another" }
    ))
}

fn row21_a_second_exec_of_a_running_exec_id_already_exists(cd: &Containerd, _: ShimKind) -> Ran {
    cd.run_detached("r21", SLEEP);
    cd.ctr(&[
        "t",
        "exec",
        "-d",
        "--exec-id",
        "x21",
        "r21",
        "sleep",
        "1000",
    ])
    .expect_code(0);
    cd.events.wait_for("exec-started of x21", |e| {
        e.topic == "/tasks/exec-started" && e.field("exec_id").as_deref() == Some("x21")
    });
    let dup = cd.ctr(&exec_args("r21", "x21", &sh("echo dup")));
    dup.expect_error("id x21: already exists");
    // The first exec is untouched: still there to be killed, with its own exit.
    cd.ctr(&["t", "kill", "-s", "SIGKILL", "--exec-id", "x21", "r21"])
        .expect_code(0);
    let exit = cd
        .events
        .wait_for("exit of x21", |e| e.is_exit_of("r21", "x21"));
    assert_eq!(
        exit.field("exit_status").as_deref(),
        Some("137"),
        "{exit:?}"
    );
    assert_eq!(task_status(cd, "r21").as_deref(), Some("RUNNING"));
    Ran::PassedWith(format!("second exec: {}", said(&dup)))
}

/// Whether the running containerd's log (this generation, at debug level) shows it took a
/// `/tasks/exit` of this namespace, forwarded over ttrpc or published over gRPC.
fn exit_taken_by_this_containerd(cd: &Containerd) -> bool {
    let log = fs::read_to_string(cd.log_of_this_generation()).unwrap_or_default();
    let ns = format!("ns={}", cd.ns);
    log.lines().any(|l| {
        (l.contains("msg=\"event forwarded\"") || l.contains("msg=\"event published\""))
            && l.contains("topic=/tasks/exit")
            && l.split_whitespace().any(|w| w == ns)
    })
}

fn row22_shim_ctl_finds_the_task_s_shim_and_drives_it(cd: &Containerd, _: ShimKind) -> Ran {
    cd.run_detached("r22", SLEEP);
    let init = cd.init_pid("r22");
    let shim_ctl = shims::this_build("shim-ctl");
    let state_root = cd.dir.join("state").to_string_lossy().into_owned();
    // In the mount namespace, where the shim's socket is; the bundle found by containerd's layout.
    let ctl = |args: &[&str]| {
        let mut cmd = cd.in_ns(&shim_ctl.to_string_lossy());
        cmd.args(["--state-root", &state_root, "-n", &cd.ns, "--id", "r22"])
            .args(args);
        proc::run(cmd, CTR_BOUND, None)
    };
    let state = ctl(&["--json", "state"]);
    state.expect_code(0);
    assert!(
        state.stdout.contains("\"status\": \"running\"")
            && state.stdout.contains(&format!("\"pid\": {init},")),
        "not running as pid {init}:\n{state}"
    );
    let connect = ctl(&["connect"]);
    connect.expect_code(0);
    let shim = cd.shim_pid("r22").to_string();
    assert!(
        connect.stdout.contains(&shim),
        "no shim pid {shim}:\n{connect}"
    );
    ctl(&["kill", "KILL"]).expect_code(0);
    let exit = cd.events.wait("/tasks/exit", "r22");
    assert_eq!(
        exit.field("exit_status").as_deref(),
        Some("137"),
        "{exit:?}"
    );
    cd.ctr(&["t", "rm", "r22"]).expect_code(0);
    Ran::Passed
}
