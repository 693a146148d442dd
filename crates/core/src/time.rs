//! Timestamps in the formats Lambda puts on the wire.

use chrono::{DateTime, Utc};

/// `LastModified` format: `2020-04-10T19:06:32.563+0000`.
pub fn last_modified(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn last_modified_has_millis_and_numeric_offset() {
        let t = Utc
            .timestamp_millis_opt(1_586_545_592_563)
            .single()
            .expect("valid timestamp");
        assert_eq!(last_modified(t), "2020-04-10T19:06:32.563+0000");
    }
}
