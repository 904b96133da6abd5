//! A request's `Any` fields, as every front reads them: an options message checked by its type URL
//! and decoded (defaults when nothing was sent), or OCI JSON (exec spec, resources) checked by its
//! URL. Each front names the type URLs of its own API; a URL a client sent is quoted cut short.

use shim_core::validate::shown;
use shim_proto::any::type_url_matches;
use shim_proto::protobuf::Any;

use crate::status::{invalid, Reply};

/// An absent Any, or one with neither URL nor value, means "nothing sent".
fn is_empty(any: Option<&Any>) -> bool {
    any.map_or(true, |a| a.type_url.is_empty() && a.value.is_empty())
}

/// An options Any of type `expected`, decoded; `M`'s defaults when nothing was sent. Another URL,
/// or bytes that do not decode, are InvalidArgument.
pub fn decode<M: prost::Message + Default>(any: Option<&Any>, expected: &str) -> Reply<M> {
    let Some(any) = any.filter(|_| !is_empty(any)) else {
        return Ok(M::default());
    };
    if !type_url_matches(&any.type_url, expected) {
        return Err(invalid(format!(
            "unsupported options type {:?}, expected {expected:?}",
            shown(&any.type_url)
        )));
    }
    shim_proto::any::unpack(any, expected).map_err(|e| invalid(e.to_string()))
}

/// An OCI JSON Any (`what`: "spec", "resources"): its bytes, when its URL is `expected` or empty.
pub fn json(any: Option<Any>, expected: &str, what: &str) -> Reply<Vec<u8>> {
    let any = any.unwrap_or_default();
    if !any.type_url.is_empty() && !type_url_matches(&any.type_url, expected) {
        return Err(invalid(format!(
            "unsupported {what} type {:?}, expected {expected:?}",
            shown(&any.type_url)
        )));
    }
    Ok(any.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shim_proto::runc_v1_options::{CheckpointOptions, Options};
    use shim_proto::type_url::{
        OCI_LINUX_RESOURCES, OCI_PROCESS, RUNC_V1_CHECKPOINT_OPTIONS, RUNC_V1_OPTIONS,
    };

    fn code<T>(r: Reply<T>) -> i32 {
        match r {
            Err(s) => s.code,
            Ok(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn nothing_sent_is_the_defaults() {
        let none: Options = decode(None, RUNC_V1_OPTIONS).unwrap();
        assert_eq!(none, Options::default());
        let empty: Options = decode(Some(&Any::default()), RUNC_V1_OPTIONS).unwrap();
        assert_eq!(empty, Options::default());
    }

    #[test]
    fn options_are_decoded_by_type_url() {
        let sent = Options {
            binary_name: "crun".into(),
            root: "/run/r".into(),
            systemd_cgroup: true,
            ..Default::default()
        };
        let any = shim_proto::any::pack(RUNC_V1_OPTIONS, &sent);
        assert_eq!(
            decode::<Options>(Some(&any), RUNC_V1_OPTIONS).unwrap(),
            sent
        );
    }

    #[test]
    fn another_url_is_invalid_argument_naming_it() {
        let any = shim_proto::any::pack(RUNC_V1_OPTIONS, &Options::default());
        let Err(s) = decode::<CheckpointOptions>(Some(&any), RUNC_V1_CHECKPOINT_OPTIONS) else {
            panic!("another URL must be refused");
        };
        assert_eq!(s.code, 3);
        assert!(s.message.contains(RUNC_V1_OPTIONS), "{}", s.message);
    }

    #[test]
    fn undecodable_options_are_invalid_argument() {
        let any = Any {
            type_url: RUNC_V1_OPTIONS.into(),
            value: vec![0xff, 0xff, 0xff],
        };
        assert_eq!(code(decode::<Options>(Some(&any), RUNC_V1_OPTIONS)), 3);
    }

    #[test]
    fn a_huge_url_is_not_echoed_whole() {
        let any = Any {
            type_url: "x".repeat(100_000),
            value: vec![],
        };
        for r in [
            decode::<Options>(Some(&any), RUNC_V1_OPTIONS).map(|_| ()),
            json(Some(any.clone()), OCI_PROCESS, "spec").map(|_| ()),
        ] {
            let Err(s) = r else { panic!("must be refused") };
            assert_eq!(s.code, 3);
            assert!(s.message.len() < 300, "{}", s.message.len());
        }
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
