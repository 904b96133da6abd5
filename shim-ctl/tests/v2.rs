//! shim-ctl against task v2 shims run by a private containerd 1.6 in a mount namespace of its own:
//! Go's containerd-shim-runc-v2 and, when built, our containerd-shim-rsrunc-v2 (see
//! `common::v2::v2_trial` for when a failure against ours counts).

mod common;

use common::v2::{v2_trial, wait_gone, Containerd, V2Kind, GROUP_ANNOTATION};
use common::*;
use e2e_kit::cgroup::{self, Limit};
use std::path::Path;

/// Two trials per scenario, one per v2 shim: `<scenario>::go_shim` and `<scenario>::our_shim`.
macro_rules! against_both_v2_shims {
    ($($scenario:ident),* $(,)?) => {
        vec![$(
            v2_trial(concat!(stringify!($scenario), "::go_shim").into(), V2Kind::Go, $scenario),
            v2_trial(concat!(stringify!($scenario), "::our_shim").into(), V2Kind::Ours, $scenario),
        )*]
    };
}

fn main() {
    trials::run(against_both_v2_shims!(
        state_pids_connect_and_info_reach_the_shim_in_its_mount_namespace,
        exec_ids_address_processes_and_unknown_ones_are_not_found,
        exec_stdin_reaches_the_process_however_soon_the_input_ends,
        kill_and_wait_stop_the_container,
        pause_resume_update_and_stats,
        ls_finds_the_shim_and_lists_each_container_of_a_group,
        create_start_delete_and_shutdown_through_the_shim,
    ));
}

/// The cgroup metrics type the shim sends on this host.
fn metrics_type() -> &'static str {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "io.containerd.cgroups.v2.Metrics"
    } else {
        "io.containerd.cgroups.v1.Metrics"
    }
}

