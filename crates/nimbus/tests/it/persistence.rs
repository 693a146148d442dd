//! State survives a restart, and one data directory serves one server at a time.

use crate::support::{code_sha256, create_python, python_zip, TestServer};

#[tokio::test]
async fn functions_survive_a_restart() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    let server = TestServer::start_in(&data).await;
    let client = server.client();
    for name in ["keep-a", "keep-b", "keep-c", "keep-d"] {
        create_python(&client, name).await;
    }
    client
        .tag_resource()
        .resource("arn:aws:lambda:us-east-1:000000000000:function:keep-b")
        .tags("owner", "me")
        .send()
        .await
        .expect("tag");
    let before = client
        .get_function_configuration()
        .function_name("keep-a")
        .send()
        .await
        .expect("get");
    server.stop().await;

    let server = TestServer::start_in(&data).await;
    let client = server.client();
    let listed = client.list_functions().send().await.expect("list");
    let names: Vec<_> = listed
        .functions()
        .iter()
        .filter_map(|f| f.function_name())
        .collect();
    assert_eq!(names, ["keep-a", "keep-b", "keep-c", "keep-d"]);
    let got = client
        .get_function()
        .function_name("keep-a")
        .send()
        .await
        .expect("get after restart");
    let config = got.configuration().expect("configuration");
    assert_eq!(
        config.code_sha256(),
        Some(code_sha256(&python_zip()).as_str())
    );
    assert_eq!(config.code_sha256(), before.code_sha256());
    assert_eq!(config.revision_id(), before.revision_id());
    assert_eq!(config.last_modified(), before.last_modified());
    let location = got.code().and_then(|c| c.location()).expect("location");
    let zip = reqwest::get(location)
        .await
        .expect("download")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(zip.as_ref(), python_zip().as_slice());
    let tags = client
        .list_tags()
        .resource("arn:aws:lambda:us-east-1:000000000000:function:keep-b")
        .send()
        .await
        .expect("tags");
    assert_eq!(
        tags.tags().and_then(|t| t.get("owner")).map(String::as_str),
        Some("me")
    );
    server.stop().await;
}

#[tokio::test]
async fn a_second_server_cannot_open_a_busy_data_dir() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    let first = TestServer::start_in(&data).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let config = nimbus::server::ServerConfig::new(data.clone(), "us-east-1", "000000000000")
        .expect("config");
    let err = nimbus::server::serve(listener, config, async {})
        .await
        .expect_err("data dir is locked");
    assert!(
        format!("{err:#}").contains("another nimbus server"),
        "{err:#}"
    );
    first.stop().await;
}
