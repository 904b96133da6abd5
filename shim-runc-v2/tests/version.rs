//! `-v` and `-info` against the real binary.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{text, BIN};
use prost::Message;
use shim_proto::protobuf::Any;

/// containerd's `containerd.types.RuntimeInfo`, as containerd decodes `-info`'s output.
#[derive(Clone, PartialEq, Message)]
struct RuntimeInfo {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    version: Option<RuntimeVersion>,
    #[prost(message, optional, tag = "3")]
    options: Option<Any>,
    #[prost(message, optional, tag = "4")]
    features: Option<Any>,
}

#[derive(Clone, PartialEq, Message)]
struct RuntimeVersion {
    #[prost(string, tag = "1")]
    version: String,
    #[prost(string, tag = "2")]
    revision: String,
}

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
fn dash_info_without_options_names_the_runtime_and_runc_s_features() {
    let mut cmd = Command::new(BIN);
    cmd.arg("-info").stdin(Stdio::null());
    let out = common::run_bounded(cmd);
    assert!(out.status.success(), "{out:?}");
    let info = RuntimeInfo::decode(out.stdout.as_slice()).expect("a protobuf RuntimeInfo");
    assert_eq!(info.name, "io.containerd.rsrunc.v2");
    assert_eq!(info.version.unwrap().version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.options, None);
    let features = info
        .features
        .expect("runc on this machine has `runc features`");
    assert_eq!(
        features.type_url,
        "types.containerd.io/opencontainers/runtime-spec/1/features/Features"
    );
    let json: serde_json::Value = serde_json::from_slice(&features.value).unwrap();
    assert!(json["ociVersionMax"].is_string(), "{json}");
}

#[test]
fn dash_info_echoes_runc_options_and_refuses_other_types() {
    let options = Any {
        type_url: "containerd.runc.v1.Options".into(),
        value: vec![],
    };
    let run = |input: Vec<u8>| {
        let mut child = Command::new(BIN)
            .arg("-info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(options.encode_to_vec());
    assert!(out.status.success(), "{out:?}");
    let info = RuntimeInfo::decode(out.stdout.as_slice()).unwrap();
    assert_eq!(info.options, Some(options));

    let other = Any {
        type_url: "containerd.linux.runc.RuncOptions".into(),
        value: vec![],
    };
    let out = run(other.encode_to_vec());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("containerd.linux.runc.RuncOptions"),
        "{out:?}"
    );
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
