//! shim-ctl driven as a subprocess against both shims: the Go containerd-shim and our shim-runc-v1.

mod common;

use common::*;
use e2e_kit::cgroup::{self, Limit};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

/// Two trials per scenario, one per shim: `<scenario>::go_shim` and `<scenario>::our_shim`.
macro_rules! against_both_shims {
    ($($scenario:ident),* $(,)?) => {
        vec![$(
            trials::trial(
                concat!(stringify!($scenario), "::go_shim"),
                missing(Kind::Go).as_deref(),
                || $scenario(Kind::Go),
            ),
            trials::trial(
                concat!(stringify!($scenario), "::our_shim"),
                missing(Kind::Ours).as_deref(),
                || $scenario(Kind::Ours),
            ),
        )*]
    };
}

fn main() {
    trials::run(against_both_shims!(
        lifecycle_create_start_state_pids_info_kill_wait_delete,
        exec_attaches_stdio_and_exits_with_the_process_status,
        errors_print_class_and_code_and_exit_1_usage_errors_exit_2,
        json_errors_go_to_stderr_as_one_object_and_exit_non_zero,
        id_resolves_the_shim_in_containerds_v1_layout_and_ls_lists_it,
        ls_processes_lists_the_init_and_each_started_exec,
        update_writes_the_limits_into_the_containers_cgroups,
        resize_sets_the_init_terminal_size,
        close_stdin_gives_eof_once_the_client_closed_its_end_too,
        checkpoint_failure_is_shown_as_the_shim_reports_it,
        exec_tty_takes_the_callers_size_and_follows_sigwinch,
        the_api_is_detected_and_task_v2_commands_are_usage_errors,
    ));
}

/// `shim-ctl --bundle <b> ARGS`.
fn at(b: &Bundle, args: &[&str]) -> std::process::Output {
    shim_ctl(&[&["--bundle", b.path()][..], args].concat())
}

/// Creates and starts the bundle's container through shim-ctl.
fn create_and_start(b: &Bundle) {
    ok(at(b, &["create", b.path()]));
    ok(at(b, &["start"]));
}

/// Kills the init, waits for it and deletes the container.
fn kill_and_delete(b: &Bundle) {
    ok(at(b, &["kill", "--all", "KILL"]));
    ok(at(b, &["wait"]));
    ok(at(b, &["delete"]));
}

fn lifecycle_create_start_state_pids_info_kill_wait_delete(kind: Kind) {
    let b = Bundle::new("life", &["sleep", "1000"]);
    let shim = RunningShim::start(&b, kind);
    let bundle = b.path();
    let run = |args: &[&str]| at(&b, args);

    let out = ok(run(&["create", bundle]));
    assert!(out.starts_with(&format!("created {}: pid ", b.id)), "{out}");
    let state = json(run(&["--json", "state"]));
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], b.id.as_str());
    assert_eq!(state["bundle"], bundle);
    assert!(state["exited_at"].is_null());
    let init_pid = state["pid"].as_u64().unwrap();

    let started = json(run(&["--json", "start"]));
    assert_eq!(started["pid"].as_u64(), Some(init_pid));
    let text = ok(run(&["state"]));
    assert!(text.contains("STATUS    running"), "{text}");
    assert!(text.contains(&format!("PID       {init_pid}")), "{text}");

    let pids = json(run(&["--json", "pids"]));
    assert_eq!(pids[0]["pid"].as_u64(), Some(init_pid));
    assert_eq!(pids[0]["exec_id"], b.id.as_str());
    let table = ok(run(&["pids"]));
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["PID", "EXEC", "ID"], "{table}");
    assert_eq!(lines[1], [init_pid.to_string().as_str(), &b.id], "{table}");

    let info = json(run(&["--json", "info"]));
    assert_eq!(info["shim_pid"].as_u64(), Some(u64::from(shim.pid())));
    let text = ok(run(&["info"]));
    assert!(
        text.contains(&format!("SHIM PID  {}\n", shim.pid())),
        "{text}"
    );

    assert_eq!(ok(run(&["pause"])), "paused\n");
    assert_eq!(json(run(&["--json", "state"]))["status"], "paused");
    assert_eq!(ok(run(&["resume"])), "resumed\n");
    assert_eq!(json(run(&["--json", "state"]))["status"], "running");

    let out = ok(run(&["kill", "KILL"]));
    assert_eq!(out, format!("sent SIGKILL to {}\n", b.id));
    let waited = ok(run(&["wait"]));
    assert!(
        waited.starts_with(&format!("{}: killed by SIGKILL at ", b.id)),
        "{waited}"
    );
    let state = json(run(&["--json", "state"]));
    assert_eq!(state["status"], "stopped");
    assert_eq!(state["exit_status"], 137);
    assert!(state["exited_at"].is_string());
    let text = ok(run(&["state"]));
    assert!(text.contains("EXIT      killed by SIGKILL at "), "{text}");

    let deleted = json(run(&["--json", "delete"]));
    assert_eq!(deleted["exit_status"], 137);
    assert_eq!(deleted["pid"].as_u64(), Some(init_pid));
}

