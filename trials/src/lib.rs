//! Test binaries (harness = false) whose tests may lack a prerequisite (root, runc, containerd,
//! Go's shim): each test is a libtest-mimic `Trial`, ignored with the reason when something is
//! missing, and a failure saying what instead when `SHIM_REQUIRE_ROOT_TESTS=1`.
//!
//! The std harness cannot decide "ignored" at run time (`#[ignore]` is fixed at compile time),
//! so a test that returned early counted as passed. Here the prerequisites are looked at once,
//! before the trials are built:
//!
//! ```text
//! fn main() {
//!     let missing = common::missing_prerequisite(); // Option<String>: what is missing
//!     trials::run(trials::trials!(missing; first_test, second_test));
//! }
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;

pub use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// The variable under which every test must run: a missing prerequisite is then a failure.
pub const REQUIRE_ALL: &str = "SHIM_REQUIRE_ROOT_TESTS";

/// `SHIM_REQUIRE_ROOT_TESTS=1`: nothing may be skipped.
pub fn required() -> bool {
    std::env::var(REQUIRE_ALL).as_deref() == Ok("1")
}

/// The trial `name` running `test` (a panic fails it), unless `missing` names a missing
/// prerequisite: then ignored (`--include-ignored` still only reports it ignored, with the
/// reason), or failed with the reason under `SHIM_REQUIRE_ROOT_TESTS=1`.
pub fn trial(
    name: impl Into<String>,
    missing: Option<&str>,
    test: impl FnOnce() + Send + 'static,
) -> Trial {
    match missing {
        None => Trial::test(name, move || {
            test();
            Ok(())
        }),
        Some(why) if required() => {
            let why = format!("{REQUIRE_ALL}=1 but {why}");
            Trial::test(name, move || Err(why.into()))
        }
        Some(why) => {
            let why = format!("missing: {why}");
            if let Ok(mut ignored) = IGNORED.lock() {
                *ignored.entry(why.clone()).or_default() += 1;
            }
            Trial::ignorable_test(name, move || Ok(Completion::ignored_with(why)))
                .with_ignored_flag(true)
        }
    }
}

/// The trial `name`, ignored for `why` even under `SHIM_REQUIRE_ROOT_TESTS=1`: for a test whose
/// subject is not switched on here (so nothing is required of it).
pub fn ignored(name: impl Into<String>, why: &str) -> Trial {
    let why = why.to_string();
    Trial::ignorable_test(name, move || Ok(Completion::ignored_with(why))).with_ignored_flag(true)
}

/// A trial that may find out only while it runs that it could not test what it is for:
/// `test` returns `Some(why)` then, and the trial is ignored with that reason (a failure under
/// `SHIM_REQUIRE_ROOT_TESTS=1`). `missing` is as for [`trial`].
pub fn trial_or_ignored(
    name: impl Into<String>,
    missing: Option<&str>,
    test: impl FnOnce() -> Option<String> + Send + 'static,
) -> Trial {
    if missing.is_some() {
        return trial(name, missing, || {});
    }
    Trial::ignorable_test(name, move || match test() {
        None => Ok(Completion::Completed),
        Some(why) if required() => Err(format!("{REQUIRE_ALL}=1 but {why}").into()),
        Some(why) => Ok(Completion::ignored_with(why)),
    })
}

/// Trials named after the test functions, all needing what `missing` (an `Option<String>`,
/// `None` when nothing is missing) says: `trials!(missing; test_a, test_b)`.
#[macro_export]
macro_rules! trials {
    ($missing:expr; $($test:ident),+ $(,)?) => {{
        let missing: ::std::option::Option<::std::string::String> = $missing;
        ::std::vec![$($crate::trial(::std::stringify!($test), missing.as_deref(), $test)),+]
    }};
}

/// Runs the trials as `cargo test` asked (filters, `--list`, `--test-threads`, ...), saying
/// once per reason how many were ignored for it, and exits with libtest's code.
pub fn run(trials: Vec<Trial>) -> ! {
    run_with(Arguments::from_args(), trials)
}

/// [`run`], one trial after another on the main thread (for binaries whose tests share
/// process-wide state set up by `main`, such as a reaper or a signal mask).
pub fn run_in_order(trials: Vec<Trial>) -> ! {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    run_with(args, trials)
}

fn run_with(args: Arguments, trials: Vec<Trial>) -> ! {
    say_ignored();
    libtest_mimic::run(&args, trials).exit()
}

/// How many trials were ignored for each reason, for the line [`run`] prints.
static IGNORED: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

/// One line per distinct reason on stderr (stdout stays libtest's, `--list` included).
fn say_ignored() {
    if let Ok(ignored) = IGNORED.lock() {
        for (why, n) in ignored.iter() {
            eprintln!("ignoring {n} test(s): {why}");
        }
    }
}
