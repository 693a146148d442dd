//! A function built on the official Rust runtime client (`lambda_runtime`), run by the
//! sandbox's integration tests as a `provided` runtime's `bootstrap`: it prints a line, then
//! echoes the event, or fails when the event has a `"fail"` member.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    println!("handling {}", event.context.request_id);
    if let Some(reason) = event.payload.get("fail") {
        return Err(format!("asked to fail: {reason}").into());
    }
    Ok(event.payload)
}
