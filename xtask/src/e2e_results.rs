//! The containerd e2e suite's per-row results (`<target>/e2e-results.tsv`, one
//! `<row>\t<shim>\t<outcome>` line per run, written by shim-runc-v1/tests/e2e/report.rs) as a table.

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

/// The table for the lines of a results file: one line per row, one column per shim, a `*`
/// on outcomes with a note or reason (listed below the table), and a count per shim.
pub fn table(tsv: &str) -> String {
    let mut rows: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    let mut shims: Vec<&str> = Vec::new();
    for line in tsv.lines() {
        let mut f = line.splitn(3, '\t');
        let (Some(row), Some(shim), Some(outcome)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if !shims.contains(&shim) {
            shims.push(shim);
        }
        rows.entry(row).or_default().insert(shim, outcome);
    }
    if rows.is_empty() {
        return String::new();
    }
    // The reference first.
    shims.sort_by_key(|s| (*s != "go", *s != "ours", *s));
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
    let mut out = format!("{:<8}", "row");
    for s in &shims {
        out.push_str(&format!("{s:<width$}"));
    }
    out = out.trim_end().to_string() + "\n";
    let mut notes = String::new();
    let mut totals: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    for (row, by) in &rows {
        let mut line = format!("{row:<8}");
        for s in &shims {
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
    for s in &shims {
        let counts: Vec<String> = totals
            .iter()
            .filter(|((shim, _), _)| shim == s)
            .map(|((_, k), n)| format!("{n} {k}"))
            .collect();
        out.push_str(&format!("{s}: {}\n", counts.join(", ")));
    }
    out
}

/// Prints the table of `path`, if the run wrote any results.
pub fn print(path: &Path) {
    let tsv = fs::read_to_string(path).unwrap_or_default();
    let t = table(&tsv);
    if !t.is_empty() {
        println!(
            "e2e through containerd (contract §8), per row and shim ({}):\n{t}",
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
}
