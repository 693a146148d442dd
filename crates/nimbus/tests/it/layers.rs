//! Layers through the official SDK: the layer API with AWS's fields and errors, and functions
//! in Python, Node.js and a custom runtime finding their layers' files under `/opt`.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, FunctionCode, LayerVersionContentInput, Runtime};

use crate::support::{error_of, zip_of, Harness, ROLE};

async fn publish(
    client: &aws_sdk_lambda::Client,
    name: &str,
    files: &[(&str, &[u8], u32)],
) -> aws_sdk_lambda::operation::publish_layer_version::PublishLayerVersionOutput {
    client
        .publish_layer_version()
        .layer_name(name)
        .description(format!("{name} for tests"))
        .license_info("MIT")
        .compatible_runtimes(Runtime::Python312)
        .compatible_runtimes(Runtime::Nodejs20x)
        .compatible_architectures(Architecture::X8664)
        .content(
            LayerVersionContentInput::builder()
                .zip_file(Blob::new(zip_of(files)))
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("publish {name}: {e:?}"))
}

async fn create(
    client: &aws_sdk_lambda::Client,
    name: &str,
    runtime: Runtime,
    handler: &str,
    files: &[(&str, &[u8], u32)],
    layers: &[&str],
) -> Result<
    aws_sdk_lambda::operation::create_function::CreateFunctionOutput,
    aws_sdk_lambda::error::SdkError<
        aws_sdk_lambda::operation::create_function::CreateFunctionError,
    >,
> {
    let mut request = client
        .create_function()
        .function_name(name)
        .runtime(runtime)
        .handler(handler)
        .role(ROLE)
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(zip_of(files)))
                .build(),
        );
    for layer in layers {
        request = request.layers(*layer);
    }
    request.send().await
}

