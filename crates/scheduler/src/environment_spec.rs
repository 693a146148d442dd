//! What an environment of a function version looks like: its id, log stream and the standard
//! Lambda environment variables (`lambda-compat.md` §3.1) merged with the owner's.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use nimbus_core::runtime::RuntimeFamily;
use nimbus_core::sandbox::EnvironmentSpec;
use nimbus_core::{AccountContext, Function};

/// The spec of a new environment of `function` at `version` (`$LATEST` or a number) whose code
/// is at `code_dir`.
pub(crate) fn environment_spec(
    function: &Function,
    version: &str,
    account: &AccountContext,
    code_dir: PathBuf,
    opt_dir: Option<PathBuf>,
) -> EnvironmentSpec {
    let s = &function.settings;
    let environment_id = uuid::Uuid::new_v4().simple().to_string();
    let log_stream = format!(
        "{}/[{version}]{environment_id}",
        chrono::Utc::now().format("%Y/%m/%d")
    );
    let log_group = s.logging.log_group.clone();
    let mut vars: BTreeMap<String, String> = [
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin"),
        ("LANG", "en_US.UTF-8"),
        ("TZ", ":UTC"),
        (
            "LD_LIBRARY_PATH",
            "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
        ),
        ("LAMBDA_TASK_ROOT", "/var/task"),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut set = |k: &str, v: String| {
        vars.insert(k.to_owned(), v);
    };
    set("_HANDLER", s.handler.clone());
    set("AWS_REGION", account.region.clone());
    set("AWS_DEFAULT_REGION", account.region.clone());
    set("AWS_LAMBDA_FUNCTION_NAME", function.name.to_string());
    set("AWS_LAMBDA_FUNCTION_VERSION", version.to_owned());
    set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", s.memory_mb.to_string());
    set("AWS_LAMBDA_LOG_GROUP_NAME", log_group.clone());
    set("AWS_LAMBDA_LOG_STREAM_NAME", log_stream.clone());
    if s.logging.log_format == "JSON" {
        set("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned());
        if let Some(level) = &s.logging.application_log_level {
            set("AWS_LAMBDA_LOG_LEVEL", level.clone());
        }
    }
    match s.runtime.family() {
        // Layer directories come first, as on Lambda (`python/`, `python/lib/pythonX.Y/
        // site-packages`, `nodejs/node_modules`, `nodejs/nodeNN/node_modules`).
        RuntimeFamily::Python => {
            set("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", s.runtime));
            set(
                "PYTHONPATH",
                format!(
                    "/opt/python/lib/{}/site-packages:/opt/python:/var/runtime",
                    s.runtime
                ),
            );
        }
        RuntimeFamily::Node => {
            set("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", s.runtime));
            let major = s
                .runtime
                .as_str()
                .trim_start_matches("nodejs")
                .trim_end_matches(".x");
            set(
                "NODE_PATH",
                format!(
                    "/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:\
                     /var/runtime/node_modules:/var/runtime:/var/task"
                ),
            );
        }
        RuntimeFamily::Provided => {}
    }
    // The owner's variables win over the unreserved defaults (PATH, TZ, …); reserved keys were
    // refused when the function was configured.
    vars.extend(s.environment.clone());
    EnvironmentSpec {
        environment_id,
        function_name: function.name.to_string(),
        function_version: version.to_owned(),
        runtime: s.runtime.clone(),
        handler: s.handler.clone(),
        memory_mb: s.memory_mb,
        ephemeral_storage_mb: s.ephemeral_storage_mb,
        timeout: Duration::from_secs(u64::from(s.timeout_s)),
        code_dir,
        opt_dir,
        variables: vars,
        log_group,
        log_stream,
    }
}
