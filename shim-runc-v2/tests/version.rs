//! `-v` against the real binary.

mod common;

use std::process::Command;

use common::{text, BIN};

#[test]
fn dash_v_prints_the_version_as_go_shims_do_without_a_namespace() {
    let mut cmd = Command::new(BIN);
    cmd.arg("-v");
    let out = common::run_bounded(cmd);
    assert!(out.status.success(), "{out:?}");
    let t = text(&out.stdout);
    assert!(
        t.starts_with(&format!(
            "containerd-shim-rsrunc-v2:\n  Version:  {}\n  Revision: ",
            env!("CARGO_PKG_VERSION")
        )),
        "{t}"
    );
    assert!(t.contains("\n  Rust version: rustc "), "{t}");
    assert!(t.ends_with("\n\n"), "{t:?}");
}

#[test]
fn without_a_namespace_the_actions_are_refused_as_go_refuses_them() {
    let mut cmd = Command::new(BIN);
    cmd.args(["-id", "c1", "start"]).env_remove("NAMESPACE");
    let out = common::run_bounded(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "io.containerd.rsrunc.v2: shim namespace cannot be empty"
    );
}
