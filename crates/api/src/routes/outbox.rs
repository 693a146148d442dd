//! Messages held for SQS queues and SNS topics, a Nimbus endpoint (not an AWS API):
//! `GET /_nimbus/outbox[?TargetArn=…][&MaxItems=…]` lists dead letters
//! (`DeadLetterConfig.TargetArn`) and invocation records for queue or topic destinations,
//! oldest first, each shaped like an SQS message.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use nimbus_core::queue::MessageAttribute;
use nimbus_core::ServiceError;
use serde::Serialize;

use super::extract::QueryPairs;
use crate::error::ApiError;
use crate::ApiState;

/// Most messages in one answer.
const MAX_ITEMS: usize = 1000;

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct HeldMessage {
    message_id: String,
    target_arn: String,
    body: String,
    message_attributes: BTreeMap<String, MessageAttribute>,
    /// Milliseconds since the epoch, as SQS's `SentTimestamp`.
    sent_timestamp: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct HeldMessages {
    messages: Vec<HeldMessage>,
}

pub(crate) async fn list(
    State(api): State<ApiState>,
    query: QueryPairs,
) -> Result<Json<HeldMessages>, ApiError> {
    let limit = match query.get("MaxItems") {
        None => MAX_ITEMS,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_ITEMS).contains(n))
            .ok_or_else(|| {
                ServiceError::InvalidParameterValue(format!(
                    "MaxItems must be a number from 1 to {MAX_ITEMS}."
                ))
            })?,
    };
    let held = api.events.held(query.get("TargetArn"), limit).await?;
    Ok(Json(HeldMessages {
        messages: held
            .into_iter()
            .map(|m| HeldMessage {
                message_id: m.id,
                target_arn: m.target_arn,
                body: String::from_utf8_lossy(&m.body).into_owned(),
                message_attributes: m.attributes,
                sent_timestamp: m.sent_at.timestamp_millis().to_string(),
            })
            .collect(),
    }))
}
