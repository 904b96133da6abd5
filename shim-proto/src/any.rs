//! Packing and unpacking `google.protobuf.Any` the way Go's `typeurl` does, plus event type URLs and topics.

use std::fmt;

use prost::Message;

use crate::generated::containerd::events as ev;
use crate::protobuf::Any;
use crate::type_url::{self, topic, GOOGLE_PREFIX};

/// Why an `Any` could not be turned into the expected message.
#[derive(Debug)]
pub enum AnyError {
    /// The `Any` carries another type than the caller expected.
    TypeMismatch { expected: String, actual: String },
    /// The type URL matched but the value is not a valid encoding of the message.
    Decode {
        type_url: String,
        source: prost::DecodeError,
    },
}

impl fmt::Display for AnyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyError::TypeMismatch { expected, actual } => {
                write!(
                    f,
                    "unexpected Any type url {actual:?}, expected {expected:?}"
                )
            }
            AnyError::Decode { type_url, source } => {
                write!(f, "decode Any of type {type_url:?}: {source}")
            }
        }
    }
}

impl std::error::Error for AnyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AnyError::TypeMismatch { .. } => None,
            AnyError::Decode { source, .. } => Some(source),
        }
    }
}

/// Wraps `m` in an `Any` with the given (bare, Go-style) type URL.
pub fn pack<M: Message>(type_url: &str, m: &M) -> Any {
    Any {
        type_url: type_url.to_string(),
        value: m.encode_to_vec(),
    }
}

/// Wraps a JSON document (OCI types: process spec, resources) in an `Any`.
pub fn pack_json(type_url: &str, value: &serde_json::Value) -> Any {
    // Serialising a `Value` to a Vec cannot fail: its map keys are always strings.
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    pack_json_bytes(type_url, bytes)
}

/// Wraps already-serialised JSON bytes in an `Any`.
pub fn pack_json_bytes(type_url: &str, json: impl Into<Vec<u8>>) -> Any {
    Any {
        type_url: type_url.to_string(),
        value: json.into(),
    }
}

/// True when `actual` names the same type as `expected`, ignoring a `type.googleapis.com/` prefix.
pub fn type_url_matches(actual: &str, expected: &str) -> bool {
    let strip = |u: &'_ str| -> String { u.strip_prefix(GOOGLE_PREFIX).unwrap_or(u).to_string() };
    strip(actual) == strip(expected)
}

/// Decodes `any` as `M` after checking that its type URL is `expected`.
pub fn unpack<M: Message + Default>(any: &Any, expected: &str) -> Result<M, AnyError> {
    if !type_url_matches(&any.type_url, expected) {
        return Err(AnyError::TypeMismatch {
            expected: expected.to_string(),
            actual: any.type_url.clone(),
        });
    }
    M::decode(any.value.as_slice()).map_err(|source| AnyError::Decode {
        type_url: any.type_url.clone(),
        source,
    })
}

/// A containerd task event: its Any type URL and the topic it is published on.
pub trait Event: Message + Default {
    const TYPE_URL: &'static str;
    const TOPIC: &'static str;

    /// This event inside an `Any`, as `containerd publish` reads it from stdin.
    fn to_any(&self) -> Any {
        pack(Self::TYPE_URL, self)
    }
}

macro_rules! events {
    ($($ty:ident => $url:ident, $topic:ident;)*) => {
        $(impl Event for ev::$ty {
            const TYPE_URL: &'static str = type_url::$url;
            const TOPIC: &'static str = topic::$topic;
        })*

        /// The topic for an event type URL (with or without the google prefix); `None` if unknown.
        pub fn event_topic(type_url: &str) -> Option<&'static str> {
            let bare = type_url.strip_prefix(GOOGLE_PREFIX).unwrap_or(type_url);
            match bare {
                $(type_url::$url => Some(topic::$topic),)*
                _ => None,
            }
        }
    };
}

events! {
    TaskCreate => TASK_CREATE, TASK_CREATE;
    TaskStart => TASK_START, TASK_START;
    TaskDelete => TASK_DELETE, TASK_DELETE;
    TaskExit => TASK_EXIT, TASK_EXIT;
    TaskOom => TASK_OOM, TASK_OOM;
    TaskExecAdded => TASK_EXEC_ADDED, TASK_EXEC_ADDED;
    TaskExecStarted => TASK_EXEC_STARTED, TASK_EXEC_STARTED;
    TaskPaused => TASK_PAUSED, TASK_PAUSED;
    TaskResumed => TASK_RESUMED, TASK_RESUMED;
    TaskCheckpointed => TASK_CHECKPOINTED, TASK_CHECKPOINTED;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runc::CreateOptions;

    #[test]
    fn unpack_rejects_other_type_and_names_both_urls() {
        let any = pack(type_url::CHECKPOINT_OPTIONS, &CreateOptions::default());
        let err = unpack::<CreateOptions>(&any, type_url::CREATE_OPTIONS).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, AnyError::TypeMismatch { .. }));
        assert!(text.contains(type_url::CREATE_OPTIONS), "{text}");
        assert!(text.contains(type_url::CHECKPOINT_OPTIONS), "{text}");
    }

    #[test]
    fn unpack_accepts_google_prefixed_url() {
        let opts = CreateOptions {
            no_pivot_root: true,
            ..Default::default()
        };
        let mut any = pack(type_url::CREATE_OPTIONS, &opts);
        any.type_url = format!("{GOOGLE_PREFIX}{}", type_url::CREATE_OPTIONS);
        assert_eq!(
            unpack::<CreateOptions>(&any, type_url::CREATE_OPTIONS).unwrap(),
            opts
        );
    }

    #[test]
    fn unpack_reports_corrupt_value_as_decode_error() {
        let any = pack_json_bytes(type_url::CREATE_OPTIONS, vec![0xff, 0xff]);
        let err = unpack::<CreateOptions>(&any, type_url::CREATE_OPTIONS).unwrap_err();
        assert!(matches!(err, AnyError::Decode { .. }), "{err}");
    }

    #[test]
    fn pack_json_keeps_url_and_json_value() {
        let v = serde_json::json!({"args": ["sh"], "cwd": "/"});
        let any = pack_json(type_url::OCI_PROCESS, &v);
        assert_eq!(any.type_url, type_url::OCI_PROCESS);
        let back: serde_json::Value = serde_json::from_slice(&any.value).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn event_topic_maps_every_event_and_rejects_others() {
        assert_eq!(event_topic(type_url::TASK_EXIT), Some("/tasks/exit"));
        assert_eq!(event_topic(type_url::TASK_OOM), Some("/tasks/oom"));
        assert_eq!(
            event_topic("type.googleapis.com/containerd.events.TaskExecStarted"),
            Some("/tasks/exec-started")
        );
        assert_eq!(event_topic(type_url::CREATE_OPTIONS), None);
        assert_eq!(event_topic(type_url::TASK_IO), None);
        assert_eq!(ev::TaskExit::TOPIC, "/tasks/exit");
        assert_eq!(
            ev::TaskCheckpointed::default().to_any().type_url,
            "containerd.events.TaskCheckpointed"
        );
    }
}
