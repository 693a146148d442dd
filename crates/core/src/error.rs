//! Errors of the platform, named after the AWS error types a client sees.
//!
//! The api crate maps each [`ServiceError`] variant to its HTTP status and wire name in one place;
//! everything below it speaks in these variants.

use thiserror::Error;

/// A request Nimbus refuses, or a failure it reports, in the terms Lambda uses.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ServiceError {
    /// `ResourceNotFoundException` (404).
    #[error("{0}")]
    ResourceNotFound(String),
    /// `ResourceConflictException` (409).
    #[error("{0}")]
    ResourceConflict(String),
    /// `InvalidParameterValueException` (400): a value that is well-formed but not acceptable.
    #[error("{0}")]
    InvalidParameterValue(String),
    /// `ValidationException` (400): a value that breaks a constraint of the API model.
    #[error("{0}")]
    Validation(String),
    /// `InvalidRequestContentException` (400): a body that cannot be read as the operation's input.
    #[error("{0}")]
    InvalidRequestContent(String),
    /// `PreconditionFailedException` (412): a stale RevisionId or CodeSha256.
    #[error("{0}")]
    PreconditionFailed(String),
    /// `RequestEntityTooLargeException` (413).
    #[error("{0}")]
    RequestTooLarge(String),
    /// `UnknownOperationException` (404): no operation at this method and path.
    #[error("{0}")]
    UnknownOperation(String),
    /// `InvalidRuntimeException` (502): the function's runtime cannot run on this host.
    #[error("{0}")]
    InvalidRuntime(String),
    /// `ServiceException` (500): Nimbus itself failed; the message is generic, the cause is logged.
    #[error("{0}")]
    Service(String),
    /// `TooManyRequestsException` (429): a concurrency limit is reached; the body names which.
    #[error("{message}")]
    TooManyRequests {
        /// The limit that was hit.
        reason: ThrottleReason,
        /// The human-readable message.
        message: String,
    },
}

/// Why an invocation was throttled: the `Reason` member of `TooManyRequestsException`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleReason {
    /// The account's unreserved concurrency is used up.
    ConcurrentInvocationLimitExceeded,
    /// The function's reserved concurrency is used up (or is zero).
    ReservedFunctionConcurrentInvocationLimitExceeded,
}

impl ThrottleReason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConcurrentInvocationLimitExceeded => "ConcurrentInvocationLimitExceeded",
            Self::ReservedFunctionConcurrentInvocationLimitExceeded => {
                "ReservedFunctionConcurrentInvocationLimitExceeded"
            }
        }
    }
}

impl ServiceError {
    /// The AWS error type name, as sent in `x-amzn-ErrorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::ResourceNotFound(_) => "ResourceNotFoundException",
            Self::ResourceConflict(_) => "ResourceConflictException",
            Self::InvalidParameterValue(_) => "InvalidParameterValueException",
            Self::Validation(_) => "ValidationException",
            Self::InvalidRequestContent(_) => "InvalidRequestContentException",
            Self::PreconditionFailed(_) => "PreconditionFailedException",
            Self::RequestTooLarge(_) => "RequestEntityTooLargeException",
            Self::UnknownOperation(_) => "UnknownOperationException",
            Self::InvalidRuntime(_) => "InvalidRuntimeException",
            Self::Service(_) => "ServiceException",
            Self::TooManyRequests { .. } => "TooManyRequestsException",
        }
    }

    /// The HTTP status Lambda answers this error with (`lambda-compat.md` §4.3); also the
    /// `ErrorCode` of a dead-letter message.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::ResourceNotFound(_) | Self::UnknownOperation(_) => 404,
            Self::ResourceConflict(_) => 409,
            Self::InvalidParameterValue(_)
            | Self::Validation(_)
            | Self::InvalidRequestContent(_) => 400,
            Self::PreconditionFailed(_) => 412,
            Self::RequestTooLarge(_) => 413,
            Self::InvalidRuntime(_) => 502,
            Self::Service(_) => 500,
            Self::TooManyRequests { .. } => 429,
        }
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        match self {
            Self::ResourceNotFound(m)
            | Self::ResourceConflict(m)
            | Self::InvalidParameterValue(m)
            | Self::Validation(m)
            | Self::InvalidRequestContent(m)
            | Self::PreconditionFailed(m)
            | Self::RequestTooLarge(m)
            | Self::UnknownOperation(m)
            | Self::InvalidRuntime(m)
            | Self::Service(m)
            | Self::TooManyRequests { message: m, .. } => m,
        }
    }

    /// A `ValidationException` in the wording AWS uses for model constraint violations.
    pub fn constraint(value: impl std::fmt::Display, field: &str, constraint: &str) -> Self {
        Self::Validation(format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        ))
    }

    /// `TooManyRequestsException` with Lambda's message for a concurrency throttle.
    pub fn throttled(reason: ThrottleReason) -> Self {
        Self::TooManyRequests {
            reason,
            message: "Rate Exceeded.".to_owned(),
        }
    }

    /// `ResourceNotFoundException` for a function (and qualifier) that does not exist.
    pub fn function_not_found(arn: &str) -> Self {
        Self::ResourceNotFound(format!("Function not found: {arn}"))
    }

    /// `ResourceNotFoundException` for an alias that does not exist, named by its ARN.
    pub fn alias_not_found(alias_arn: &str) -> Self {
        Self::ResourceNotFound(format!("Cannot find alias arn: {alias_arn}"))
    }
}

/// A failure of a store backend.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The record to create exists already.
    #[error("record already exists")]
    AlreadyExists,
    /// The record to change or delete does not exist.
    #[error("record not found")]
    NotFound,
    /// The record changed since it was read (its revision no longer matches).
    #[error("record was changed concurrently")]
    RevisionMismatch,
    /// A publish expected other code than the function's current code.
    #[error("current code is {current_sha256_hex}, not the expected code")]
    CodeMismatch {
        /// Hex SHA-256 of the code the function has now.
        current_sha256_hex: String,
    },
    /// The record cannot be deleted while these others (alias names) refer to it.
    #[error("record is referenced by {}", .0.join(", "))]
    InUse(Vec<String>),
    /// The backend failed (disk, database, corrupt record).
    #[error("store backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wrap any backend error.
    pub fn backend(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(err))
    }
}
