//! Every refusal carries AWS's error type and status, and leaves nothing behind.

use aws_sdk_lambda::operation::create_function::builders::CreateFunctionFluentBuilder;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, EphemeralStorage, FunctionCode, Runtime};

use crate::support::{create_python, error_of, python_zip, Harness, ROLE};

fn valid(client: &aws_sdk_lambda::Client, name: &str) -> CreateFunctionFluentBuilder {
    client
        .create_function()
        .function_name(name)
        .runtime(Runtime::Python312)
        .handler("app.handler")
        .role(ROLE)
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(python_zip()))
                .build(),
        )
}

async fn refused(builder: CreateFunctionFluentBuilder) -> (String, u16) {
    let err = builder.send().await.expect_err("request must be refused");
    error_of(&err)
}

#[tokio::test]
async fn create_validation_errors_have_aws_types() {
    let h = Harness::start().await;
    let c = h.client();
    let validation = ("ValidationException".to_owned(), 400);
    let invalid = ("InvalidParameterValueException".to_owned(), 400);
    let big_value = "x".repeat(4100);
    let cases: Vec<(&str, CreateFunctionFluentBuilder, (String, u16))> = vec![
        ("bad name", valid(&c, "bad name!"), validation.clone()),
        ("long name", valid(&c, &"n".repeat(65)), validation.clone()),
        (
            "unknown runtime",
            valid(&c, "f").runtime(Runtime::from("cobol85")),
            validation.clone(),
        ),
        (
            "unsupported runtime",
            valid(&c, "f").runtime(Runtime::Java21),
            invalid.clone(),
        ),
        (
            "handler with space",
            valid(&c, "f").handler("app handler"),
            validation.clone(),
        ),
        (
            "handler without function",
            valid(&c, "f").handler("app"),
            invalid.clone(),
        ),
        (
            "handler escaping task root",
            valid(&c, "f").handler("../x.handler"),
            invalid.clone(),
        ),
        (
            "memory too small",
            valid(&c, "f").memory_size(64),
            validation.clone(),
        ),
        (
            "memory too large",
            valid(&c, "f").memory_size(10_241),
            invalid.clone(),
        ),
        (
            "timeout zero",
            valid(&c, "f").timeout(0),
            validation.clone(),
        ),
        (
            "timeout too long",
            valid(&c, "f").timeout(901),
            invalid.clone(),
        ),
        (
            "ephemeral too small",
            valid(&c, "f").ephemeral_storage(
                EphemeralStorage::builder()
                    .size(100)
                    .build()
                    .expect("storage"),
            ),
            validation.clone(),
        ),
        (
            "ephemeral too large",
            valid(&c, "f").ephemeral_storage(
                EphemeralStorage::builder()
                    .size(10_241)
                    .build()
                    .expect("storage"),
            ),
            validation.clone(),
        ),
        (
            "environment over 4 KB",
            valid(&c, "f").environment(
                Environment::builder()
                    .variables("BIG", big_value.as_str())
                    .build(),
            ),
            invalid.clone(),
        ),
        (
            "reserved environment key",
            valid(&c, "f").environment(Environment::builder().variables("AWS_REGION", "x").build()),
            invalid.clone(),
        ),
        (
            "bad environment key",
            valid(&c, "f").environment(Environment::builder().variables("1BAD", "x").build()),
            validation.clone(),
        ),
        (
            "bad role",
            valid(&c, "f").role("not-a-role"),
            validation.clone(),
        ),
        (
            "description too long",
            valid(&c, "f").description("d".repeat(257)),
            validation.clone(),
        ),
        (
            "S3 code",
            valid(&c, "f").code(FunctionCode::builder().s3_bucket("b").s3_key("k").build()),
            invalid.clone(),
        ),
        (
            "not a zip",
            valid(&c, "f").code(
                FunctionCode::builder()
                    .zip_file(Blob::new(b"hello".to_vec()))
                    .build(),
            ),
            invalid.clone(),
        ),
    ];
    for (what, builder, expected) in cases {
        assert_eq!(refused(builder).await, expected, "{what}");
    }
    let listed = c.list_functions().send().await.expect("list");
    assert!(
        listed.functions().is_empty(),
        "no refused create left a function"
    );
}

