//! Reserved concurrency through the official SDK: PutFunctionConcurrency,
//! GetFunctionConcurrency, DeleteFunctionConcurrency, GetFunction's `Concurrency`,
//! GetAccountSettings' numbers, and `nimbus concurrency`.

use crate::cli::{json, nimbus};
use crate::support::{create_python, error_of, message_of, Harness};

const BELOW_MINIMUM: &str = "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100].";

async fn unreserved(client: &aws_sdk_lambda::Client) -> (i32, Option<i32>) {
    let settings = client
        .get_account_settings()
        .send()
        .await
        .expect("settings");
    let limit = settings.account_limit().expect("limit");
    (
        limit.concurrent_executions(),
        limit.unreserved_concurrent_executions(),
    )
}

#[tokio::test]
async fn reserved_concurrency_is_carved_out_of_the_account() {
    let h = Harness::start().await;
    let client = h.client();
    create_python(&client, "res-a").await;
    create_python(&client, "res-b").await;
    assert_eq!(unreserved(&client).await, (1000, Some(1000)));
    let none = client
        .get_function_concurrency()
        .function_name("res-a")
        .send()
        .await
        .expect("get unset");
    assert_eq!(none.reserved_concurrent_executions(), None);
    let function = client
        .get_function()
        .function_name("res-a")
        .send()
        .await
        .expect("get function");
    assert!(
        function.concurrency().is_none(),
        "no Concurrency without a reservation"
    );

    let put = client
        .put_function_concurrency()
        .function_name("res-a")
        .reserved_concurrent_executions(10)
        .send()
        .await
        .expect("put");
    assert_eq!(put.reserved_concurrent_executions(), Some(10));
    let got = client
        .get_function_concurrency()
        .function_name("arn:aws:lambda:us-east-1:000000000000:function:res-a")
        .send()
        .await
        .expect("get");
    assert_eq!(got.reserved_concurrent_executions(), Some(10));
    let function = client
        .get_function()
        .function_name("res-a")
        .send()
        .await
        .expect("get function");
    assert_eq!(
        function
            .concurrency()
            .and_then(|c| c.reserved_concurrent_executions()),
        Some(10)
    );
    assert_eq!(unreserved(&client).await, (1000, Some(990)));

    // At most 900 can be reserved in all: 100 always stay unreserved.
    let err = client
        .put_function_concurrency()
        .function_name("res-b")
        .reserved_concurrent_executions(891)
        .send()
        .await
        .expect_err("too much");
    assert_eq!(
        error_of(&err),
        ("InvalidParameterValueException".into(), 400)
    );
    assert_eq!(message_of(&err), BELOW_MINIMUM);
    client
        .put_function_concurrency()
        .function_name("res-b")
        .reserved_concurrent_executions(890)
        .send()
        .await
        .expect("exactly the rest");
    assert_eq!(unreserved(&client).await, (1000, Some(100)));
    // Replacing a reservation counts only the new value.
    client
        .put_function_concurrency()
        .function_name("res-a")
        .reserved_concurrent_executions(9)
        .send()
        .await
        .expect("lower");
    let err = client
        .put_function_concurrency()
        .function_name("res-a")
        .reserved_concurrent_executions(11)
        .send()
        .await
        .expect_err("above the rest");
    assert_eq!(message_of(&err), BELOW_MINIMUM);

    client
        .delete_function_concurrency()
        .function_name("res-b")
        .send()
        .await
        .expect("delete");
    let gone = client
        .get_function_concurrency()
        .function_name("res-b")
        .send()
        .await
        .expect("get deleted");
    assert_eq!(gone.reserved_concurrent_executions(), None);
    assert_eq!(unreserved(&client).await, (1000, Some(991)));

    // Zero is a reservation too: the function is switched off.
    client
        .put_function_concurrency()
        .function_name("res-b")
        .reserved_concurrent_executions(0)
        .send()
        .await
        .expect("zero");
    let zero = client
        .get_function_concurrency()
        .function_name("res-b")
        .send()
        .await
        .expect("get zero");
    assert_eq!(zero.reserved_concurrent_executions(), Some(0));

    // Settings changes and published versions leave the reservation alone.
    client
        .update_function_configuration()
        .function_name("res-a")
        .memory_size(256)
        .send()
        .await
        .expect("update");
    client
        .publish_version()
        .function_name("res-a")
        .send()
        .await
        .expect("publish");
    let kept = client
        .get_function_concurrency()
        .function_name("res-a")
        .send()
        .await
        .expect("get");
    assert_eq!(kept.reserved_concurrent_executions(), Some(9));
}

