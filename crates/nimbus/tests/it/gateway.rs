//! The HTTP gateway: function URLs (managed through the SDK, invoked with plain HTTP) and
//! HTTP-API-style routes, against real Python functions that echo their event.

use aws_sdk_lambda::types::{Cors, FunctionUrlAuthType, InvokeMode, Runtime};
use base64::Engine as _;
use serde_json::{json, Value};

use crate::invoke::deploy;
use crate::support::{error_of, message_of, Harness, TestServer};

/// Echoes the event, except on a few paths that shape the response.
const HANDLER: &[u8] = br#"import json

def handler(event, context):
    path = event.get("rawPath", "")
    if path == "/fail":
        raise RuntimeError("boom")
    if path == "/respond":
        return json.loads(event["body"])
    if path == "/string":
        return "hello"
    if path == "/invalid":
        return {"statusCode": "not a number"}
    if path == "/binary":
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/octet-stream"},
            "body": event.get("body", ""),
            "isBase64Encoded": event.get("isBase64Encoded", False),
        }
    return event
"#;

async fn deploy_echo(h: &Harness, name: &str) {
    deploy(
        h,
        name,
        Runtime::Python312,
        "app.handler",
        &[("app.py", HANDLER, 0o644)],
    )
    .await;
}

/// A client that sends every host name to the test's gateway, as `*.localhost` resolves to
/// loopback for browsers and curl.
pub(crate) fn http_for(server: &TestServer, url: &str) -> reqwest::Client {
    let host = reqwest::Url::parse(url)
        .expect("function URL")
        .host_str()
        .expect("host")
        .to_owned();
    reqwest::Client::builder()
        .resolve(
            &host,
            std::net::SocketAddr::from(([127, 0, 0, 1], server.gateway_port)),
        )
        .build()
        .expect("client")
}

/// Create a URL for `name` and return it (trailing slash removed).
async fn create_url(h: &Harness, name: &str, cors: Option<Cors>) -> String {
    let out = h
        .client()
        .create_function_url_config()
        .function_name(name)
        .auth_type(FunctionUrlAuthType::None)
        .set_cors(cors)
        .send()
        .await
        .expect("create URL");
    out.function_url().trim_end_matches('/').to_owned()
}

