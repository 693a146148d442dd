//! Versions through the official SDK: PublishVersion, ListVersionsByFunction, qualified
//! GetFunction/GetFunctionConfiguration/DeleteFunction, and `nimbus versions`.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};

use crate::cli::{json, nimbus};
use crate::support::{
    code_sha256, create_python, error_of, message_of, python_zip, zip_of, Harness, TestServer, ROLE,
};

const ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function";

fn zip_returning(value: u32) -> Vec<u8> {
    zip_of(&[(
        "app.py",
        format!("def handler(event, context):\n    return {value}\n").as_bytes(),
        0o644,
    )])
}

async fn publish(client: &aws_sdk_lambda::Client, name: &str) -> String {
    client
        .publish_version()
        .function_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("publish {name}: {e:?}"))
        .version()
        .expect("version")
        .to_owned()
}

async fn set_memory(client: &aws_sdk_lambda::Client, name: &str, memory: i32) {
    client
        .update_function_configuration()
        .function_name(name)
        .memory_size(memory)
        .send()
        .await
        .expect("update configuration");
}

#[tokio::test]
async fn published_versions_are_immutable_snapshots() {
    let h = Harness::start().await;
    let client = h.client();
    let created = create_python(&client, "snap").await;
    let v1 = client
        .publish_version()
        .function_name("snap")
        .description("first release")
        .send()
        .await
        .expect("publish");
    assert_eq!(v1.version(), Some("1"));
    assert_eq!(v1.function_arn(), Some(format!("{ARN}:snap:1").as_str()));
    assert_eq!(v1.code_sha256(), created.code_sha256());
    assert_eq!(v1.description(), Some("first release"));
    assert_eq!(v1.memory_size(), Some(128));
    assert_ne!(v1.revision_id(), created.revision_id());

    // Move $LATEST on: new code and new settings.
    let new_zip = zip_returning(2);
    client
        .update_function_code()
        .function_name("snap")
        .zip_file(Blob::new(new_zip.clone()))
        .send()
        .await
        .expect("update code");
    set_memory(&client, "snap", 512).await;

    for (reference, qualifier) in [
        ("snap", Some("1")),
        ("snap:1", None),
        (&*format!("{ARN}:snap:1"), None),
    ] {
        let old = client
            .get_function_configuration()
            .function_name(reference)
            .set_qualifier(qualifier.map(str::to_owned))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{reference}: {e:?}"));
        assert_eq!(old.version(), Some("1"), "{reference}");
        assert_eq!(old.memory_size(), Some(128), "{reference}");
        assert_eq!(old.code_sha256(), Some(code_sha256(&python_zip()).as_str()));
        assert_eq!(old.description(), Some("first release"));
        assert_eq!(old.function_arn(), Some(format!("{ARN}:snap:1").as_str()));
    }
    // GetFunction of the version serves the version's code.
    let got = client
        .get_function()
        .function_name("snap")
        .qualifier("1")
        .send()
        .await
        .expect("get version");
    let location = got.code().and_then(|c| c.location()).expect("location");
    let zip = reqwest::get(location)
        .await
        .expect("download")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(zip.as_ref(), python_zip().as_slice());

    // $LATEST shows the new state; unqualified it keeps the unqualified ARN, with an explicit
    // $LATEST qualifier the qualified one.
    let latest = client
        .get_function_configuration()
        .function_name("snap")
        .send()
        .await
        .expect("latest");
    assert_eq!(latest.version(), Some("$LATEST"));
    assert_eq!(latest.memory_size(), Some(512));
    assert_eq!(latest.code_sha256(), Some(code_sha256(&new_zip).as_str()));
    assert_eq!(latest.function_arn(), Some(format!("{ARN}:snap").as_str()));
    let explicit = client
        .get_function_configuration()
        .function_name("snap")
        .qualifier("$LATEST")
        .send()
        .await
        .expect("explicit latest");
    assert_eq!(
        explicit.function_arn(),
        Some(format!("{ARN}:snap:$LATEST").as_str())
    );
    assert_eq!(explicit.version(), Some("$LATEST"));

    let v2 = client
        .publish_version()
        .function_name("snap")
        .send()
        .await
        .expect("publish 2");
    assert_eq!(v2.version(), Some("2"));
    assert_eq!(v2.code_sha256(), Some(code_sha256(&new_zip).as_str()));
    assert_eq!(v2.memory_size(), Some(512));
    assert_eq!(
        v2.description(),
        Some(""),
        "without a description the function's is kept"
    );
}

