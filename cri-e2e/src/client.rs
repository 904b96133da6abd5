//! A blocking CRI v1 client over containerd's unix socket: tonic's generated clients driven by a
//! current-thread tokio runtime of their own, so tests call it like any function.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::api::image_service_client::ImageServiceClient;
use crate::api::runtime_service_client::RuntimeServiceClient;

/// A CRI error: gRPC's status, boxed (it is large, and errors are the rare path).
pub type Status = Box<tonic::Status>;

/// Bound on each CRI call that sets no timeout of its own (ExecSync adds its own timeout).
pub const CALL_BOUND: Duration = Duration::from_secs(120);

/// One connection to a CRI socket.
pub struct Cri {
    rt: tokio::runtime::Runtime,
    channel: Channel,
}

impl Cri {
    /// Connects (lazily: the first call dials) to the gRPC unix socket at `socket`.
    pub fn connect(socket: &Path) -> std::io::Result<Cri> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let path: PathBuf = socket.to_path_buf();
        // The URI is a placeholder: the connector below dials the socket whatever it says.
        let endpoint = Endpoint::from_static("http://cri.invalid")
            .timeout(CALL_BOUND)
            .connect_timeout(Duration::from_secs(10));
        let channel = {
            let _entered = rt.enter();
            endpoint.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move { UnixStream::connect(path).await.map(TokioIo::new) }
            }))
        };
        Ok(Cri { rt, channel })
    }

    /// The `RuntimeService` client (cheap: it shares the connection).
    pub fn runtime(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.channel.clone())
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20)
    }

    /// The `ImageService` client.
    pub fn images(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(self.channel.clone())
    }

    /// Runs one call to completion: `cri.call(cri.runtime().version(req))`.
    pub fn call<T>(
        &self,
        fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, Status> {
        self.rt
            .block_on(fut)
            .map(tonic::Response::into_inner)
            .map_err(Box::new)
    }
}
