//! The containerd e2e suites' per-row results (`<target>/e2e-results.tsv`, one
//! `<row>\t<shim>\t<outcome>` line per run, written by e2e-kit/src/report.rs) as tables: the v1
//! checklist's rows by shim, the task v2 checklist's (rows named `v2-<containerd>/<row>`)
//! by containerd version and shim, and the CRI tests' (rows named `cri/<test>`) by shim.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

/// Empties (creates) the results file: a run's table shows that run only.
pub fn reset(path: &Path) -> Result<()> {
    fs::write(path, "").with_context(|| format!("truncate {}", path.display()))
}

/// `PASS`, `FAIL`, … : the outcome's kind, before its first `: `.
fn kind(outcome: &str) -> &str {
    outcome.split_once(": ").map_or(outcome, |(k, _)| k)
}

/// The lines of a results file as `(row, shim, outcome)`.
fn lines(tsv: &str) -> impl Iterator<Item = (&str, &str, &str)> {
    tsv.lines().filter_map(|line| {
        let mut f = line.splitn(3, '\t');
        Some((f.next()?, f.next()?, f.next()?))
    })
}

/// `v2-1.7/row05` → `("1.7", "row05")`: a row of the task v2 checklist.
fn v2_row(row: &str) -> Option<(&str, &str)> {
    row.strip_prefix("v2-")?.split_once('/')
}

/// The v1 checklist's table: one line per row, one column per shim, a `*` on outcomes with a
/// note or reason (listed below the table), and a count per shim.
pub fn table(tsv: &str) -> String {
    let mut rows: BTreeMap<&str, BTreeMap<String, &str>> = BTreeMap::new();
    let mut shims: Vec<String> = Vec::new();
    for (row, shim, outcome) in
        lines(tsv).filter(|(row, _, _)| v2_row(row).is_none() && cri_row(row).is_none())
    {
        if !shims.iter().any(|s| s == shim) {
            shims.push(shim.to_string());
        }
        rows.entry(row)
            .or_default()
            .insert(shim.to_string(), outcome);
    }
    // The reference first.
    shims.sort_by_key(|s| (s != "go", s != "ours", s.clone()));
    render(&rows, &shims)
}

/// `cri/pod_bridge_ip` → `pod_bridge_ip`: a test of the CRI suite (crate cri-e2e).
fn cri_row(row: &str) -> Option<&str> {
    row.strip_prefix("cri/")
}

/// The CRI suite's table: one line per test, a column per shim (`go`, `ours`).
pub fn table_cri(tsv: &str) -> String {
    let mut rows: BTreeMap<&str, BTreeMap<String, &str>> = BTreeMap::new();
    let mut shims: Vec<String> = Vec::new();
    for (row, shim, outcome) in lines(tsv) {
        let Some(row) = cri_row(row) else {
            continue;
        };
        if !shims.iter().any(|s| s == shim) {
            shims.push(shim.to_string());
        }
        rows.entry(row)
            .or_default()
            .insert(shim.to_string(), outcome);
    }
    shims.sort_by_key(|s| (s != "go", s != "ours", s.clone()));
    render(&rows, &shims)
}

/// The task v2 checklist's table: one line per row, one column per containerd version and
/// shim (`1.6/go`, `1.6/ours`, `1.7/go`, …: each version's shims side by side).
pub fn table_v2(tsv: &str) -> String {
    let mut rows: BTreeMap<&str, BTreeMap<String, &str>> = BTreeMap::new();
    let mut columns: Vec<(String, String)> = Vec::new();
    for (row, shim, outcome) in lines(tsv) {
        let Some((version, row)) = v2_row(row) else {
            continue;
        };
        let column = (version.to_string(), shim.to_string());
        rows.entry(row)
            .or_default()
            .insert(format!("{version}/{shim}"), outcome);
        if !columns.contains(&column) {
            columns.push(column);
        }
    }
    columns.sort_by_key(|(v, s)| (v.clone(), s != "go", s != "ours", s.clone()));
    let columns: Vec<String> = columns.iter().map(|(v, s)| format!("{v}/{s}")).collect();
    render(&rows, &columns)
}

