//! Wire shapes of the Lambda API, with AWS's field names (botocore's `lambda/2015-03-31` model).
//!
//! Requests are parsed here and handed on as core types; unknown members are ignored, as AWS
//! ignores them, so newer SDKs that send newer members keep working.

use std::collections::BTreeMap;

use nimbus_core::validate::{LoggingInput, SettingsInput};
use nimbus_core::{AccountContext, Alias, Function, FunctionVersion};
use serde::{Deserialize, Serialize};

/// `Code` of CreateFunction; the same members sit at the top of UpdateFunctionCode.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CodeInput {
    /// Base64 of the zip.
    pub zip_file: Option<String>,
    /// S3 location (not served until object storage exists).
    pub s3_bucket: Option<String>,
    /// S3 key.
    pub s3_key: Option<String>,
    /// S3 object version.
    pub s3_object_version: Option<String>,
    /// Container image (not supported).
    pub image_uri: Option<String>,
}

/// `Environment`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnvironmentShape {
    /// The variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<BTreeMap<String, String>>,
}

/// `EphemeralStorage`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EphemeralStorageShape {
    /// Size in MB.
    pub size: i64,
}

/// `TracingConfig`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TracingConfigShape {
    /// `Active` or `PassThrough`.
    pub mode: Option<String>,
}

/// `DeadLetterConfig`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeadLetterConfigShape {
    /// Queue or topic ARN.
    pub target_arn: Option<String>,
}

/// `LoggingConfig`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoggingConfigShape {
    /// `Text` or `JSON`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
    /// Application log level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_log_level: Option<String>,
    /// System log level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_log_level: Option<String>,
    /// Log group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_group: Option<String>,
}

/// The settings members shared by CreateFunction and UpdateFunctionConfiguration.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SettingsShape {
    /// `Runtime`.
    pub runtime: Option<String>,
    /// `Role`.
    pub role: Option<String>,
    /// `Handler`.
    pub handler: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// `Timeout`.
    pub timeout: Option<i64>,
    /// `MemorySize`.
    pub memory_size: Option<i64>,
    /// `Environment`.
    pub environment: Option<EnvironmentShape>,
    /// `EphemeralStorage`.
    pub ephemeral_storage: Option<EphemeralStorageShape>,
    /// `TracingConfig`.
    pub tracing_config: Option<TracingConfigShape>,
    /// `DeadLetterConfig`.
    pub dead_letter_config: Option<DeadLetterConfigShape>,
    /// `LoggingConfig`.
    pub logging_config: Option<LoggingConfigShape>,
    /// `Layers`: ARNs, which the route resolves against the store before validation.
    pub layers: Option<Vec<String>>,
    /// `PackageType`.
    pub package_type: Option<String>,
}

impl SettingsShape {
    /// The settings as core's unvalidated input.
    pub fn into_input(self, architectures: Option<Vec<String>>) -> SettingsInput {
        SettingsInput {
            runtime: self.runtime,
            handler: self.handler,
            role: self.role,
            description: self.description,
            timeout: self.timeout,
            memory_size: self.memory_size,
            ephemeral_storage: self.ephemeral_storage.map(|e| e.size),
            // `Environment: {}` clears the variables, as it does on AWS.
            environment: self.environment.map(|e| e.variables.unwrap_or_default()),
            architectures,
            tracing_mode: self.tracing_config.and_then(|t| t.mode),
            dead_letter_target: self
                .dead_letter_config
                .map(|d| d.target_arn.unwrap_or_default()),
            logging: self.logging_config.map(|l| LoggingInput {
                log_format: l.log_format,
                application_log_level: l.application_log_level,
                system_log_level: l.system_log_level,
                log_group: l.log_group,
            }),
            // Looked up by the caller (see `SettingsShape::layers`).
            layers: None,
        }
    }
}

/// CreateFunction input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateFunctionRequest {
    /// Name or ARN of the new function.
    pub function_name: String,
    /// The code package.
    pub code: Option<CodeInput>,
    /// Publish a first version as well.
    pub publish: Option<bool>,
    /// `Architectures`.
    pub architectures: Option<Vec<String>>,
    /// Initial tags.
    pub tags: Option<BTreeMap<String, String>>,
    /// Everything else.
    #[serde(flatten)]
    pub settings: SettingsShape,
}

/// UpdateFunctionCode input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateFunctionCodeRequest {
    /// The new package.
    #[serde(flatten)]
    pub code: CodeInput,
    /// Publish a version as well.
    pub publish: Option<bool>,
    /// Validate only.
    pub dry_run: Option<bool>,
    /// Expected current revision.
    pub revision_id: Option<String>,
    /// `Architectures`.
    pub architectures: Option<Vec<String>>,
}

/// UpdateFunctionConfiguration input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateFunctionConfigurationRequest {
    /// Expected current revision.
    pub revision_id: Option<String>,
    /// The settings to change.
    #[serde(flatten)]
    pub settings: SettingsShape,
}