#[tokio::test]
async fn publishing_an_unchanged_function_returns_the_newest_version() {
    let h = Harness::start().await;
    let client = h.client();
    create_python(&client, "same").await;
    assert_eq!(publish(&client, "same").await, "1");
    assert_eq!(publish(&client, "same").await, "1");
    let listed = client
        .list_versions_by_function()
        .function_name("same")
        .send()
        .await
        .expect("list");
    let versions: Vec<_> = listed
        .versions()
        .iter()
        .filter_map(|v| v.version())
        .collect();
    assert_eq!(versions, ["$LATEST", "1"]);
    // A configuration change is a change.
    set_memory(&client, "same", 256).await;
    assert_eq!(publish(&client, "same").await, "2");
}

#[tokio::test]
async fn publish_honours_code_sha256_and_revision_id() {
    let h = Harness::start().await;
    let client = h.client();
    let created = create_python(&client, "guarded").await;
    let sha = created.code_sha256().expect("sha").to_owned();
    let wrong_sha = code_sha256(b"other code");

    let err = client
        .publish_version()
        .function_name("guarded")
        .code_sha256(&wrong_sha)
        .send()
        .await
        .expect_err("other code");
    assert_eq!(
        error_of(&err),
        ("InvalidParameterValueException".into(), 400)
    );
    assert_eq!(
        message_of(&err),
        format!("CodeSHA256 ({wrong_sha}) is different from current CodeSHA256 in $LATEST ({sha}). Please try again with the CodeSHA256 in $LATEST.")
    );
    let err = client
        .publish_version()
        .function_name("guarded")
        .revision_id("not-the-revision")
        .send()
        .await
        .expect_err("stale revision");
    assert_eq!(error_of(&err), ("PreconditionFailedException".into(), 412));
    let versions = client
        .list_versions_by_function()
        .function_name("guarded")
        .send()
        .await
        .expect("list");
    assert_eq!(
        versions.versions().len(),
        1,
        "refused publishes publish nothing"
    );

    let ok = client
        .publish_version()
        .function_name("guarded")
        .code_sha256(&sha)
        .revision_id(created.revision_id().expect("revision"))
        .send()
        .await
        .expect("matching preconditions");
    assert_eq!(ok.version(), Some("1"));

    let err = client
        .publish_version()
        .function_name("ghost")
        .send()
        .await
        .expect_err("no function");
    assert_eq!(error_of(&err), ("ResourceNotFoundException".into(), 404));
    assert_eq!(message_of(&err), format!("Function not found: {ARN}:ghost"));
}

#[tokio::test]
async fn version_numbers_are_never_reused() {
    let h = Harness::start().await;
    let client = h.client();
    create_python(&client, "counter").await;
    assert_eq!(publish(&client, "counter").await, "1");
    set_memory(&client, "counter", 256).await;
    assert_eq!(publish(&client, "counter").await, "2");
    client
        .delete_function()
        .function_name("counter")
        .qualifier("2")
        .send()
        .await
        .expect("delete version 2");
    // Deleting it again, or any version that never existed, is no error (as on Lambda).
    for absent in ["2", "99"] {
        client
            .delete_function()
            .function_name("counter")
            .qualifier(absent)
            .send()
            .await
            .unwrap_or_else(|e| panic!("delete absent {absent}: {e:?}"));
    }
    let err = client
        .get_function_configuration()
        .function_name("counter:2")
        .send()
        .await
        .expect_err("deleted");
    assert_eq!(error_of(&err), ("ResourceNotFoundException".into(), 404));
    assert_eq!(
        message_of(&err),
        format!("Function not found: {ARN}:counter:2")
    );

    set_memory(&client, "counter", 512).await;
    assert_eq!(publish(&client, "counter").await, "3");
    let listed = client
        .list_versions_by_function()
        .function_name("counter")
        .send()
        .await
        .expect("list");
    let versions: Vec<_> = listed
        .versions()
        .iter()
        .filter_map(|v| v.version())
        .collect();
    assert_eq!(versions, ["$LATEST", "1", "3"]);
    // The function itself is untouched by deleting versions.
    let latest = client
        .get_function_configuration()
        .function_name("counter")
        .send()
        .await
        .expect("latest");
    assert_eq!(latest.memory_size(), Some(512));
}

