//! The canonical error taxonomy. Backends fail with these; each dialect's mapping file says
//! which status and body every kind becomes, so a client always sees its own forge's errors.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    BadRequest,
    Unauthenticated,
    BadCredentials,
    Forbidden,
    NotFound,
    Conflict,
    Validation,
    PayloadTooLarge,
    Unsupported,
    UpstreamUnavailable,
    UpstreamTimeout,
    Internal,
}

impl ErrorKind {
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::BadRequest,
        ErrorKind::Unauthenticated,
        ErrorKind::BadCredentials,
        ErrorKind::Forbidden,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::Validation,
        ErrorKind::PayloadTooLarge,
        ErrorKind::Unsupported,
        ErrorKind::UpstreamUnavailable,
        ErrorKind::UpstreamTimeout,
        ErrorKind::Internal,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::BadCredentials => "bad_credentials",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Validation => "validation",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::UpstreamUnavailable => "upstream_unavailable",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::Internal => "internal",
        }
    }

    pub fn parse(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.iter().copied().find(|k| k.name() == name)
    }
}

/// Why a field failed validation; dialects spell these differently (`missing_field`, `Required`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationCode {
    Missing,
    Invalid,
    Conflict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalError {
    pub kind: ErrorKind,
    /// Human-readable detail; never holds a token or an upstream address.
    pub detail: String,
    /// The field at fault, in the client's dialect, for validation and conflict errors.
    pub field: Option<String>,
    pub code: Option<ValidationCode>,
    /// The kind of resource at fault ("Organization", "User").
    pub resource: Option<String>,
}

impl CanonicalError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        CanonicalError {
            kind,
            detail: detail.into(),
            field: None,
            code: None,
            resource: None,
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, detail)
    }

    pub fn validation(field: &str, code: ValidationCode, detail: impl Into<String>) -> Self {
        CanonicalError {
            kind: ErrorKind::Validation,
            detail: detail.into(),
            field: Some(field.to_string()),
            code: Some(code),
            resource: None,
        }
    }

    pub fn conflict(field: &str, value: &str) -> Self {
        CanonicalError {
            kind: ErrorKind::Conflict,
            detail: value.to_string(),
            field: Some(field.to_string()),
            code: Some(ValidationCode::Conflict),
            resource: None,
        }
    }

    pub fn with_resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_string());
        self
    }
}

impl fmt::Display for CanonicalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.detail)
    }
}

impl std::error::Error for CanonicalError {}
