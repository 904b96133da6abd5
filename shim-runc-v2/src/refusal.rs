//! Every error the Task service answers with, in one place: shim-core's errors worded as Go's
//! runc v2 shim words them, then classed (`shim_host::status::classed`).

use shim_core::error::Error;
use shim_host::status::classed;
use ttrpc::Status;

/// The status for `e`. Go's v1 shim and ours say `process <id> does not exist`; Go's runc v2
/// shim says `process does not exist <id>` (its `getProcess`), so the task API does too.
pub fn refused(e: Error) -> Status {
    match e {
        Error::NoSuchProcess { id, .. } => classed(Error::NotFound(format!(
            "process does not exist {}",
            shim_core::quote::shown(&id)
        ))),
        e => classed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ttrpc::Code;

    #[test]
    fn an_unknown_exec_id_is_worded_as_go_runc_v2_and_classed_not_found() {
        let e = Error::NoSuchProcess {
            id: "nope".into(),
            message: "process nope does not exist".into(),
        };
        let s = refused(e);
        assert_eq!(s.code(), Code::NOT_FOUND);
        assert_eq!(s.message, "process does not exist nope: not found");
    }

    #[test]
    fn other_errors_are_only_classed() {
        let s = refused(Error::AlreadyExists("id e1: already exists".into()));
        assert_eq!(s.code(), Code::ALREADY_EXISTS);
        assert_eq!(s.message, "id e1: already exists");
    }
}