#[tokio::test]
async fn list_versions_paginates_with_qualified_arns() {
    let h = Harness::start().await;
    let client = h.client();
    create_python(&client, "pages").await;
    for memory in [200, 300, 400] {
        set_memory(&client, "pages", memory).await;
        publish(&client, "pages").await;
    }
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = client
            .list_versions_by_function()
            .function_name("pages")
            .max_items(2)
            .set_marker(marker.clone())
            .send()
            .await
            .expect("list");
        pages += 1;
        for v in page.versions() {
            assert!(v.state().is_none(), "lists omit State");
            let version = v.version().expect("version").to_owned();
            assert_eq!(
                v.function_arn(),
                Some(format!("{ARN}:pages:{version}").as_str()),
                "every listed version has a qualified ARN"
            );
            seen.push(version);
        }
        match page.next_marker() {
            Some(m) => marker = Some(m.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(seen, ["$LATEST", "1", "2", "3"]);
    let all: Vec<_> = client
        .list_versions_by_function()
        .function_name("pages")
        .max_items(1)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("paginate");
    assert_eq!(all.len(), 4);
    assert_eq!(all[2].memory_size(), Some(300));

    let err = client
        .list_versions_by_function()
        .function_name("ghost")
        .send()
        .await
        .expect_err("no function");
    assert_eq!(error_of(&err), ("ResourceNotFoundException".into(), 404));
}

#[tokio::test]
async fn create_and_update_code_can_publish() {
    let h = Harness::start().await;
    let client = h.client();
    let created = client
        .create_function()
        .function_name("eager")
        .runtime(Runtime::Python312)
        .handler("app.handler")
        .role(ROLE)
        .publish(true)
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(python_zip()))
                .build(),
        )
        .send()
        .await
        .expect("create and publish");
    assert_eq!(created.version(), Some("1"));
    assert_eq!(
        created.function_arn(),
        Some(format!("{ARN}:eager:1").as_str())
    );
    let updated = client
        .update_function_code()
        .function_name("eager")
        .zip_file(Blob::new(zip_returning(7)))
        .publish(true)
        .send()
        .await
        .expect("update and publish");
    assert_eq!(updated.version(), Some("2"));
    assert_eq!(
        updated.code_sha256(),
        Some(code_sha256(&zip_returning(7)).as_str())
    );
    let plain = client
        .update_function_code()
        .function_name("eager")
        .zip_file(Blob::new(zip_returning(8)))
        .send()
        .await
        .expect("update without publishing");
    assert_eq!(plain.version(), Some("$LATEST"));
}

#[tokio::test]
async fn unknown_versions_and_qualifiers_are_not_found() {
    let h = Harness::start().await;
    let client = h.client();
    create_python(&client, "known").await;
    publish(&client, "known").await;
    for (name, qualifier, arn) in [
        ("known", Some("9"), format!("{ARN}:known:9")),
        ("known:9", None, format!("{ARN}:known:9")),
        ("known", Some("nosuch"), format!("{ARN}:known:nosuch")),
        ("ghost", Some("1"), format!("{ARN}:ghost:1")),
    ] {
        let err = client
            .get_function()
            .function_name(name)
            .set_qualifier(qualifier.map(str::to_owned))
            .send()
            .await
            .expect_err(name);
        assert_eq!(
            error_of(&err),
            ("ResourceNotFoundException".into(), 404),
            "{name}"
        );
        assert_eq!(
            message_of(&err),
            format!("Function not found: {arn}"),
            "{name}"
        );
    }
    // A qualifier in the name and another in the query must agree.
    let err = client
        .get_function()
        .function_name("known:1")
        .qualifier("2")
        .send()
        .await
        .expect_err("disagreeing qualifiers");
    assert_eq!(
        error_of(&err),
        ("InvalidParameterValueException".into(), 400)
    );
    let err = client
        .delete_function()
        .function_name("known")
        .qualifier("$LATEST")
        .send()
        .await
        .expect_err("$LATEST is the function");
    assert_eq!(
        error_of(&err),
        ("InvalidParameterValueException".into(), 400)
    );
    assert_eq!(
        message_of(&err),
        "$LATEST version cannot be deleted without deleting the function."
    );
    let err = client
        .delete_function()
        .function_name("ghost")
        .qualifier("1")
        .send()
        .await
        .expect_err("no function");
    assert_eq!(error_of(&err), ("ResourceNotFoundException".into(), 404));
}

