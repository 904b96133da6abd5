//! Command-line arguments (clap derive): the shim target, global flags and every subcommand.

use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};

/// containerd's state directory unless `--state-root` says otherwise.
pub const DEFAULT_STATE_ROOT: &str = "/run/containerd";

const EXAMPLES: &str = "\
Examples:
  shim-ctl --id web state                      # containerd's layouts, namespace \"default\"
  shim-ctl --id web --namespace k8s.io pids
  shim-ctl --bundle /run/containerd/io.containerd.runtime.v1.linux/default/web kill TERM
  shim-ctl --address unix:///run/containerd/s/3f2a... --id web wait
  shim-ctl --id web exec -t -i -- sh
  shim-ctl --id web state --exec-id dbg        # one exec process of the container
  shim-ctl --id web stats                      # task v2 shims: cgroup metrics
  shim-ctl ls
  shim-ctl spawn /tmp/bundle --runtime-root /tmp/runc && shim-ctl --bundle /tmp/bundle create /tmp/bundle
  export SHIM_CTL_ADDRESS=unix:///tmp/demo.sock SHIM_CTL_BUNDLE=/tmp/bundle; shim-ctl state

Shims serve the v1 shim API (containerd-shim, shim-runc-v1: one container, a process named by
one id) or task API v2 (containerd-shim-runc-v2, containerd-shim-rsrunc-v2: one or more
containers, a process named by container id and exec id). containerd's layout tells which
(<state>/io.containerd.runtime.v1.linux or .../io.containerd.runtime.v2.task), else shim-ctl asks
the shim (containerd.task.v2.Task/Connect); --v1 or --v2 forces it. A task shim that serves only
task API v3 (containerd 2.x's Go shims) is spoken to as containerd.task.v3.Task, the same
messages. A shim of a containerd in another mount namespace is reached through its
/proc/<pid>/root; containerd 2.x's bootstrap.json gives the address when no address file does.

Errors go to stderr as `error: CLASS: MESSAGE`, CLASS being usage, io, transport (the shim could
not be reached or hung up) or the shim's ttrpc code with its number, e.g.
  error: not found (5): process nope does not exist
With --json: {\"error\":{\"code\":5,\"class\":\"not found\",\"message\":\"...\"}} (code null unless
the shim answered).

Exit status: 0 on success, 1 when the shim (or the system) reports an error, 2 for usage errors.
`exec` exits with the exit status of the executed process.";

/// Talk to a containerd shim directly: v1 (containerd-shim, shim-runc-v1) or task v2
/// (containerd-shim-runc-v2, containerd-shim-rsrunc-v2).
#[derive(Debug, Parser)]
#[command(name = "shim-ctl", version, after_help = EXAMPLES, arg_required_else_help = true)]
pub struct Cli {
    #[command(flatten)]
    pub target: Target,
    /// Print machine-readable JSON instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// Give up on an RPC after SECS seconds (never for wait and exec's wait)
    #[arg(long, global = true, value_name = "SECS")]
    pub timeout: Option<f64>,
    #[command(subcommand)]
    pub command: Command,
}

/// Which shim to talk to (and which container it runs).
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// Shim ttrpc address (unix:///path or a plain socket path)
    #[arg(long, value_name = "ADDR", env = "SHIM_CTL_ADDRESS")]
    pub address: Option<String>,
    /// Bundle directory: read its `address` file; its name is the container id
    #[arg(long, value_name = "DIR", env = "SHIM_CTL_BUNDLE")]
    pub bundle: Option<PathBuf>,
    /// Container id: the bundle <state-root>/io.containerd.runtime.v2.task/<ns>/<id> (or
    /// .../io.containerd.runtime.v1.linux/...), else beside a running shim of the namespace
    #[arg(long = "id", value_name = "ID", env = "SHIM_CTL_ID")]
    pub id: Option<String>,
    /// containerd namespace
    #[arg(
        long,
        short = 'n',
        value_name = "NS",
        default_value = "default",
        env = "SHIM_CTL_NAMESPACE"
    )]
    pub namespace: String,
    /// containerd state directory [default: /run/containerd]
    #[arg(long, value_name = "DIR")]
    pub state_root: Option<PathBuf>,
    /// Speak the v1 shim API without asking the shim which API it serves
    #[arg(long = "v1", conflicts_with = "v2")]
    pub v1: bool,
    /// Speak task API v2 without asking the shim which API it serves
    #[arg(long = "v2")]
    pub v2: bool,
}

