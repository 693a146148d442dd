//! Every management operation, through the official SDK.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, Runtime, State};

use crate::support::{code_sha256, create_python, error_of, python_zip, zip_of, Harness, ROLE};

#[tokio::test]
async fn create_reports_configuration_as_aws_does() {
    let h = Harness::start().await;
    let client = h.client();
    let zip = python_zip();
    let out = client
        .create_function()
        .function_name("hello")
        .runtime(Runtime::Python312)
        .handler("app.handler")
        .role(ROLE)
        .description("says hello")
        .environment(Environment::builder().variables("GREETING", "hi").build())
        .tags("team", "core")
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(zip.clone()))
                .build(),
        )
        .send()
        .await
        .expect("create");
    assert_eq!(out.function_name(), Some("hello"));
    assert_eq!(
        out.function_arn(),
        Some("arn:aws:lambda:us-east-1:000000000000:function:hello")
    );
    assert_eq!(out.code_sha256(), Some(code_sha256(&zip).as_str()));
    assert_eq!(out.code_size(), zip.len() as i64);
    assert_eq!(out.version(), Some("$LATEST"));
    assert_eq!(out.memory_size(), Some(128));
    assert_eq!(out.timeout(), Some(3));
    assert_eq!(out.ephemeral_storage().map(|e| e.size()), Some(512));
    assert_eq!(out.state(), Some(&State::Active));
    assert_eq!(
        out.last_update_status(),
        Some(&aws_sdk_lambda::types::LastUpdateStatus::Successful)
    );
    assert_eq!(out.description(), Some("says hello"));
    let vars = out
        .environment()
        .and_then(|e| e.variables())
        .expect("variables");
    assert_eq!(vars.get("GREETING").map(String::as_str), Some("hi"));
    let last_modified = out.last_modified().expect("last modified");
    let format = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$").expect("re");
    assert!(format.is_match(last_modified), "{last_modified}");
    let revision = out.revision_id().expect("revision");
    assert!(uuid::Uuid::parse_str(revision).is_ok(), "{revision}");
    assert_eq!(
        out.logging_config().and_then(|l| l.log_group()),
        Some("/aws/lambda/hello")
    );
}

#[tokio::test]
async fn get_function_serves_the_zip_and_tags() {
    let h = Harness::start().await;
    let client = h.client();
    create_python(&client, "getme").await;
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:getme";
    client
        .tag_resource()
        .resource(arn)
        .tags("env", "test")
        .send()
        .await
        .expect("tag");
    let got = client
        .get_function()
        .function_name("getme")
        .send()
        .await
        .expect("get");
    let config = got.configuration().expect("configuration");
    assert_eq!(config.function_name(), Some("getme"));
    assert_eq!(config.state(), Some(&State::Active));
    assert_eq!(
        got.tags().and_then(|t| t.get("env")).map(String::as_str),
        Some("test")
    );
    let code = got.code().expect("code");
    assert_eq!(code.repository_type(), Some("S3"));
    let location = code.location().expect("location");
    let downloaded = reqwest::get(location).await.expect("download");
    assert_eq!(downloaded.status(), 200);
    let bytes = downloaded.bytes().await.expect("bytes");
    assert_eq!(bytes.as_ref(), python_zip().as_slice());

    // A forged link serves nothing.
    let forged = location.replace("Signature=", "Signature=00");
    assert_eq!(reqwest::get(&forged).await.expect("forged").status(), 404);

    // Every way of naming the function reaches it.
    for reference in ["getme", "getme:$LATEST", "000000000000:function:getme", arn] {
        let config = client
            .get_function_configuration()
            .function_name(reference)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{reference}: {e:?}"));
        assert_eq!(config.function_name(), Some("getme"));
    }
    // Another account's ARN, or an unknown version, names nothing here.
    for reference in [
        "arn:aws:lambda:us-east-1:111111111111:function:getme",
        "getme:7",
    ] {
        let err = client
            .get_function_configuration()
            .function_name(reference)
            .send()
            .await
            .expect_err(reference);
        assert_eq!(error_of(&err), ("ResourceNotFoundException".into(), 404));
    }
}

#[tokio::test]
async fn updates_change_revision_and_honour_revision_ids() {
    let h = Harness::start().await;
    let client = h.client();
    let created = create_python(&client, "upd").await;
    let first_revision = created.revision_id().expect("revision").to_owned();

    let updated = client
        .update_function_configuration()
        .function_name("upd")
        .memory_size(512)
        .timeout(30)
        .environment(Environment::builder().variables("MODE", "fast").build())
        .revision_id(&first_revision)
        .send()
        .await
        .expect("update configuration");
    assert_eq!(updated.memory_size(), Some(512));
    assert_eq!(updated.timeout(), Some(30));
    assert_ne!(updated.revision_id(), Some(first_revision.as_str()));
    assert_eq!(
        updated.handler(),
        Some("app.handler"),
        "unchanged fields stay"
    );

    // The old revision is stale now: both update kinds refuse it.
    let stale = client
        .update_function_configuration()
        .function_name("upd")
        .memory_size(256)
        .revision_id(&first_revision)
        .send()
        .await
        .expect_err("stale revision");
    assert_eq!(
        error_of(&stale),
        ("PreconditionFailedException".into(), 412)
    );
    let new_zip = zip_of(&[("app.py", b"def handler(e, c):\n    return 2\n", 0o644)]);
    let stale = client
        .update_function_code()
        .function_name("upd")
        .zip_file(Blob::new(new_zip.clone()))
        .revision_id(&first_revision)
        .send()
        .await
        .expect_err("stale revision");
    assert_eq!(
        error_of(&stale),
        ("PreconditionFailedException".into(), 412)
    );

    let code = client
        .update_function_code()
        .function_name("upd")
        .zip_file(Blob::new(new_zip.clone()))
        .revision_id(updated.revision_id().expect("revision"))
        .send()
        .await
        .expect("update code");
    assert_eq!(code.code_sha256(), Some(code_sha256(&new_zip).as_str()));
    assert_eq!(
        code.memory_size(),
        Some(512),
        "settings survive a code update"
    );

    // Environment: {} clears the variables.
    let cleared = client
        .update_function_configuration()
        .function_name("upd")
        .environment(Environment::builder().build())
        .send()
        .await
        .expect("clear environment");
    assert!(cleared.environment().is_none());
}

