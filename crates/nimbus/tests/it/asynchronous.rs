//! Asynchronous invocation through the SDK: `Event` is accepted durably (202), runs, retries
//! failures, reports to destinations with Lambda's record, and survives a server crash.
//!
//! The functions here leave their side effects in files of the test's temporary directory,
//! so these servers run with `--isolation none` (isolation is not what is tested here).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    DeadLetterConfig, DestinationConfig, Environment, FunctionCode, InvocationType, OnFailure,
    OnSuccess, Runtime,
};
use nimbus_sandbox::sys::Isolation;
use nimbus_scheduler::AsyncSettings;

use crate::binary::ServerProcess;
use crate::support::{error_of, zip_of, Harness, ROLE};

/// Appends `<tag> <event JSON>` to the file named by `$OUT`, durably; fails when asked to.
const RECORDER: &[u8] = b"import json, os

def handler(event, context):
    with open(os.environ['OUT'], 'a') as f:
        f.write(os.environ.get('TAG', '-') + ' ' + json.dumps(event) + '\\n')
        f.flush()
        os.fsync(f.fileno())
    if isinstance(event, dict) and event.get('fail'):
        raise ValueError('asked to fail')
    return {'seen': event}
";

async fn deploy_recorder(client: &aws_sdk_lambda::Client, name: &str, out: &Path) {
    client
        .create_function()
        .function_name(name)
        .runtime(Runtime::Python312)
        .handler("app.handler")
        .role(ROLE)
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(zip_of(&[("app.py", RECORDER, 0o644)])))
                .build(),
        )
        .environment(
            Environment::builder()
                .variables("OUT", out.to_string_lossy())
                .variables("TAG", name)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e:?}"));
}

/// Lines of `path` as (tag, event JSON).
fn records(path: &Path) -> Vec<(String, serde_json::Value)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (tag, json) = line.split_once(' ')?;
            Some((tag.to_owned(), serde_json::from_str(json).ok()?))
        })
        .collect()
}

async fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn harness() -> Harness {
    Harness::start_configured(|config| {
        config.isolation = Isolation::None;
        config.async_settings = AsyncSettings {
            retry_delays: [Duration::from_millis(200), Duration::from_millis(200)],
            poll: Duration::from_millis(50),
            ..AsyncSettings::default()
        };
    })
    .await
}

async fn send_event(client: &aws_sdk_lambda::Client, name: &str, payload: &str) -> i32 {
    let out = client
        .invoke()
        .function_name(name)
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(payload.as_bytes().to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("async invoke {name}: {e:?}"));
    assert!(out.payload().is_none_or(|p| p.as_ref().is_empty()));
    out.status_code()
}

