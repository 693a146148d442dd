//! `nimbus schedules add|list|remove`: schedules that invoke a function, through the server's
//! EventBridge Scheduler API (`POST/GET/DELETE /schedules/{Name}`, `GET /schedules`) — the same
//! API `aws scheduler … --endpoint-url` talks to.
//!
//! ```text
//! nimbus schedules add nightly 'cron(0 3 * * ? *)' report --timezone Europe/Berlin
//! nimbus schedules add poll 'rate(5 minutes)' worker:live --input '{"queue": "jobs"}'
//! nimbus schedules list
//! nimbus schedules remove nightly
//! ```
//!
//! `add` names the function by its ARN, as the API requires: a plain name (optionally with
//! `:VERSION` or `:ALIAS`) is looked up with GetFunction first, which also fails early and
//! clearly if the function does not exist.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use reqwest::{Method, RequestBuilder, Url};
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{ApiError, ClientArgs, LambdaClient};
use super::output::{print_json, write_stdout, OutputFormat, Style, Table};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// ListSchedules' largest page.
const PAGE_SIZE: &str = "100";

/// The `schedules` subcommands.
#[derive(Debug, Subcommand)]
pub enum SchedulesCommand {
    /// Create a schedule that invokes a function asynchronously.
    Add(AddArgs),
    /// List schedules with their expression, target and next fire.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Delete a schedule (the function stays).
    #[command(visible_alias = "rm")]
    Remove(RemoveArgs),
}

/// Arguments of `schedules add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Schedule name: 1–64 letters, digits, '-', '_' or '.'.
    pub name: String,
    /// When it fires: 'rate(5 minutes)', 'cron(0 8 ? * MON-FRI *)' or 'at(2026-07-01T09:00:00)'.
    pub expression: String,
    /// The function: NAME, NAME:VERSION, NAME:ALIAS or a function ARN.
    pub function: String,
    /// IANA time zone cron and at times are read in, e.g. Europe/Berlin (default UTC).
    #[arg(long, value_name = "TZ")]
    pub timezone: Option<String>,
    /// JSON sent on every fire instead of the EventBridge Scheduled Event.
    #[arg(long, value_name = "JSON")]
    pub input: Option<String>,
    /// A description of the schedule.
    #[arg(long, short)]
    pub description: Option<String>,
    /// Create it disabled.
    #[arg(long)]
    pub disabled: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Arguments of `schedules list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Arguments of `schedules remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Schedule name.
    pub name: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

impl SchedulesCommand {
    /// Runs the subcommand, printing its result on stdout.
    pub async fn run(self) -> Result<()> {
        match self {
            SchedulesCommand::Add(args) => add(args).await,
            SchedulesCommand::List(args) => list(args).await,
            SchedulesCommand::Remove(args) => remove(args).await,
        }
    }
}

async fn add(args: AddArgs) -> Result<()> {
    if let Some(input) = &args.input {
        serde_json::from_str::<Value>(input)
            .with_context(|| format!("--input must be JSON, got {input:?}"))?;
    }
    let lambda = args.client.client()?;
    let target = target_arn(&lambda, &args.function).await?;
    let body = create_body(&args, &target);
    let answer = SchedulerClient::new(&lambda)?
        .create_schedule(&args.name, &body)
        .await?;
    match args.client.output {
        OutputFormat::Json => print_json(&answer),
        OutputFormat::Table => {
            let arn = answer["ScheduleArn"].as_str().unwrap_or_default();
            write_stdout(&format!(
                "created schedule {} ({arn}): {} → {}\n",
                args.name,
                args.expression,
                short_target(&target)
            ))
        }
    }
}

async fn list(args: ListArgs) -> Result<()> {
    let client = SchedulerClient::new(&args.client.client()?)?;
    // ListSchedules' summaries lack the expression; GetSchedule has everything.
    let mut schedules = Vec::new();
    for name in client.list_schedule_names().await? {
        match client.get_schedule(&name).await {
            Ok(schedule) => schedules.push(schedule),
            // Deleted between the two calls.
            Err(err) if ApiError::find(&err).is_some_and(ApiError::is_not_found) => {}
            Err(err) => return Err(err),
        }
    }
    match args.client.output {
        OutputFormat::Json => print_json(&json!({ "Schedules": schedules })),
        OutputFormat::Table => {
            let typed = schedules
                .iter()
                .map(|s| Schedule::deserialize(s).context("read a schedule from the server"))
                .collect::<Result<Vec<_>>>()?;
            write_stdout(&list_table(&typed, Utc::now()).render(Style::for_stdout()))
        }
    }
}

