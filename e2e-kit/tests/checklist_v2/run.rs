//! Runs the rows for one containerd version: per configured shim one private containerd (on a
//! thread of its own), the rows that share it first, then those that restart it or need it
//! alone; each (row, version, shim) outcome recorded as `v2-<version>/<row>` for `<shim>`.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::thread;
use std::time::Instant;

use e2e_kit::containerd::{Containerd, Setup};
use e2e_kit::prereq;
use e2e_kit::report::{self, Outcome, Ran};

use super::shims::{self, ShimKind, Version};

/// A row body. `Shared` rows use their own task ids in a containerd other rows use too, and
/// may run beside them; `Alone` rows stop or restart containerd, so they run last, one by one.
#[derive(Clone, Copy)]
pub enum Body {
    Shared(fn(&Containerd, ShimKind) -> Ran),
    Alone(fn(&mut Containerd, ShimKind) -> Ran),
}

#[derive(Clone, Copy)]
pub struct Row {
    pub name: &'static str,
    pub body: Body,
}

/// How many shared rows run at once in one containerd.
const PARALLEL_ROWS: usize = 4;

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

/// Runs one row; a panic is its failure, reported with containerd's side of the story.
fn catch(cd: &Containerd, row: &str, f: impl FnOnce() -> Ran) -> Outcome {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(ran) => Outcome::Ran(ran),
        Err(p) => {
            eprintln!(
                "=== {row} [{}] failed; {}",
                cd.setup.label,
                cd.diagnostics()
            );
            Outcome::Fail(panic_text(p))
        }
    }
}

fn catch_alone(
    cd: &mut Containerd,
    row: &str,
    body: fn(&mut Containerd, ShimKind) -> Ran,
    kind: ShimKind,
) -> Outcome {
    match panic::catch_unwind(AssertUnwindSafe(|| body(cd, kind))) {
        Ok(ran) => Outcome::Ran(ran),
        Err(p) => {
            eprintln!(
                "=== {row} [{}] failed; {}",
                cd.setup.label,
                cd.diagnostics()
            );
            Outcome::Fail(panic_text(p))
        }
    }
}

/// Every row under one containerd for one shim: outcomes in row order.
fn run_rows(setup: &Setup, kind: ShimKind, version: &str, rows: &[Row]) -> Vec<Outcome> {
    let started = Instant::now();
    let tag = format!("v2-{version}");
    let cd = match panic::catch_unwind(AssertUnwindSafe(|| Containerd::start(setup, &tag))) {
        Ok(cd) => cd,
        Err(p) => {
            let why = format!("containerd did not start: {}", panic_text(p));
            return rows.iter().map(|_| Outcome::Fail(why.clone())).collect();
        }
    };
    let outcomes: Vec<Mutex<Option<Outcome>>> = rows.iter().map(|_| Mutex::new(None)).collect();
    // Shared rows: a few workers take the next row until none is left.
    let next = Mutex::new(0usize);
    thread::scope(|s| {
        for w in 0..PARALLEL_ROWS {
            let (cd, next, outcomes) = (&cd, &next, &outcomes);
            thread::Builder::new()
                .name(format!("{tag}-{}-w{w}", kind.label()))
                .spawn_scoped(s, move || loop {
                    let i = {
                        let mut n = next.lock().unwrap_or_else(|p| p.into_inner());
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(row) = rows.get(i) else { break };
                    if let Body::Shared(body) = row.body {
                        let o = catch(cd, row.name, || body(cd, kind));
                        *outcomes[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(o);
                    }
                })
                .expect("spawn row worker");
        }
    });
    let mut cd = cd;
    for (i, row) in rows.iter().enumerate() {
        if let Body::Alone(body) = row.body {
            let o = catch_alone(&mut cd, row.name, body, kind);
            *outcomes[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(o);
        }
    }
    drop(cd);
    eprintln!(
        "v2-{version} [{}]: {} rows in {:.1}s",
        kind.label(),
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    outcomes
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(|| Outcome::Fail("row did not run".into()))
        })
        .collect()
}

/// The rows `E2E_V2_ROWS` names (comma-separated), or all of them when it is unset or empty.
fn selected(rows: &[Row]) -> Vec<Row> {
    let wanted = std::env::var("E2E_V2_ROWS").unwrap_or_default();
    let wanted: Vec<&str> = wanted
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    rows.iter()
        .filter(|r| wanted.is_empty() || wanted.contains(&r.name))
        .copied()
        .collect()
}

/// The checklist under `version`, for every configured shim side by side; records each
/// outcome and panics if any failed.
/// What stops `version` from running for every configured shim (`None` when one at least can
/// run): the checklist is then reported ignored (trials), not passed.
pub fn missing(version: &Version) -> Option<String> {
    if let Err(why) = prereq::missing(&[]) {
        return Some(why);
    }
    let build = match version.build() {
        Ok(b) => b,
        Err(why) => return Some(why),
    };
    let why: Vec<String> = shims::configured()
        .into_iter()
        .map(|c| match c {
            Ok(kind) => kind.setup(&build).err(),
            Err(name) => Some(format!("E2E_V2_SHIMS names {name:?}: not go or ours")),
        })
        .collect::<Option<_>>()?;
    Some(why.join("; "))
}

pub fn checklist(version: &Version, rows: &[Row]) {
    let rows = &selected(rows);
    let unrunnable = prereq::missing(&[]).err();
    let build = version.build();
    thread::scope(|s| {
        let mut runs = Vec::new();
        for choice in shims::configured() {
            let setup = match (&unrunnable, &build, choice) {
                (Some(why), _, Ok(kind)) => Err((kind.label().to_string(), why.clone())),
                (_, Err(why), Ok(kind)) => Err((kind.label().to_string(), why.clone())),
                (None, Ok(build), Ok(kind)) => match kind.setup(build) {
                    Ok(setup) => Ok((kind, setup)),
                    Err(why) => Err((kind.label().to_string(), why)),
                },
                (_, _, Err(name)) => Err((
                    name.clone(),
                    format!("E2E_V2_SHIMS names {name:?}: not go or ours"),
                )),
            };
            runs.push(match setup {
                Ok((kind, setup)) => {
                    let label = version.label;
                    let h = thread::Builder::new()
                        .name(format!("v2-{label}-{}", kind.label()))
                        .spawn_scoped(s, move || run_rows(&setup, kind, label, rows))
                        .expect("spawn shim thread");
                    (kind.label().to_string(), Ok(h))
                }
                Err((name, why)) => (name, Err(why)),
            });
        }
        let mut failed = Vec::new();
        for (name, run) in runs {
            let outcomes: Vec<Outcome> = match run {
                Ok(h) => h.join().unwrap_or_else(|p| {
                    let why = panic_text(p);
                    rows.iter().map(|_| Outcome::Fail(why.clone())).collect()
                }),
                Err(why) => rows
                    .iter()
                    .map(|_| prereq::cannot_run(why.clone()))
                    .collect(),
            };
            for (row, outcome) in rows.iter().zip(&outcomes) {
                let row_name = format!("v2-{}/{}", version.label, row.name);
                report::record(&row_name, &name, outcome);
                if outcome.is_failure() {
                    failed.push(format!("{} [{name}]", row.name));
                }
            }
        }
        assert!(
            failed.is_empty(),
            "v2-{} failed: {}",
            version.label,
            failed.join(", ")
        );
    });
}