#[tokio::test]
async fn delete_removes_the_function_and_its_tags() {
    let h = Harness::start().await;
    let client = h.client();
    create_python(&client, "doomed").await;
    client
        .delete_function()
        .function_name("doomed")
        .send()
        .await
        .expect("delete");
    let err = client
        .get_function()
        .function_name("doomed")
        .send()
        .await
        .expect_err("gone");
    assert_eq!(error_of(&err), ("ResourceNotFoundException".into(), 404));
    let err = client
        .delete_function()
        .function_name("doomed")
        .send()
        .await
        .expect_err("already gone");
    assert_eq!(error_of(&err), ("ResourceNotFoundException".into(), 404));
    let err = client
        .list_tags()
        .resource("arn:aws:lambda:us-east-1:000000000000:function:doomed")
        .send()
        .await
        .expect_err("tags gone");
    assert_eq!(error_of(&err), ("ResourceNotFoundException".into(), 404));
    // The name is free again.
    create_python(&client, "doomed").await;
}

#[tokio::test]
async fn list_functions_paginates() {
    let h = Harness::start().await;
    let client = h.client();
    let names: Vec<String> = (0..7).map(|i| format!("fn-{i}")).collect();
    for name in names.iter().rev() {
        create_python(&client, name).await;
    }
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = client
            .list_functions()
            .max_items(3)
            .set_marker(marker.clone())
            .send()
            .await
            .expect("list");
        pages += 1;
        assert!(page.functions().len() <= 3);
        for f in page.functions() {
            assert!(f.state().is_none(), "ListFunctions omits State");
            seen.push(f.function_name().expect("name").to_owned());
        }
        match page.next_marker() {
            Some(m) => marker = Some(m.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, names, "every function once, in name order");

    // The SDK's own paginator walks the same pages.
    let all: Vec<_> = client
        .list_functions()
        .max_items(2)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("paginate");
    assert_eq!(all.len(), 7);

    let err = client
        .list_functions()
        .marker("not-a-marker!")
        .send()
        .await
        .expect_err("bad marker");
    assert_eq!(error_of(&err).0, "InvalidParameterValueException");
}

#[tokio::test]
async fn account_settings_report_limits_and_usage() {
    let h = Harness::start().await;
    let client = h.client();
    create_python(&client, "a").await;
    create_python(&client, "b").await;
    let settings = client
        .get_account_settings()
        .send()
        .await
        .expect("settings");
    let limit = settings.account_limit().expect("limit");
    assert_eq!(limit.code_size_unzipped(), 262_144_000);
    assert_eq!(limit.code_size_zipped(), 52_428_800);
    assert_eq!(limit.concurrent_executions(), 1000);
    let usage = settings.account_usage().expect("usage");
    assert_eq!(usage.function_count(), 2);
    assert_eq!(usage.total_code_size(), 2 * python_zip().len() as i64);
}

#[tokio::test]
async fn tags_can_be_added_listed_and_removed() {
    let h = Harness::start().await;
    let client = h.client();
    create_python(&client, "tagged").await;
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:tagged";
    client
        .tag_resource()
        .resource(arn)
        .tags("a", "1")
        .tags("b", "2")
        .send()
        .await
        .expect("tag");
    client
        .untag_resource()
        .resource(arn)
        .tag_keys("a")
        .send()
        .await
        .expect("untag");
    let tags = client.list_tags().resource(arn).send().await.expect("list");
    let tags = tags.tags().expect("tags");
    assert_eq!(tags.len(), 1);
    assert_eq!(tags.get("b").map(String::as_str), Some("2"));

    let err = client
        .tag_resource()
        .resource(arn)
        .tags("aws:reserved", "x")
        .send()
        .await
        .expect_err("reserved prefix");
    assert_eq!(
        error_of(&err),
        ("InvalidParameterValueException".into(), 400)
    );
}

#[tokio::test]
async fn twenty_concurrent_creates_all_succeed() {
    let h = Harness::start().await;
    let client = h.client();
    let creates = (0..20).map(|i| {
        let client = client.clone();
        tokio::spawn(async move { create_python(&client, &format!("par-{i:02}")).await })
    });
    for task in creates {
        task.await.expect("task");
    }
    let listed = client.list_functions().send().await.expect("list");
    assert_eq!(listed.functions().len(), 20);
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let h = Harness::start().await;
    let http = reqwest::Client::new();
    for (method, path) in [
        (reqwest::Method::GET, "/2016-08-19/account-settings/"),
        (reqwest::Method::GET, "/2015-03-31/functions/missing"),
        (reqwest::Method::GET, "/no/such/operation"),
        (reqwest::Method::PATCH, "/2015-03-31/functions/x"),
    ] {
        let response = http
            .request(method.clone(), h.server.url(path))
            .send()
            .await
            .expect("request");
        let id = response
            .headers()
            .get("x-amzn-RequestId")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            uuid::Uuid::parse_str(&id).is_ok(),
            "{method} {path}: {id:?}"
        );
        assert!(response.status().as_u16() < 500, "{method} {path}");
    }
}
