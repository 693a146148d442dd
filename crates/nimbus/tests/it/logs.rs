//! The CloudWatch Logs subset, spoken as the AWS CLI and SDKs speak it (JSON 1.1 over `POST /`).

use aws_sdk_lambda::types::Runtime;

use crate::invoke::{deploy, invoke};
use crate::support::Harness;

async fn logs_call(
    h: &Harness,
    operation: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(h.server.url("/"))
        .header("X-Amz-Target", format!("Logs_20140328.{operation}"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (
        status,
        response.json().await.unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn function_logs_read_through_the_cloudwatch_logs_api() {
    let h = Harness::start().await;
    deploy(
        &h,
        "talker",
        Runtime::Python312,
        "app.handler",
        &[("app.py", b"def handler(event, context):\n    print('line one')\n    print('line two')\n    return 1\n", 0o644)],
    )
    .await;
    let (_, error, _) = invoke(&h, "talker", "{}").await;
    assert_eq!(error, None);
    let group = serde_json::json!({ "logGroupName": "/aws/lambda/talker" });

    // Lines are written asynchronously; wait until the REPORT line is stored.
    let mut streams = serde_json::Value::Null;
    for _ in 0..50 {
        let (status, body) = logs_call(&h, "FilterLogEvents", group.clone()).await;
        // The group exists from its first stored line on, as on CloudWatch.
        if status == 400 && body["__type"] == "ResourceNotFoundException" {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        }
        assert_eq!(status, 200, "{body}");
        if body["events"].as_array().is_some_and(|e| {
            e.iter().any(|e| {
                e["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("REPORT"))
            })
        }) {
            let (status, body) = logs_call(&h, "DescribeLogStreams", group.clone()).await;
            assert_eq!(status, 200);
            streams = body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let stream = streams["logStreams"][0]["logStreamName"]
        .as_str()
        .expect("a stream")
        .to_owned();
    assert!(stream.contains("/[$LATEST]"), "{stream}");

    let (status, body) = logs_call(
        &h,
        "GetLogEvents",
        serde_json::json!({ "logGroupName": "/aws/lambda/talker", "logStreamName": stream, "startFromHead": true }),
    )
    .await;
    assert_eq!(status, 200);
    let messages: Vec<&str> = body["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    let one = messages
        .iter()
        .position(|m| *m == "line one")
        .expect("line one");
    let two = messages
        .iter()
        .position(|m| *m == "line two")
        .expect("line two");
    let end = messages
        .iter()
        .position(|m| m.starts_with("END RequestId:"))
        .expect("END");
    assert!(messages[0].starts_with("START RequestId:"), "{messages:?}");
    assert!(
        one < two && two < end,
        "output in order, before END: {messages:?}"
    );

    let (status, body) = logs_call(
        &h,
        "FilterLogEvents",
        serde_json::json!({ "logGroupName": "/aws/lambda/talker", "filterPattern": "\"line two\"" }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["events"].as_array().map(Vec::len), Some(1), "{body}");

    let (status, body) = logs_call(
        &h,
        "FilterLogEvents",
        serde_json::json!({ "logGroupName": "/aws/lambda/nobody" }),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "ResourceNotFoundException");
}