#[tokio::test]
async fn concurrency_refusals_have_aws_error_types() {
    let h = Harness::start().await;
    let client = h.client();
    create_python(&client, "res-c").await;
    let err = client
        .put_function_concurrency()
        .function_name("res-c")
        .reserved_concurrent_executions(-1)
        .send()
        .await
        .expect_err("negative");
    assert_eq!(error_of(&err), ("ValidationException".into(), 400));
    let err = client
        .put_function_concurrency()
        .function_name("res-c")
        .reserved_concurrent_executions(1001)
        .send()
        .await
        .expect_err("above the account limit");
    assert_eq!(
        error_of(&err),
        ("InvalidParameterValueException".into(), 400)
    );
    for name in ["ghost", "res-c:1"] {
        let err = client
            .put_function_concurrency()
            .function_name(name)
            .reserved_concurrent_executions(1)
            .send()
            .await
            .expect_err(name);
        let expected = if name == "ghost" {
            ("ResourceNotFoundException".to_owned(), 404)
        } else {
            ("InvalidParameterValueException".to_owned(), 400)
        };
        assert_eq!(error_of(&err), expected, "{name}");
    }
    let err = client
        .get_function_concurrency()
        .function_name("ghost")
        .send()
        .await
        .expect_err("get for nothing");
    assert_eq!(error_of(&err), ("ResourceNotFoundException".into(), 404));
    let err = client
        .delete_function_concurrency()
        .function_name("ghost")
        .send()
        .await
        .expect_err("delete for nothing");
    assert_eq!(error_of(&err), ("ResourceNotFoundException".into(), 404));
    // Raw HTTP: the operations sit at AWS's exact paths and status codes.
    let http = reqwest::Client::new();
    let response = http
        .get(h.server.url("/2019-09-30/functions/res-c/concurrency"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "{}");
    let response = http
        .delete(h.server.url("/2017-10-31/functions/res-c/concurrency"))
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 204);
    let response = http
        .put(h.server.url("/2017-10-31/functions/res-c/concurrency"))
        .body("{}")
        .send()
        .await
        .expect("put without a value");
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn account_limit_follows_the_server_configuration() {
    let h = Harness::start_configured(|config| config.limits.max_concurrency = 300).await;
    let client = h.client();
    create_python(&client, "small").await;
    assert_eq!(unreserved(&client).await, (300, Some(300)));
    let err = client
        .put_function_concurrency()
        .function_name("small")
        .reserved_concurrent_executions(201)
        .send()
        .await
        .expect_err("too much for 300");
    assert_eq!(message_of(&err), BELOW_MINIMUM);
    client
        .put_function_concurrency()
        .function_name("small")
        .reserved_concurrent_executions(200)
        .send()
        .await
        .expect("the most there is");
    assert_eq!(unreserved(&client).await, (300, Some(100)));
}

#[tokio::test]
async fn cli_shows_sets_and_removes_reserved_concurrency() {
    let h = Harness::start().await;
    create_python(&h.client(), "cli-c").await;
    let endpoint = h.server.endpoint.clone();
    let run = |args: &'static [&'static str]| {
        let endpoint = endpoint.clone();
        tokio::task::spawn_blocking(move || nimbus(&endpoint, args))
    };

    let (ok, out, err) = run(&["concurrency", "cli-c"]).await.expect("join");
    assert!(ok, "{err}");
    assert!(out.contains("Reserved") && out.contains("none"), "{out}");
    assert!(out.contains("1000 of 1000"), "{out}");

    let (ok, out, err) = run(&["concurrency", "cli-c", "25"]).await.expect("join");
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("Reserved") && l.ends_with(" 25")),
        "{out}"
    );
    assert!(out.contains("975 of 1000"), "{out}");
    assert!(
        !out.contains('\u{1b}'),
        "no colours when stdout is not a terminal"
    );

    let (ok, out, err) = run(&["concurrency", "cli-c", "--output", "json"])
        .await
        .expect("join");
    assert!(ok, "{err}");
    let shown = json(&out);
    assert_eq!(shown["ReservedConcurrentExecutions"], 25);
    assert_eq!(shown["AccountLimit"]["UnreservedConcurrentExecutions"], 975);

    let (ok, _, err) = run(&["concurrency", "cli-c", "950"]).await.expect("join");
    assert!(!ok);
    assert!(err.contains("below its minimum value of [100]"), "{err}");

    let (ok, out, err) = run(&["concurrency", "cli-c", "--delete", "--output", "json"])
        .await
        .expect("join");
    assert!(ok, "{err}");
    let shown = json(&out);
    assert!(shown["ReservedConcurrentExecutions"].is_null(), "{out}");
    assert_eq!(
        shown["AccountLimit"]["UnreservedConcurrentExecutions"],
        1000
    );
}