fn state_pids_connect_and_info_reach_the_shim_in_its_mount_namespace(kind: V2Kind) {
    let cd = Containerd::start("state", kind);
    cd.run("c1", &[], &["sleep", "1000"]);
    let init = cd.init_pid("c1");
    let shim = cd.shim_pid();
    // The socket exists only in containerd's mount namespace.
    let address = cd.address("c1");
    let socket = address.strip_prefix("unix://").unwrap();
    assert!(!Path::new(socket).exists(), "{socket} is visible here");

    let state = json(cd.shim_ctl("c1", &["--json", "state"]));
    assert_eq!(state["id"], "c1");
    assert!(state["exec_id"].is_null());
    assert_eq!(state["status"], "running");
    assert_eq!(state["pid"].as_u64(), Some(init));
    assert_eq!(state["bundle"], cd.bundle("c1").to_str().unwrap());
    let text = ok(cd.shim_ctl("c1", &["state"]));
    assert!(text.contains("STATUS    running\n"), "{text}");
    assert!(text.contains(&format!("PID       {init}\n")), "{text}");

    // Without --state-root: the bundle is found beside the namespace's running shim.
    let found = json(shim_ctl(&["-n", &cd.ns, "--id", "c1", "--json", "state"]));
    assert_eq!(found["pid"].as_u64(), Some(init));

    let pids = json(cd.shim_ctl("c1", &["--json", "pids"]));
    assert_eq!(pids[0]["pid"].as_u64(), Some(init), "{pids}");
    assert!(pids[0]["exec_id"].is_null(), "{pids}");

    let connected = json(cd.shim_ctl("c1", &["--json", "connect"]));
    assert_eq!(connected["shim_pid"].as_u64(), Some(u64::from(shim)));
    assert_eq!(connected["task_pid"].as_u64(), Some(init));
    let text = ok(cd.shim_ctl("c1", &["connect"]));
    assert!(text.contains(&format!("SHIM PID  {shim}\n")), "{text}");
    assert!(text.contains(&format!("TASK PID  {init}\n")), "{text}");
    let info = json(cd.shim_ctl("c1", &["--json", "info"]));
    assert_eq!(info["shim_pid"].as_u64(), Some(u64::from(shim)));

    // An address alone says nothing of the API: shim-ctl asks (Connect) and finds the socket
    // under a running shim's /proc/<pid>/root.
    let by_address = json(shim_ctl(&[
        "--address",
        &address,
        "--id",
        "c1",
        "--json",
        "state",
    ]));
    assert_eq!(by_address["pid"].as_u64(), Some(init));
    let through_root = format!("unix:///proc/{shim}/root{socket}");
    let by_root = json(shim_ctl(&[
        "--address",
        &through_root,
        "--id",
        "c1",
        "--json",
        "connect",
    ]));
    assert_eq!(by_root["task_pid"].as_u64(), Some(init));
    // A task v2 shim names every process by container.
    let o = shim_ctl(&["--address", &through_root, "state"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("error: usage: container id unknown: a task v2 shim"),
        "{}",
        stderr(&o)
    );

    // Forcing the v1 API on it: the shim has no such service.
    let o = cd.shim_ctl("c1", &["--v1", "state"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: unimplemented (12): service containerd.runtime.linux.shim.v1.Shim\n"
    );
    // --v2 is what the layout says anyway.
    let forced = json(cd.shim_ctl("c1", &["--v2", "--json", "state"]));
    assert_eq!(forced["pid"].as_u64(), Some(init));
}

fn exec_ids_address_processes_and_unknown_ones_are_not_found(kind: V2Kind) {
    let cd = Containerd::start("exec", kind);
    cd.run("c1", &[], &["sleep", "1000"]);
    let state = cd.state_str();
    let target = ["-n", cd.ns.as_str(), "--state-root", &state, "--id", "c1"];
    fn joined<'a>(target: &[&'a str], args: &[&'a str]) -> Vec<&'a str> {
        [target, args].concat()
    }
    let with = |args: &[&'static str]| joined(&target, args);

    let o = shim_ctl(&with(&[
        "exec",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]));
    assert_eq!(o.status.code(), Some(3), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
    let o = shim_ctl_with_input(&with(&["exec", "-i", "--", "cat"]), Some(b"piped\n"));
    assert_eq!(stdout(&o), "piped\n", "stderr: {}", stderr(&o));
    assert_eq!(o.status.code(), Some(0));

    let mut bg = shim_ctl_child(&with(&[
        "exec",
        "--exec-id",
        "bg",
        "--",
        "sh",
        "-c",
        "echo ready; exec sleep 1000",
    ]));
    let mut out = Collector::spawn(bg.stdout.take().unwrap());
    out.until("ready\n");
    let bg_state = json(cd.shim_ctl("c1", &["--json", "state", "--exec-id", "bg"]));
    assert_eq!(bg_state["exec_id"], "bg");
    assert_eq!(bg_state["id"], "bg");
    assert_eq!(bg_state["status"], "running");
    let bg_pid = bg_state["pid"].as_u64().unwrap();
    // A PROCESS argument other than the container id is an exec id, as v1 shims take it.
    let positional = json(cd.shim_ctl("c1", &["--json", "state", "bg"]));
    assert_eq!(positional["pid"].as_u64(), Some(bg_pid));
    let text = ok(cd.shim_ctl("c1", &["state", "--exec-id", "bg"]));
    assert!(text.contains("EXEC ID   bg\n"), "{text}");
    let pids = json(cd.shim_ctl("c1", &["--json", "pids"]));
    let listed: Vec<_> = pids
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["pid"].as_u64().unwrap(), p["exec_id"].clone()))
        .collect();
    assert!(listed.contains(&(bg_pid, "bg".into())), "{pids}");

    // Unknown exec ids and containers: NotFound, class and code first.
    let o = cd.shim_ctl("c1", &["state", "--exec-id", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("error: not found (5): ") && stderr(&o).contains("nope"),
        "{}",
        stderr(&o)
    );
    let o = cd.shim_ctl("c1", &["--json", "kill", "--exec-id", "nope", "TERM"]);
    assert_eq!(o.status.code(), Some(1));
    let e: serde_json::Value = serde_json::from_str(stderr(&o).trim()).unwrap();
    assert_eq!(e["error"]["code"], 5, "{e}");
    assert_eq!(e["error"]["class"], "not found", "{e}");
    let o = cd.shim_ctl("c1", &["delete", "--exec-id", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("error: not found (5): "),
        "{}",
        stderr(&o)
    );
    let address = cd.address("c1");
    let o = shim_ctl(&["--address", &address, "--id", "nope", "state"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("error: not found (5): "),
        "{}",
        stderr(&o)
    );
    // An unknown container id with no bundle anywhere is an io error naming both layouts.
    let o = shim_ctl(&["-n", &cd.ns, "--id", "nope", "state"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("error: io: container nope not found: no bundle at "),
        "{}",
        stderr(&o)
    );

    let sent = ok(cd.shim_ctl("c1", &["kill", "--exec-id", "bg", "KILL"]));
    assert_eq!(sent, "sent SIGKILL to bg\n");
    assert_eq!(wait_child(bg).code(), Some(137));
}

/// `exec -i` closes its end of the stdin fifo and sends CloseIO as soon as its own stdin ends.
/// Go's shim opens its reader of that fifo on a goroutine that may run only after Start
/// returned: had we closed before it opened, the input and the EOF would be gone and the
/// process would wait for stdin forever. Rounds run eight at a time, so that goroutines wait.
fn exec_stdin_reaches_the_process_however_soon_the_input_ends(kind: V2Kind) {
    const ROUNDS: usize = 16;
    let cd = Containerd::start("stdin", kind);
    cd.run("c1", &[], &["sleep", "1000"]);
    let state = cd.state_str();
    let ns = cd.ns.as_str();
    std::thread::scope(|s| {
        for t in 0..8 {
            let state = &state;
            s.spawn(move || {
                for r in 0..ROUNDS {
                    let args = [
                        "-n",
                        ns,
                        "--state-root",
                        state,
                        "--id",
                        "c1",
                        "exec",
                        "-i",
                        "--",
                        "cat",
                    ];
                    // Every other round has no input at all: only the EOF must get through.
                    let input = if r % 2 == 0 {
                        format!("round {t}.{r}\n")
                    } else {
                        String::new()
                    };
                    let o = shim_ctl_with_input(&args, Some(input.as_bytes()));
                    assert_eq!(stdout(&o), input, "round {t}.{r}: {}", stderr(&o));
                    assert_eq!(o.status.code(), Some(0), "round {t}.{r}: {}", stderr(&o));
                }
            });
        }
    });
    // Input the process never reads fills the fifo; shim-ctl still ends when the process does.
    let args = [
        "-n",
        ns,
        "--state-root",
        &state,
        "--id",
        "c1",
        "exec",
        "-i",
        "--",
        "true",
    ];
    let o = shim_ctl_with_input(&args, Some(&vec![b'y'; 1 << 20]));
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
}

fn kill_and_wait_stop_the_container(kind: V2Kind) {
    let cd = Containerd::start("kill", kind);
    cd.run("c1", &[], &["sleep", "1000"]);
    let init = cd.init_pid("c1");
    let waiter = shim_ctl_child(&[
        "-n",
        &cd.ns,
        "--state-root",
        &cd.state_str(),
        "--id",
        "c1",
        "--json",
        "wait",
    ]);
    assert_eq!(
        ok(cd.shim_ctl("c1", &["kill", "KILL"])),
        "sent SIGKILL to c1\n"
    );
    let waited = waiter.wait_with_output().unwrap();
    let waited: serde_json::Value = serde_json::from_slice(&waited.stdout).unwrap();
    assert_eq!(waited["exit_status"], 137, "{waited}");
    assert!(waited["exited_at"].is_string(), "{waited}");
    let text = ok(cd.shim_ctl("c1", &["wait"]));
    assert!(text.starts_with("c1: killed by SIGKILL at "), "{text}");
    let state = json(cd.shim_ctl("c1", &["--json", "state"]));
    assert_eq!(state["status"], "stopped");
    assert_eq!(state["exit_status"], 137);
    assert_eq!(state["pid"].as_u64(), Some(init));
}

fn pause_resume_update_and_stats(kind: V2Kind) {
    let cd = Containerd::start("stats", kind);
    cd.run("c1", &[], &["sleep", "1000"]);
    let init = cd.init_pid("c1");

    assert_eq!(ok(cd.shim_ctl("c1", &["pause"])), "paused\n");
    assert_eq!(
        json(cd.shim_ctl("c1", &["--json", "state"]))["status"],
        "paused"
    );
    assert_eq!(ok(cd.shim_ctl("c1", &["resume"])), "resumed\n");
    assert_eq!(
        json(cd.shim_ctl("c1", &["--json", "state"]))["status"],
        "running"
    );

    let out = ok(cd.shim_ctl(
        "c1",
        &["update", "--memory", "268435456", "--pids-limit", "64"],
    ));
    assert!(out.starts_with("updated: "), "{out}");
    let v2_host = metrics_type().ends_with("v2.Metrics");
    // memory.limit_in_bytes on cgroup v1, memory.max on v2; pids.max on both.
    let read =
        |limit| cgroup::read(&cgroup::file_of_pid(init, limit).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(read(Limit::Memory), "268435456");
    assert_eq!(read(Limit::Pids), "64");

    let text = ok(cd.shim_ctl("c1", &["stats"]));
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows[0], "ID       c1", "{text}");
    assert_eq!(rows[1], format!("METRICS  {}", metrics_type()), "{text}");
    assert!(
        rows[2].starts_with("MEMORY   ") && rows[2].ends_with(" of 256.0 MiB"),
        "{text}"
    );
    assert!(
        rows[3].starts_with("CPU      ") && rows[3].contains("(user "),
        "{text}"
    );
    assert_eq!(rows[4], "PIDS     1 of 64", "{text}");

    let stats = json(cd.shim_ctl("c1", &["--json", "stats"]));
    assert_eq!(stats["id"], "c1");
    assert_eq!(stats["type_url"], metrics_type());
    let m = &stats["metrics"];
    assert_eq!(m["pids"]["current"], 1, "{stats}");
    assert_eq!(m["pids"]["limit"], 64, "{stats}");
    if v2_host {
        assert_eq!(m["memory"]["usage_limit"], 268_435_456u64, "{stats}");
        assert!(m["cpu"]["usage_usec"].is_u64(), "{stats}");
    } else {
        assert_eq!(m["memory"]["usage"]["limit"], 268_435_456u64, "{stats}");
        assert!(
            m["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
            "{stats}"
        );
        assert!(m["cpu"]["usage"]["total"].is_u64(), "{stats}");
    }
}

/// The `ls` row cells of container `id` in namespace `ns`, if listed.
fn row<'a>(table: &'a str, ns: &str, id: &str) -> Option<Vec<&'a str>> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|c| c.len() > 2 && c[0] == ns && c[1] == id)
}

fn ls_finds_the_shim_and_lists_each_container_of_a_group(kind: V2Kind) {
    let cd = Containerd::start("ls", kind);
    cd.run("c1", &[], &["sleep", "1000"]);
    let group = format!("{GROUP_ANNOTATION}=c1");
    cd.run("c2", &["--annotation", &group], &["sleep", "1000"]);
    let shim = cd.shim_pid().to_string();
    let (c1, c2) = (cd.init_pid("c1").to_string(), cd.init_pid("c2").to_string());
    assert_eq!(
        cd.address("c1"),
        cd.address("c2"),
        "one shim serves the group"
    );

    // No --state-root: found through the running shim, in its own mount namespace.
    let table = ok(shim_ctl(&["ls"]));
    assert!(table.starts_with("NAMESPACE"), "{table}");
    let ns = cd.ns.as_str();
    assert_eq!(
        row(&table, ns, "c1"),
        Some(vec![ns, "c1", "v2", &c1, &shim, "running"]),
        "{table}"
    );
    assert_eq!(
        row(&table, ns, "c2"),
        Some(vec![ns, "c2", "v2", &c2, &shim, "running"]),
        "{table}"
    );

    let state = cd.state_str();
    let table = ok(shim_ctl(&["ls", "--state-root", &state]));
    assert_eq!(table.lines().count(), 3, "{table}");

    let list = json(shim_ctl(&["--json", "ls", "--state-root", &state]));
    let entries = list.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{list}");
    for (e, id) in entries.iter().zip(["c1", "c2"]) {
        assert_eq!(e["id"], id);
        assert_eq!(e["namespace"], ns);
        assert_eq!(e["api"], "v2");
        assert_eq!(e["status"], "running");
        assert_eq!(e["bundle"], cd.bundle(id).to_str().unwrap());
        assert_eq!(e["address"], cd.address("c1").as_str());
        assert_eq!(e["proc_root"], format!("/proc/{shim}/root"), "{list}");
        assert_eq!(e["shim_pid"].to_string(), shim);
    }

    let mut bg = shim_ctl_child(&[
        "-n",
        ns,
        "--id",
        "c1",
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
    // "ready" can come before the shim has read the exec's pid file (State never waits for a
    // Start in flight): the pid is recorded when shim-ctl's Start returns, which the test does
    // not see, so it asks until State shows it.
    let bg_state =
        || json(cd.shim_ctl("c1", &["--json", "state", "--exec-id", "bg"]))["pid"].to_string();
    let mut bg_pid = bg_state();
    for _ in 0..200 {
        if bg_pid != "0" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
        bg_pid = bg_state();
    }
    assert_ne!(bg_pid, "0", "the exec never got its pid");
    let table = ok(shim_ctl(&["ls", "-p", "--state-root", &state]));
    let cells: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        cells,
        [
            vec![
                "NAMESPACE",
                "ID",
                "EXEC",
                "ID",
                "API",
                "PID",
                "SHIM",
                "PID",
                "STATUS"
            ],
            vec![ns, "c1", "-", "v2", &c1, &shim, "running"],
            vec![ns, "c1", "bg", "v2", &bg_pid, &shim, "running"],
            vec![ns, "c2", "-", "v2", &c2, &shim, "running"],
        ],
        "{table}"
    );
    ok(cd.shim_ctl("c1", &["kill", "--exec-id", "bg", "KILL"]));
    assert_eq!(wait_child(bg).code(), Some(137));
}

fn create_start_delete_and_shutdown_through_the_shim(kind: V2Kind) {
    let cd = Containerd::start("life", kind);
    cd.run("c1", &[], &["sleep", "1000"]);
    let shim = cd.shim_pid();
    let address = cd.address("c1");
    // A container containerd knows nothing of, in a bundle of our own, created in c1's shim.
    let b = Bundle::new("v2own", &["sleep", "1000"]);
    let mine = ["--address", address.as_str(), "--id", b.id.as_str()];
    let run = |args: &[&str]| shim_ctl(&[&mine[..], args].concat());
    let created = ok(run(&["--v2", "create", b.path()]));
    assert!(
        created.starts_with(&format!("created {}: pid ", b.id)),
        "{created}"
    );
    let state = json(run(&["--json", "state"]));
    assert_eq!(state["status"], "created");
    assert_eq!(state["bundle"], b.path());
    let pid = state["pid"].as_u64().unwrap();
    assert_eq!(json(run(&["--json", "start"]))["pid"].as_u64(), Some(pid));
    let o = run(&["exec", "--", "sh", "-c", "echo in mine"]);
    assert_eq!(stdout(&o), "in mine\n", "stderr: {}", stderr(&o));
    // Shutdown while the shim still serves containers: it answers and stays.
    let stays = json(run(&["--json", "shutdown"]));
    assert_eq!(stays["exited"], false, "{stays}");
    assert_eq!(stays["shim_pid"].as_u64(), Some(u64::from(shim)));
    ok(run(&["kill", "KILL"]));
    ok(run(&["wait"]));
    let deleted = ok(run(&["delete"]));
    assert_eq!(
        deleted
            .lines()
            .next()
            .unwrap_or_default()
            .split(", ")
            .next(),
        Some(format!("deleted {}: pid {pid}", b.id).as_str()),
        "{deleted}"
    );
    let o = run(&["state"]);
    assert!(
        stderr(&o).starts_with("error: not found (5): "),
        "{}",
        stderr(&o)
    );

    // Once c1 is gone too, shutdown ends the shim.
    let c1 = ["--address", address.as_str(), "--id", "c1"];
    let on_c1 = |args: &[&str]| shim_ctl(&[&c1[..], args].concat());
    ok(on_c1(&["kill", "KILL"]));
    ok(on_c1(&["wait"]));
    ok(on_c1(&["delete"]));
    let text = ok(on_c1(&["shutdown"]));
    assert_eq!(text, format!("shim {shim} exited\n"));
    assert!(wait_gone(shim), "shim {shim} still there");
    let table = ok(shim_ctl(&["ls", "--state-root", &cd.state_str()]));
    assert!(
        row(&table, &cd.ns, "c1").map_or(true, |r| r.contains(&"unreachable")),
        "{table}"
    );
}