impl Target {
    /// `--state-root`, else containerd's default.
    pub fn state_root(&self) -> &Path {
        self.state_root
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_STATE_ROOT))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the state of the container (or of an exec process)
    #[command(
        after_help = "Examples:\n  shim-ctl --id web state\n  shim-ctl --id web state --exec-id my-exec\n  shim-ctl --id web state my-exec\n  shim-ctl --id web --json state"
    )]
    State {
        /// Process id: the container id or an exec id (default: the container id)
        #[arg(conflicts_with = "exec_id")]
        id: Option<String>,
        /// This exec process instead of the init
        #[arg(long, value_name = "ID")]
        exec_id: Option<String>,
    },
    /// List the container's processes (runc ps) with their exec ids
    #[command(
        after_help = "Examples:\n  shim-ctl --id web pids\n  shim-ctl --bundle /path/to/bundle --json pids"
    )]
    Pids,
    /// Send a signal to the container's init (or to an exec process)
    #[command(
        after_help = "Examples:\n  shim-ctl --id web kill TERM\n  shim-ctl --id web kill --all SIGKILL\n  shim-ctl --id web kill --exec-id dbg 9"
    )]
    Kill {
        /// Signal every process of the container (runc kill --all)
        #[arg(long)]
        all: bool,
        /// Signal this exec process instead of the init
        #[arg(long, value_name = "ID")]
        exec_id: Option<String>,
        /// Signal name (TERM, SIGKILL, RTMIN+1) or number
        #[arg(value_parser = crate::signal::parse)]
        signal: u32,
    },
    /// Run a command in the container, attached to this terminal
    #[command(
        after_help = "Examples:\n  shim-ctl --id web exec -- ps\n  shim-ctl --id web exec -t -i -- sh\n  shim-ctl --id web exec --user 1000:1000 --cwd /tmp --env DEBUG=1 -- env\n\nThe process is built from the bundle's config.json process (args, env, cwd and user replaced).\nshim-ctl exits with the process's exit status; the exec is deleted at the end.\nstdout and stderr carry the process's own output, so with --json the report goes to\nstderr, as its last line: {\"exec_id\":\"dbg\",\"pid\":4242,\"exit_status\":3,\"exited_at\":\"2024-…Z\"}."
    )]
    Exec(ExecArgs),
    /// Wait for the container (or an exec process) to exit and print its exit status
    #[command(
        after_help = "Examples:\n  shim-ctl --id web wait\n  shim-ctl --id web wait --exec-id my-exec"
    )]
    Wait {
        /// Process id: the container id or an exec id (default: the container id)
        #[arg(conflicts_with = "exec_id")]
        id: Option<String>,
        /// This exec process instead of the init
        #[arg(long, value_name = "ID")]
        exec_id: Option<String>,
    },
    /// Freeze every process of the container
    #[command(after_help = "Example:\n  shim-ctl --id web pause")]
    Pause,
    /// Thaw a paused container
    #[command(after_help = "Example:\n  shim-ctl --id web resume")]
    Resume,
    /// Delete the stopped container (or an exec process)
    #[command(
        after_help = "Examples:\n  shim-ctl --id web delete\n  shim-ctl --id web delete --exec-id my-exec"
    )]
    Delete {
        /// Delete this exec process instead of the container
        #[arg(long, value_name = "ID")]
        exec_id: Option<String>,
    },
    /// Close the shim's writer on a process's stdin fifo (CloseIO)
    #[command(
        name = "close-stdin",
        after_help = "Examples:\n  shim-ctl --id web close-stdin\n  shim-ctl --id web close-stdin --exec-id my-exec\n\nThe process sees EOF once the client that feeds its stdin fifo has closed its end too\n(`exec -i` does both by itself when its own stdin ends)."
    )]
    CloseStdin {
        /// Process id: the container id or an exec id (default: the container id)
        #[arg(conflicts_with = "exec_id")]
        id: Option<String>,
        /// This exec process instead of the init
        #[arg(long, value_name = "ID")]
        exec_id: Option<String>,
    },
    /// Resize a process's terminal
    #[command(
        after_help = "Examples:\n  shim-ctl --id web resize 120 40\n  shim-ctl --id web resize --exec-id my-exec 120 40\n  shim-ctl --id web resize web 120 40"
    )]
    Resize {
        /// [PROCESS] COLS ROWS: PROCESS is the container id or an exec id (default: the container id)
        #[arg(num_args = 2..=3, value_name = "ARGS", required = true)]
        args: Vec<String>,
        /// This exec process instead of the init
        #[arg(long, value_name = "ID")]
        exec_id: Option<String>,
    },
    /// Change the container's resource limits
    #[command(
        after_help = "Examples:\n  shim-ctl --id web update --memory 268435456 --cpu-shares 512\n  shim-ctl --id web update --resources limits.json\n  echo '{\"pids\":{\"limit\":64}}' | shim-ctl --id web update --resources -"
    )]
    Update(UpdateArgs),
    /// Checkpoint the container with criu
    #[command(
        after_help = "Examples:\n  shim-ctl --id web checkpoint /var/tmp/ckpt\n  shim-ctl --id web checkpoint /var/tmp/ckpt --exit --tcp"
    )]
    Checkpoint(CheckpointArgs),
    /// Show the shim's own pid
    #[command(after_help = "Example:\n  shim-ctl --id web info")]
    Info,
    /// Show the container's cgroup metrics: memory, cpu, pids (task v2 shims)
    #[command(
        after_help = "Examples:\n  shim-ctl --id web stats\n  shim-ctl --id web --json stats\n\nThe shim sends io.containerd.cgroups.v1.Metrics on a cgroup v1 host and\nio.containerd.cgroups.v2.Metrics on a cgroup v2 host; --json prints the whole message."
    )]
    Stats,
    /// Show the shim's pid, the container's init pid and the shim's version (task v2 shims)
    #[command(
        after_help = "Examples:\n  shim-ctl --id web connect\n  shim-ctl --id web --json connect"
    )]
    Connect,
    /// Ask the shim to exit (task v2 shims; a shim that still serves containers stays)
    #[command(
        after_help = "Examples:\n  shim-ctl --id web shutdown\n  shim-ctl --id web shutdown --now\n\nA shim exits only once it serves no container: Go's runc shim answers a Shutdown that comes\nwhile it still has one (not yet deleted) and goes on; containerd sends one after each delete.\nshim-ctl says whether the shim went away."
    )]
    Shutdown {
        /// Set the request's `now` (Go's runc shim ignores it)
        #[arg(long)]
        now: bool,
    },
    /// Create the container from a bundle (the first RPC containerd sends)
    #[command(
        after_help = "Examples:\n  shim-ctl --bundle /tmp/b create /tmp/b\n  shim-ctl --bundle /tmp/b create --stdout file:///tmp/b/out.log --stderr file:///tmp/b/out.log /tmp/b\n  shim-ctl --bundle /tmp/b create --terminal --stdout /tmp/fifo-out /tmp/b\n  shim-ctl --address unix:///run/containerd/s/3f2a... --v2 create --id mine /tmp/b\n\nWithout a target, the bundle's own `address` file names the shim. A task v2 shim takes the\ncontainer beside the ones it serves; its rootfs is the bundle's rootfs directory as it is."
    )]
    Create(CreateArgs),
    /// Start the created container (or an exec process)
    #[command(
        after_help = "Examples:\n  shim-ctl --bundle /tmp/b start\n  shim-ctl --id web start --exec-id my-exec"
    )]
    Start {
        /// Process id: the container id or an exec id (default: the container id)
        #[arg(conflicts_with = "exec_id")]
        id: Option<String>,
        /// This exec process instead of the init
        #[arg(long, value_name = "ID")]
        exec_id: Option<String>,
    },
    /// List every container of every shim, v1 and task v2 (and, with -p, their processes)
    #[command(
        after_help = "Examples:\n  shim-ctl ls\n  shim-ctl ls -p\n  shim-ctl ls --state-root /tmp/containerd-state --json\n\nContainers are the bundles in containerd's layouts, <root>/io.containerd.runtime.v1.linux/<ns>/<id>\n(API v1) and <root>/io.containerd.runtime.v2.task/<ns>/<id> (API v2; a grouped shim serves several,\nlisted each). Without --state-root: /run/containerd and the state root of every running shim (its\ncwd is its bundle), also of a containerd in another mount namespace, whose files and sockets are\nreached through the shim's /proc/<pid>/root (shown as proc_root in --json).\n\nWith -p, one row per process: the init (EXEC ID -) and every exec the shim still knows that has a\n<bundle>/<exec-id>.pid file (written when it starts) or is among its pids, each with its own State."
    )]
    Ls {
        /// Only this containerd state directory (default: the global --state-root, else every
        /// state root found)
        #[arg(long, value_name = "DIR")]
        state_root: Option<PathBuf>,
        /// Also list each container's processes: the init and its execs
        #[arg(short = 'p', long)]
        processes: bool,
    },
    /// Start a v1 shim for a bundle the way containerd does, and print its address and pid
    #[command(
        after_help = "Examples:\n  shim-ctl spawn /tmp/bundle\n  shim-ctl spawn /tmp/bundle --namespace test --runtime-root /tmp/runc --shim /usr/bin/containerd-shim\n\nThe shim listens on <bundle>/shim.sock (or /run/shim-ctl/<hash>.sock when that path is too\nlong); <bundle>/address and <bundle>/shim.pid are written like containerd writes them."
    )]
    Spawn(SpawnArgs),
    /// Print a shell completion script (bash, zsh, fish)
    #[command(
        after_help = "Examples:\n  source <(shim-ctl completions bash)\n  shim-ctl completions fish > ~/.config/fish/completions/shim-ctl.fish\n\nThe script is shell code: --json is refused."
    )]
    Completions {
        /// bash, zsh or fish
        shell: String,
    },
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Allocate a terminal (local terminal goes to raw mode)
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Attach stdin
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Exec id (default: shim-ctl-<pid>)
    #[arg(long, value_name = "ID")]
    pub exec_id: Option<String>,
    /// User as uid[:gid]
    #[arg(long, short = 'u', value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// Extra environment KEY=VALUE (repeatable)
    #[arg(long, short = 'e', value_name = "K=V")]
    pub env: Vec<String>,
    /// Command and arguments
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = true)]
pub struct UpdateArgs {
    /// Memory limit in bytes
    #[arg(long, value_name = "BYTES", conflicts_with = "resources")]
    pub memory: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(long, value_name = "N", conflicts_with = "resources")]
    pub cpu_shares: Option<u64>,
    /// CPU CFS quota in microseconds
    #[arg(long, value_name = "N", conflicts_with = "resources")]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds
    #[arg(long, value_name = "N", conflicts_with = "resources")]
    pub cpu_period: Option<u64>,
    /// Maximum number of pids
    #[arg(long, value_name = "N", conflicts_with = "resources")]
    pub pids_limit: Option<i64>,
    /// OCI LinuxResources JSON file ("-" for stdin)
    #[arg(long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// Image directory
    pub path: String,
    /// Stop the container after the checkpoint
    #[arg(long)]
    pub exit: bool,
    /// Checkpoint established TCP connections
    #[arg(long)]
    pub tcp: bool,
    /// Allow external unix sockets
    #[arg(long)]
    pub unix_sockets: bool,
    /// Checkpoint a shell job (terminal)
    #[arg(long)]
    pub terminal: bool,
    /// Checkpoint file locks
    #[arg(long)]
    pub file_locks: bool,
    /// criu work directory
    #[arg(long, value_name = "DIR")]
    pub work_path: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Give the container a terminal
    #[arg(long)]
    pub terminal: bool,
    /// stdin fifo path
    #[arg(long, value_name = "F", conflicts_with = "null_io")]
    pub stdin: Option<String>,
    /// stdout fifo path or file:///abs/path
    #[arg(long, value_name = "F", conflicts_with = "null_io")]
    pub stdout: Option<String>,
    /// stderr fifo path or file:///abs/path
    #[arg(long, value_name = "F", conflicts_with = "null_io")]
    pub stderr: Option<String>,
    /// No stdio at all (the default when no stream is given)
    #[arg(long)]
    pub null_io: bool,
    /// Container id (default: the bundle directory's name)
    #[arg(long = "id", value_name = "ID")]
    pub id: Option<String>,
    /// OCI runtime binary the shim runs
    #[arg(long, value_name = "PATH", default_value = "runc")]
    pub runtime: String,
    /// Bundle directory (holds config.json and rootfs)
    pub bundle: PathBuf,
}

#[derive(Debug, Args)]
pub struct SpawnArgs {
    /// Bundle directory: the shim's cwd; address and shim.pid are written here
    pub bundle: PathBuf,
    /// containerd namespace the shim serves
    #[arg(long, value_name = "NS", default_value = "default")]
    pub namespace: String,
    /// Shim work directory (default: <bundle>/work)
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// runc state root (the shim uses <DIR>/<ns>; default: the shim's own default)
    #[arg(long, value_name = "DIR")]
    pub runtime_root: Option<PathBuf>,
    /// Shim binary (default: shim-runc-v1 next to shim-ctl, else on PATH)
    #[arg(long, value_name = "PATH")]
    pub shim: Option<PathBuf>,
    /// containerd gRPC address passed as -address (events only)
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/run/containerd/containerd.sock"
    )]
    pub containerd_address: String,
    /// Binary the shim runs to publish events (default drops them)
    #[arg(long, value_name = "PATH", default_value = "/bin/true")]
    pub publish_binary: String,
    /// Pass -debug to the shim
    #[arg(long)]
    pub debug: bool,
}