#[tokio::test]
async fn event_invocations_are_accepted_with_202_and_run() {
    let h = harness().await;
    let client = h.client();
    let out = h.root.path().join("out.txt");
    deploy_recorder(&client, "rec", &out).await;
    assert_eq!(send_event(&client, "rec", r#"{"n": 1}"#).await, 202);
    wait_for("the event to run", Duration::from_secs(20), || {
        records(&out) == vec![("rec".to_owned(), serde_json::json!({"n": 1}))]
    })
    .await;

    // 1 MB is the async limit, with AWS's error.
    let big = format!("\"{}\"", "x".repeat(1024 * 1024));
    let err = client
        .invoke()
        .function_name("rec")
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(big.into_bytes()))
        .send()
        .await
        .expect_err("over 1 MB");
    assert_eq!(
        error_of(&err),
        ("RequestEntityTooLargeException".to_owned(), 413)
    );
    let unknown = client
        .invoke()
        .function_name("missing")
        .invocation_type(InvocationType::Event)
        .send()
        .await
        .expect_err("unknown function");
    assert_eq!(
        error_of(&unknown),
        ("ResourceNotFoundException".to_owned(), 404)
    );
}

#[tokio::test]
async fn failures_are_retried_then_recorded_at_the_on_failure_destination() {
    let h = harness().await;
    let client = h.client();
    let out = h.root.path().join("out.txt");
    deploy_recorder(&client, "flaky", &out).await;
    deploy_recorder(&client, "failures", &out).await;
    deploy_recorder(&client, "successes", &out).await;
    let arn = |name: &str| format!("arn:aws:lambda:us-east-1:000000000000:function:{name}");
    let config = client
        .put_function_event_invoke_config()
        .function_name("flaky")
        .maximum_retry_attempts(1)
        .maximum_event_age_in_seconds(3600)
        .destination_config(
            DestinationConfig::builder()
                .on_failure(OnFailure::builder().destination(arn("failures")).build())
                .on_success(OnSuccess::builder().destination(arn("successes")).build())
                .build(),
        )
        .send()
        .await
        .expect("put event invoke config");
    assert_eq!(config.maximum_retry_attempts(), Some(1));
    assert_eq!(
        config.function_arn(),
        Some(format!("{}:$LATEST", arn("flaky")).as_str())
    );

    send_event(&client, "flaky", r#"{"fail": true, "id": "a"}"#).await;
    send_event(&client, "flaky", r#"{"id": "b"}"#).await;
    wait_for("both destination records", Duration::from_secs(30), || {
        records(&out)
            .iter()
            .filter(|(tag, _)| tag != "flaky")
            .count()
            == 2
    })
    .await;
    let all = records(&out);
    let attempts_a = all
        .iter()
        .filter(|(tag, e)| tag == "flaky" && e["id"] == "a")
        .count();
    assert_eq!(attempts_a, 2, "the first attempt and one retry");
    let failure = &all
        .iter()
        .find(|(tag, _)| tag == "failures")
        .expect("failure record")
        .1;
    assert_eq!(failure["version"], "1.0");
    assert_eq!(failure["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(failure["requestContext"]["approximateInvokeCount"], 2);
    assert_eq!(
        failure["requestContext"]["functionArn"],
        format!("{}:$LATEST", arn("flaky"))
    );
    assert_eq!(
        failure["requestPayload"],
        serde_json::json!({"fail": true, "id": "a"})
    );
    assert_eq!(failure["responseContext"]["statusCode"], 200);
    assert_eq!(failure["responseContext"]["executedVersion"], "$LATEST");
    assert_eq!(failure["responseContext"]["functionError"], "Unhandled");
    assert_eq!(failure["responsePayload"]["errorType"], "ValueError");
    assert_eq!(failure["responsePayload"]["errorMessage"], "asked to fail");
    let success = &all
        .iter()
        .find(|(tag, _)| tag == "successes")
        .expect("success record")
        .1;
    assert_eq!(success["requestContext"]["condition"], "Success");
    assert_eq!(success["requestContext"]["approximateInvokeCount"], 1);
    assert_eq!(
        success["responsePayload"],
        serde_json::json!({"seen": {"id": "b"}})
    );

    // The config API: read, update (merge), list, delete.
    let got = client
        .get_function_event_invoke_config()
        .function_name("flaky")
        .send()
        .await
        .expect("get");
    assert_eq!(got.maximum_event_age_in_seconds(), Some(3600));
    let updated = client
        .update_function_event_invoke_config()
        .function_name("flaky")
        .maximum_retry_attempts(0)
        .send()
        .await
        .expect("update");
    assert_eq!(updated.maximum_retry_attempts(), Some(0));
    assert_eq!(updated.maximum_event_age_in_seconds(), Some(3600), "kept");
    let listed = client
        .list_function_event_invoke_configs()
        .function_name("flaky")
        .send()
        .await
        .expect("list");
    assert_eq!(listed.function_event_invoke_configs().len(), 1);
    let bad = client
        .put_function_event_invoke_config()
        .function_name("flaky")
        .maximum_retry_attempts(3)
        .send()
        .await
        .expect_err("3 retries");
    assert_eq!(error_of(&bad).1, 400);
    client
        .delete_function_event_invoke_config()
        .function_name("flaky")
        .send()
        .await
        .expect("delete");
    let gone = client
        .get_function_event_invoke_config()
        .function_name("flaky")
        .send()
        .await
        .expect_err("deleted");
    assert_eq!(
        error_of(&gone),
        ("ResourceNotFoundException".to_owned(), 404)
    );
}

/// 1000 events accepted, the server SIGKILLed while it runs them, restarted: every accepted
/// event runs at least once, and none more than twice (once before the crash, once after).
#[tokio::test]
async fn failed_events_go_to_the_dead_letter_queue_and_queue_destinations_are_held() {
    let h = harness().await;
    let client = h.client();
    let out = h.root.path().join("out.txt");
    let dlq = "arn:aws:sqs:us-east-1:000000000000:orders-dlq";
    let topic = "arn:aws:sns:us-east-1:000000000000:order-failures";
    deploy_recorder(&client, "orders", &out).await;
    let updated = client
        .update_function_configuration()
        .function_name("orders")
        .dead_letter_config(DeadLetterConfig::builder().target_arn(dlq).build())
        .send()
        .await
        .expect("set the dead-letter queue");
    assert_eq!(
        updated.dead_letter_config().and_then(|d| d.target_arn()),
        Some(dlq)
    );
    client
        .put_function_event_invoke_config()
        .function_name("orders")
        .maximum_retry_attempts(0)
        .send()
        .await
        .expect("no retries");

    send_event(&client, "orders", r#"{"fail": true, "order": 7}"#).await;
    send_event(&client, "orders", r#"{"order": 8}"#).await;
    let held = || async {
        let body = reqwest::get(h.server.url("/_nimbus/outbox"))
            .await
            .expect("outbox")
            .text()
            .await
            .expect("body");
        crate::cli::json(&body)["Messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let started = Instant::now();
    let messages = loop {
        let messages = held().await;
        if !messages.is_empty() {
            break messages;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no dead letter"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Only the failed event; the body is the original event; Lambda's attributes.
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert_eq!(m["TargetArn"], dlq);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(m["Body"].as_str().expect("body")).expect("json"),
        serde_json::json!({"fail": true, "order": 7})
    );
    let attributes = &m["MessageAttributes"];
    assert_eq!(
        attributes["ErrorCode"],
        serde_json::json!({"DataType": "Number", "StringValue": "200"})
    );
    assert_eq!(attributes["ErrorMessage"]["StringValue"], "asked to fail");
    assert_eq!(attributes["RequestID"]["DataType"], "String");
    let request_id = attributes["RequestID"]["StringValue"]
        .as_str()
        .expect("request id");
    assert_eq!(uuid::Uuid::parse_str(request_id).map(|_| ()), Ok(()));

    // An on-failure destination that is a topic takes precedence; its record is held too.
    client
        .put_function_event_invoke_config()
        .function_name("orders")
        .maximum_retry_attempts(0)
        .destination_config(
            DestinationConfig::builder()
                .on_failure(OnFailure::builder().destination(topic).build())
                .build(),
        )
        .send()
        .await
        .expect("topic destination");
    send_event(&client, "orders", r#"{"fail": true, "order": 9}"#).await;
    let started = Instant::now();
    while held().await.len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no record for the topic"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let endpoint = h.server.endpoint.clone();
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
        crate::cli::nimbus(
            &endpoint,
            &["dead-letters", "--target", topic, "--output", "json"],
        )
    })
    .await
    .expect("cli");
    assert!(ok, "{stderr}");
    let listed = crate::cli::json(&stdout)["Messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(listed.len(), 1, "{stdout}");
    let record: serde_json::Value =
        serde_json::from_str(listed[0]["Body"].as_str().expect("body")).expect("record");
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(
        record["requestPayload"],
        serde_json::json!({"fail": true, "order": 9})
    );
    let endpoint = h.server.endpoint.clone();
    let (ok, stdout, stderr) =
        tokio::task::spawn_blocking(move || crate::cli::nimbus(&endpoint, &["dead-letters"]))
            .await
            .expect("cli");
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("SENT"), "{stdout}");
    assert!(
        stdout.contains("orders-dlq") && stdout.contains("200 asked to fail"),
        "{stdout}"
    );
}

#[tokio::test]
async fn accepted_events_survive_a_crash_of_the_server() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    let out: PathBuf = root.path().join("out.txt");
    let env = [("NIMBUS_ISOLATION", "none")];
    let mut server = ServerProcess::spawn(&data, &env);
    let client = server.client();
    deploy_recorder(&client, "durable", &out).await;
    let sends: Vec<_> = (0..1000)
        .collect::<Vec<u32>>()
        .chunks(100)
        .map(|chunk| {
            let client = client.clone();
            let chunk = chunk.to_vec();
            tokio::spawn(async move {
                for n in chunk {
                    let status = send_event(&client, "durable", &format!(r#"{{"n": {n}}}"#)).await;
                    assert_eq!(status, 202);
                }
            })
        })
        .collect();
    for send in sends {
        send.await.expect("all 1000 accepted");
    }
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(10));
    let before = records(&out).len();
    eprintln!("{before} of 1000 accepted events had run when the server was killed");

    let _server = ServerProcess::spawn(&data, &env);
    let mut counts = BTreeMap::new();
    wait_for(
        "every accepted event to run",
        Duration::from_secs(120),
        || {
            counts.clear();
            for (_, event) in records(&out) {
                *counts
                    .entry(event["n"].as_u64().unwrap_or(u64::MAX))
                    .or_insert(0) += 1;
            }
            counts.len() == 1000
        },
    )
    .await;
    assert!(
        counts.keys().copied().eq(0..1000),
        "exactly the accepted events ran"
    );
    let most = counts.values().copied().max().unwrap_or(0);
    assert!(
        most <= 2,
        "an event ran {most} times (ran before the crash: {before})"
    );
}

/// A schedule created through the EventBridge Scheduler API fires its target asynchronously
/// with the Scheduled Event payload.
#[tokio::test]
async fn a_one_time_schedule_fires_its_function() {
    let h = harness().await;
    let client = h.client();
    let out = h.root.path().join("out.txt");
    deploy_recorder(&client, "ticked", &out).await;
    let at = (chrono::Utc::now() + chrono::Duration::seconds(2)).format("%Y-%m-%dT%H:%M:%S");
    let body = serde_json::json!({
        "ScheduleExpression": format!("at({at})"),
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {
            "Arn": "arn:aws:lambda:us-east-1:000000000000:function:ticked",
            "RoleArn": "arn:aws:iam::000000000000:role/scheduler",
        },
    });
    let http = reqwest::Client::new();
    let created = http
        .post(h.server.url("/schedules/soon"))
        .json(&body)
        .send()
        .await
        .expect("create schedule");
    assert_eq!(created.status(), 200, "{:?}", created.text().await);
    let bad = http
        .post(h.server.url("/schedules/bad"))
        .json(&serde_json::json!({
            "ScheduleExpression": "cron(0 12 * * * *)",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {"Arn": "arn:aws:lambda:us-east-1:000000000000:function:ticked", "RoleArn": "arn:aws:iam::000000000000:role/r"},
        }))
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap_or_default().contains("day-of-week"));
    wait_for("the schedule to fire", Duration::from_secs(20), || {
        records(&out).iter().any(|(tag, _)| tag == "ticked")
    })
    .await;
    let (_, event) = records(&out).remove(0);
    assert_eq!(event["detail-type"], "Scheduled Event");
    assert_eq!(event["account"], "000000000000");
    assert_eq!(event["region"], "us-east-1");
}