async fn remove(args: RemoveArgs) -> Result<()> {
    SchedulerClient::new(&args.client.client()?)?
        .delete_schedule(&args.name)
        .await?;
    match args.client.output {
        OutputFormat::Json => print_json(&json!({"Name": args.name, "Deleted": true})),
        OutputFormat::Table => write_stdout(&format!("removed schedule {}\n", args.name)),
    }
}

/// CreateSchedule's body.
fn create_body(args: &AddArgs, target: &str) -> Value {
    let mut target_json = json!({ "Arn": target });
    if let Some(input) = &args.input {
        target_json["Input"] = json!(input);
    }
    let mut body = json!({
        "ScheduleExpression": args.expression,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": target_json,
        "State": if args.disabled { "DISABLED" } else { "ENABLED" },
    });
    if let Some(tz) = &args.timezone {
        body["ScheduleExpressionTimezone"] = json!(tz);
    }
    if let Some(description) = &args.description {
        body["Description"] = json!(description);
    }
    body
}

/// The function ARN the schedule targets: given as is, or looked up by name.
async fn target_arn(lambda: &LambdaClient, function: &str) -> Result<String> {
    if function.starts_with("arn:") {
        return Ok(function.to_owned());
    }
    let (name, qualifier) = match function.split_once(':') {
        Some((name, qualifier)) => (name, Some(qualifier)),
        None => (function, None),
    };
    let found = lambda.get_function(name).await.map_err(|err| {
        if ApiError::find(&err).is_some_and(ApiError::is_not_found) {
            anyhow!(
                "there is no function {name} at {}; deploy it first (nimbus deploy)",
                lambda.endpoint()
            )
        } else {
            err
        }
    })?;
    let arn = found
        .typed
        .configuration
        .function_arn
        .ok_or_else(|| anyhow!("the server did not tell the ARN of function {name}"))?;
    qualified_arn(&arn, qualifier)
}

/// `arn:aws:lambda:REGION:ACCOUNT:function:NAME`, with `:QUALIFIER` if given (any qualifier
/// the server put on `arn` is dropped first).
fn qualified_arn(arn: &str, qualifier: Option<&str>) -> Result<String> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() < 7 || parts[2] != "lambda" || parts[5] != "function" {
        bail!("the server answered with {arn:?}, which is not a function ARN");
    }
    let base = parts[..7].join(":");
    Ok(match qualifier {
        Some(q) => format!("{base}:{q}"),
        None => base,
    })
}

/// `report` or `report:live` for a function ARN of any account; anything else as is.
fn short_target(arn: &str) -> String {
    match arn.split_once(":function:") {
        Some((_, function)) => function.to_owned(),
        None => arn.to_owned(),
    }
}

/// GetSchedule's answer, as far as the table shows it (lenient: unknown fields ignored).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Schedule {
    name: String,
    state: Option<String>,
    schedule_expression: Option<String>,
    schedule_expression_timezone: Option<String>,
    creation_date: Option<f64>,
    target: Option<Target>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Target {
    arn: String,
}

/// NAME | STATE | SCHEDULE | TIME ZONE | TARGET | NEXT FIRE (UTC), sorted by name. The next
/// fire is worked out here from the expression (rates count from the creation date); a
/// disabled schedule has none.
fn list_table(schedules: &[Schedule], now: DateTime<Utc>) -> Table {
    let mut schedules = schedules.to_vec();
    schedules.sort_by(|a, b| a.name.cmp(&b.name));
    let mut table = Table::new([
        "NAME",
        "STATE",
        "SCHEDULE",
        "TIME ZONE",
        "TARGET",
        "NEXT FIRE (UTC)",
    ]);
    for s in schedules {
        let next = next_fire(&s, now)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "-".to_owned());
        table.push_row([
            s.name.clone(),
            s.state.clone().unwrap_or_default(),
            s.schedule_expression.clone().unwrap_or_default(),
            s.schedule_expression_timezone
                .clone()
                .unwrap_or_else(|| "UTC".to_owned()),
            s.target
                .as_ref()
                .map(|t| short_target(&t.arn))
                .unwrap_or_default(),
            next,
        ]);
    }
    table
}

fn next_fire(s: &Schedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if s.state.as_deref() != Some("ENABLED") {
        return None;
    }
    let created = s
        .creation_date
        .and_then(|secs| {
            // Epoch seconds with a fraction; milliseconds are all the API carries.
            #[allow(clippy::cast_possible_truncation)]
            let millis = (secs * 1000.0).round() as i64;
            DateTime::from_timestamp_millis(millis)
        })
        .unwrap_or(now);
    let schedule = nimbus_core::schedule::Schedule::new(
        s.schedule_expression.as_deref()?,
        s.schedule_expression_timezone.as_deref(),
        created,
    )
    .ok()?;
    schedule.next_after(now.max(created))
}

/// Typed calls of the Scheduler API on the endpoint of a [`LambdaClient`].
#[derive(Debug, Clone)]
struct SchedulerClient {
    http: reqwest::Client,
    base: Url,
    endpoint: String,
}