/// TagResource input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceRequest {
    /// Tags to add or overwrite.
    pub tags: BTreeMap<String, String>,
}

/// `Layers[]` of a configuration.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LayerShape {
    /// Layer version ARN.
    pub arn: String,
    /// Size of the layer's archive in bytes.
    pub code_size: u64,
}

/// `SnapStart` of a configuration (always off in Nimbus).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnapStartShape {
    /// `None`.
    pub apply_on: &'static str,
    /// `Off`.
    pub optimization_status: &'static str,
}

/// `FunctionConfiguration`, as Get/Create/Update/List return it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionConfiguration {
    /// Name.
    pub function_name: String,
    /// ARN: unqualified for `$LATEST` asked for without a qualifier, else with the qualifier.
    pub function_arn: String,
    /// Runtime.
    pub runtime: String,
    /// Role ARN.
    pub role: String,
    /// Handler.
    pub handler: String,
    /// Zip size in bytes.
    pub code_size: u64,
    /// Description.
    pub description: String,
    /// Timeout in seconds.
    pub timeout: u32,
    /// Memory in MB.
    pub memory_size: u32,
    /// `YYYY-MM-DDThh:mm:ss.sss+0000`.
    pub last_modified: String,
    /// Base64 SHA-256 of the zip.
    pub code_sha256: String,
    /// `$LATEST` or a version number.
    pub version: String,
    /// Environment variables, when any are set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentShape>,
    /// Tracing mode.
    pub tracing_config: TracingConfigShape,
    /// Dead-letter target, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_config: Option<DeadLetterConfigShape>,
    /// Revision for optimistic concurrency.
    pub revision_id: String,
    /// Layers, when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<LayerShape>>,
    /// Lifecycle state (omitted by ListFunctions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
    /// Last update status (omitted by ListFunctions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_update_status: Option<&'static str>,
    /// `Zip`.
    pub package_type: &'static str,
    /// Instruction set, one entry.
    pub architectures: Vec<&'static str>,
    /// `/tmp` size.
    pub ephemeral_storage: EphemeralStorageShape,
    /// SnapStart (off).
    pub snap_start: SnapStartShape,
    /// Logging configuration.
    pub logging_config: LoggingConfigShape,
}

impl FunctionConfiguration {
    /// The configuration of a version as Get/Create/Update/Publish return it: the ARN of
    /// `$LATEST` is unqualified, a published version's carries its number.
    pub fn of(f: &Function, account: &AccountContext) -> Self {
        let s = &f.settings;
        let function_arn = match f.version {
            FunctionVersion::Latest => account.function_arn(&f.name),
            FunctionVersion::Published(n) => {
                account.qualified_function_arn(&f.name, &n.to_string())
            }
        };
        Self {
            function_name: f.name.to_string(),
            function_arn,
            runtime: s.runtime.to_string(),
            role: s.role.clone(),
            handler: s.handler.clone(),
            code_size: f.code.size,
            description: s.description.clone(),
            timeout: s.timeout_s,
            memory_size: s.memory_mb,
            last_modified: nimbus_core::time::last_modified(f.last_modified),
            code_sha256: f.code.sha256_base64(),
            version: f.version.to_string(),
            environment: (!s.environment.is_empty()).then(|| EnvironmentShape {
                variables: Some(s.environment.clone()),
            }),
            tracing_config: TracingConfigShape {
                mode: Some(s.tracing_mode.as_str().to_owned()),
            },
            dead_letter_config: s
                .dead_letter_target
                .as_ref()
                .map(|t| DeadLetterConfigShape {
                    target_arn: Some(t.clone()),
                }),
            revision_id: f.revision_id.clone(),
            layers: (!s.layers.is_empty()).then(|| {
                s.layers
                    .iter()
                    .map(|l| LayerShape {
                        arn: l.arn.clone(),
                        code_size: l.content.size,
                    })
                    .collect()
            }),
            state: Some(f.state.as_str()),
            last_update_status: Some("Successful"),
            package_type: "Zip",
            architectures: vec![s.architecture.as_str()],
            ephemeral_storage: EphemeralStorageShape {
                size: i64::from(s.ephemeral_storage_mb),
            },
            snap_start: SnapStartShape {
                apply_on: "None",
                optimization_status: "Off",
            },
            logging_config: LoggingConfigShape {
                log_format: Some(s.logging.log_format.clone()),
                application_log_level: s.logging.application_log_level.clone(),
                system_log_level: s.logging.system_log_level.clone(),
                log_group: Some(s.logging.log_group.clone()),
            },
        }
    }

    /// The configuration as ListFunctions returns it: without State and LastUpdateStatus.
    pub fn for_list(f: &Function, account: &AccountContext) -> Self {
        Self {
            state: None,
            last_update_status: None,
            ..Self::of(f, account)
        }
    }

