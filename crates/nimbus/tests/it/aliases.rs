//! Aliases through the official SDK: CreateAlias, GetAlias, UpdateAlias, DeleteAlias,
//! ListAliases, qualified reads through an alias, and `nimbus alias`.

use aws_sdk_lambda::types::AliasRoutingConfiguration;

use crate::cli::{json, nimbus};
use crate::support::{create_python, error_of, message_of, Harness};

const ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function";

/// A function with versions 1 (128 MB), 2 (256 MB) and 3 (512 MB).
async fn three_versions(client: &aws_sdk_lambda::Client, name: &str) {
    create_python(client, name).await;
    for memory in [128, 256, 512] {
        client
            .update_function_configuration()
            .function_name(name)
            .memory_size(memory)
            .send()
            .await
            .expect("update");
        client
            .publish_version()
            .function_name(name)
            .send()
            .await
            .expect("publish");
    }
}

fn weights(version: &str, weight: f64) -> AliasRoutingConfiguration {
    AliasRoutingConfiguration::builder()
        .additional_version_weights(version, weight)
        .build()
}

#[tokio::test]
async fn aliases_can_be_created_read_updated_listed_and_deleted() {
    let h = Harness::start().await;
    let client = h.client();
    three_versions(&client, "ali").await;

    let live = client
        .create_alias()
        .function_name("ali")
        .name("live")
        .function_version("1")
        .description("production")
        .send()
        .await
        .expect("create");
    assert_eq!(live.alias_arn(), Some(format!("{ARN}:ali:live").as_str()));
    assert_eq!(live.name(), Some("live"));
    assert_eq!(live.function_version(), Some("1"));
    assert_eq!(live.description(), Some("production"));
    assert!(live.routing_config().is_none());
    let first_revision = live.revision_id().expect("revision").to_owned();
    assert!(uuid::Uuid::parse_str(&first_revision).is_ok());

    let got = client
        .get_alias()
        .function_name(format!("{ARN}:ali"))
        .name("live")
        .send()
        .await
        .expect("get");
    assert_eq!(got.revision_id(), Some(first_revision.as_str()));

    // Reads through the alias show its version, under the alias's ARN.
    let config = client
        .get_function_configuration()
        .function_name("ali")
        .qualifier("live")
        .send()
        .await
        .expect("configuration through the alias");
    assert_eq!(config.version(), Some("1"));
    assert_eq!(config.memory_size(), Some(128));
    assert_eq!(
        config.function_arn(),
        Some(format!("{ARN}:ali:live").as_str())
    );
    let function = client
        .get_function()
        .function_name("ali:live")
        .send()
        .await
        .expect("function through the alias");
    assert_eq!(
        function.configuration().and_then(|c| c.version()),
        Some("1")
    );

    let err = client
        .create_alias()
        .function_name("ali")
        .name("live")
        .function_version("2")
        .send()
        .await
        .expect_err("taken");
    assert_eq!(error_of(&err), ("ResourceConflictException".into(), 409));
    assert_eq!(
        message_of(&err),
        format!("Alias already exists: {ARN}:ali:live")
    );

    // Move it to version 2 with a 20% canary on version 3.
    let moved = client
        .update_alias()
        .function_name("ali")
        .name("live")
        .function_version("2")
        .routing_config(weights("3", 0.2))
        .revision_id(&first_revision)
        .send()
        .await
        .expect("update");
    assert_eq!(moved.function_version(), Some("2"));
    assert_eq!(
        moved.description(),
        Some("production"),
        "unchanged members stay"
    );
    let routing = moved
        .routing_config()
        .and_then(|r| r.additional_version_weights())
        .expect("weights");
    assert_eq!(routing.get("3"), Some(&0.2));
    assert_ne!(moved.revision_id(), Some(first_revision.as_str()));
    let stale = client
        .update_alias()
        .function_name("ali")
        .name("live")
        .description("lost update")
        .revision_id(&first_revision)
        .send()
        .await
        .expect_err("stale revision");
    assert_eq!(
        error_of(&stale),
        ("PreconditionFailedException".into(), 412)
    );
    // An empty routing config removes the canary.
    let plain = client
        .update_alias()
        .function_name("ali")
        .name("live")
        .routing_config(AliasRoutingConfiguration::builder().build())
        .send()
        .await
        .expect("clear routing");
    assert!(plain.routing_config().is_none());

    for (name, version) in [("beta", "3"), ("edge", "$LATEST"), ("also-two", "2")] {
        client
            .create_alias()
            .function_name("ali")
            .name(name)
            .function_version(version)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
    let all = client
        .list_aliases()
        .function_name("ali")
        .send()
        .await
        .expect("list");
    let names: Vec<_> = all.aliases().iter().filter_map(|a| a.name()).collect();
    assert_eq!(names, ["also-two", "beta", "edge", "live"]);
    let of_two = client
        .list_aliases()
        .function_name("ali")
        .function_version("2")
        .send()
        .await
        .expect("filtered");
    let names: Vec<_> = of_two.aliases().iter().filter_map(|a| a.name()).collect();
    assert_eq!(names, ["also-two", "live"]);
    let paged: Vec<_> = client
        .list_aliases()
        .function_name("ali")
        .max_items(1)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("paginate");
    assert_eq!(paged.len(), 4);

    client
        .delete_alias()
        .function_name("ali")
        .name("beta")
        .send()
        .await
        .expect("delete");
    let err = client
        .get_alias()
        .function_name("ali")
        .name("beta")
        .send()
        .await
        .expect_err("deleted");
    assert_eq!(error_of(&err), ("ResourceNotFoundException".into(), 404));
    assert_eq!(
        message_of(&err),
        format!("Cannot find alias arn: {ARN}:ali:beta")
    );
    // Deleting an alias that is not there is no error.
    client
        .delete_alias()
        .function_name("ali")
        .name("beta")
        .send()
        .await
        .expect("delete again");
}

#[tokio::test]
async fn alias_rules_are_enforced_with_aws_error_types() {
    let h = Harness::start().await;
    let client = h.client();
    three_versions(&client, "rules").await;
    let invalid = ("InvalidParameterValueException".to_owned(), 400);
    let validation = ("ValidationException".to_owned(), 400);
    let not_found = ("ResourceNotFoundException".to_owned(), 404);
    let create = |name: &str, version: &str| {
        client
            .create_alias()
            .function_name("rules")
            .name(name)
            .function_version(version)
    };
    let two_extra = AliasRoutingConfiguration::builder()
        .additional_version_weights("2", 0.1)
        .additional_version_weights("3", 0.1)
        .build();
    let cases = vec![
        (
            "two additional versions",
            create("a", "1").routing_config(two_extra),
            invalid.clone(),
        ),
        (
            "weight above 1",
            create("a", "1").routing_config(weights("2", 1.5)),
            validation.clone(),
        ),
        (
            "negative weight",
            create("a", "1").routing_config(weights("2", -0.5)),
            validation.clone(),
        ),
        (
            "primary in routing",
            create("a", "1").routing_config(weights("1", 0.5)),
            invalid.clone(),
        ),
        (
            "$LATEST with routing",
            create("a", "$LATEST").routing_config(weights("2", 0.5)),
            invalid.clone(),
        ),
        (
            "$LATEST as the extra version",
            create("a", "1").routing_config(weights("$LATEST", 0.5)),
            validation.clone(),
        ),
        (
            "missing extra version",
            create("a", "1").routing_config(weights("9", 0.5)),
            not_found.clone(),
        ),
        ("missing version", create("a", "9"), not_found.clone()),
        ("numeric alias name", create("123", "1"), validation.clone()),
        (
            "alias name with a colon",
            create("a:b", "1"),
            validation.clone(),
        ),
        ("bad version", create("a", "latest"), validation.clone()),
    ];
    for (what, request, expected) in cases {
        let err = request.send().await.expect_err(what);
        assert_eq!(error_of(&err), expected, "{what}: {}", message_of(&err));
    }
    let err = create("a", "1")
        .routing_config(weights("1", 0.5))
        .send()
        .await
        .expect_err("primary in routing");
    assert_eq!(
        message_of(&err),
        "Invalid function version 1. Function version 1 is already included in routing configuration."
    );
    let err = create("a", "9").send().await.expect_err("missing version");
    assert_eq!(
        message_of(&err),
        format!("Function not found: {ARN}:rules:9")
    );
    let err = client
        .create_alias()
        .function_name("ghost")
        .name("a")
        .function_version("1")
        .send()
        .await
        .expect_err("no function");
    assert_eq!(error_of(&err), not_found.clone());
    assert_eq!(message_of(&err), format!("Function not found: {ARN}:ghost"));
    let listed = client
        .list_aliases()
        .function_name("rules")
        .send()
        .await
        .expect("list");
    assert!(listed.aliases().is_empty(), "refusals create nothing");

    // Weights at the ends of the range are fine.
    for (name, weight) in [("zero", 0.0), ("one", 1.0)] {
        create(name, "1")
            .routing_config(weights("2", weight))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
    // Updates obey the same rules, and refusals change nothing.
    let err = client
        .update_alias()
        .function_name("rules")
        .name("zero")
        .function_version("2")
        .send()
        .await
        .expect_err("primary would be in routing");
    assert_eq!(error_of(&err), invalid);
    let err = client
        .update_alias()
        .function_name("rules")
        .name("nosuch")
        .function_version("2")
        .send()
        .await
        .expect_err("no alias");
    assert_eq!(error_of(&err), not_found);
    assert_eq!(
        message_of(&err),
        format!("Cannot find alias arn: {ARN}:rules:nosuch")
    );
    let zero = client
        .get_alias()
        .function_name("rules")
        .name("zero")
        .send()
        .await
        .expect("get");
    assert_eq!(zero.function_version(), Some("1"));
}

#[tokio::test]
async fn versions_that_aliases_use_cannot_be_deleted() {
    let h = Harness::start().await;
    let client = h.client();
    three_versions(&client, "pinned").await;
    client
        .create_alias()
        .function_name("pinned")
        .name("live")
        .function_version("1")
        .send()
        .await
        .expect("live");
    client
        .create_alias()
        .function_name("pinned")
        .name("canary")
        .function_version("2")
        .routing_config(weights("1", 0.05))
        .send()
        .await
        .expect("canary");
    let err = client
        .delete_function()
        .function_name("pinned")
        .qualifier("1")
        .send()
        .await
        .expect_err("in use");
    assert_eq!(error_of(&err), ("ResourceConflictException".into(), 409));
    assert_eq!(
        message_of(&err),
        "Unable to delete version because the following aliases reference it: [canary, live]"
    );
    let err = client
        .delete_function()
        .function_name("pinned:live")
        .send()
        .await
        .expect_err("an alias is not a version");
    assert_eq!(
        error_of(&err),
        ("InvalidParameterValueException".into(), 400)
    );
    // Still there.
    client
        .get_function_configuration()
        .function_name("pinned:1")
        .send()
        .await
        .expect("version 1 stays");
    client
        .delete_function()
        .function_name("pinned")
        .qualifier("3")
        .send()
        .await
        .expect("unused version");
}

#[tokio::test]
async fn delete_function_removes_versions_aliases_and_reservation() {
    let h = Harness::start().await;
    let client = h.client();
    three_versions(&client, "whole").await;
    client
        .create_alias()
        .function_name("whole")
        .name("live")
        .function_version("2")
        .send()
        .await
        .expect("alias");
    client
        .put_function_concurrency()
        .function_name("whole")
        .reserved_concurrent_executions(50)
        .send()
        .await
        .expect("reserve");
    client
        .delete_function()
        .function_name("whole")
        .send()
        .await
        .expect("delete");
    for reference in ["whole", "whole:1", "whole:live"] {
        let err = client
            .get_function_configuration()
            .function_name(reference)
            .send()
            .await
            .expect_err(reference);
        assert_eq!(error_of(&err), ("ResourceNotFoundException".into(), 404));
    }
    let settings = client
        .get_account_settings()
        .send()
        .await
        .expect("settings");
    assert_eq!(
        settings
            .account_limit()
            .and_then(|l| l.unreserved_concurrent_executions()),
        Some(1000),
        "the reservation went with the function"
    );

    create_python(&client, "whole").await;
    let versions = client
        .list_versions_by_function()
        .function_name("whole")
        .send()
        .await
        .expect("list");
    assert_eq!(versions.versions().len(), 1, "only $LATEST");
    let aliases = client
        .list_aliases()
        .function_name("whole")
        .send()
        .await
        .expect("aliases");
    assert!(aliases.aliases().is_empty());
    let reserved = client
        .get_function_concurrency()
        .function_name("whole")
        .send()
        .await
        .expect("concurrency");
    assert_eq!(reserved.reserved_concurrent_executions(), None);
    let v = client
        .publish_version()
        .function_name("whole")
        .send()
        .await
        .expect("publish");
    assert_eq!(v.version(), Some("1"), "a new function counts from 1");
}

#[tokio::test]
async fn cli_manages_aliases() {
    let h = Harness::start().await;
    let client = h.client();
    three_versions(&client, "cli-a").await;
    let endpoint = h.server.endpoint.clone();
    let run = |args: &'static [&'static str]| {
        let endpoint = endpoint.clone();
        tokio::task::spawn_blocking(move || nimbus(&endpoint, args))
    };

    let (ok, out, err) = run(&[
        "alias",
        "create",
        "cli-a",
        "live",
        "--version",
        "1",
        "--weights",
        "2=0.1",
        "--description",
        "prod",
        "--output",
        "json",
    ])
    .await
    .expect("join");
    assert!(ok, "{err}");
    let created = json(&out);
    assert_eq!(created["AliasArn"], format!("{ARN}:cli-a:live"));
    assert_eq!(
        created["RoutingConfig"]["AdditionalVersionWeights"]["2"],
        0.1
    );

    let (ok, out, err) = run(&["alias", "get", "cli-a", "live"]).await.expect("join");
    assert!(ok, "{err}");
    assert!(out.contains("2=10%") && out.contains("prod"), "{out}");

    let (ok, out, err) = run(&[
        "alias",
        "update",
        "cli-a",
        "live",
        "--version",
        "3",
        "--clear-weights",
    ])
    .await
    .expect("join");
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("Version") && l.ends_with(" 3")),
        "{out}"
    );
    assert!(!out.contains("Weights"), "{out}");
    let via_sdk = client
        .get_alias()
        .function_name("cli-a")
        .name("live")
        .send()
        .await
        .expect("the SDK sees what the CLI did");
    assert_eq!(via_sdk.function_version(), Some("3"));
    assert!(via_sdk.routing_config().is_none());

    let (ok, _, err) = run(&["alias", "create", "cli-a", "edge", "--version", "$LATEST"])
        .await
        .expect("join");
    assert!(ok, "{err}");
    let (ok, out, err) = run(&["alias", "list", "cli-a"]).await.expect("join");
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("WEIGHTS"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("edge") && lines[1].contains("$LATEST"),
        "{out}"
    );
    assert!(lines[2].starts_with("live"), "{out}");
    assert!(
        !out.contains('\u{1b}'),
        "no colours when stdout is not a terminal"
    );
    let (ok, out, err) = run(&[
        "alias",
        "list",
        "cli-a",
        "--version",
        "3",
        "--output",
        "json",
    ])
    .await
    .expect("join");
    assert!(ok, "{err}");
    let listed = json(&out);
    assert_eq!(listed["Aliases"].as_array().map(Vec::len), Some(1));

    let (ok, _, err) = run(&[
        "alias",
        "create",
        "cli-a",
        "bad",
        "--version",
        "1",
        "--weights",
        "1=0.5",
    ])
    .await
    .expect("join");
    assert!(!ok);
    assert!(err.contains("InvalidParameterValueException"), "{err}");

    let (ok, out, err) = run(&["alias", "delete", "cli-a", "edge"])
        .await
        .expect("join");
    assert!(ok, "{err}");
    assert_eq!(out, "deleted alias edge of cli-a\n");
    let (ok, _, err) = run(&["alias", "get", "cli-a", "edge"]).await.expect("join");
    assert!(!ok);
    assert!(err.contains("Cannot find alias arn"), "{err}");
}
