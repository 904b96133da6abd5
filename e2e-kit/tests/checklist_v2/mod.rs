//! The task v2 checklist's own parts: which containerds and shims, what each shim is expected
//! to do where they may differ, the rows, and the runner.

pub mod expect;
pub mod rows;
pub mod run;
pub mod shims;
