//! The command line and environment containerd gives a runtime v2 shim, parsed the way Go's `flag`
//! package would accept them.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;

/// What containerd (or a person) passes on the command line.
#[derive(Parser, Debug, Clone, PartialEq, Eq)]
#[command(
    name = "containerd-shim-rsrunc-v2",
    about = "containerd runtime v2 shim (io.containerd.rsrunc.v2) driving runc",
    disable_version_flag = true,
    after_help = "containerd runs `<shim> -namespace NS -address A -publish-binary B -id ID start` in the \
bundle and reads the address it prints; `... -bundle DIR delete` cleans up after a dead shim. With no \
action the shim serves the task API (the daemon `start` launches, or by hand with -socket):\n\n  \
cd /path/to/bundle && containerd-shim-rsrunc-v2 -namespace demo -id c1 -socket /tmp/demo.sock"
)]
pub struct Flags {
    /// containerd namespace that owns the shim (or env NAMESPACE).
    #[arg(long, default_value = "")]
    pub namespace: String,
    /// containerd's gRPC address (or env GRPC_ADDRESS): part of the socket name, and the target of
    /// the publish binary.
    #[arg(long, default_value = "")]
    pub address: String,
    /// The binary run as `<it> --address A publish ...` when containerd's ttrpc socket is missing.
    #[arg(long = "publish-binary", default_value = "")]
    pub publish_binary: String,
    /// The task's id.
    #[arg(long, default_value = "")]
    pub id: String,
    /// The bundle, if not the working directory.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// Debug log level.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub debug: bool,
    /// Serve on this socket path (standalone) instead of the listener inherited as fd 3.
    #[arg(long)]
    pub socket: Option<String>,
    /// Print the version and exit.
    #[arg(long = "v", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub version: bool,
    /// Read runtime options (protobuf Any) from stdin, print the RuntimeInfo protobuf, and exit.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub info: bool,
    /// `start`, `delete`, or nothing to serve. Go ignores what follows the action; so do we.
    #[arg(num_args = 0.., trailing_var_arg = true, hide = true)]
    pub positional: Vec<String>,
}

/// Flags that take a value (Go consumes the next argument for them, whatever it looks like).
const VALUE_FLAGS: &[&str] = &[
    "namespace",
    "address",
    "publish-binary",
    "id",
    "bundle",
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

    /// The positional action.
    pub fn action(&self) -> Result<Action, String> {
        match self.positional.first().map(String::as_str) {
            None => Ok(Action::Serve),
            Some("start") => Ok(Action::Start),
            Some("delete") => Ok(Action::Delete),
            Some(other) => Err(format!(
                "unknown action {other:?}: expected start, delete or none"
            )),
        }
    }
}

/// What this run of the binary does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Launch (or find) the daemon, print its address.
    Start,
    /// Clean up after a dead daemon, print a DeleteResponse.
    Delete,
    /// Be the daemon: serve the task API until Shutdown.
    Serve,
}

/// The environment containerd sets for a shim (1.6 sets only TTRPC_ADDRESS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    pub ttrpc_address: Option<String>,
    pub grpc_address: Option<String>,
    pub namespace: Option<String>,
    pub max_shim_version: Option<String>,
}

impl Env {
    pub fn from_process() -> Env {
        Env::from_fn(|k| std::env::var(k).ok())
    }

    /// Empty values count as unset.
    pub fn from_fn(get: impl Fn(&str) -> Option<String>) -> Env {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        Env {
            ttrpc_address: get("TTRPC_ADDRESS"),
            grpc_address: get("GRPC_ADDRESS"),
            namespace: get("NAMESPACE"),
            max_shim_version: get("MAX_SHIM_VERSION"),
        }
    }
}

/// Flags and environment resolved into what the shim uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub namespace: String,
    /// containerd's gRPC address.
    pub address: String,
    /// containerd's ttrpc address, for `Events.Forward`.
    pub ttrpc_address: String,
    /// The publish binary (`containerd` when not given).
    pub publish_binary: String,
    pub id: String,
    pub debug: bool,
    /// The highest bootstrap version containerd reads; None when it did not say (1.6).
    pub max_shim_version: Option<u32>,
}

