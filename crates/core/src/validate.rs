//! Lambda's rules for function settings: raw request values in, [`FunctionSettings`] or a typed
//! error out, with the error type AWS uses for each rule (`lambda-compat.md` §6).
//!
//! Model constraints (ranges, patterns, enums) are `ValidationException`; values the model allows but
//! Lambda refuses (reserved keys, limits below the model's maximum) are `InvalidParameterValueException`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

use crate::error::ServiceError;
use crate::function::{Architecture, FunctionSettings, LoggingConfig, TracingMode};
use crate::limits::*;
use crate::names::FunctionName;
use crate::runtime::{Runtime, RuntimeFamily};

/// Environment variables the platform sets itself; an owner may not.
pub const RESERVED_ENV_KEYS: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

static ROLE_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
        .expect("role pattern compiles")
});
static ENV_KEY_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z]([a-zA-Z0-9_])+$").expect("env key pattern compiles"));
static DLQ_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)?$").expect("dlq pattern compiles")
});
static LOG_GROUP_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[\.\-_/#A-Za-z0-9]{1,512}$").expect("log group compiles"));

/// Logging settings as a request carries them.
#[derive(Debug, Clone, Default)]
pub struct LoggingInput {
    /// `LogFormat`.
    pub log_format: Option<String>,
    /// `ApplicationLogLevel`.
    pub application_log_level: Option<String>,
    /// `SystemLogLevel`.
    pub system_log_level: Option<String>,
    /// `LogGroup`.
    pub log_group: Option<String>,
}

/// Function settings as a request carries them: every field optional, nothing checked yet.
#[derive(Debug, Clone, Default)]
pub struct SettingsInput {
    /// `Runtime`.
    pub runtime: Option<String>,
    /// `Handler`.
    pub handler: Option<String>,
    /// `Role`.
    pub role: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// `Timeout`.
    pub timeout: Option<i64>,
    /// `MemorySize`.
    pub memory_size: Option<i64>,
    /// `EphemeralStorage.Size`.
    pub ephemeral_storage: Option<i64>,
    /// `Environment.Variables` (replaces all variables when present).
    pub environment: Option<BTreeMap<String, String>>,
    /// `Architectures`.
    pub architectures: Option<Vec<String>>,
    /// `TracingConfig.Mode`.
    pub tracing_mode: Option<String>,
    /// `DeadLetterConfig.TargetArn` (empty string clears it).
    pub dead_letter_target: Option<String>,
    /// `LoggingConfig`.
    pub logging: Option<LoggingInput>,
    /// `Layers` (replaces the list when present), already looked up in the store: the
    /// caller turns ARNs into references, since only it can tell which versions exist.
    pub layers: Option<Vec<crate::layer::LayerRef>>,
}

impl SettingsInput {
    /// Settings for a new function: Runtime, Handler and Role are required, the rest defaults.
    pub fn for_create(self, name: &FunctionName) -> Result<FunctionSettings, ServiceError> {
        let runtime = self.runtime.as_deref().ok_or_else(|| {
            ServiceError::InvalidParameterValue(
                "Runtime and Handler are mandatory parameters for functions created with Zip packages."
                    .to_owned(),
            )
        })?;
        if self.handler.is_none() {
            return Err(ServiceError::InvalidParameterValue(
                "Runtime and Handler are mandatory parameters for functions created with Zip packages."
                    .to_owned(),
            ));
        }
        let role = self
            .role
            .as_deref()
            .ok_or_else(|| ServiceError::constraint("null", "role", "Member must not be null"))?;
        let base = FunctionSettings {
            runtime: Runtime::parse(runtime)?,
            handler: String::new(),
            role: role.to_owned(),
            description: String::new(),
            timeout_s: TIMEOUT_DEFAULT_S,
            memory_mb: MEMORY_DEFAULT_MB,
            ephemeral_storage_mb: EPHEMERAL_MIN_MB,
            environment: BTreeMap::new(),
            architecture: Architecture::X86_64,
            tracing_mode: TracingMode::PassThrough,
            dead_letter_target: None,
            logging: LoggingConfig::default_for(name),
            layers: Vec::new(),
        };
        self.apply_to(&base)
    }

    /// The settings that result from applying this input on top of `current`.
    pub fn apply_to(self, current: &FunctionSettings) -> Result<FunctionSettings, ServiceError> {
        let mut s = current.clone();
        if let Some(runtime) = &self.runtime {
            s.runtime = Runtime::parse(runtime)?;
        }
        if let Some(handler) = self.handler {
            s.handler = handler;
        }
        validate_handler(&s.handler, &s.runtime)?;
        if let Some(role) = self.role {
            s.role = role;
        }
        if !ROLE_RE.is_match(&s.role) {
            return Err(ServiceError::constraint(
                &s.role,
                "role",
                r"Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+",
            ));
        }
        if let Some(description) = self.description {
            if description.chars().count() > DESCRIPTION_MAX_CHARS {
                return Err(ServiceError::constraint(
                    description,
                    "description",
                    "Member must have length less than or equal to 256",
                ));
            }
            s.description = description;
        }
        if let Some(timeout) = self.timeout {
            s.timeout_s = validate_timeout(timeout)?;
        }
        if let Some(memory) = self.memory_size {
            s.memory_mb = validate_memory(memory)?;
        }
        if let Some(size) = self.ephemeral_storage {
            s.ephemeral_storage_mb = in_range(
                size,
                EPHEMERAL_MIN_MB,
                EPHEMERAL_MAX_MB,
                "ephemeralStorage.size",
            )?;
        }
        if let Some(vars) = self.environment {
            validate_environment(&vars)?;
            s.environment = vars;
        }
        if let Some(archs) = self.architectures {
            s.architecture = validate_architectures(&archs)?;
        }
        if let Some(mode) = self.tracing_mode {
            s.tracing_mode = match mode.as_str() {
                "Active" => TracingMode::Active,
                "PassThrough" => TracingMode::PassThrough,
                _ => {
                    return Err(ServiceError::constraint(
                        mode,
                        "tracingConfig.mode",
                        "Member must satisfy enum value set: [Active, PassThrough]",
                    ))
                }
            };
        }
        if let Some(target) = self.dead_letter_target {
            if !DLQ_RE.is_match(&target) {
                return Err(ServiceError::constraint(
                    target,
                    "deadLetterConfig.targetArn",
                    "Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)|()",
                ));
            }
            s.dead_letter_target = (!target.is_empty()).then_some(target);
        }
        if let Some(logging) = self.logging {
            s.logging = validate_logging(logging, &s.logging)?;
        }
        if let Some(layers) = self.layers {
            check_layer_count(layers.len())?;
            s.layers = layers;
        }
        Ok(s)
    }
}

fn in_range(value: i64, min: u32, max: u32, field: &str) -> Result<u32, ServiceError> {
    if value < i64::from(min) {
        return Err(ServiceError::constraint(
            value,
            field,
            &format!("Member must have value greater than or equal to {min}"),
        ));
    }
    if value > i64::from(max) {
        return Err(ServiceError::constraint(
            value,
            field,
            &format!("Member must have value less than or equal to {max}"),
        ));
    }
    u32::try_from(value).map_err(|_| ServiceError::constraint(value, field, "Member out of range"))
}

fn validate_memory(value: i64) -> Result<u32, ServiceError> {
    let mb = in_range(value, MEMORY_MIN_MB, MEMORY_MODEL_MAX_MB, "memorySize")?;
    if mb > MEMORY_MAX_MB {
        return Err(ServiceError::InvalidParameterValue(format!(
            "'MemorySize' value failed to satisfy constraint: Member must have value less than or equal to {MEMORY_MAX_MB}"
        )));
    }
    Ok(mb)
}

fn validate_timeout(value: i64) -> Result<u32, ServiceError> {
    let s = in_range(value, TIMEOUT_MIN_S, TIMEOUT_MODEL_MAX_S, "timeout")?;
    if s > TIMEOUT_MAX_S {
        return Err(ServiceError::InvalidParameterValue(format!(
            "'Timeout' value failed to satisfy constraint: Member must have value less than or equal to {TIMEOUT_MAX_S}"
        )));
    }
    Ok(s)
}

/// Check a handler string: the model's pattern, then the shape the runtime family needs.
pub fn validate_handler(handler: &str, runtime: &Runtime) -> Result<(), ServiceError> {
    if handler.is_empty() || handler.chars().any(char::is_whitespace) {
        return Err(ServiceError::constraint(
            handler,
            "handler",
            r"Member must satisfy regular expression pattern: [^\s]+",
        ));
    }
    if handler.chars().count() > HANDLER_MAX_CHARS {
        return Err(ServiceError::constraint(
            handler,
            "handler",
            "Member must have length less than or equal to 128",
        ));
    }
    if runtime.family() == RuntimeFamily::Provided {
        return Ok(());
    }
    // Python and Node resolve `path/module.function`: a handler without a function part, or one
    // that climbs out of /var/task, can never load, so refuse it now rather than at first invoke.
    let (module, function) = match handler.rsplit_once('.') {
        Some((m, f)) if !m.is_empty() && !f.is_empty() => (m, f),
        _ => {
            return Err(ServiceError::InvalidParameterValue(format!(
                "Handler '{handler}' is not valid for runtime {runtime}: expected <module>.<function>, e.g. app.handler"
            )))
        }
    };
    let escapes = module.starts_with('/') || module.split('/').any(|part| part == "..");
    if escapes || function.contains('/') {
        return Err(ServiceError::InvalidParameterValue(format!(
            "Handler '{handler}' is not valid for runtime {runtime}: the module must be a path inside the package"
        )));
    }
    Ok(())
}

fn validate_environment(vars: &BTreeMap<String, String>) -> Result<(), ServiceError> {
    if let Some(bad) = vars.keys().find(|k| !ENV_KEY_RE.is_match(k)) {
        return Err(ServiceError::constraint(
            bad,
            "environment.variables",
            "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]",
        ));
    }
    let reserved: Vec<&str> = vars
        .keys()
        .map(String::as_str)
        .filter(|k| RESERVED_ENV_KEYS.contains(k))
        .collect();
    if !reserved.is_empty() {
        return Err(ServiceError::InvalidParameterValue(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: {}",
            reserved.join(", ")
        )));
    }
    let size: usize = vars.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > ENV_VARS_MAX_BYTES {
        return Err(ServiceError::InvalidParameterValue(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {size} bytes"
        )));
    }
    Ok(())
}