    /// The same configuration, reached through `qualifier` (`$LATEST` or an alias): Lambda
    /// answers with the ARN the caller named, qualified.
    pub fn named_by(self, qualifier: &str, f: &Function, account: &AccountContext) -> Self {
        Self {
            function_arn: account.qualified_function_arn(&f.name, qualifier),
            ..self
        }
    }
}

/// `Code` of GetFunction.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CodeLocation {
    /// `S3`, as AWS reports for zip packages.
    pub repository_type: &'static str,
    /// A short-lived URL that serves the zip.
    pub location: String,
}

/// GetFunction output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetFunctionResponse {
    /// The configuration.
    pub configuration: FunctionConfiguration,
    /// Where to download the code.
    pub code: CodeLocation,
    /// Tags, when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// The function's reserved concurrency, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
}

/// `Concurrency`: PutFunctionConcurrency's input and output, GetFunctionConcurrency's output
/// and GetFunction's member. Empty (`{}`) when nothing is reserved.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Concurrency {
    /// Concurrent executions reserved for the function. Signed on input, so that a negative
    /// value gets Lambda's validation error rather than a parse error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_concurrent_executions: Option<i64>,
}

/// PublishVersion input.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishVersionRequest {
    /// Publish only if `$LATEST`'s code has this (base64) SHA-256.
    pub code_sha256: Option<String>,
    /// The version's description, replacing `$LATEST`'s.
    pub description: Option<String>,
    /// Publish only if `$LATEST`'s revision is this.
    pub revision_id: Option<String>,
    /// `LATEST_PUBLISHED` (2025 feature; not supported).
    pub publish_to: Option<String>,
}

/// ListVersionsByFunction output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListVersionsResponse {
    /// One page of versions, `$LATEST` first.
    pub versions: Vec<FunctionConfiguration>,
    /// Marker for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// `RoutingConfig` of an alias.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoutingConfigShape {
    /// Version → share of invocations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_version_weights: Option<BTreeMap<String, f64>>,
}

/// CreateAlias input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateAliasRequest {
    /// Alias name.
    pub name: Option<String>,
    /// The version it points at.
    pub function_version: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Weighted routing to a second version.
    pub routing_config: Option<RoutingConfigShape>,
}

/// UpdateAlias input: only the members present change.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateAliasRequest {
    /// The version it points at.
    pub function_version: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Weighted routing; `{}` or empty weights remove it.
    pub routing_config: Option<RoutingConfigShape>,
    /// Expected current revision of the alias.
    pub revision_id: Option<String>,
}

/// `AliasConfiguration`, as every alias operation returns it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasConfiguration {
    /// `arn:aws:lambda:<region>:<account>:function:<name>:<alias>`.
    pub alias_arn: String,
    /// Alias name.
    pub name: String,
    /// The version it points at.
    pub function_version: String,
    /// Description (empty when none was given).
    pub description: String,
    /// Weighted routing, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_config: Option<RoutingConfigShape>,
    /// Revision for optimistic concurrency.
    pub revision_id: String,
}

impl AliasConfiguration {
    /// The wire shape of an alias.
    pub fn of(a: &Alias, account: &AccountContext) -> Self {
        Self {
            alias_arn: account.qualified_function_arn(&a.function, &a.name),
            name: a.name.clone(),
            function_version: a.function_version.clone(),
            description: a.description.clone(),
            routing_config: (!a.routing.is_empty()).then(|| RoutingConfigShape {
                additional_version_weights: Some(a.routing.clone()),
            }),
            revision_id: a.revision_id.clone(),
        }
    }
}

/// ListAliases output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListAliasesResponse {
    /// One page of aliases in name order.
    pub aliases: Vec<AliasConfiguration>,
    /// Marker for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// ListFunctions output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListFunctionsResponse {
    /// One page of functions.
    pub functions: Vec<FunctionConfiguration>,
    /// Marker for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// ListTags output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsResponse {
    /// The tags.
    pub tags: BTreeMap<String, String>,
}

/// `AccountLimit` of GetAccountSettings.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountLimit {
    /// Code storage for the account, in bytes.
    pub total_code_size: u64,
    /// Unzipped size limit, in bytes.
    pub code_size_unzipped: u64,
    /// Zipped upload limit, in bytes.
    pub code_size_zipped: u64,
    /// Concurrency limit.
    pub concurrent_executions: u32,
    /// Concurrency not reserved by any function.
    pub unreserved_concurrent_executions: u32,
}

/// `AccountUsage` of GetAccountSettings.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountUsage {
    /// Bytes of code stored.
    pub total_code_size: u64,
    /// Number of functions.
    pub function_count: u64,
}

/// GetAccountSettings output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountSettingsResponse {
    /// Limits.
    pub account_limit: AccountLimit,
    /// Usage.
    pub account_usage: AccountUsage,
}