/// Lines of `rows`, a column per entry of `shims` (in that order), notes and counts below.
fn render(rows: &BTreeMap<&str, BTreeMap<String, &str>>, shims: &[String]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let cell = |o: Option<&&str>| match o {
        None => "-".to_string(),
        Some(o) if kind(o) == *o => o.to_string(),
        Some(o) => format!("{}*", kind(o)),
    };
    let width = rows
        .values()
        .flat_map(|by| by.values().map(|o| cell(Some(o)).len()))
        .chain(shims.iter().map(|s| s.len()))
        .max()
        .unwrap_or(4)
        + 2;
    // Rows are short (`row05`) but for the CRI tests' names.
    let row_width = rows.keys().map(|r| r.len() + 2).max().unwrap_or(0).max(8);
    let mut out = format!("{:<row_width$}", "row");
    for s in shims {
        out.push_str(&format!("{s:<width$}"));
    }
    out = out.trim_end().to_string() + "\n";
    let mut notes = String::new();
    let mut totals: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    for (row, by) in rows {
        let mut line = format!("{row:<row_width$}");
        for s in shims {
            let o = by.get(s);
            line.push_str(&format!("{:<width$}", cell(o)));
            if let Some(o) = o {
                *totals.entry((s, kind(o))).or_default() += 1;
                if kind(o) != *o {
                    notes.push_str(&format!("  * {row} [{s}] {o}\n"));
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&notes);
    for s in shims {
        let counts: Vec<String> = totals
            .iter()
            .filter(|((shim, _), _)| shim == s)
            .map(|((_, k), n)| format!("{n} {k}"))
            .collect();
        out.push_str(&format!("{s}: {}\n", counts.join(", ")));
    }
    out
}

/// Prints the tables of `path`, if the run wrote any results.
pub fn print(path: &Path) {
    let tsv = fs::read_to_string(path).unwrap_or_default();
    let t = table(&tsv);
    if !t.is_empty() {
        println!(
            "e2e through containerd (contract §8), per row and shim ({}):\n{t}",
            path.display()
        );
    }
    let t = table_v2(&tsv);
    if !t.is_empty() {
        println!(
            "task v2 checklist through ctr, per row and containerd/shim ({}):\n{t}",
            path.display()
        );
    }
    let t = table_cri(&tsv);
    if !t.is_empty() {
        println!(
            "Kubernetes CRI through containerd 2.1, per test and shim ({}):\n{t}",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_lines_shims_columns_and_notes_are_listed_below() {
        let tsv = "row02\tours\tPASS\n\
                   row28\tours\tNOT-RUNNABLE: criu cannot dump\n\
                   row02\tgo\tPASS\n\
                   row28\tgo\tNOT-RUNNABLE: criu cannot dump\n\
                   row10\tours\tFAIL: expected unknown\n";
        let t = table(tsv);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["row", "go", "ours"]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["row02", "PASS", "PASS"]
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["row10", "-", "FAIL*"]
        );
        assert_eq!(
            lines[3].split_whitespace().collect::<Vec<_>>(),
            ["row28", "NOT-RUNNABLE*", "NOT-RUNNABLE*"]
        );
        assert_eq!(lines[4], "  * row10 [ours] FAIL: expected unknown");
        assert_eq!(lines[5], "  * row28 [go] NOT-RUNNABLE: criu cannot dump");
        assert_eq!(lines[7], "go: 1 NOT-RUNNABLE, 1 PASS");
        assert_eq!(lines[8], "ours: 1 FAIL, 1 NOT-RUNNABLE, 1 PASS");
        assert_eq!(table(""), "");
    }

    #[test]
    fn v2_rows_get_a_table_of_their_own_by_version_and_shim() {
        let tsv = "row02\tgo\tPASS\n\
                   v2-1.7/row01\tgo\tPASS\n\
                   v2-1.6/row01\tours\tFAIL: no exit\n\
                   v2-1.6/row01\tgo\tPASS: known Go race taken\n\
                   v2-2.1/row02\tgo\tSKIP: CONTAINERD_2_1 is not set\n";
        let v1 = table(tsv);
        assert_eq!(v1.lines().count(), 3, "{v1}");
        assert!(!v1.contains("v2-"), "{v1}");
        let t = table_v2(tsv);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["row", "1.6/go", "1.6/ours", "1.7/go", "2.1/go"]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["row01", "PASS*", "FAIL*", "PASS", "-"]
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["row02", "-", "-", "-", "SKIP*"]
        );
        assert_eq!(lines[3], "  * row01 [1.6/go] PASS: known Go race taken");
        assert_eq!(lines[4], "  * row01 [1.6/ours] FAIL: no exit");
        assert_eq!(
            lines[5],
            "  * row02 [2.1/go] SKIP: CONTAINERD_2_1 is not set"
        );
        assert_eq!(lines[6], "1.6/go: 1 PASS");
        assert_eq!(table_v2("row02\tgo\tPASS\n"), "");
    }

    #[test]
    fn cri_tests_get_a_table_of_their_own_with_room_for_their_names() {
        let tsv = "row02\tgo\tPASS\n\
                   cri/pod_bridge_ip\tours\tPASS\n\
                   cri/pod_bridge_ip\tgo\tPASS\n\
                   cri/exec_sync_timeout\tours\tFAIL: no error\n";
        let v1 = table(tsv);
        assert!(!v1.contains("cri"), "{v1}");
        let t = table_cri(tsv);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["row", "go", "ours"]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["exec_sync_timeout", "-", "FAIL*"]
        );
        assert_eq!(lines[1].find('-'), lines[0].find("go"), "{t}");
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["pod_bridge_ip", "PASS", "PASS"]
        );
        assert_eq!(lines[3], "  * exec_sync_timeout [ours] FAIL: no error");
        assert_eq!(table_cri("row02\tgo\tPASS\n"), "");
    }
}