#[tokio::test]
async fn versions_aliases_and_reservations_survive_a_restart() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    let server = TestServer::start_in(&data).await;
    let client = server.client();
    create_python(&client, "kept").await;
    let v1 = client
        .publish_version()
        .function_name("kept")
        .send()
        .await
        .expect("publish");
    set_memory(&client, "kept", 256).await;
    publish(&client, "kept").await;
    client
        .delete_function()
        .function_name("kept")
        .qualifier("2")
        .send()
        .await
        .expect("delete version 2");
    let alias = client
        .create_alias()
        .function_name("kept")
        .name("live")
        .function_version("1")
        .send()
        .await
        .expect("alias");
    client
        .put_function_concurrency()
        .function_name("kept")
        .reserved_concurrent_executions(7)
        .send()
        .await
        .expect("reserve");
    server.stop().await;

    let server = TestServer::start_in(&data).await;
    let client = server.client();
    let got = client
        .get_function_configuration()
        .function_name("kept:live")
        .send()
        .await
        .expect("through the alias");
    assert_eq!(got.version(), Some("1"));
    assert_eq!(got.revision_id(), v1.revision_id());
    assert_eq!(got.memory_size(), Some(128));
    let again = client
        .get_alias()
        .function_name("kept")
        .name("live")
        .send()
        .await
        .expect("alias after restart");
    assert_eq!(again.revision_id(), alias.revision_id());
    let reserved = client
        .get_function_concurrency()
        .function_name("kept")
        .send()
        .await
        .expect("concurrency");
    assert_eq!(reserved.reserved_concurrent_executions(), Some(7));
    // The counter survived: version 2 stays retired.
    set_memory(&client, "kept", 512).await;
    assert_eq!(publish(&client, "kept").await, "3");
    server.stop().await;
}

#[tokio::test]
async fn cli_lists_and_publishes_versions() {
    let h = Harness::start().await;
    let client = h.client();
    create_python(&client, "cli-v").await;
    let endpoint = h.server.endpoint.clone();
    let run = |args: &'static [&'static str]| {
        let endpoint = endpoint.clone();
        tokio::task::spawn_blocking(move || nimbus(&endpoint, args))
    };

    let (ok, out, err) = run(&[
        "versions",
        "publish",
        "cli-v",
        "--description",
        "from the cli",
        "--output",
        "json",
    ])
    .await
    .expect("join");
    assert!(ok, "{err}");
    let published = json(&out);
    assert_eq!(published["Version"], "1");
    assert_eq!(published["Description"], "from the cli");

    let (ok, out, err) = run(&["versions", "publish", "cli-v"]).await.expect("join");
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("Version") && l.ends_with(" 1")),
        "{out}"
    );

    let (ok, out, err) = run(&["versions", "cli-v"]).await.expect("join");
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("VERSION") && lines[0].contains("DESCRIPTION"),
        "{out}"
    );
    assert!(lines[1].starts_with("$LATEST"), "{out}");
    assert!(
        lines[2].starts_with("1 ") && lines[2].contains("from the cli"),
        "{out}"
    );
    assert!(
        !out.contains('\u{1b}'),
        "no colours when stdout is not a terminal"
    );

    let (ok, out, err) = run(&["versions", "list", "cli-v", "--output", "json"])
        .await
        .expect("join");
    assert!(ok, "{err}");
    let listed = json(&out);
    assert_eq!(listed["Versions"][1]["Version"], "1");

    let (ok, _, err) = run(&["versions", "ghost"]).await.expect("join");
    assert!(!ok);
    assert!(err.contains("ResourceNotFoundException"), "{err}");
}
