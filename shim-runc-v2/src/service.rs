//! The Task service's handlers: translation only, v2 messages <-> shim-core domain calls.

/// The server side of `containerd.task.v2.Task` (and v3).
pub struct Service {
    /// Told when Shutdown finds no container left: the daemon then exits.
    #[allow(dead_code)] // TODO(main, proto): Shutdown calls it.
    on_shutdown: Box<dyn Fn() + Send + Sync>,
}

impl Service {
    pub fn new(on_shutdown: Box<dyn Fn() + Send + Sync>) -> Service {
        Service { on_shutdown }
    }
}