#[tokio::test]
async fn gateway_url_config_crud_through_the_sdk() {
    let h = Harness::start().await;
    let client = h.client();
    deploy_echo(&h, "urls").await;

    let created = client
        .create_function_url_config()
        .function_name("urls")
        .auth_type(FunctionUrlAuthType::None)
        .send()
        .await
        .expect("create");
    let url = created.function_url().to_owned();
    let port = h.server.gateway_port;
    let id = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split_once(".lambda-url.us-east-1.localhost:"))
        .map(|(id, rest)| {
            assert_eq!(rest, format!("{port}/"));
            id.to_owned()
        })
        .unwrap_or_else(|| panic!("unexpected URL {url}"));
    assert_eq!(id.len(), 32);
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    assert_eq!(
        created.function_arn(),
        "arn:aws:lambda:us-east-1:000000000000:function:urls"
    );
    assert_eq!(created.auth_type(), &FunctionUrlAuthType::None);
    assert_eq!(created.invoke_mode(), Some(&InvokeMode::Buffered));
    assert!(created.creation_time().ends_with("+0000"));

    let err = client
        .create_function_url_config()
        .function_name("urls")
        .auth_type(FunctionUrlAuthType::None)
        .send()
        .await
        .expect_err("second create");
    assert_eq!(
        error_of(&err),
        ("ResourceConflictException".to_owned(), 409)
    );

    let got = client
        .get_function_url_config()
        .function_name("urls")
        .send()
        .await
        .expect("get");
    assert_eq!(got.function_url(), url);
    assert_eq!(got.creation_time(), created.creation_time());

    let updated = client
        .update_function_url_config()
        .function_name("urls")
        .cors(
            Cors::builder()
                .allow_origins("https://app.example")
                .max_age(60)
                .build(),
        )
        .invoke_mode(InvokeMode::ResponseStream)
        .send()
        .await
        .expect("update");
    assert_eq!(updated.function_url(), url, "the URL never changes");
    assert_eq!(updated.invoke_mode(), Some(&InvokeMode::ResponseStream));
    assert_eq!(
        updated.cors().and_then(Cors::max_age),
        Some(60),
        "{updated:?}"
    );
    assert!(updated.last_modified_time().ends_with("+0000"));

    // Qualifiers: aliases only; `$LATEST` and versions fail the model's pattern.
    for qualifier in ["$LATEST", "1"] {
        let err = client
            .get_function_url_config()
            .function_name("urls")
            .qualifier(qualifier)
            .send()
            .await
            .expect_err("qualifier refused");
        assert_eq!(error_of(&err), ("ValidationException".to_owned(), 400));
    }
    let err = client
        .create_function_url_config()
        .function_name("urls")
        .qualifier("live")
        .auth_type(FunctionUrlAuthType::None)
        .send()
        .await
        .expect_err("no such alias");
    assert_eq!(
        error_of(&err),
        ("ResourceNotFoundException".to_owned(), 404)
    );
    client
        .create_alias()
        .function_name("urls")
        .name("live")
        .function_version("$LATEST")
        .send()
        .await
        .expect("alias");
    let live = client
        .create_function_url_config()
        .function_name("urls")
        .qualifier("live")
        .auth_type(FunctionUrlAuthType::None)
        .send()
        .await
        .expect("alias URL");
    assert_eq!(
        live.function_arn(),
        "arn:aws:lambda:us-east-1:000000000000:function:urls:live"
    );
    assert_ne!(live.function_url(), url);

    let err = client
        .create_function_url_config()
        .function_name("urls")
        .qualifier("other")
        .auth_type(FunctionUrlAuthType::AwsIam)
        .send()
        .await
        .expect_err("AWS_IAM");
    assert_eq!(
        error_of(&err),
        ("InvalidParameterValueException".to_owned(), 400)
    );
    assert!(message_of(&err).contains("AWS_IAM"), "{}", message_of(&err));

    let page = client
        .list_function_url_configs()
        .function_name("urls")
        .max_items(1)
        .send()
        .await
        .expect("list");
    assert_eq!(page.function_url_configs().len(), 1);
    let marker = page.next_marker().expect("more").to_owned();
    let rest = client
        .list_function_url_configs()
        .function_name("urls")
        .marker(marker)
        .send()
        .await
        .expect("list rest");
    assert_eq!(rest.function_url_configs().len(), 1);
    assert_eq!(rest.next_marker(), None);
    let err = client
        .list_function_url_configs()
        .function_name("urls")
        .max_items(51)
        .send()
        .await
        .expect_err("MaxItems 51");
    assert_eq!(error_of(&err), ("ValidationException".to_owned(), 400));

    client
        .delete_function_url_config()
        .function_name("urls")
        .qualifier("live")
        .send()
        .await
        .expect("delete");
    let err = client
        .get_function_url_config()
        .function_name("urls")
        .qualifier("live")
        .send()
        .await
        .expect_err("deleted");
    assert_eq!(
        error_of(&err),
        ("ResourceNotFoundException".to_owned(), 404)
    );
    assert_eq!(
        message_of(&err),
        "The resource you requested does not exist."
    );
    let err = client
        .delete_function_url_config()
        .function_name("urls")
        .qualifier("live")
        .send()
        .await
        .expect_err("deleted twice");
    assert_eq!(
        error_of(&err),
        ("ResourceNotFoundException".to_owned(), 404)
    );
    let err = client
        .list_function_url_configs()
        .function_name("missing")
        .send()
        .await
        .expect_err("no function");
    assert_eq!(
        error_of(&err),
        ("ResourceNotFoundException".to_owned(), 404)
    );

    // Deleting the function deletes its URL: the URL stops answering.
    client
        .delete_function()
        .function_name("urls")
        .send()
        .await
        .expect("delete function");
    let http = http_for(&h.server, &url);
    let response = http.get(&url).send().await.expect("request");
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn gateway_function_url_sends_payload_v2_events() {
    let h = Harness::start().await;
    deploy_echo(&h, "echo").await;
    let url = create_url(&h, "echo", None).await;
    let http = http_for(&h.server, &url);
    let host = reqwest::Url::parse(&url)
        .expect("url")
        .host_str()
        .expect("host")
        .to_owned();

    let response = http
        .get(format!("{url}/items/a%20b?a=1&a=2&b=x+y"))
        .header("x-multi", "one")
        .header("x-multi", "two")
        .header("cookie", "c1=v1; c2=v2")
        .header("user-agent", "nimbus-test")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "the JSON shortcut"
    );
    let event: Value = response.json().await.expect("event");
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "$default");
    assert_eq!(event["rawPath"], "/items/a%20b");
    assert_eq!(event["rawQueryString"], "a=1&a=2&b=x+y");
    assert_eq!(
        event["queryStringParameters"],
        json!({"a": "1,2", "b": "x y"})
    );
    assert_eq!(event["headers"]["x-multi"], "one,two");
    assert_eq!(event["cookies"], json!(["c1=v1", "c2=v2"]));
    assert!(event["headers"].get("cookie").is_none());
    assert_eq!(event["requestContext"]["http"]["method"], "GET");
    assert_eq!(event["requestContext"]["http"]["userAgent"], "nimbus-test");
    assert_eq!(event["requestContext"]["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(event["requestContext"]["domainName"], host);
    assert_eq!(event["requestContext"]["accountId"], "000000000000");
    assert!(event.get("body").is_none());
    assert!(event.get("pathParameters").is_none());

    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = http
            .request(method.clone(), format!("{url}/things"))
            .header("content-type", "application/json")
            .body(r#"{"k":1}"#)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "{method}");
        let event: Value = response.json().await.expect("event");
        assert_eq!(event["requestContext"]["http"]["method"], method.as_str());
        assert_eq!(event["body"], r#"{"k":1}"#);
        assert_eq!(event["isBase64Encoded"], false);
    }
}

#[tokio::test]
async fn gateway_function_url_maps_responses() {
    let h = Harness::start().await;
    deploy_echo(&h, "shapes").await;
    let url = create_url(&h, "shapes", None).await;
    let http = http_for(&h.server, &url);

    // A bare string result is the body, quotes included.
    let response = http.get(format!("{url}/string")).send().await.expect("GET");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.text().await.expect("body"), "\"hello\"");

    // A full response: status, headers, cookies.
    let wanted = json!({
        "statusCode": 201,
        "headers": {"content-type": "text/plain", "x-custom": "yes"},
        "cookies": ["a=1; Path=/", "b=2"],
        "body": "created",
    });
    let response = http
        .post(format!("{url}/respond"))
        .header("content-type", "application/json")
        .body(wanted.to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(response.headers()["x-custom"], "yes");
    let cookies: Vec<_> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2"]);
    assert_eq!(response.text().await.expect("body"), "created");

    // Binary bodies go in as base64 and come back decoded.
    let bytes: Vec<u8> = (0..=255u8).chain([0, 0xff, 0x80]).collect();
    let response = http
        .post(format!("{url}/binary"))
        .header("content-type", "application/octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .expect("binary");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert_eq!(response.bytes().await.expect("body").to_vec(), bytes);
    // …and the function saw base64.
    let response = http
        .post(format!("{url}/echo"))
        .header("content-type", "application/octet-stream")
        .body(vec![0u8, 1, 2])
        .send()
        .await
        .expect("binary echo");
    let event: Value = response.json().await.expect("event");
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(
        event["body"],
        base64::engine::general_purpose::STANDARD.encode([0u8, 1, 2])
    );

    // Function errors and malformed responses: 502 Internal Server Error, as function URLs.
    for path in ["/fail", "/invalid"] {
        let response = http.get(format!("{url}{path}")).send().await.expect("GET");
        assert_eq!(response.status(), 502, "{path}");
        assert_eq!(
            response.text().await.expect("body"),
            "Internal Server Error"
        );
    }
}

#[tokio::test]
async fn gateway_function_url_cors() {
    let h = Harness::start().await;
    deploy_echo(&h, "cors").await;
    let cors = Cors::builder()
        .allow_origins("https://app.example")
        .allow_methods("GET")
        .allow_methods("POST")
        .allow_headers("x-token")
        .expose_headers("x-custom")
        .allow_credentials(true)
        .max_age(300)
        .build();
    let url = create_url(&h, "cors", Some(cors)).await;
    let http = http_for(&h.server, &url);

    // Preflight: answered from the config, the function is not invoked (it would echo JSON).
    let response = http
        .request(reqwest::Method::OPTIONS, format!("{url}/respond"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-token")
        .send()
        .await
        .expect("preflight");
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(headers["access-control-allow-methods"], "GET,POST");
    assert_eq!(headers["access-control-allow-headers"], "x-token");
    assert_eq!(headers["access-control-max-age"], "300");
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert_eq!(response.text().await.expect("body"), "");

    // A preflight from another origin gets no permission.
    let response = http
        .request(reqwest::Method::OPTIONS, format!("{url}/"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("preflight");
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());

    // The actual request: the function runs and the CORS headers are added, replacing any the
    // function set itself.
    let wanted = json!({
        "statusCode": 200,
        "headers": {"x-custom": "1", "access-control-allow-origin": "*"},
        "body": "ok",
    });
    let response = http
        .post(format!("{url}/respond"))
        .header("origin", "https://app.example")
        .header("content-type", "application/json")
        .body(wanted.to_string())
        .send()
        .await
        .expect("actual");
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(headers["access-control-expose-headers"], "x-custom");
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert_eq!(headers["x-custom"], "1");
    assert_eq!(response.text().await.expect("body"), "ok");
}

#[tokio::test]
async fn gateway_unknown_url_id_is_404() {
    let h = Harness::start().await;
    let port = h.server.gateway_port;
    for host in [
        format!("{}.lambda-url.us-east-1.localhost", "a".repeat(32)),
        "short.lambda-url.us-east-1.localhost".to_owned(),
        format!("{}.lambda-url.eu-west-1.localhost", "a".repeat(32)),
    ] {
        let url = format!("http://{host}:{port}/");
        let response = http_for(&h.server, &url)
            .get(&url)
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 404, "{host}");
        let body: Value = response.json().await.expect("json");
        assert!(body.is_object());
    }
}

async fn put_route(h: &Harness, key: &str, target: &str) -> reqwest::Response {
    reqwest::Client::new()
        .put(h.server.url("/_nimbus/routes"))
        .json(&json!({"RouteKey": key, "Target": target}))
        .send()
        .await
        .expect("put route")
}

#[tokio::test]
async fn gateway_routes_match_params_greedy_and_default() {
    let h = Harness::start().await;
    deploy_echo(&h, "api").await;
    for key in ["GET /users/{id}", "ANY /files/{proxy+}", "$default"] {
        let response = put_route(&h, key, "api").await;
        assert_eq!(response.status(), 200, "{key}");
    }
    let gw = &h.server.gateway;
    let http = reqwest::Client::new();

    let event: Value = http
        .get(format!("{gw}/users/42?x=1"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("event");
    assert_eq!(event["routeKey"], "GET /users/{id}");
    assert_eq!(event["pathParameters"], json!({"id": "42"}));
    assert_eq!(event["requestContext"]["routeKey"], "GET /users/{id}");
    assert_eq!(event["queryStringParameters"], json!({"x": "1"}));

    let event: Value = http
        .delete(format!("{gw}/files/a/b/c.txt"))
        .send()
        .await
        .expect("DELETE")
        .json()
        .await
        .expect("event");
    assert_eq!(event["routeKey"], "ANY /files/{proxy+}");
    assert_eq!(event["pathParameters"], json!({"proxy": "a/b/c.txt"}));

    // POST /users/42 has no route of its own: $default takes it.
    let event: Value = http
        .post(format!("{gw}/users/42"))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("event");
    assert_eq!(event["routeKey"], "$default");
    assert!(event.get("pathParameters").is_none());

    // Without $default, an unmatched request is 404 {"message":"Not Found"}.
    let response = http
        .delete(h.server.url("/_nimbus/routes"))
        .query(&[("RouteKey", "$default")])
        .send()
        .await
        .expect("delete route");
    assert_eq!(response.status(), 204);
    let response = http
        .post(format!("{gw}/users/42"))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.text().await.expect("body"),
        r#"{"message":"Not Found"}"#
    );

    // Function errors behind a route: HTTP APIs answer 500.
    put_route(&h, "GET /fail", "api").await;
    let response = http.get(format!("{gw}/fail")).send().await.expect("GET");
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.text().await.expect("body"),
        r#"{"message":"Internal Server Error"}"#
    );

    // The routes API validates.
    let response = put_route(&h, "GET users", "api").await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("Invalid RouteKey")),
        "{body}"
    );
    let response = put_route(&h, "GET /users/{name}", "api").await;
    assert_eq!(response.status(), 409, "same shape as GET /users/{{id}}");
    let response = put_route(&h, "GET /x", "not a function!").await;
    assert_eq!(response.status(), 400);
    let response = http
        .delete(h.server.url("/_nimbus/routes"))
        .query(&[("RouteKey", "GET /nothing")])
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 404);
    let listed: Value = http
        .get(h.server.url("/_nimbus/routes"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed,
        json!({"Routes": [
            {"RouteKey": "ANY /files/{proxy+}", "Target": "api"},
            {"RouteKey": "GET /fail", "Target": "api"},
            {"RouteKey": "GET /users/{id}", "Target": "api"},
        ]})
    );
}

#[tokio::test]
async fn gateway_routes_and_urls_survive_a_restart() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    let server = TestServer::start_in(&data).await;
    let h = Harness { root, server };
    deploy_echo(&h, "durable").await;
    assert_eq!(
        put_route(&h, "GET /items/{id}", "durable").await.status(),
        200
    );
    let url = create_url(&h, "durable", None).await;
    let Harness { root, server } = h;
    server.stop().await;

    let server = TestServer::start_in(&data).await;
    let event: Value = reqwest::get(format!("{}/items/7", server.gateway))
        .await
        .expect("GET")
        .json()
        .await
        .expect("event");
    assert_eq!(event["pathParameters"], json!({"id": "7"}));
    // The URL id survives; the port is the new server's.
    let id = url
        .strip_prefix("http://")
        .and_then(|u| u.split('.').next())
        .expect("id")
        .to_owned();
    let new_url = format!(
        "http://{id}.lambda-url.us-east-1.localhost:{}",
        server.gateway_port
    );
    let response = http_for(&server, &new_url)
        .get(format!("{new_url}/string"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "\"hello\"");
    drop(root);
}

#[tokio::test]
async fn gateway_routes_through_the_cli() {
    use crate::cli::{json, nimbus};
    let h = Harness::start().await;
    deploy_echo(&h, "cli-routed").await;
    let endpoint = h.server.endpoint.clone();
    let run = move |args: &'static [&'static str]| {
        let endpoint = endpoint.clone();
        async move {
            tokio::task::spawn_blocking(move || nimbus(&endpoint, args))
                .await
                .expect("join")
        }
    };
    let (ok, out, err) = run(&["routes", "add", "GET /users/{id}", "cli-routed"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("GET /users/{id}") && out.contains("cli-routed"),
        "{out}"
    );
    let (ok, _, err) = run(&["routes", "add", "GET users", "cli-routed"]).await;
    assert!(!ok);
    assert!(err.contains("Invalid RouteKey"), "{err}");
    let (ok, out, err) = run(&["routes", "list", "--output", "json"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        json(&out),
        json!({"Routes": [{"RouteKey": "GET /users/{id}", "Target": "cli-routed"}]})
    );
    let event: Value = reqwest::get(format!("{}/users/9", h.server.gateway))
        .await
        .expect("GET")
        .json()
        .await
        .expect("event");
    assert_eq!(event["pathParameters"], json!({"id": "9"}));
    let (ok, _, err) = run(&["routes", "remove", "GET /users/{id}"]).await;
    assert!(ok, "{err}");
    let (ok, out, _) = run(&["routes", "list"]).await;
    assert!(ok);
    assert_eq!(out.trim(), "ROUTE  FUNCTION");
    let response = reqwest::get(format!("{}/users/9", h.server.gateway))
        .await
        .expect("GET");
    assert_eq!(response.status(), 404);
}
