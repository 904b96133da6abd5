//! Conversions between `SystemTime` and protobuf `Timestamp`, and Go's zero time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::protobuf::Timestamp;

/// Go's `time.Time{}` (0001-01-01T00:00:00Z): the `exited_at` Go reports for a process that
/// has not exited (gogo `stdtime, nullable=false` always encodes it).
pub const GO_ZERO_TIME: Timestamp = Timestamp {
    seconds: -62_135_596_800,
    nanos: 0,
};

/// Converts a wall-clock time to a protobuf `Timestamp` (nanos always in 0..1e9).
pub fn to_timestamp(t: SystemTime) -> Timestamp {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Timestamp {
            seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nanos: d.subsec_nanos() as i32,
        },
        Err(before) => {
            let d = before.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => Timestamp {
                    seconds: -secs,
                    nanos: 0,
                },
                n => Timestamp {
                    seconds: -secs - 1,
                    nanos: (1_000_000_000 - n) as i32,
                },
            }
        }
    }
}

/// Converts a protobuf `Timestamp` to a wall-clock time; `None` if it is not representable
/// or its nanos are out of range.
pub fn from_timestamp(ts: &Timestamp) -> Option<SystemTime> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return None;
    }
    let nanos = Duration::from_nanos(ts.nanos as u64);
    if ts.seconds >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(ts.seconds as u64) + nanos)
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(ts.seconds.unsigned_abs()))?
            .checked_add(nanos)
    }
}

/// The current time as a `Timestamp`.
pub fn now() -> Timestamp {
    to_timestamp(SystemTime::now())
}

/// True for Go's zero time, i.e. "not exited yet".
pub fn is_go_zero(ts: &Timestamp) -> bool {
    ts.seconds == GO_ZERO_TIME.seconds && ts.nanos == GO_ZERO_TIME.nanos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_time_round_trips_through_timestamp() {
        for t in [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
            UNIX_EPOCH - Duration::new(5, 250_000_000),
            UNIX_EPOCH - Duration::from_secs(62_135_596_800),
        ] {
            let ts = to_timestamp(t);
            assert!((0..1_000_000_000).contains(&ts.nanos), "{ts:?}");
            assert_eq!(from_timestamp(&ts), Some(t), "{ts:?}");
        }
    }

    #[test]
    fn negative_time_normalises_nanos_like_protobuf() {
        let ts = to_timestamp(UNIX_EPOCH - Duration::new(5, 250_000_000));
        assert_eq!((ts.seconds, ts.nanos), (-6, 750_000_000));
    }

    #[test]
    fn go_zero_time_is_year_one() {
        let t = from_timestamp(&GO_ZERO_TIME).unwrap();
        assert_eq!(to_timestamp(t), GO_ZERO_TIME);
        assert!(is_go_zero(&to_timestamp(t)));
        assert!(!is_go_zero(&now()));
    }

    #[test]
    fn out_of_range_nanos_are_rejected() {
        let ts = Timestamp {
            seconds: 1,
            nanos: 1_000_000_000,
        };
        assert_eq!(from_timestamp(&ts), None);
    }
}
