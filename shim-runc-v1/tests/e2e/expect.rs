//! Per-shim expectations: the one table of rows where contract §9 lets our shim differ from Go's.

/// What a row expects from one shim.
#[derive(Debug)]
pub struct Expectations {
    /// Row 24: `--log-uri binary://…`. Go fails ("namespace is required", it wants ttrpc metadata
    /// containerd 1.6 never sends); a shim taking the namespace from `-namespace` succeeds.
    pub binary_log_uri_works: bool,
    /// Row 35: started with `-criu-path <p>` (what containerd sends). Go only defines `-criu` and
    /// dies with "flag provided but not defined: -criu-path"; ours accepts both spellings.
    pub accepts_criu_path_flag: bool,
    /// Row 23: both streams reach a `file://` log. The Go shim sometimes loses the stderr line
    /// (seen 2 times in about 8 loaded runs, never reaching the file); not in contract §9 yet.
    pub file_log_keeps_stderr: bool,
    /// Row 31: an exit that happened while containerd was down. Go's publish fails once and the
    /// event is lost; ours retries until containerd is back (issue: none dropped silently).
    pub exit_published_after_restart: bool,
    /// Row 34: `ctr t attach` stops reading when the TaskExit reaches it. Go publishes the exit
    /// while its copier may still hold the last output, so attach can miss the tail (seen: the
    /// final 56 KiB of 1 MiB, once in a CI run); ours records the exit only after the process's
    /// output reached the fifo, so attach gets every byte.
    pub attach_gets_every_byte: bool,
    /// Row 36: part of a line the shim (never containerd) logs when an exec has run: Go's
    /// reaper reports runc's pid as no process of its own; ours logs the published exit.
    pub log_line_after_exec: &'static str,
    /// Row 37: the output of short execs started 50 at a time reaches ctr. Go publishes the exit
    /// without waiting for ctr to have read, and ctr's Delete can then close a fifo it opened
    /// but has not marked open yet (seen: 2 of 16 runs of 50 lose a line); ours records the exit
    /// once the client has read the output and holds the fifo until then.
    pub short_exec_output_kept: bool,
    /// Row 37: every one of those execs' exits reaches ctr (within CTR_BOUND). Go publishes each
    /// event by running `containerd publish`; 50 at once on a loaded machine time out (30 s, its
    /// log: `msg="post event" ... timeout 30s ... publish --topic /tasks/exit`) and Go drops the
    /// exit, so that ctr waits until our bound. Ours forwards events over one ttrpc connection
    /// and retries.
    pub short_exec_exit_reported: bool,
    /// Row 37: every one of those execs starts. Go's `runc exec` failed once (`runc did not
    /// terminate successfully: exit status 12`, nothing in log.json) in a run of 20 rounds on a
    /// loaded machine; not investigated further. Ours starts every one.
    pub short_exec_always_starts: bool,
    /// Row 37: rounds of 50 execs. Go takes 2 to 60 s a round (it runs one exec at a time and
    /// a process per event; containerd's State calls time out meanwhile), ours about 2 s: Go
    /// runs 5 rounds, to keep the suite's time reasonable.
    pub stress_rounds: u32,
}

pub const GO: Expectations = Expectations {
    binary_log_uri_works: false,
    accepts_criu_path_flag: false,
    file_log_keeps_stderr: false,
    exit_published_after_restart: false,
    attach_gets_every_byte: false,
    log_line_after_exec: "wasn't found\"",
    short_exec_output_kept: false,
    short_exec_exit_reported: false,
    short_exec_always_starts: false,
    stress_rounds: 5,
};

pub const OURS: Expectations = Expectations {
    binary_log_uri_works: true,
    accepts_criu_path_flag: true,
    file_log_keeps_stderr: true,
    exit_published_after_restart: true,
    attach_gets_every_byte: true,
    log_line_after_exec: "msg=\"published event\"",
    short_exec_output_kept: true,
    short_exec_exit_reported: true,
    short_exec_always_starts: true,
    stress_rounds: 20,
};
