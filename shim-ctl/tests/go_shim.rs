//! shim-ctl driven as a subprocess against the Go containerd-shim (the reference implementation).

mod common;

use common::*;

#[test]
fn lifecycle_create_start_state_pids_info_kill_wait_delete_against_go_shim() {
    if !root_and_runc("lifecycle_against_go_shim") {
        return;
    }
    let b = Bundle::new("life", &["sleep", "1000"]);
    let shim = GoShim::start(&b);
    let bundle = b.dir.to_str().unwrap();
    let at = ["--bundle", bundle];
    let run = |args: &[&str]| shim_ctl(&[&at[..], args].concat());

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
    assert!(table.starts_with("PID"), "{table}");

    let info = json(run(&["--json", "info"]));
    assert_eq!(info["shim_pid"].as_u64(), Some(u64::from(shim.pid())));

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

    let deleted = json(run(&["--json", "delete"]));
    assert_eq!(deleted["exit_status"], 137);
    assert_eq!(deleted["pid"].as_u64(), Some(init_pid));
}

#[test]
fn exec_attaches_stdio_and_exits_with_the_process_status_against_go_shim() {
    if !root_and_runc("exec_against_go_shim") {
        return;
    }
    let b = Bundle::new("exec", &["sleep", "1000"]);
    let _shim = GoShim::start(&b);
    let bundle = b.dir.to_str().unwrap();
    ok(shim_ctl(&["--bundle", bundle, "create", bundle]));
    ok(shim_ctl(&["--bundle", bundle, "start"]));

    let o = shim_ctl(&[
        "--bundle",
        bundle,
        "exec",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");

    let o = shim_ctl_with_input(
        &["--bundle", bundle, "exec", "-i", "--", "cat"],
        Some(b"piped through\n"),
    );
    assert_eq!(stdout(&o), "piped through\n", "stderr: {}", stderr(&o));
    assert_eq!(o.status.code(), Some(0));

    let o = shim_ctl(&[
        "--bundle",
        bundle,
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
    ]);
    assert_eq!(stdout(&o), "bar /bin 5 6\n", "stderr: {}", stderr(&o));
    // The exec was deleted at the end.
    let o = shim_ctl(&["--bundle", bundle, "state", "custom"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: not found (5): process custom does not exist\n"
    );

    let o = shim_ctl(&["--bundle", bundle, "exec", "--", "/bin/nonexistent"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("error: unknown (2): OCI runtime exec failed"),
        "{}",
        stderr(&o)
    );

    ok(shim_ctl(&["--bundle", bundle, "kill", "9"]));
    ok(shim_ctl(&["--bundle", bundle, "wait"]));
    ok(shim_ctl(&["--bundle", bundle, "delete"]));
}

#[test]
fn errors_print_the_code_name_and_exit_1_usage_errors_exit_2_against_go_shim() {
    if !root_and_runc("errors_against_go_shim") {
        return;
    }
    let b = Bundle::new("err", &["sleep", "1000"]);
    let shim = GoShim::start(&b);
    let addr = shim.address.as_str();

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
    assert!(stderr(&o).contains("unknown signal"), "{}", stderr(&o));

    // With only an address, commands that need the container id say so.
    let o = shim_ctl(&["--address", addr, "state"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("container id unknown"),
        "{}",
        stderr(&o)
    );

    let bundle = b.dir.to_str().unwrap();
    ok(shim_ctl(&["--bundle", bundle, "create", bundle]));
    ok(shim_ctl(&["--bundle", bundle, "start"]));
    ok(shim_ctl(&["--bundle", bundle, "pause"]));
    let o = shim_ctl(&["--bundle", bundle, "pause"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: unknown (2): cannot pause a paused container\n"
    );
    ok(shim_ctl(&["--bundle", bundle, "resume"]));
    let o = shim_ctl(&["--bundle", bundle, "delete"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: unknown (2): cannot delete a running process\n"
    );
    ok(shim_ctl(&["--bundle", bundle, "kill", "--all", "SIGKILL"]));
    ok(shim_ctl(&["--bundle", bundle, "wait"]));
    ok(shim_ctl(&["--bundle", bundle, "delete"]));
}

#[test]
fn id_resolves_the_shim_in_containerds_v1_layout_and_ls_lists_it() {
    if !root_and_runc("layout_and_ls_against_go_shim") {
        return;
    }
    // The bundle lives at <state>/io.containerd.runtime.v1.linux/<ns>/<id>, as containerd makes it.
    let b = Bundle::new("lay", &["sleep", "1000"]);
    let state = TempDir::new("state");
    let ns_dir = state
        .0
        .join("io.containerd.runtime.v1.linux")
        .join(NAMESPACE);
    std::fs::create_dir_all(&ns_dir).unwrap();
    std::os::unix::fs::symlink(&b.dir, ns_dir.join(&b.id)).unwrap();
    std::fs::create_dir_all(ns_dir.join(".deleted-one")).unwrap();
    let dead = ns_dir.join("dead");
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::write(
        dead.join("address"),
        format!("unix://{}/none.sock", state.0.display()),
    )
    .unwrap();
    let shim = GoShim::start(&b);
    let root = state.0.to_str().unwrap();
    let at = [
        "--id",
        b.id.as_str(),
        "--namespace",
        NAMESPACE,
        "--state-root",
        root,
    ];
    let bundle = b.dir.to_str().unwrap();
    ok(shim_ctl(&[&at[..], &["create", bundle]].concat()));
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
    ok(shim_ctl(&[&at[..], &["delete"]].concat()));
}