fn exec_attaches_stdio_and_exits_with_the_process_status(kind: Kind) {
    let b = Bundle::new("exec", &["sleep", "1000"]);
    let _shim = RunningShim::start(&b, kind);
    create_and_start(&b);

    let o = at(
        &b,
        &["exec", "--", "sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(o.status.code(), Some(3), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");

    // With --json the report is the last line of stderr; stdout stays the process's.
    let o = at(
        &b,
        &[
            "--json",
            "exec",
            "--exec-id",
            "rep",
            "--",
            "sh",
            "-c",
            "echo out; exit 4",
        ],
    );
    assert_eq!(o.status.code(), Some(4), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    let report: serde_json::Value =
        serde_json::from_str(stderr(&o).lines().last().unwrap()).unwrap();
    assert_eq!(report["exec_id"], "rep");
    assert_eq!(report["exit_status"], 4);
    assert!(report["pid"].as_u64().unwrap() > 0);
    assert!(report["exited_at"].is_string());

    let o = shim_ctl_with_input(
        &["--bundle", b.path(), "exec", "-i", "--", "cat"],
        Some(b"piped through\n"),
    );
    assert_eq!(stdout(&o), "piped through\n", "stderr: {}", stderr(&o));
    assert_eq!(o.status.code(), Some(0));

    let o = at(
        &b,
        &[
            "exec",
            "--exec-id",
            "custom",
            "--env",
            "FOO=bar",
            "--cwd",
            "/bin",
            "--user",
            "5:6",
            "--",
            "sh",
            "-c",
            "echo $FOO $(pwd) $(id -u) $(id -g)",
        ],
    );
    assert_eq!(stdout(&o), "bar /bin 5 6\n", "stderr: {}", stderr(&o));
    // The exec was deleted at the end.
    let o = at(&b, &["state", "custom"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: not found (5): process custom does not exist\n"
    );

    // An exec killed by a signal: shim-ctl exits 128 + signal, like a shell.
    let o = at(&b, &["exec", "--", "sh", "-c", "kill -9 $$"]);
    assert_eq!(o.status.code(), Some(137), "stderr: {}", stderr(&o));

    let o = at(&b, &["exec", "--", "/bin/nonexistent"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("error: unknown (2): OCI runtime exec failed"),
        "{}",
        stderr(&o)
    );

    kill_and_delete(&b);
}

fn errors_print_class_and_code_and_exit_1_usage_errors_exit_2(kind: Kind) {
    let b = Bundle::new("err", &["sleep", "1000"]);
    let shim = RunningShim::start(&b, kind);
    let addr = shim.address.clone();
    let addr = addr.as_str();

    let o = shim_ctl(&["--address", addr, "state", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: not found (5): process nope does not exist\n"
    );

    // Init-only RPC before Create.
    let o = shim_ctl(&["--address", addr, "delete"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));

    let o = shim_ctl(&["--address", addr, "kill", "NOSUCHSIG"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("error: usage: invalid value 'NOSUCHSIG'"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("unknown signal"), "{}", stderr(&o));

    // With only an address, commands that need the container id say so.
    let o = shim_ctl(&["--address", addr, "state"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "error: usage: container id unknown: pass it as an argument, or use --id or --bundle\n"
    );

    // Both shims report state-machine refusals as Unknown (Go's code, which ours keeps).
    let state_error = "unknown (2)";
    create_and_start(&b);
    ok(at(&b, &["pause"]));
    let o = at(&b, &["pause"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("error: {state_error}: cannot pause a paused container\n")
    );
    ok(at(&b, &["resume"]));
    let o = at(&b, &["delete"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("error: {state_error}: cannot delete a running process\n")
    );
    // ResizePty of an unknown id: a plain error in Go (not NotFound), NotFound in ours.
    let o = at(&b, &["resize", "nope", "80", "24"]);
    assert_eq!(o.status.code(), Some(1));
    let expected = match kind {
        Kind::Go => "error: unknown (2): process does not exist nope\n",
        Kind::Ours => "error: not found (5): process nope does not exist\n",
    };
    assert_eq!(stderr(&o), expected);
    kill_and_delete(&b);

    // Once the shim is gone, the same address is a transport error.
    drop(shim);
    let o = shim_ctl(&["--address", addr, "info"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(&format!("error: transport: cannot connect to {addr}: ")),
        "{}",
        stderr(&o)
    );
}

fn json_errors_go_to_stderr_as_one_object_and_exit_non_zero(kind: Kind) {
    let b = Bundle::new("jerr", &["sleep", "1000"]);
    let shim = RunningShim::start(&b, kind);
    let addr = shim.address.clone();
    let addr = addr.as_str();
    let error = |o: &std::process::Output| -> serde_json::Value {
        assert!(o.stdout.is_empty(), "stdout: {}", stdout(o));
        let text = stderr(o);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        serde_json::from_str(lines[0]).unwrap()
    };

    let o = shim_ctl(&["--json", "--address", addr, "state", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        error(&o),
        serde_json::json!({"error": {"code": 5, "class": "not found",
            "message": "process nope does not exist"}})
    );

    let o = shim_ctl(&["--json", "--address", addr, "state"]);
    assert_eq!(o.status.code(), Some(2));
    let e = error(&o);
    assert_eq!(e["error"]["class"], "usage");
    assert!(e["error"]["code"].is_null());

    // clap's own refusals are usage errors in JSON too.
    let o = shim_ctl(&["--json", "--address", addr, "kill", "NOSUCHSIG"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(error(&o)["error"]["class"], "usage");

    // exec: the process's stdout is untouched, the error is the one stderr line.
    create_and_start(&b);
    let o = at(&b, &["--json", "exec", "--", "/bin/nonexistent"]);
    assert_eq!(o.status.code(), Some(1));
    let e = error(&o);
    assert_eq!(e["error"]["code"], 2);
    assert_eq!(e["error"]["class"], "unknown");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("OCI runtime exec failed"),
        "{e}"
    );
    kill_and_delete(&b);

    drop(shim);
    let o = shim_ctl(&["--json", "--address", addr, "info"]);
    assert_eq!(o.status.code(), Some(1));
    let e = error(&o);
    assert_eq!(e["error"]["class"], "transport");
    assert!(e["error"]["code"].is_null());
}

/// The bundle at `<state>/io.containerd.runtime.v1.linux/<ns>/<id>`, as containerd makes it.
fn layout(b: &Bundle, state: &TempDir) -> std::path::PathBuf {
    let ns_dir = state
        .0
        .join("io.containerd.runtime.v1.linux")
        .join(NAMESPACE);
    std::fs::create_dir_all(&ns_dir).unwrap();
    std::os::unix::fs::symlink(&b.dir, ns_dir.join(&b.id)).unwrap();
    ns_dir
}

fn id_resolves_the_shim_in_containerds_v1_layout_and_ls_lists_it(kind: Kind) {
    let b = Bundle::new("lay", &["sleep", "1000"]);
    let state = TempDir::new("state");
    let ns_dir = layout(&b, &state);
    std::fs::create_dir_all(ns_dir.join(".deleted-one")).unwrap();
    let dead = ns_dir.join("dead");
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::write(
        dead.join("address"),
        format!("unix://{}/none.sock", state.0.display()),
    )
    .unwrap();
    let shim = RunningShim::start(&b, kind);
    let root = state.0.to_str().unwrap();
    let at = [
        "--id",
        b.id.as_str(),
        "--namespace",
        NAMESPACE,
        "--state-root",
        root,
    ];
    ok(shim_ctl(&[&at[..], &["create", b.path()]].concat()));
    ok(shim_ctl(&[&at[..], &["start"]].concat()));

    let table = ok(shim_ctl(&["ls", "--state-root", root]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("NAMESPACE"), "{table}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("dead") && l.contains("unreachable (")),
        "{table}"
    );
    let mine = lines.iter().find(|l| l.contains(&b.id)).unwrap();
    assert!(mine.ends_with("running"), "{table}");
    assert!(mine.contains(&shim.pid().to_string()), "{table}");

    let list = json(shim_ctl(&["--json", "ls", "--state-root", root]));
    let mine = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == b.id.as_str())
        .unwrap();
    assert_eq!(mine["status"], "running");
    assert_eq!(mine["namespace"], NAMESPACE);
    assert_eq!(mine["shim_pid"].as_u64(), Some(u64::from(shim.pid())));

    ok(shim_ctl(&[&at[..], &["kill", "KILL"]].concat()));
    ok(shim_ctl(&[&at[..], &["wait"]].concat()));
    let table = ok(shim_ctl(&["ls", "--state-root", root]));
    let mine = table.lines().find(|l| l.contains(&b.id)).unwrap();
    assert!(mine.ends_with("stopped (killed by SIGKILL)"), "{table}");
    ok(shim_ctl(&[&at[..], &["delete"]].concat()));
}

fn ls_processes_lists_the_init_and_each_started_exec(kind: Kind) {
    let b = Bundle::new("lsp", &["sleep", "1000"]);
    let state = TempDir::new("state");
    layout(&b, &state);
    let shim = RunningShim::start(&b, kind);
    let root = state.0.to_str().unwrap();
    create_and_start(&b);
    // A pid file left by an exec the shim no longer knows is not listed.
    std::fs::write(b.dir.join("ghost.pid"), "1").unwrap();
    let mut bg = shim_ctl_child(&[
        "--bundle",
        b.path(),
        "exec",
        "--exec-id",
        "bg",
        "--",
        "sh",
        "-c",
        "echo ready; exec sleep 1000",
    ]);
    let mut out = Collector::spawn(bg.stdout.take().unwrap());
    out.until("ready\n");
    let init_pid = json(at(&b, &["--json", "state"]))["pid"].clone();
    let bg_pid = json(at(&b, &["--json", "state", "bg"]))["pid"].clone();

    let table = ok(shim_ctl(&["ls", "-p", "--state-root", root]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    let cells = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        cells(lines[0]),
        [
            "NAMESPACE",
            "ID",
            "EXEC",
            "ID",
            "API",
            "PID",
            "SHIM",
            "PID",
            "STATUS"
        ]
    );
    let shim_pid = shim.pid().to_string();
    assert_eq!(
        cells(lines[1]),
        [
            NAMESPACE,
            &b.id,
            "-",
            "v1",
            &init_pid.to_string(),
            &shim_pid,
            "running"
        ]
    );
    assert_eq!(
        cells(lines[2]),
        [
            NAMESPACE,
            &b.id,
            "bg",
            "v1",
            &bg_pid.to_string(),
            &shim_pid,
            "running"
        ]
    );

    let list = json(shim_ctl(&[
        "--json",
        "ls",
        "--processes",
        "--state-root",
        root,
    ]));
    let procs = list[0]["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 2, "{list}");
    assert_eq!(procs[0]["id"], b.id.as_str());
    assert!(procs[0]["exec_id"].is_null());
    assert_eq!(procs[0]["pid"], init_pid);
    assert_eq!(procs[1]["exec_id"], "bg");
    assert_eq!(procs[1]["pid"], bg_pid);
    assert_eq!(procs[1]["status"], "running");
    // Without -p, no processes key.
    let list = json(shim_ctl(&["--json", "ls", "--state-root", root]));
    assert!(list[0].get("processes").is_none(), "{list}");

    ok(at(&b, &["kill", "--exec-id", "bg", "KILL"]));
    assert_eq!(wait_child(bg).code(), Some(137));
    kill_and_delete(&b);
}

/// What the cgroup file of `limit` for `pid` says (cgroup v1 or v2, as this host has), and what
/// it should say for the OCI value `value`.
fn limit_of(pid: u64, limit: Limit, value: u64) -> (String, String) {
    let file = cgroup::file_of_pid(pid, limit).unwrap_or_else(|e| panic!("{e}"));
    (
        cgroup::read(&file),
        limit.expected(cgroup::Version::of_host(), value),
    )
}

fn update_writes_the_limits_into_the_containers_cgroups(kind: Kind) {
    let b = Bundle::new("upd", &["sleep", "1000"]);
    let _shim = RunningShim::start(&b, kind);
    create_and_start(&b);
    let pid = json(at(&b, &["--json", "state"]))["pid"].as_u64().unwrap();

    let out = ok(at(
        &b,
        &["update", "--memory", "268435456", "--cpu-shares", "512"],
    ));
    assert!(out.starts_with("updated: "), "{out}");
    let (now, want) = limit_of(pid, Limit::Memory, 268435456);
    assert_eq!(now, want);
    let (now, want) = limit_of(pid, Limit::CpuShares, 512);
    assert_eq!(now, want);

    let file = b.tmp.0.join("limits.json");
    std::fs::write(&file, r#"{"pids":{"limit":64}}"#).unwrap();
    let v = json(at(
        &b,
        &["--json", "update", "--resources", file.to_str().unwrap()],
    ));
    assert_eq!(v["resources"]["pids"]["limit"], 64);
    let (now, want) = limit_of(pid, Limit::Pids, 64);
    assert_eq!(now, want);

    let o = shim_ctl_with_input(
        &["--bundle", b.path(), "update", "--resources", "-"],
        Some(br#"{"memory":{"limit":134217728}}"#),
    );
    ok(o);
    let (now, want) = limit_of(pid, Limit::Memory, 134217728);
    assert_eq!(now, want);

    let o = shim_ctl_with_input(
        &["--bundle", b.path(), "update", "--resources", "-"],
        Some(b"not json"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).starts_with("error: usage: "), "{}", stderr(&o));
    kill_and_delete(&b);
}

fn resize_sets_the_init_terminal_size(kind: Kind) {
    let b = Bundle::new(
        "rsz",
        &[
            "sh",
            "-c",
            "trap 'stty size' WINCH; echo ready; while :; do sleep 1; done",
        ],
    );
    b.set_terminal();
    let _shim = RunningShim::start(&b, kind);
    let out_path = b.tmp.0.join("console");
    let mut console = Collector::spawn(fifo(&out_path));
    let created = at(
        &b,
        &[
            "create",
            "--terminal",
            "--stdout",
            out_path.to_str().unwrap(),
            b.path(),
        ],
    );
    ok(created);
    ok(at(&b, &["start"]));
    console.until("ready\n");
    let out = ok(at(&b, &["resize", &b.id, "100", "30"]));
    assert_eq!(out, format!("resized {} to 100x30\n", b.id));
    console.until("30 100\n");
    let v = json(at(&b, &["--json", "resize", &b.id, "81", "25"]));
    assert_eq!(v, serde_json::json!({"id": b.id, "cols": 81, "rows": 25}));
    console.until("25 81\n");
    kill_and_delete(&b);
}

fn close_stdin_gives_eof_once_the_client_closed_its_end_too(kind: Kind) {
    // A shim holds a writer of its own on a stdin fifo (so the copy survives a client that
    // reconnects); the process sees EOF once the client closed its writer *and* CloseIO closed the
    // shim's. So this needs a client whose writer we control: the init's stdin fifo, made here
    // (`exec -i` closes its writer and sends CloseIO itself when its stdin ends).
    let b = Bundle::new("cls", &["cat"]);
    let _shim = RunningShim::start(&b, kind);
    let in_path = b.tmp.0.join("stdin");
    let out_path = b.tmp.0.join("stdout");
    let err_path = b.tmp.0.join("stderr");
    let mut input = fifo(&in_path);
    let mut out = Collector::spawn(fifo(&out_path));
    let _err = fifo(&err_path);
    ok(at(
        &b,
        &[
            "create",
            "--stdin",
            in_path.to_str().unwrap(),
            "--stdout",
            out_path.to_str().unwrap(),
            "--stderr",
            err_path.to_str().unwrap(),
            b.path(),
        ],
    ));
    ok(at(&b, &["start"]));
    input.write_all(b"before close\n").unwrap();
    out.until("before close\n");
    drop(input);
    assert_eq!(json(at(&b, &["--json", "state"]))["status"], "running");
    assert_eq!(
        ok(at(&b, &["close-stdin", &b.id])),
        format!("closed stdin of {}\n", b.id)
    );
    let waited = ok(at(&b, &["wait"]));
    assert!(
        waited.starts_with(&format!("{}: exited 0 at ", b.id)),
        "{waited}"
    );
    let o = at(&b, &["close-stdin", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));
    ok(at(&b, &["delete"]));
}

fn checkpoint_failure_is_shown_as_the_shim_reports_it(kind: Kind) {
    // criu cannot dump on this kernel (vDSO bounds): only the failure path can be checked. Both
    // shims report it as Unknown with runc's message, naming the criu log copied into the bundle.
    let b = Bundle::new("ckpt", &["sleep", "1000"]);
    let _shim = RunningShim::start(&b, kind);
    create_and_start(&b);
    let image = b.tmp.0.join("image");
    let image = image.to_str().unwrap();
    let dump_log = b.dir.join("criu-dump.log");

    let o = at(&b, &["--json", "checkpoint", image, "--exit"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "{}", stdout(&o));
    let e: serde_json::Value = serde_json::from_str(stderr(&o).trim()).unwrap();
    assert_eq!(e["error"]["code"], 2, "{e}");
    assert_eq!(e["error"]["class"], "unknown", "{e}");
    let message = e["error"]["message"].as_str().unwrap();
    assert_eq!(
        message,
        format!(
            "runc did not terminate successfully: exit status 1: criu failed: type DUMP errno 0 \
             path= {}",
            dump_log.display()
        )
    );
    assert!(dump_log.is_file());

    // The text form prints the same code and message.
    let o = at(&b, &["checkpoint", image]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), format!("error: unknown (2): {message}\n"));
    // The container survived the failed dump, --exit notwithstanding.
    assert_eq!(json(at(&b, &["--json", "state"]))["status"], "running");
    kill_and_delete(&b);
}

fn exec_tty_takes_the_callers_size_and_follows_sigwinch(kind: Kind) {
    let b = Bundle::new("tty", &["sleep", "1000"]);
    let _shim = RunningShim::start(&b, kind);
    create_and_start(&b);
    // script(1) gives shim-ctl a terminal; the inner shell names it, sets its size, then
    // becomes shim-ctl (so shim-ctl is the terminal's foreground process and gets SIGWINCH).
    let inner = format!(
        "tty; stty cols 77 rows 23; exec {} --bundle {} exec -t --exec-id tty -- \
         sh -c \"trap 'stty size' WINCH; stty size; while :; do sleep 1; done\"",
        env!("CARGO_BIN_EXE_shim-ctl"),
        b.path()
    );
    let mut script = std::process::Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _hold_stdin = script.stdin.take();
    let mut out = Collector::spawn(script.stdout.take().unwrap());
    let pty = out.until("\n").lines().next().unwrap().to_string();
    assert!(pty.starts_with("/dev/pts/"), "{pty}");
    out.until("23 77\n");

    // Resize the caller's terminal, as a terminal emulator does: the kernel sends SIGWINCH.
    let term = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&pty)
        .unwrap();
    let ws = libc::winsize {
        ws_row: 30,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ on a terminal fd we own, with a valid winsize.
    let rc = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&term),
            libc::TIOCSWINSZ,
            &ws,
        )
    };
    assert_eq!(rc, 0);
    out.until("30 100\n");

    ok(at(&b, &["kill", "--exec-id", "tty", "KILL"]));
    assert_eq!(wait_child(script).code(), Some(137));
    kill_and_delete(&b);
}

fn the_api_is_detected_and_task_v2_commands_are_usage_errors(kind: Kind) {
    let b = Bundle::new("api", &["sleep", "1000"]);
    let shim = RunningShim::start(&b, kind);
    let addr = shim.address.as_str();
    create_and_start(&b);

    // The Connect probe finds no task v2 service: the v1 API is spoken.
    let v1_service = "containerd.runtime.linux.shim.v1.Shim";
    for command in ["stats", "connect", "shutdown"] {
        let o = at(&b, &[command]);
        assert_eq!(o.status.code(), Some(2), "{command}: {}", stderr(&o));
        assert_eq!(
            stderr(&o),
            format!(
                "error: usage: {command} needs a task v2 shim; this one serves the v1 shim API \
                 ({v1_service})\n"
            )
        );
    }
    // Forcing task v2 on a v1 shim: it has no such service.
    let o = shim_ctl(&["--address", addr, "--v2", "--id", &b.id, "state"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: unimplemented (12): service containerd.task.v2.Task\n"
    );
    // --v1 skips the probe and changes nothing else.
    let state = json(shim_ctl(&[
        "--address",
        addr,
        "--v1",
        "--json",
        "state",
        &b.id,
    ]));
    assert_eq!(state["status"], "running");

    // --exec-id names an exec as the PROCESS argument does.
    let mut bg = shim_ctl_child(&[
        "--bundle",
        b.path(),
        "exec",
        "--exec-id",
        "bg",
        "--",
        "sh",
        "-c",
        "echo ready; exec sleep 1000",
    ]);
    let mut out = Collector::spawn(bg.stdout.take().unwrap());
    out.until("ready\n");
    let by_flag = json(at(&b, &["--json", "state", "--exec-id", "bg"]));
    let by_arg = json(at(&b, &["--json", "state", "bg"]));
    assert_eq!(by_flag["pid"], by_arg["pid"]);
    assert_eq!(by_flag["exec_id"], "bg");
    assert!(json(at(&b, &["--json", "state"]))["exec_id"].is_null());
    let o = at(&b, &["state", "bg", "--exec-id", "bg"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    ok(at(&b, &["kill", "--exec-id", "bg", "KILL"]));
    assert_eq!(wait_child(bg).code(), Some(137));
    kill_and_delete(&b);
}
