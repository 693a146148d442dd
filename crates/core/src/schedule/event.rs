//! The event a scheduled rule delivers to its target (`lambda-compat.md` §10.3).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

/// The EventBridge "Scheduled Event" payload a function receives when a schedule fires.
///
/// `time` is the fire time, sent as RFC 3339 in whole seconds with a `Z` suffix
/// (`2019-03-01T01:23:45Z`) because that is what EventBridge sends and what handlers parse;
/// sub-second parts are dropped. `rule_arn` becomes the single entry of `resources`, and `detail`
/// is always the empty object.
pub fn scheduled_event(
    id: Uuid,
    account: &str,
    region: &str,
    rule_arn: &str,
    time: DateTime<Utc>,
) -> Value {
    json!({
        "version": "0",
        "id": id.to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    })
}