#[tokio::test]
async fn duplicates_and_unknown_functions() {
    let h = Harness::start().await;
    let c = h.client();
    create_python(&c, "twice").await;
    assert_eq!(
        refused(valid(&c, "twice")).await,
        ("ResourceConflictException".into(), 409)
    );
    let err = c
        .get_function()
        .function_name("nobody")
        .send()
        .await
        .expect_err("unknown");
    assert_eq!(error_of(&err), ("ResourceNotFoundException".into(), 404));
    let err = c
        .update_function_configuration()
        .function_name("nobody")
        .memory_size(256)
        .send()
        .await
        .expect_err("unknown");
    assert_eq!(error_of(&err), ("ResourceNotFoundException".into(), 404));
    let err = c
        .update_function_configuration()
        .function_name("twice")
        .memory_size(20_000)
        .send()
        .await
        .expect_err("too much memory");
    assert_eq!(
        error_of(&err),
        ("InvalidParameterValueException".into(), 400)
    );
}

/// What a raw HTTP client gets: status, error type header and the JSON body.
async fn raw(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, String, serde_json::Value) {
    let response = reqwest::Client::new()
        .request(method, h.server.url(path))
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("x-amzn-ErrorType")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, kind, body)
}

#[tokio::test]
async fn malformed_bodies_are_client_errors_never_500() {
    let h = Harness::start().await;
    let post = reqwest::Method::POST;
    for body in [
        "{not json",
        "",
        "[]",
        r#"{"FunctionName": 42}"#,
        r#"{"FunctionName":"f","MemorySize":"lots"}"#,
    ] {
        let (status, kind, json) = raw(&h, post.clone(), "/2015-03-31/functions", body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(kind, "InvalidRequestContentException", "{body}");
        assert_eq!(json["Type"], "User", "{body}");
        assert!(
            json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    let (status, kind, _) = raw(
        &h,
        reqwest::Method::PUT,
        "/2015-03-31/functions/f/configuration",
        "{]",
    )
    .await;
    assert_eq!(
        (status, kind.as_str()),
        (400, "InvalidRequestContentException")
    );
    let (status, kind, json) = raw(&h, reqwest::Method::GET, "/2015-03-31/functions/x", "").await;
    assert_eq!((status, kind.as_str()), (404, "ResourceNotFoundException"));
    assert_eq!(
        json["Message"],
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:x"
    );
    let (status, kind, _) = raw(
        &h,
        reqwest::Method::GET,
        "/2015-03-31/functions/f?MaxItems=x",
        "",
    )
    .await;
    assert_eq!((status, kind.as_str()), (404, "ResourceNotFoundException"));
    let (status, kind, _) = raw(
        &h,
        reqwest::Method::GET,
        "/2015-03-31/functions/?MaxItems=0",
        "",
    )
    .await;
    assert_eq!((status, kind.as_str()), (400, "ValidationException"));
}

#[tokio::test]
async fn oversized_requests_are_refused_before_parsing() {
    let h = Harness::start().await;
    // A body past the CreateFunction limit (base64 of 50 MB plus its JSON).
    let body = vec![b' '; 69_905_068];
    let (status, kind, json) = raw(&h, reqwest::Method::POST, "/2015-03-31/functions", body).await;
    assert_eq!(
        (status, kind.as_str()),
        (413, "RequestEntityTooLargeException")
    );
    assert_eq!(
        json["message"],
        "Request must be smaller than 69905067 bytes for the CreateFunction operation"
    );

    // A zip over 50 MB inside a body under the limit.
    use base64::Engine as _;
    let zip = vec![0u8; 52_428_801];
    let body = format!(
        r#"{{"FunctionName":"big","Runtime":"python3.12","Handler":"app.handler","Role":"{ROLE}","Code":{{"ZipFile":"{}"}}}}"#,
        base64::engine::general_purpose::STANDARD.encode(zip)
    );
    let (status, kind, _) = raw(&h, reqwest::Method::POST, "/2015-03-31/functions", body).await;
    assert_eq!(
        (status, kind.as_str()),
        (413, "RequestEntityTooLargeException")
    );
}