fn validate_architectures(archs: &[String]) -> Result<Architecture, ServiceError> {
    let [arch] = archs else {
        return Err(ServiceError::constraint(
            format!("[{}]", archs.join(", ")),
            "architectures",
            "Member must have length less than or equal to 1 and greater than or equal to 1",
        ));
    };
    match arch.as_str() {
        "x86_64" => Ok(Architecture::X86_64),
        "arm64" => Ok(Architecture::Arm64),
        other => Err(ServiceError::constraint(
            format!("[{other}]"),
            "architectures",
            "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64]]",
        )),
    }
}

fn validate_logging(
    input: LoggingInput,
    current: &LoggingConfig,
) -> Result<LoggingConfig, ServiceError> {
    let mut l = current.clone();
    if let Some(format) = input.log_format {
        if format != "Text" && format != "JSON" {
            return Err(ServiceError::constraint(
                format,
                "loggingConfig.logFormat",
                "Member must satisfy enum value set: [Text, JSON]",
            ));
        }
        l.log_format = format;
    }
    if let Some(level) = input.application_log_level {
        const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
        if !LEVELS.contains(&level.as_str()) {
            return Err(ServiceError::constraint(
                level,
                "loggingConfig.applicationLogLevel",
                "Member must satisfy enum value set: [TRACE, DEBUG, INFO, WARN, ERROR, FATAL]",
            ));
        }
        l.application_log_level = Some(level);
    }
    if let Some(level) = input.system_log_level {
        if !["DEBUG", "INFO", "WARN"].contains(&level.as_str()) {
            return Err(ServiceError::constraint(
                level,
                "loggingConfig.systemLogLevel",
                "Member must satisfy enum value set: [DEBUG, INFO, WARN]",
            ));
        }
        l.system_log_level = Some(level);
    }
    if let Some(group) = input.log_group {
        if !LOG_GROUP_RE.is_match(&group) {
            return Err(ServiceError::constraint(
                group,
                "loggingConfig.logGroup",
                r"Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+",
            ));
        }
        l.log_group = group;
    }
    if l.log_format == "Text" {
        if l.application_log_level.is_some() || l.system_log_level.is_some() {
            return Err(ServiceError::InvalidParameterValue(
                "Log levels can only be set when LogFormat is JSON.".to_owned(),
            ));
        }
    } else {
        l.application_log_level
            .get_or_insert_with(|| "INFO".to_owned());
        l.system_log_level.get_or_insert_with(|| "INFO".to_owned());
    }
    Ok(l)
}