impl Settings {
    /// A flag wins over the environment; TTRPC_ADDRESS defaults to `<address>.ttrpc`, as
    /// containerd names it.
    pub fn resolve(flags: &Flags, env: &Env) -> Settings {
        let pick = |flag: &str, env: &Option<String>| match flag {
            "" => env.clone().unwrap_or_default(),
            f => f.to_string(),
        };
        let address = pick(&flags.address, &env.grpc_address);
        let ttrpc_address = env
            .ttrpc_address
            .clone()
            .unwrap_or_else(|| format!("{address}.ttrpc"));
        Settings {
            namespace: pick(&flags.namespace, &env.namespace),
            ttrpc_address,
            publish_binary: match flags.publish_binary.as_str() {
                "" => "containerd".to_string(),
                b => b.to_string(),
            },
            address,
            id: flags.id.clone(),
            debug: flags.debug,
            max_shim_version: env
                .max_shim_version
                .as_deref()
                .and_then(|v| v.trim().parse().ok()),
        }
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

    fn env(pairs: &[(&str, &str)]) -> Env {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::from_fn(|k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn parses_the_start_argv_of_containerd_1_7() {
        let f = parse(&[
            "-namespace",
            "default",
            "-address",
            "/run/containerd/containerd.sock",
            "-publish-binary",
            "/usr/bin/containerd",
            "-id",
            "c1",
            "-debug",
            "start",
        ])
        .unwrap();
        assert_eq!(f.namespace, "default");
        assert_eq!(f.address, "/run/containerd/containerd.sock");
        assert_eq!(f.publish_binary, "/usr/bin/containerd");
        assert_eq!(f.id, "c1");
        assert!(f.debug);
        assert_eq!(f.action(), Ok(Action::Start));
    }

    #[test]
    fn parses_the_delete_argv() {
        let f = parse(&[
            "-namespace",
            "ns",
            "-address",
            "/a.sock",
            "-publish-binary",
            "/b",
            "-id",
            "c1",
            "-bundle",
            "/x/c1",
            "delete",
        ])
        .unwrap();
        assert_eq!(f.bundle, Some(PathBuf::from("/x/c1")));
        assert_eq!(f.action(), Ok(Action::Delete));
    }

    #[test]
    fn no_action_serves_and_an_unknown_one_is_refused() {
        assert_eq!(
            parse(&["-namespace", "a"]).unwrap().action(),
            Ok(Action::Serve)
        );
        let err = parse(&["-namespace", "a", "frob"]).unwrap().action();
        assert!(err.unwrap_err().contains("frob"));
    }

    #[test]
    fn like_go_what_follows_the_action_is_not_parsed() {
        let f = parse(&["-id", "c1", "start", "-debug", "-bogus"]).unwrap();
        assert!(!f.debug);
        assert_eq!(f.action(), Ok(Action::Start));
    }

    #[test]
    fn version_and_info_are_bool_flags() {
        assert!(parse(&["-v"]).unwrap().version);
        assert!(parse(&["-info"]).unwrap().info);
        assert!(!parse(&["-v=false"]).unwrap().version);
    }

    #[test]
    fn unknown_flags_and_missing_values_are_refused() {
        assert!(parse(&["-bogus"]).is_err());
        assert!(parse(&["-id"]).is_err());
    }

    #[test]
    fn the_environment_fills_what_flags_leave_out() {
        let f = parse(&["-id", "c1"]).unwrap();
        let s = Settings::resolve(
            &f,
            &env(&[
                ("NAMESPACE", "envns"),
                ("GRPC_ADDRESS", "/g.sock"),
                ("TTRPC_ADDRESS", "/g.sock.ttrpc"),
                ("MAX_SHIM_VERSION", "2"),
            ]),
        );
        assert_eq!(s.namespace, "envns");
        assert_eq!(s.address, "/g.sock");
        assert_eq!(s.ttrpc_address, "/g.sock.ttrpc");
        assert_eq!(s.max_shim_version, Some(2));
        assert_eq!(s.publish_binary, "containerd");
    }

    #[test]
    fn flags_win_and_ttrpc_address_defaults_to_the_grpc_one_dot_ttrpc() {
        let f = parse(&["-namespace", "n", "-address", "/c.sock"]).unwrap();
        let s = Settings::resolve(
            &f,
            &env(&[("NAMESPACE", "other"), ("MAX_SHIM_VERSION", "")]),
        );
        assert_eq!(s.namespace, "n");
        assert_eq!(s.ttrpc_address, "/c.sock.ttrpc");
        assert_eq!(s.max_shim_version, None);
    }
}