async fn invoke(client: &aws_sdk_lambda::Client, name: &str) -> serde_json::Value {
    let out = client
        .invoke()
        .function_name(name)
        .payload(Blob::new(b"{}".to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("invoke {name}: {e:?}"));
    let body = out
        .payload()
        .map(|p| p.as_ref().to_vec())
        .unwrap_or_default();
    assert!(
        out.function_error().is_none(),
        "{}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).expect("JSON result")
}

#[tokio::test]
async fn the_layer_api_publishes_lists_gets_and_deletes_versions() {
    let h = Harness::start().await;
    let client = h.client();
    let files: &[(&str, &[u8], u32)] = &[("python/util.py", b"X = 1\n", 0o644)];
    let first = publish(&client, "utils", files).await;
    let arn = "arn:aws:lambda:us-east-1:000000000000:layer:utils";
    assert_eq!(first.version(), 1);
    assert_eq!(first.layer_arn(), Some(arn));
    assert_eq!(first.layer_version_arn(), Some(format!("{arn}:1").as_str()));
    assert_eq!(first.description(), Some("utils for tests"));
    assert_eq!(first.license_info(), Some("MIT"));
    assert_eq!(
        first.compatible_runtimes(),
        [Runtime::Python312, Runtime::Nodejs20x]
    );
    assert_eq!(first.compatible_architectures(), [Architecture::X8664]);
    let content = first.content().expect("content");
    assert_eq!(
        content.code_sha256(),
        Some(crate::support::code_sha256(&zip_of(files)).as_str())
    );
    assert_eq!(content.code_size(), zip_of(files).len() as i64);
    let downloaded = reqwest::get(content.location().expect("location"))
        .await
        .expect("download")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(downloaded.as_ref(), zip_of(files).as_slice());
    assert!(first.created_date().is_some_and(|d| d.contains('T')));

    let second = publish(&client, "utils", files).await;
    assert_eq!(second.version(), 2);
    publish(&client, "other", files).await;

    let got = client
        .get_layer_version()
        .layer_name("utils")
        .version_number(1)
        .send()
        .await
        .expect("get");
    assert_eq!(got.layer_version_arn(), first.layer_version_arn());
    let by_arn = client
        .get_layer_version_by_arn()
        .arn(format!("{arn}:2"))
        .send()
        .await
        .expect("get by arn");
    assert_eq!(by_arn.version(), 2);
    // The layer's ARN works as its name.
    let by_layer_arn = client
        .list_layer_versions()
        .layer_name(arn)
        .send()
        .await
        .expect("list versions");
    let versions: Vec<i64> = by_layer_arn
        .layer_versions()
        .iter()
        .map(|v| v.version())
        .collect();
    assert_eq!(versions, [2, 1]);
    let layers = client.list_layers().send().await.expect("list layers");
    let listed: Vec<(&str, i64)> = layers
        .layers()
        .iter()
        .map(|l| {
            (
                l.layer_name().unwrap_or_default(),
                l.latest_matching_version().map_or(0, |v| v.version()),
            )
        })
        .collect();
    assert_eq!(listed, [("other", 1), ("utils", 2)]);
    let filtered = client
        .list_layers()
        .compatible_runtime(Runtime::Java21)
        .send()
        .await
        .expect("filtered");
    assert!(filtered.layers().is_empty());
    let paged = client
        .list_layers()
        .max_items(1)
        .send()
        .await
        .expect("page");
    assert_eq!(paged.layers().len(), 1);
    let rest = client
        .list_layers()
        .marker(paged.next_marker().expect("marker"))
        .send()
        .await
        .expect("next page");
    assert_eq!(rest.layers()[0].layer_name(), Some("utils"));

    client
        .delete_layer_version()
        .layer_name("utils")
        .version_number(2)
        .send()
        .await
        .expect("delete");
    // Deleting again is fine; getting it is not.
    client
        .delete_layer_version()
        .layer_name("utils")
        .version_number(2)
        .send()
        .await
        .expect("delete again");
    let err = client
        .get_layer_version()
        .layer_name("utils")
        .version_number(2)
        .send()
        .await
        .expect_err("deleted");
    assert_eq!(
        error_of(&err),
        ("ResourceNotFoundException".to_owned(), 404)
    );
    // Numbers are not reused.
    assert_eq!(publish(&client, "utils", files).await.version(), 3);

    // Bad input gets Lambda's errors.
    let err = client
        .publish_layer_version()
        .layer_name("bad name")
        .content(
            LayerVersionContentInput::builder()
                .zip_file(Blob::new(zip_of(files)))
                .build(),
        )
        .send()
        .await
        .expect_err("bad name");
    assert_eq!(error_of(&err).0, "ValidationException");
    let evil = zip_of(&[("../escape.py", b"X = 1\n", 0o644)]);
    let err = client
        .publish_layer_version()
        .layer_name("evil")
        .content(
            LayerVersionContentInput::builder()
                .zip_file(Blob::new(evil))
                .build(),
        )
        .send()
        .await
        .expect_err("path traversal");
    assert_eq!(
        error_of(&err),
        ("InvalidParameterValueException".to_owned(), 400)
    );
    assert!(client
        .list_layer_versions()
        .layer_name("evil")
        .send()
        .await
        .expect("list")
        .layer_versions()
        .is_empty());
}

#[tokio::test]
async fn python_node_and_custom_runtimes_find_their_layers_under_opt() {
    runtimes_find_their_layers(Harness::start().await).await;
}

/// Without a mount namespace the layers are not at `/opt`; the search paths point at them.
#[tokio::test]
async fn without_isolation_runtimes_still_find_their_layers() {
    let h = Harness::start_configured(|config| {
        config.isolation = nimbus_sandbox::sys::Isolation::None;
    })
    .await;
    runtimes_find_their_layers(h).await;
}

async fn runtimes_find_their_layers(h: Harness) {
    let client = h.client();
    let base = publish(
        &client,
        "base",
        &[
            (
                "python/greeting.py",
                b"WORD = 'base'\nSOURCE = 'base'\n",
                0o644,
            ),
            (
                "nodejs/node_modules/greeting/index.js",
                b"module.exports = { word: 'hello', source: 'base' };\n",
                0o644,
            ),
        ],
    )
    .await;
    // A later layer overrides the earlier one's file.
    let over = publish(
        &client,
        "override",
        &[(
            "python/greeting.py",
            b"WORD = 'hello'\nSOURCE = 'override'\n",
            0o644,
        )],
    )
    .await;
    let layers = [
        base.layer_version_arn().expect("arn"),
        over.layer_version_arn().expect("arn"),
    ];
    let python = b"import greeting\ndef handler(event, context):\n    return {'word': greeting.WORD, 'source': greeting.SOURCE, 'file': greeting.__file__}\n";
    let created = create(
        &client,
        "py",
        Runtime::Python312,
        "app.handler",
        &[("app.py", python, 0o644)],
        &layers,
    )
    .await
    .expect("create python");
    let shown: Vec<(&str, i64)> = created
        .layers()
        .iter()
        .map(|l| (l.arn().unwrap_or_default(), l.code_size()))
        .collect();
    assert_eq!(shown.len(), 2);
    assert_eq!(shown[0].0, layers[0]);
    assert!(shown[0].1 > 0);
    let result = invoke(&client, "py").await;
    assert_eq!(result["word"], "hello");
    assert_eq!(result["source"], "override");
    assert!(
        result["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("python/greeting.py")),
        "{result}"
    );

    let node = b"const greeting = require('greeting');\nexports.handler = async () => ({ word: greeting.word, source: greeting.source });\n";
    create(
        &client,
        "js",
        Runtime::Nodejs20x,
        "index.handler",
        &[("index.js", node, 0o644)],
        &layers[..1],
    )
    .await
    .expect("create node");
    let result = invoke(&client, "js").await;
    assert_eq!(
        result,
        serde_json::json!({"word": "hello", "source": "base"})
    );

    // A custom runtime shipped as a layer: /opt/bootstrap, calling a tool from /opt/bin.
    let bootstrap: &[u8] = b"#!/bin/sh\nset -eu\nAPI=\"http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation\"\nwhile true; do\n  HEADERS=$(mktemp)\n  curl -sS -D \"$HEADERS\" \"$API/next\" >/dev/null\n  ID=$(grep -i '^Lambda-Runtime-Aws-Request-Id:' \"$HEADERS\" | tr -d '\\r' | cut -d' ' -f2)\n  curl -sS -X POST \"$API/$ID/response\" -d \"{\\\"said\\\":\\\"$(greet)\\\"}\" >/dev/null\n  rm -f \"$HEADERS\"\ndone\n";
    let tool: &[u8] = b"#!/bin/sh\necho \"hi from $0 with ${LD_LIBRARY_PATH##*:}\"\n";
    let runtime = publish(
        &client,
        "shell-runtime",
        &[("bootstrap", bootstrap, 0o755), ("bin/greet", tool, 0o755)],
    )
    .await;
    create(
        &client,
        "sh",
        Runtime::Providedal2023,
        "unused",
        &[("README", b"code without a bootstrap\n", 0o644)],
        &[runtime.layer_version_arn().expect("arn")],
    )
    .await
    .expect("create provided");
    let said = invoke(&client, "sh").await["said"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(
        said.starts_with("hi from ") && said.contains("bin/greet"),
        "{said}"
    );
    assert!(said.ends_with("/lib"), "{said}");

    // Deleting a layer version does not break the functions that use it.
    client
        .delete_layer_version()
        .layer_name("base")
        .version_number(1)
        .send()
        .await
        .expect("delete");
    client
        .update_function_configuration()
        .function_name("js")
        .memory_size(256)
        .send()
        .await
        .expect("update: new environments");
    let result = invoke(&client, "js").await;
    assert_eq!(result["word"], "hello");
}

#[tokio::test]
async fn functions_refuse_unknown_repeated_and_too_many_layers() {
    let h = Harness::start().await;
    let client = h.client();
    let code: &[(&str, &[u8], u32)] = &[("app.py", b"def handler(e, c):\n    return 1\n", 0o644)];
    let unknown = "arn:aws:lambda:us-east-1:000000000000:layer:nope:1";
    let err = create(
        &client,
        "f",
        Runtime::Python312,
        "app.handler",
        code,
        &[unknown],
    )
    .await
    .expect_err("unknown layer");
    let (kind, status) = error_of(&err);
    assert_eq!(
        (kind.as_str(), status),
        ("InvalidParameterValueException", 400)
    );
    assert!(format!("{err:?}").contains(&format!("Layer version {unknown} does not exist.")));

    let mut arns = Vec::new();
    for i in 0..6 {
        let out = publish(
            &client,
            &format!("l{i}"),
            &[("python/m.py", b"X = 1\n", 0o644)],
        )
        .await;
        arns.push(out.layer_version_arn().expect("arn").to_owned());
    }
    let six: Vec<&str> = arns.iter().map(String::as_str).collect();
    let err = create(&client, "f", Runtime::Python312, "app.handler", code, &six)
        .await
        .expect_err("six layers");
    assert!(format!("{err:?}").contains("Cannot reference more than 5 layers."));
    let again = publish(&client, "l0", &[("python/m.py", b"X = 2\n", 0o644)]).await;
    let err = create(
        &client,
        "f",
        Runtime::Python312,
        "app.handler",
        code,
        &[six[0], again.layer_version_arn().expect("arn")],
    )
    .await
    .expect_err("two versions of one layer");
    assert!(format!("{err:?}").contains("Two different versions of the same layer"));
    assert!(
        client
            .get_function()
            .function_name("f")
            .send()
            .await
            .is_err(),
        "nothing was created"
    );

    // Five are fine, and the configuration can drop them again.
    create(
        &client,
        "f",
        Runtime::Python312,
        "app.handler",
        code,
        &six[..5],
    )
    .await
    .expect("five layers");
    let updated = client
        .update_function_configuration()
        .function_name("f")
        .set_layers(Some(Vec::new()))
        .send()
        .await
        .expect("clear layers");
    assert!(updated.layers().is_empty());
}

#[tokio::test]
async fn the_cli_publishes_lists_and_deploys_with_layers() {
    let h = Harness::start().await;
    let endpoint = h.server.endpoint.clone();
    let root = h.root.path().to_owned();
    let layer_dir = root.join("layer/python");
    std::fs::create_dir_all(&layer_dir).expect("mkdir");
    std::fs::write(layer_dir.join("shared.py"), "NAME = 'from the layer'\n").expect("write");
    let app = root.join("app");
    std::fs::create_dir_all(&app).expect("mkdir");
    std::fs::write(
        app.join("app.py"),
        "import shared\ndef handler(e, c):\n    return shared.NAME\n",
    )
    .expect("write");
    let run = move |args: Vec<String>| {
        let endpoint = endpoint.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                crate::cli::nimbus(&endpoint, &args)
            })
            .await
            .expect("cli")
        }
    };
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let (ok, stdout, stderr) = run(vec![
        "layers".into(),
        "publish".into(),
        "shared".into(),
        path(&root.join("layer")),
        "--runtime".into(),
        "python3.12".into(),
        "--description".into(),
        "shared code".into(),
        "--output".into(),
        "json".into(),
    ])
    .await;
    assert!(ok, "{stderr}");
    let arn = crate::cli::json(&stdout)["LayerVersionArn"]
        .as_str()
        .expect("arn")
        .to_owned();
    assert!(arn.ends_with(":layer:shared:1"), "{arn}");

    let (ok, stdout, stderr) = run(vec!["layers".into(), "list".into()]).await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.starts_with("NAME") && stdout.contains("shared  1"),
        "{stdout}"
    );
    let (ok, stdout, stderr) = run(vec!["layers".into(), "versions".into(), "shared".into()]).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("shared code"), "{stdout}");

    let (ok, _, stderr) = run(vec![
        "deploy".into(),
        path(&app),
        "--name".into(),
        "uses-layer".into(),
        "--runtime".into(),
        "python3.12".into(),
        "--handler".into(),
        "app.handler".into(),
        "--layer".into(),
        arn.clone(),
    ])
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(invoke(&h.client(), "uses-layer").await, "from the layer");

    let (ok, stdout, stderr) = run(vec![
        "layers".into(),
        "delete".into(),
        "shared".into(),
        "1".into(),
    ])
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "Deleted version 1 of layer shared\n");
}
