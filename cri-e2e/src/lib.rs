//! Kubernetes' CRI end to end: the CRI v1 client, offline OCI images, and a private containerd
//! 2.1 node (mount, pid and network namespaces of its own) whose CRI runs pods through a shim.

pub mod client;
pub mod image;
pub mod node;
pub mod pods;

/// The CRI v1 messages and the tonic clients of `RuntimeService` and `ImageService`.
#[allow(clippy::all, clippy::pedantic)]
pub mod api {
    tonic::include_proto!("runtime.v1");
}
