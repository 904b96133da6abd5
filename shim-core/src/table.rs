//! The process table: every container of this shim by id, each with its init and execs, and
//! which process owns each pid the reaper may report. Held only for lookups and inserts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::Error;
use crate::process::exec::Exec;
use crate::process::init::Init;

/// One container: its init, and its execs by exec id.
pub(crate) struct Container {
    pub init: Arc<Init>,
    pub execs: HashMap<String, Arc<Exec>>,
}

/// Which process a pid belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Owner {
    Init { container: String },
    Exec { container: String, exec: String },
}

impl Owner {
    pub fn container(&self) -> &str {
        match self {
            Owner::Init { container } | Owner::Exec { container, .. } => container,
        }
    }
}

/// A process found in the table: an exec comes with its container's init.
pub(crate) enum Proc {
    Init(Arc<Init>),
    Exec(Arc<Exec>, Arc<Init>),
}

#[derive(Default)]
pub(crate) struct TableInner {
    pub containers: HashMap<String, Container>,
    pub by_pid: HashMap<u32, Owner>,
}

impl TableInner {
    /// The container `id`'s init.
    pub fn init(&self, id: &str) -> Result<Arc<Init>, Error> {
        self.containers
            .get(id)
            .map(|c| Arc::clone(&c.init))
            .ok_or_else(|| Error::container_not_found(id))
    }

    /// Process `exec_id` of container `id`; an empty `exec_id` is the init.
    pub fn find(&self, id: &str, exec_id: &str) -> Result<Proc, Error> {
        let c = self
            .containers
            .get(id)
            .ok_or_else(|| Error::container_not_found(id))?;
        if exec_id.is_empty() {
            return Ok(Proc::Init(Arc::clone(&c.init)));
        }
        match c.execs.get(exec_id) {
            Some(e) => Ok(Proc::Exec(Arc::clone(e), Arc::clone(&c.init))),
            None => Err(Error::no_such_process(exec_id)),
        }
    }

    /// The process owning `pid`, taken out of the pid index (the exit that claims it is the only
    /// one that may record it).
    pub fn claim(&mut self, pid: u32) -> Option<Proc> {
        let owner = self.by_pid.remove(&pid)?;
        let c = self.containers.get(owner.container())?;
        Some(match owner {
            Owner::Init { .. } => Proc::Init(Arc::clone(&c.init)),
            Owner::Exec { exec, .. } => {
                Proc::Exec(Arc::clone(c.execs.get(&exec)?), Arc::clone(&c.init))
            }
        })
    }
}

#[derive(Default)]
pub(crate) struct Table(Mutex<TableInner>);

impl Table {
    pub fn lock(&self) -> MutexGuard<'_, TableInner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