impl SchedulerClient {
    /// A client for the endpoint `lambda` talks to (already checked by `LambdaClient::new`).
    fn new(lambda: &LambdaClient) -> Result<Self> {
        let endpoint = lambda.endpoint().to_owned();
        let base = Url::parse(&endpoint)
            .with_context(|| format!("parse the endpoint URL {endpoint:?}"))?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("nimbus-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("build the HTTP client")?;
        Ok(Self {
            http,
            base,
            endpoint,
        })
    }

    /// `<endpoint>/schedules[/<name>]`, the name percent-encoded.
    fn url(&self, name: Option<&str>) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("schedules");
            if let Some(name) = name {
                path.push(name);
            }
        }
        url
    }

    async fn create_schedule(&self, name: &str, body: &Value) -> Result<Value> {
        let request = self.http.post(self.url(Some(name))).json(body);
        self.send(request)
            .await
            .with_context(|| format!("create schedule {name}"))
    }

    async fn get_schedule(&self, name: &str) -> Result<Value> {
        self.send(self.http.get(self.url(Some(name))))
            .await
            .with_context(|| format!("get schedule {name}"))
    }

    async fn delete_schedule(&self, name: &str) -> Result<()> {
        self.send(self.http.request(Method::DELETE, self.url(Some(name))))
            .await
            .with_context(|| format!("remove schedule {name}"))?;
        Ok(())
    }

    /// ListSchedules, following `NextToken` through every page.
    async fn list_schedule_names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = self.url(None);
            url.query_pairs_mut().append_pair("MaxResults", PAGE_SIZE);
            if let Some(token) = &token {
                url.query_pairs_mut().append_pair("NextToken", token);
            }
            let page = self
                .send(self.http.get(url))
                .await
                .context("list schedules")?;
            let schedules = page["Schedules"].as_array().ok_or_else(|| {
                anyhow!("list schedules: the server's answer has no Schedules list")
            })?;
            names.extend(
                schedules
                    .iter()
                    .filter_map(|s| s["Name"].as_str().map(str::to_owned)),
            );
            match page["NextToken"].as_str().filter(|t| !t.is_empty()) {
                Some(next) if token.as_deref() == Some(next) => {
                    bail!("list schedules: the server returned the same NextToken twice ({next})")
                }
                Some(next) => token = Some(next.to_owned()),
                None => return Ok(names),
            }
        }
    }

    /// Send, and read a JSON answer; an error status becomes an [`ApiError`].
    async fn send(&self, request: RequestBuilder) -> Result<Value> {
        let response = request
            .send()
            .await
            .map_err(|err| self.transport_error(err))?;
        let status = response.status();
        let error_type = response
            .headers()
            .get("x-amzn-ErrorType")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .bytes()
            .await
            .map_err(|err| self.transport_error(err))?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), error_type.as_deref(), &body).into());
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body).with_context(|| {
            let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            format!("read the server's answer {text:?}")
        })
    }

    fn transport_error(&self, err: reqwest::Error) -> anyhow::Error {
        let endpoint = &self.endpoint;
        if err.is_connect() {
            anyhow!(
                "no Nimbus server answered at {endpoint}; start one with `nimbus server`, or \
                 point --endpoint (NIMBUS_ENDPOINT) at a running one"
            )
        } else if err.is_timeout() {
            anyhow!(
                "the Nimbus server at {endpoint} did not answer within {} s",
                REQUEST_TIMEOUT.as_secs()
            )
        } else {
            anyhow::Error::new(err).context(format!("talk to the Nimbus server at {endpoint}"))
        }
    }
}

