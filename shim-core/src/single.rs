//! SingleShim: the runtime v1 model over `Shim`: one container per shim, and every process
//! addressed by one id (the container's id for its init, an exec id otherwise).

use std::sync::Mutex;

use crate::error::Error;
use crate::events::EventSink;
use crate::service::{ExitOf, Shim};
use crate::types::{
    CheckpointRequest, CreateRequest, ExecRequest, ExitInfo, PidInfo, ProcessState,
};
use crate::Config;

pub struct SingleShim {
    shim: Shim,
    /// Held across a whole Create: of two racing Creates, the second finds the first's container.
    creating: Mutex<()>,
}

impl SingleShim {
    pub fn new(
        config: Config,
        reaper: reaper::Reaper,
        events: Box<dyn EventSink>,
    ) -> Result<SingleShim, Error> {
        Ok(SingleShim {
            shim: Shim::new(config, reaper, events)?,
            creating: Mutex::new(()),
        })
    }

    /// The one container's id: FailedPrecondition before Create (`container must be created`).
    fn container(&self) -> Result<String, Error> {
        self.shim
            .containers()
            .into_iter()
            .next()
            .ok_or_else(Error::not_created)
    }

    /// Process `id` as (container id, exec id); before Create no process exists.
    fn address(&self, id: &str) -> Result<(String, String), Error> {
        let container = self.container().map_err(|_| Error::no_such_process(id))?;
        let exec = if id == container { "" } else { id };
        Ok((container.clone(), exec.to_string()))
    }

    /// Create the init. A second Create while an init exists is AlreadyExists (`id <id>: already
    /// exists`, naming the container that exists): nothing about it changes.
    pub fn create(&self, req: CreateRequest) -> Result<u32, Error> {
        let _creating = self.creating.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(existing) = self.container() {
            crate::validate::id("container", &req.id)?;
            crate::validate::bundle(&req.bundle)?;
            return Err(Error::AlreadyExists(format!(
                "id {existing}: already exists"
            )));
        }
        self.shim.create(req)
    }

    pub fn start(&self, id: &str) -> Result<u32, Error> {
        let (c, e) = self.address(id)?;
        self.shim.start(&c, &e)
    }

    /// Delete the init, which ends the container.
    pub fn delete(&self) -> Result<ExitInfo, Error> {
        let c = self.container()?;
        self.shim.delete(&c, "")
    }

    /// Delete an exec; the init is refused (v1 deletes it with Delete).
    pub fn delete_process(&self, id: &str) -> Result<ExitInfo, Error> {
        let (c, e) = self.address(id)?;
        if e.is_empty() {
            return Err(Error::InvalidArgument(
                "cannot delete init process with DeleteProcess".into(),
            ));
        }
        self.shim.delete(&c, &e)
    }

    pub fn exec(&self, req: ExecRequest) -> Result<(), Error> {
        crate::validate::id("exec", &req.id)?;
        let c = self.container()?;
        self.shim.exec(&c, req)
    }

    pub fn state(&self, id: &str) -> Result<ProcessState, Error> {
        let (c, e) = self.address(id)?;
        self.shim.state(&c, &e)
    }

    /// Kill process `id`; an empty id is the init.
    pub fn kill(&self, id: &str, signal: u32, all: bool) -> Result<(), Error> {
        let (c, e) = if id.is_empty() {
            (self.container()?, String::new())
        } else {
            self.address(id)?
        };
        self.shim.kill(&c, &e, signal, all)
    }

    pub fn exit_of(&self, id: &str) -> Result<ExitOf, Error> {
        let (c, e) = self.address(id)?;
        self.shim.exit_of(&c, &e)
    }

    pub fn wait(&self, id: &str) -> Result<ExitInfo, Error> {
        let (c, e) = self.address(id)?;
        self.shim.wait(&c, &e)
    }

    pub fn pause(&self) -> Result<(), Error> {
        self.shim.pause(&self.container()?)
    }

    pub fn resume(&self) -> Result<(), Error> {
        self.shim.resume(&self.container()?)
    }

    pub fn list_pids(&self) -> Result<Vec<PidInfo>, Error> {
        self.shim.list_pids(&self.container()?)
    }

    pub fn close_io(&self, id: &str) -> Result<(), Error> {
        let (c, e) = self.address(id)?;
        self.shim.close_io(&c, &e)
    }

    pub fn resize_pty(&self, id: &str, width: u32, height: u32) -> Result<(), Error> {
        if id.is_empty() {
            return Err(Error::InvalidArgument("id not provided".into()));
        }
        let (c, e) = self.address(id)?;
        self.shim.resize_pty(&c, &e, width, height)
    }

    pub fn update(&self, resources_json: &[u8]) -> Result<(), Error> {
        self.shim.update(&self.container()?, resources_json)
    }

    pub fn checkpoint(&self, path: &str, opts: CheckpointRequest) -> Result<(), Error> {
        self.shim.checkpoint(&self.container()?, path, opts)
    }

    /// SIGTERM: kill everything, wait briefly for the init's exit, delete. Best effort.
    pub fn shutdown(&self) {
        self.shim.shutdown()
    }
}
