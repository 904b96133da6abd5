//! The runc options this runtime takes, by their `containerd.runc.v1` type URLs: a task's
//! (`CreateTaskRequest.options`, also `start`'s stdin) and a checkpoint's. Decoded as
//! `shim_host::options` decodes every front's options.

use shim_host::options::decode;
use shim_host::status::Reply;
use shim_proto::protobuf::Any;
use shim_proto::runc_v1_options::{CheckpointOptions, Options};
use shim_proto::type_url::{RUNC_V1_CHECKPOINT_OPTIONS, RUNC_V1_OPTIONS};

/// `containerd.runc.v1.Options`, or defaults when nothing was sent.
pub fn runc(any: Option<&Any>) -> Reply<Options> {
    decode(any, RUNC_V1_OPTIONS)
}

/// `containerd.runc.v1.CheckpointOptions`, or defaults when nothing was sent.
pub fn checkpoint(any: Option<&Any>) -> Reply<CheckpointOptions> {
    decode(any, RUNC_V1_CHECKPOINT_OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_options_are_decoded_by_their_url() {
        let sent = Options {
            binary_name: "crun".into(),
            ..Default::default()
        };
        let any = shim_proto::any::pack(RUNC_V1_OPTIONS, &sent);
        assert_eq!(runc(Some(&any)).unwrap(), sent);
        assert_eq!(checkpoint(None).unwrap(), CheckpointOptions::default());
    }

    #[test]
    fn the_runtime_v1_options_are_not_this_runtime_s() {
        let any = Any {
            type_url: "containerd.linux.runc.CreateOptions".into(),
            value: vec![],
        };
        let Err(s) = runc(Some(&any)) else {
            panic!("runtime v1 options must be refused");
        };
        assert_eq!(s.code, 3);
        assert!(s.message.contains(&any.type_url), "{}", s.message);
    }
}
