//! The command line: containerd's Go-style single-dash flags, normalised before clap parses them.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;

/// What containerd (or a person, in standalone mode) passes to the shim.
#[derive(Parser, Debug, Clone, PartialEq, Eq)]
#[command(
    name = "containerd-shim",
    about = "containerd runtime v1 shim for runc",
    after_help = "containerd starts it exactly as it starts containerd-shim (Go-style flags such as \
`-namespace x` work; the listener arrives on fd 3; cwd is the bundle). To run one by hand:\n\n  \
cd /path/to/bundle && shim-runc-v1 -namespace demo -workdir /tmp/demo-work -socket unix:///tmp/demo.sock &\n  \
shim-ctl --address unix:///tmp/demo.sock create --null-io /path/to/bundle\n\n\
or let shim-ctl lay it out as containerd would: shim-ctl spawn /path/to/bundle"
)]
pub struct Flags {
    /// containerd namespace: runc root is <runtime-root>/<namespace>; events are published in it.
    #[arg(long)]
    pub namespace: String,
    /// Where shim.stdout.log, shim.stderr.log and criu-work live.
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// containerd's gRPC socket path, used only to publish events.
    #[arg(long, default_value = "")]
    pub address: String,
    /// containerd's own executable, run as `<it> --address A publish ...` for each event.
    #[arg(long = "containerd-binary", default_value = "containerd")]
    pub containerd_binary: PathBuf,
    /// runc's state root; runc gets `--root <runtime-root>/<namespace>`.
    #[arg(long = "runtime-root", default_value = "/run/containerd/runc")]
    pub runtime_root: PathBuf,
    /// criu binary for checkpoint/restore (containerd sends `-criu-path`, the Go shim knew `-criu`).
    #[arg(long = "criu", alias = "criu-path")]
    pub criu: Option<PathBuf>,
    /// Pass --systemd-cgroup to runc.
    #[arg(long = "systemd-cgroup", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub systemd_cgroup: bool,
    /// Debug log level.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub debug: bool,
    /// Standalone mode: listen on this address (`unix:///path`, or an abstract name without prefix)
    /// instead of the listener containerd passes as fd 3.
    #[arg(long)]
    pub socket: Option<String>,
}

/// Flags that take a value (Go consumes the next argument for them, whatever it looks like).
const VALUE_FLAGS: &[&str] = &[
    "namespace",
    "workdir",
    "address",
    "containerd-binary",
    "runtime-root",
    "criu",
    "criu-path",
    "socket",
];

impl Flags {
    /// Parse argv (including argv[0]) the way Go's `flag` package would accept it.
    pub fn parse_from_go<I>(args: I) -> Result<Flags, clap::Error>
    where
        I: IntoIterator<Item = OsString>,
    {
        Flags::try_parse_from(shim_host::goflags::normalise(args, VALUE_FLAGS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        Flags::parse_from_go(
            std::iter::once("shim")
                .chain(args.iter().copied())
                .map(OsString::from),
        )
    }

    #[test]
    fn parses_the_argv_containerd_sends() {
        let f = parse(&[
            "-namespace",
            "default",
            "-workdir",
            "/var/lib/containerd/io.containerd.runtime.v1.linux/default/t1",
            "-address",
            "/run/containerd/containerd.sock",
            "-containerd-binary",
            "/usr/bin/containerd",
            "-debug",
        ])
        .unwrap();
        assert_eq!(f.namespace, "default");
        assert_eq!(
            f.workdir,
            Some(PathBuf::from(
                "/var/lib/containerd/io.containerd.runtime.v1.linux/default/t1"
            ))
        );
        assert_eq!(f.address, "/run/containerd/containerd.sock");
        assert_eq!(f.containerd_binary, PathBuf::from("/usr/bin/containerd"));
        assert!(f.debug);
        assert!(!f.systemd_cgroup);
        assert_eq!(f.runtime_root, PathBuf::from("/run/containerd/runc"));
        assert_eq!(f.criu, None);
        assert_eq!(f.socket, None);
    }

    #[test]
    fn defaults_apply_when_only_namespace_is_given() {
        let f = parse(&["-namespace=ns"]).unwrap();
        assert_eq!(f.namespace, "ns");
        assert_eq!(f.containerd_binary, PathBuf::from("containerd"));
        assert!(!f.debug);
    }

    #[test]
    fn accepts_equals_form_double_dash_and_bool_values() {
        let f = parse(&[
            "--namespace=a",
            "-runtime-root=/r",
            "-systemd-cgroup",
            "-debug=false",
        ])
        .unwrap();
        assert_eq!(f.namespace, "a");
        assert_eq!(f.runtime_root, PathBuf::from("/r"));
        assert!(f.systemd_cgroup);
        assert!(!f.debug);
    }

    #[test]
    fn accepts_both_criu_and_criu_path() {
        assert_eq!(
            parse(&["-namespace", "a", "-criu", "/c1"]).unwrap().criu,
            Some(PathBuf::from("/c1"))
        );
        assert_eq!(
            parse(&["-namespace", "a", "-criu-path", "/c2"])
                .unwrap()
                .criu,
            Some(PathBuf::from("/c2"))
        );
    }

    #[test]
    fn a_value_starting_with_dash_is_a_value() {
        let f = parse(&["-namespace", "a", "-workdir", "-odd"]).unwrap();
        assert_eq!(f.workdir, Some(PathBuf::from("-odd")));
    }

    #[test]
    fn socket_selects_standalone_mode() {
        let f = parse(&["-namespace", "a", "-socket", "unix:///tmp/x.sock"]).unwrap();
        assert_eq!(f.socket.as_deref(), Some("unix:///tmp/x.sock"));
    }

    #[test]
    fn namespace_is_required_and_unknown_flags_are_rejected() {
        assert!(parse(&["-workdir", "/w"]).is_err());
        assert!(parse(&["-namespace", "a", "-bogus"]).is_err());
        assert!(parse(&["-namespace"]).is_err());
    }
}
