//! Command-line behaviour that needs no shim: help, usage errors, completions, unreachable shims.

mod common;

use common::*;

#[test]
fn every_command_has_help_with_examples() {
    let top = ok(shim_ctl(&["--help"]));
    assert!(top.contains("Examples:"), "{top}");
    for cmd in [
        "state",
        "pids",
        "kill",
        "exec",
        "wait",
        "pause",
        "resume",
        "delete",
        "close-stdin",
        "resize",
        "update",
        "checkpoint",
        "info",
        "stats",
        "connect",
        "shutdown",
        "create",
        "start",
        "ls",
        "spawn",
        "completions",
    ] {
        let help = ok(shim_ctl(&[cmd, "--help"]));
        assert!(
            help.contains("Example"),
            "{cmd} --help has no examples:\n{help}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(shim_ctl(&["state"]).status.code(), Some(2), "no target");
    assert_eq!(
        shim_ctl(&["--id", "x", "frobnicate"]).status.code(),
        Some(2)
    );
    assert_eq!(shim_ctl(&["completions", "tcsh"]).status.code(), Some(2));
    let o = shim_ctl(&["--address", "/nonexistent.sock", "update"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn unreachable_shim_is_an_error_with_exit_1() {
    let o = shim_ctl(&["--address", "/nonexistent/shim.sock", "info"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("error: transport: cannot connect to unix:///nonexistent/shim.sock"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn missing_address_file_is_an_io_error_with_exit_1() {
    let tmp = TempDir::new("noaddr");
    let o = shim_ctl(&["--bundle", tmp.0.to_str().unwrap(), "info"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "error: io: reading {}/address: No such file or directory (os error 2)\n",
            tmp.0.display()
        )
    );
    let o = shim_ctl(&["--json", "--bundle", tmp.0.to_str().unwrap(), "info"]);
    let v: serde_json::Value = serde_json::from_str(stderr(&o).trim()).unwrap();
    assert_eq!(v["error"]["class"], "io");
    assert!(v["error"]["code"].is_null());
}

#[test]
fn usage_errors_name_their_class_in_text_and_json() {
    let o = shim_ctl(&["state"]);
    assert_eq!(
        stderr(&o),
        "error: usage: no shim given: use --address, --bundle or --id (see --help)\n"
    );
    let o = shim_ctl(&["--json", "state"]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_str(stderr(&o).trim()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"error": {"code": null, "class": "usage",
            "message": "no shim given: use --address, --bundle or --id (see --help)"}})
    );
    // clap's refusals get the same lead.
    let o = shim_ctl(&["--id", "x", "frobnicate"]);
    assert!(
        stderr(&o).starts_with("error: usage: unrecognized subcommand 'frobnicate'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn completions_refuse_json() {
    let o = shim_ctl(&["--json", "completions", "bash"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    assert!(
        stderr(&o).contains("--json does not apply"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn target_flags_can_come_from_the_environment() {
    let tmp = TempDir::new("envaddr");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_shim-ctl"))
        .arg("info")
        .env("SHIM_CTL_BUNDLE", &tmp.0)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(&format!("error: io: reading {}/address", tmp.0.display())),
        "{}",
        stderr(&o)
    );
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_shim-ctl"))
        .arg("info")
        .env("SHIM_CTL_ADDRESS", "/nonexistent/env.sock")
        .output()
        .unwrap();
    assert!(
        stderr(&o).starts_with("error: transport: cannot connect to unix:///nonexistent/env.sock"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn ls_shows_unreachable_shims_instead_of_failing() {
    let tmp = TempDir::new("ls");
    let ns = tmp.0.join("io.containerd.runtime.v1.linux/default");
    for id in ["a", "b", ".being-deleted"] {
        std::fs::create_dir_all(ns.join(id)).unwrap();
    }
    std::fs::write(
        ns.join("a/address"),
        format!("unix://{}/gone.sock", tmp.0.display()),
    )
    .unwrap();
    std::fs::write(ns.join("a/shim.pid"), "4242").unwrap();
    let table = ok(shim_ctl(&["ls", "--state-root", tmp.0.to_str().unwrap()]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[1].starts_with("default    a   v1   -    4242      unreachable (connect: "),
        "{table}"
    );
    assert!(lines[2].contains("unreachable (no address: "), "{table}");
    let v = json(shim_ctl(&[
        "--json",
        "ls",
        "--state-root",
        tmp.0.to_str().unwrap(),
    ]));
    assert_eq!(v[0]["status"], "unreachable");
    assert_eq!(v[0]["shim_pid"], 4242);
    assert!(v[1]["error"].as_str().unwrap().starts_with("no address"));
}

#[test]
fn ls_of_a_root_without_shims_prints_only_the_header() {
    let tmp = TempDir::new("lsempty");
    assert_eq!(
        ok(shim_ctl(&["ls", "--state-root", tmp.0.to_str().unwrap()])),
        "NAMESPACE  ID  API  PID  SHIM PID  STATUS\n"
    );
    assert_eq!(
        ok(shim_ctl(&[
            "ls",
            "-p",
            "--state-root",
            tmp.0.to_str().unwrap()
        ])),
        "NAMESPACE  ID  EXEC ID  API  PID  SHIM PID  STATUS\n"
    );
}

#[test]
fn bash_completion_script_is_valid_bash_and_completes_subcommands() {
    let script = ok(shim_ctl(&["completions", "bash"]));
    let probe = format!(
        "{script}\nCOMP_WORDS=(shim-ctl ex); COMP_CWORD=1; _shim_ctl; echo \"${{COMPREPLY[@]}}\"\n\
         COMP_WORDS=(shim-ctl kill --e); COMP_CWORD=2; _shim_ctl; echo \"${{COMPREPLY[@]}}\""
    );
    let o = std::process::Command::new("bash")
        .arg("-c")
        .arg(&probe)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "exec\n--exec-id\n");
    assert!(ok(shim_ctl(&["completions", "fish"])).contains("complete -c shim-ctl"));
    assert!(ok(shim_ctl(&["completions", "zsh"])).contains("bashcompinit"));
}
