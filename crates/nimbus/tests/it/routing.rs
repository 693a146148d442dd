//! Invoking versions and aliases: what runs is the published snapshot, `X-Amz-Executed-Version`
//! says which, weighted aliases split traffic, and reserved concurrency is enforced.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{AliasRoutingConfiguration, FunctionCode, Runtime};

use crate::invoke::deploy;
use crate::support::{error_of, zip_of, Harness};

fn returning(value: &str) -> Vec<u8> {
    zip_of(&[(
        "app.py",
        format!("def handler(event, context):\n    return '{value}'\n").as_bytes(),
        0o644,
    )])
}

/// (payload as a string, executed version).
async fn invoke(
    client: &aws_sdk_lambda::Client,
    name: &str,
    qualifier: Option<&str>,
) -> (String, String) {
    let out = client
        .invoke()
        .function_name(name)
        .set_qualifier(qualifier.map(str::to_owned))
        .payload(Blob::new(b"{}".to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("invoke {name}:{qualifier:?}: {e:?}"));
    assert!(out.function_error().is_none(), "{out:?}");
    let payload: String =
        serde_json::from_slice(out.payload().map(Blob::as_ref).unwrap_or(b"null"))
            .expect("a JSON string");
    (
        payload,
        out.executed_version().unwrap_or_default().to_owned(),
    )
}

/// A function whose version 1 returns "one" and version 2 returns "two"; $LATEST returns "latest".
async fn two_versions(h: &Harness, name: &str) {
    let client = h.client();
    client
        .create_function()
        .function_name(name)
        .runtime(Runtime::Python312)
        .handler("app.handler")
        .role(crate::support::ROLE)
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(returning("one")))
                .build(),
        )
        .publish(true)
        .send()
        .await
        .expect("create and publish 1");
    for (code, publish) in [("two", true), ("latest", false)] {
        client
            .update_function_code()
            .function_name(name)
            .zip_file(Blob::new(returning(code)))
            .publish(publish)
            .send()
            .await
            .expect("update code");
    }
}

#[tokio::test]
async fn versions_run_their_own_snapshot_and_report_it() {
    let h = Harness::start().await;
    let client = h.client();
    two_versions(&h, "snap").await;
    assert_eq!(
        invoke(&client, "snap", None).await,
        ("latest".into(), "$LATEST".into())
    );
    assert_eq!(
        invoke(&client, "snap", Some("1")).await,
        ("one".into(), "1".into())
    );
    assert_eq!(
        invoke(&client, "snap", Some("2")).await,
        ("two".into(), "2".into())
    );
    assert_eq!(
        invoke(&client, "snap:1", None).await,
        ("one".into(), "1".into())
    );
    assert_eq!(
        invoke(
            &client,
            "arn:aws:lambda:us-east-1:000000000000:function:snap:2",
            None
        )
        .await,
        ("two".into(), "2".into())
    );
    let missing = client
        .invoke()
        .function_name("snap")
        .qualifier("7")
        .send()
        .await
        .expect_err("no version 7");
    assert_eq!(
        error_of(&missing),
        ("ResourceNotFoundException".to_owned(), 404)
    );
}

#[tokio::test]
async fn a_weighted_alias_splits_invocations_between_two_versions() {
    let h = Harness::start().await;
    let client = h.client();
    two_versions(&h, "canary").await;
    client
        .create_alias()
        .function_name("canary")
        .name("live")
        .function_version("1")
        .routing_config(
            AliasRoutingConfiguration::builder()
                .additional_version_weights("2", 0.3)
                .build(),
        )
        .send()
        .await
        .expect("create alias");
    let (mut one, mut two) = (0, 0);
    for _ in 0..1000 {
        match invoke(&client, "canary", Some("live")).await {
            (payload, version) if version == "1" => {
                assert_eq!(payload, "one");
                one += 1;
            }
            (payload, version) => {
                assert_eq!((payload.as_str(), version.as_str()), ("two", "2"));
                two += 1;
            }
        }
    }
    assert_eq!(one + two, 1000);
    // 30 % of 1000: the binomial standard deviation is ~14.5, so ±60 is beyond 4 sigma.
    assert!(
        (240..=360).contains(&two),
        "version 2 ran {two} of 1000 times"
    );

    // Moving the alias moves the traffic at once.
    client
        .update_alias()
        .function_name("canary")
        .name("live")
        .function_version("2")
        .routing_config(AliasRoutingConfiguration::builder().build())
        .send()
        .await
        .expect("update alias");
    assert_eq!(
        invoke(&client, "canary:live", None).await,
        ("two".into(), "2".into())
    );
}

#[tokio::test]
async fn reserved_concurrency_caps_a_function_and_zero_stops_it() {
    let h = Harness::start().await;
    let client = h.client();
    let sleepy: &[u8] =
        b"import time\n\ndef handler(event, context):\n    time.sleep(1)\n    return 'done'\n";
    deploy(
        &h,
        "capped",
        Runtime::Python312,
        "app.handler",
        &[("app.py", sleepy, 0o644)],
    )
    .await;
    client
        .put_function_concurrency()
        .function_name("capped")
        .reserved_concurrent_executions(1)
        .send()
        .await
        .expect("reserve 1");
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.invoke().function_name("capped").send().await })
        })
        .collect();
    let mut reasons = Vec::new();
    let mut ok = 0;
    for call in calls {
        match call.await.expect("join") {
            Ok(_) => ok += 1,
            Err(err) => {
                assert_eq!(error_of(&err), ("TooManyRequestsException".to_owned(), 429));
                if let aws_sdk_lambda::operation::invoke::InvokeError::TooManyRequestsException(e) =
                    err.into_service_error()
                {
                    reasons.push(e.reason().map(|r| r.as_str().to_owned()));
                }
            }
        }
    }
    assert_eq!(ok, 1, "one at a time");
    assert_eq!(
        reasons,
        vec![Some("ReservedFunctionConcurrentInvocationLimitExceeded".to_owned()); 2]
    );
    client
        .put_function_concurrency()
        .function_name("capped")
        .reserved_concurrent_executions(0)
        .send()
        .await
        .expect("reserve 0");
    let stopped = client
        .invoke()
        .function_name("capped")
        .send()
        .await
        .expect_err("reserved 0 disables invokes");
    assert_eq!(
        error_of(&stopped),
        ("TooManyRequestsException".to_owned(), 429)
    );
    client
        .delete_function_concurrency()
        .function_name("capped")
        .send()
        .await
        .expect("delete reservation");
    client
        .invoke()
        .function_name("capped")
        .send()
        .await
        .expect("runs again without a reservation");
}