/// Check tags as TagResource and CreateFunction take them.
pub fn validate_tags(tags: &BTreeMap<String, String>) -> Result<(), ServiceError> {
    if tags.len() > TAGS_MAX {
        return Err(ServiceError::InvalidParameterValue(format!(
            "Number of tags exceeds resource tag limit of {TAGS_MAX}."
        )));
    }
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > 128 {
            return Err(ServiceError::InvalidParameterValue(format!(
                "Tag key '{key}' must be between 1 and 128 characters."
            )));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(ServiceError::InvalidParameterValue(format!(
                "Tag key '{key}' uses the reserved prefix 'aws:'."
            )));
        }
        if value.chars().count() > 256 {
            return Err(ServiceError::InvalidParameterValue(format!(
                "Tag value for key '{key}' must be at most 256 characters."
            )));
        }
    }
    Ok(())
}

/// At most [`MAX_LAYERS_PER_FUNCTION`](crate::layer::MAX_LAYERS_PER_FUNCTION) layers, with
/// Lambda's error.
pub fn check_layer_count(count: usize) -> Result<(), ServiceError> {
    if count > crate::layer::MAX_LAYERS_PER_FUNCTION {
        return Err(ServiceError::InvalidParameterValue(
            "Cannot reference more than 5 layers.".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> FunctionName {
        FunctionName::new("f").expect("valid")
    }

    fn input() -> SettingsInput {
        SettingsInput {
            runtime: Some("python3.12".into()),
            handler: Some("app.handler".into()),
            role: Some("arn:aws:iam::000000000000:role/r".into()),
            ..SettingsInput::default()
        }
    }

    fn error_type(i: SettingsInput) -> &'static str {
        i.for_create(&name()).expect_err("must fail").error_type()
    }

    #[test]
    fn defaults_match_lambda() {
        let s = input().for_create(&name()).expect("valid");
        assert_eq!(
            (s.timeout_s, s.memory_mb, s.ephemeral_storage_mb),
            (3, 128, 512)
        );
        assert_eq!(s.logging.log_group, "/aws/lambda/f");
        assert_eq!(s.architecture, Architecture::X86_64);
    }

    #[test]
    fn ranges_use_the_error_type_aws_uses() {
        for (memory, ty) in [
            (127, "ValidationException"),
            (10_241, "InvalidParameterValueException"),
            (40_000, "ValidationException"),
        ] {
            let i = SettingsInput {
                memory_size: Some(memory),
                ..input()
            };
            assert_eq!(error_type(i), ty, "memory {memory}");
        }
        for (timeout, ty) in [
            (0, "ValidationException"),
            (901, "InvalidParameterValueException"),
        ] {
            let i = SettingsInput {
                timeout: Some(timeout),
                ..input()
            };
            assert_eq!(error_type(i), ty, "timeout {timeout}");
        }
        let i = SettingsInput {
            ephemeral_storage: Some(511),
            ..input()
        };
        assert_eq!(error_type(i), "ValidationException");
    }

    #[test]
    fn environment_rules() {
        let vars = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let reserved = SettingsInput {
            environment: vars(&[("AWS_REGION", "x")]),
            ..input()
        };
        let err = reserved.for_create(&name()).expect_err("reserved");
        assert!(err
            .message()
            .ends_with("Reserved keys used in this request: AWS_REGION"));
        let big = "v".repeat(5000);
        let too_big = SettingsInput {
            environment: vars(&[("BIG", &big)]),
            ..input()
        };
        assert_eq!(error_type(too_big), "InvalidParameterValueException");
        let bad_key = SettingsInput {
            environment: vars(&[("1X", "v")]),
            ..input()
        };
        assert_eq!(error_type(bad_key), "ValidationException");
    }

    #[test]
    fn handler_rules() {
        let rt = Runtime::parse("python3.12").expect("runtime");
        assert!(validate_handler("pkg/mod.handler", &rt).is_ok());
        assert!(validate_handler("nodot", &rt).is_err());
        assert!(validate_handler("../up.handler", &rt).is_err());
        assert!(validate_handler("has space.h", &rt).is_err());
        let provided = Runtime::parse("provided.al2023").expect("runtime");
        assert!(validate_handler("anything", &provided).is_ok());
    }

    #[test]
    fn log_levels_need_json() {
        let i = SettingsInput {
            logging: Some(LoggingInput {
                application_log_level: Some("DEBUG".into()),
                ..LoggingInput::default()
            }),
            ..input()
        };
        assert_eq!(error_type(i), "InvalidParameterValueException");
    }
}