/// An error answer in rest-json form: the code from `x-amzn-ErrorType` (text before any `:`),
/// the message from `Message` (or `message`, or the body itself).
fn api_error(status: u16, error_type: Option<&str>, body: &[u8]) -> ApiError {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| json.as_ref()?.get(name)?.as_str().map(str::to_owned);
    let code = error_type
        .map(|h| h.split(':').next().unwrap_or(h).trim().to_owned())
        .or_else(|| field("__type"))
        .filter(|c| !c.is_empty());
    let message = field("Message")
        .or_else(|| field("message"))
        .unwrap_or_else(|| {
            String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(500)
                .collect()
        });
    ApiError {
        status,
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test instant is RFC 3339")
            .with_timezone(&Utc)
    }

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: SchedulesCommand,
    }

    fn parse(args: &[&str]) -> SchedulesCommand {
        Cli::try_parse_from(std::iter::once("schedules").chain(args.iter().copied()))
            .expect("valid arguments")
            .command
    }

    #[test]
    fn add_parses_positionals_and_flags_into_the_create_body() {
        let SchedulesCommand::Add(args) = parse(&[
            "add",
            "poll",
            "rate(5 minutes)",
            "worker:live",
            "--timezone",
            "Europe/Berlin",
            "--input",
            r#"{"queue":"jobs"}"#,
            "--disabled",
        ]) else {
            panic!("not add");
        };
        assert_eq!(args.name, "poll");
        let arn = "arn:aws:lambda:us-east-1:000000000000:function:worker:live";
        assert_eq!(
            create_body(&args, arn),
            json!({
                "ScheduleExpression": "rate(5 minutes)",
                "ScheduleExpressionTimezone": "Europe/Berlin",
                "FlexibleTimeWindow": {"Mode": "OFF"},
                "Target": {"Arn": arn, "Input": "{\"queue\":\"jobs\"}"},
                "State": "DISABLED",
            })
        );
        let SchedulesCommand::Add(plain) = parse(&["add", "n", "cron(0 3 * * ? *)", "f"]) else {
            panic!("not add");
        };
        let body = create_body(&plain, "arn:aws:lambda:r-x-1:000000000000:function:f");
        assert_eq!(body["State"], "ENABLED");
        assert!(body.get("ScheduleExpressionTimezone").is_none());
        assert!(body["Target"].get("Input").is_none());
        assert!(matches!(parse(&["ls"]), SchedulesCommand::List(_)));
        assert!(matches!(parse(&["rm", "n"]), SchedulesCommand::Remove(_)));
    }

    #[test]
    fn function_arns_are_qualified_and_shortened() {
        let arn = "arn:aws:lambda:us-east-1:000000000000:function:report";
        assert_eq!(qualified_arn(arn, None).expect("arn"), arn);
        assert_eq!(
            qualified_arn(&format!("{arn}:$LATEST"), Some("live")).expect("arn"),
            format!("{arn}:live")
        );
        assert!(qualified_arn("report", None).is_err());
        assert_eq!(short_target(&format!("{arn}:live")), "report:live");
        assert_eq!(short_target("arn:aws:sqs:x"), "arn:aws:sqs:x");
    }

    #[test]
    fn urls_are_percent_encoded_under_the_endpoint() -> Result<()> {
        let client = SchedulerClient::new(&LambdaClient::new("127.0.0.1:9001/")?)?;
        assert_eq!(
            client.url(Some("a b")).as_str(),
            "http://127.0.0.1:9001/schedules/a%20b"
        );
        assert_eq!(client.url(None).as_str(), "http://127.0.0.1:9001/schedules");
        let prefixed = SchedulerClient::new(&LambdaClient::new("http://host:1/prefix")?)?;
        assert_eq!(
            prefixed.url(Some("n")).as_str(),
            "http://host:1/prefix/schedules/n"
        );
        Ok(())
    }

    #[test]
    fn error_answers_keep_code_and_message() {
        let err = api_error(
            404,
            Some("ResourceNotFoundException:http://internal.amazon.com/"),
            br#"{"Message":"Schedule x does not exist."}"#,
        );
        assert!(err.is_not_found());
        assert_eq!(
            err.to_string(),
            "ResourceNotFoundException: Schedule x does not exist."
        );
        let err = api_error(502, None, b"bad gateway");
        assert_eq!(err.code, None);
        assert_eq!(err.message, "bad gateway");
    }

    #[test]
    fn list_table_sorts_and_shows_the_next_fire() {
        let now = t("2026-01-01T10:07:00Z");
        let schedule = |name: &str, expr: &str, tz: Option<&str>, state: &str| Schedule {
            name: name.to_owned(),
            state: Some(state.to_owned()),
            schedule_expression: Some(expr.to_owned()),
            schedule_expression_timezone: tz.map(str::to_owned),
            creation_date: Some(1_767_261_600.0), // 2026-01-01T10:00:00Z
            target: Some(Target {
                arn: "arn:aws:lambda:us-east-1:000000000000:function:report:live".to_owned(),
            }),
        };
        let rows = [
            schedule("poll", "rate(5 minutes)", None, "ENABLED"),
            schedule(
                "nightly",
                "cron(0 3 * * ? *)",
                Some("Europe/Berlin"),
                "ENABLED",
            ),
            schedule("paused", "rate(1 hour)", None, "DISABLED"),
        ];
        let expected = "\
NAME     STATE     SCHEDULE           TIME ZONE      TARGET       NEXT FIRE (UTC)
nightly  ENABLED   cron(0 3 * * ? *)  Europe/Berlin  report:live  2026-01-02 02:00:00
paused   DISABLED  rate(1 hour)       UTC            report:live  -
poll     ENABLED   rate(5 minutes)    UTC            report:live  2026-01-01 10:10:00
";
        assert_eq!(list_table(&rows, now).render(Style::PLAIN), expected);
    }
}
