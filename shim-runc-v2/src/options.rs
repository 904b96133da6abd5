//! The `Any` payloads of task requests: runc options, checkpoint options, and the OCI JSON of
//! exec specs and resources, checked by type URL and decoded.

use shim_host::status::{invalid, Reply};
use shim_proto::any::type_url_matches;
use shim_proto::protobuf::Any;
use shim_proto::runc_v1_options::{CheckpointOptions, Options};
use shim_proto::type_url::{RUNC_V1_CHECKPOINT_OPTIONS, RUNC_V1_OPTIONS};

/// An absent Any, or one with neither URL nor value, means "nothing sent".
fn is_empty(any: Option<&Any>) -> bool {
    any.map_or(true, |a| a.type_url.is_empty() && a.value.is_empty())
}

/// `CreateTaskRequest.options`: `containerd.runc.v1.Options`, or defaults when empty.
pub fn runc(any: Option<&Any>) -> Reply<Options> {
    match any.filter(|_| !is_empty(any)) {
        None => Ok(Options::default()),
        Some(any) => decode(any, RUNC_V1_OPTIONS),
    }
}

/// `CheckpointTaskRequest.options`: `containerd.runc.v1.CheckpointOptions`, or defaults.
pub fn checkpoint(any: Option<&Any>) -> Reply<CheckpointOptions> {
    match any.filter(|_| !is_empty(any)) {
        None => Ok(CheckpointOptions::default()),
        Some(any) => decode(any, RUNC_V1_CHECKPOINT_OPTIONS),
    }
}

fn decode<M: prost::Message + Default>(any: &Any, expected: &str) -> Reply<M> {
    if !type_url_matches(&any.type_url, expected) {
        return Err(invalid(format!(
            "unsupported options type {:?}, expected {expected:?}",
            shim_core::validate::shown(&any.type_url)
        )));
    }
    shim_proto::any::unpack(any, expected).map_err(|e| invalid(e.to_string()))
}

/// An OCI JSON Any (process spec, resources): its URL must be the OCI one (or empty).
pub fn json(any: Option<Any>, expected: &str, what: &str) -> Reply<Vec<u8>> {
    let any = any.unwrap_or_default();
    if !any.type_url.is_empty() && !type_url_matches(&any.type_url, expected) {
        return Err(invalid(format!(
            "unsupported {what} type {:?}, expected {expected:?}",
            shim_core::validate::shown(&any.type_url)
        )));
    }
    Ok(any.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shim_proto::type_url::{OCI_LINUX_RESOURCES, OCI_PROCESS};

    fn code<T>(r: Reply<T>) -> i32 {
        match r {
            Err(s) => s.code,
            Ok(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn empty_options_are_defaults() {
        assert_eq!(runc(None).unwrap(), Options::default());
        assert_eq!(runc(Some(&Any::default())).unwrap(), Options::default());
        assert_eq!(checkpoint(None).unwrap(), CheckpointOptions::default());
    }

    #[test]
    fn runc_options_are_decoded_by_type_url() {
        let any = shim_proto::any::pack(
            RUNC_V1_OPTIONS,
            &Options {
                binary_name: "crun".into(),
                root: "/run/r".into(),
                systemd_cgroup: true,
                ..Default::default()
            },
        );
        let o = runc(Some(&any)).unwrap();
        assert_eq!(
            (o.binary_name.as_str(), o.root.as_str()),
            ("crun", "/run/r")
        );
        assert!(o.systemd_cgroup);
    }

    #[test]
    fn an_unknown_options_url_is_invalid_argument_naming_it() {
        for url in ["containerd.linux.runc.CreateOptions", "example.com/Bogus"] {
            let any = Any {
                type_url: url.into(),
                value: vec![],
            };
            let Err(s) = runc(Some(&any)) else {
                panic!("{url} must be refused");
            };
            assert_eq!(s.code, 3);
            assert!(s.message.contains(url), "{}", s.message);
            assert_eq!(code(checkpoint(Some(&any))), 3);
        }
    }

    #[test]
    fn undecodable_options_are_invalid_argument() {
        let any = Any {
            type_url: RUNC_V1_OPTIONS.into(),
            value: vec![0xff, 0xff, 0xff],
        };
        assert_eq!(code(runc(Some(&any))), 3);
    }

    #[test]
    fn a_huge_url_is_not_echoed_whole() {
        let any = Any {
            type_url: "x".repeat(100_000),
            value: vec![],
        };
        let Err(s) = runc(Some(&any)) else { panic!() };
        assert!(s.message.len() < 300, "{}", s.message.len());
    }

    #[test]
    fn json_anys_accept_the_oci_url_or_none_and_refuse_others() {
        let with = |url: &str| Any {
            type_url: url.into(),
            value: b"{}".to_vec(),
        };
        assert_eq!(
            json(Some(with(OCI_PROCESS)), OCI_PROCESS, "spec").unwrap(),
            b"{}"
        );
        assert_eq!(json(Some(with("")), OCI_PROCESS, "spec").unwrap(), b"{}");
        assert_eq!(json(None, OCI_PROCESS, "spec").unwrap(), b"");
        assert_eq!(
            code(json(Some(with(OCI_LINUX_RESOURCES)), OCI_PROCESS, "spec")),
            3
        );
    }
}
