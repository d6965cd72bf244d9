//! One error type for the API, rendered as RFC 9457 `application/problem+json`.
//!
//! Handlers return `Result<_, AppError>`. The request-context middleware
//! (`crate::middleware`) adds the request id and the request path to every
//! problem body, and logs the cause of a 500 once; the body of a 5xx never
//! carries internal text.

use std::borrow::Cow;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::error_code::ErrorCode;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One field that failed validation.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// Where the bad value is: `body.name`, `body.documents[0].number`,
    /// `query.limit`, `header.If-Match`.
    pub field: String,
    /// Why it was refused, in words a person can act on.
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// The RFC 9457 problem document every error response carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type; `urn:mapce:problem:{code}`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong for this request.
    pub detail: String,
    /// Stable machine-readable code clients can branch on.
    pub code: String,
    /// The request path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// For `possible_duplicates`: the likely matches (masked names, scores, reasons).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub candidates: Option<serde_json::Value>,
    /// For a conflict with an existing record: its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_id: Option<String>,
    /// For an unknown label: the closest known ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub suggestions: Option<serde_json::Value>,
    /// The request id (also in the `X-Request-Id` header); quote it when
    /// reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Per-field reasons, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the request cannot be read at all (malformed JSON, bad query).
    #[error("{detail}")]
    BadRequest {
        code: ErrorCode,
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 401: no valid credentials. Answered with `WWW-Authenticate: Bearer`.
    #[error("{detail}")]
    Unauthorized { code: ErrorCode, detail: String },
    /// 403: authenticated, but the role may not do this.
    #[error("{detail}")]
    Forbidden { code: ErrorCode, detail: String },
    /// 404: no such resource.
    #[error("{0}")]
    NotFound(String),
    /// 404 to the client, exactly like [`AppError::NotFound`], for a record
    /// outside the caller's consulate: existence does not leak, but the
    /// refusal is audited.
    #[error("{0}")]
    OutOfScope(String),
    /// 409 with the likely duplicates of a new person.
    #[error("{detail}")]
    PossibleDuplicates {
        detail: String,
        candidates: serde_json::Value,
    },
    /// 409: a record with this identity exists already.
    #[error("{detail}")]
    Exists {
        detail: String,
        field: String,
        existing_id: String,
    },
    /// 404 for a label no attention type has, with the closest ones.
    #[error("{detail}")]
    UnknownLabel {
        detail: String,
        suggestions: serde_json::Value,
    },
    /// 405: the path exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    /// 409: the request conflicts with the current state.
    #[error("{detail}")]
    Conflict {
        code: ErrorCode,
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 412: `If-Match` names a version that is no longer current.
    #[error("{0}")]
    PreconditionFailed(String),
    /// 413: body larger than the limit.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 415: body without the expected content type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed but invalid content, with the fields at fault.
    #[error("{detail}")]
    Validation {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 429: too many attempts; retry after the given time.
    #[error("too many attempts; retry in {retry_after_secs} seconds")]
    TooManyRequests { retry_after_secs: u64 },
    /// 428: a conditional header is required.
    #[error("{0}")]
    PreconditionRequired(String),
    /// 503: the database (or another dependency) is not answering; retry.
    #[error("service temporarily unavailable")]
    Unavailable { retry_after_secs: u32 },
    /// 500: a bug or an unexpected failure. The cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn not_found(what: impl Into<String>) -> Self {
        AppError::NotFound(what.into())
    }

    pub fn unauthorized(code: ErrorCode, detail: impl Into<String>) -> Self {
        AppError::Unauthorized {
            code,
            detail: detail.into(),
        }
    }

    pub fn forbidden(code: ErrorCode, detail: impl Into<String>) -> Self {
        AppError::Forbidden {
            code,
            detail: detail.into(),
        }
    }

    pub fn conflict(code: ErrorCode, field: Option<&str>, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        AppError::Conflict {
            code,
            errors: field
                .map(|f| vec![FieldError::new(f, detail.clone())])
                .unwrap_or_default(),
            detail,
        }
    }

    /// Whether this refusal belongs in the audit log (401, 403, 404 out of scope).
    pub fn is_audited_refusal(&self) -> bool {
        match self {
            // Failed logins and refresh-token reuse are audited by their
            // handlers with more context.
            AppError::Unauthorized { code, .. } => {
                matches!(
                    *code,
                    ErrorCode::Unauthenticated | ErrorCode::InvalidToken | ErrorCode::SessionEnded
                )
            }
            AppError::Forbidden { .. } | AppError::OutOfScope(_) => true,
            _ => false,
        }
    }

    /// The same error with its field paths placed under `prefix`: services
    /// name the fields of what they were given (`amount`), the API maps
    /// them to where the request carried them (`body.amount`).
    pub fn under(mut self, prefix: &str) -> Self {
        let place = |errors: &mut Vec<FieldError>, detail: &mut String| {
            for e in errors.iter_mut() {
                let placed = format!("{prefix}.{}", e.field);
                if let Some(rest) = detail.strip_prefix(&format!("{}:", e.field)) {
                    *detail = format!("{placed}:{rest}");
                }
                e.field = placed;
            }
        };
        match &mut self {
            AppError::Validation { detail, errors }
            | AppError::Conflict { detail, errors, .. }
            | AppError::BadRequest { detail, errors, .. } => place(errors, detail),
            AppError::Exists { field, .. } => *field = format!("{prefix}.{field}"),
            _ => {}
        }
        self
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let error = FieldError::new(field, reason);
        AppError::Validation {
            detail: format!("{}: {}", error.field, error.reason),
            errors: vec![error],
        }
    }

    pub fn bad_query(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let error = FieldError::new(field, reason);
        AppError::BadRequest {
            code: ErrorCode::InvalidQuery,
            detail: format!("{}: {}", error.field, error.reason),
            errors: vec![error],
        }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(cause.into())
    }

    /// The stable machine code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::BadRequest { code, .. }
            | AppError::Conflict { code, .. }
            | AppError::Unauthorized { code, .. }
            | AppError::Forbidden { code, .. } => *code,
            AppError::NotFound(_) | AppError::OutOfScope(_) => ErrorCode::NotFound,
            AppError::TooManyRequests { .. } => ErrorCode::TooManyRequests,
            AppError::UnknownLabel { .. } => ErrorCode::UnknownLabel,
            AppError::PossibleDuplicates { .. } => ErrorCode::PossibleDuplicates,
            AppError::Exists { .. } => ErrorCode::AlreadyExists,
            AppError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            AppError::PreconditionFailed(_) => ErrorCode::StaleVersion,
            AppError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            AppError::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            AppError::Validation { .. } => ErrorCode::ValidationFailed,
            AppError::PreconditionRequired(_) => ErrorCode::PreconditionRequired,
            AppError::Unavailable { .. } => ErrorCode::ServiceUnavailable,
            AppError::Internal(_) => ErrorCode::InternalError,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            AppError::BadRequest { .. } => "Bad request",
            AppError::Unauthorized { .. } => "Unauthorized",
            AppError::Forbidden { .. } => "Forbidden",
            AppError::NotFound(_) | AppError::OutOfScope(_) | AppError::UnknownLabel { .. } => {
                "Not found"
            }
            AppError::TooManyRequests { .. } => "Too many requests",
            AppError::MethodNotAllowed { .. } => "Method not allowed",
            AppError::Conflict { .. }
            | AppError::PossibleDuplicates { .. }
            | AppError::Exists { .. } => "Conflict",
            AppError::PreconditionFailed(_) => "Precondition failed",
            AppError::PayloadTooLarge { .. } => "Payload too large",
            AppError::UnsupportedMediaType(_) => "Unsupported media type",
            AppError::Validation { .. } => "Validation failed",
            AppError::PreconditionRequired(_) => "Precondition required",
            AppError::Unavailable { .. } => "Service unavailable",
            AppError::Internal(_) => "Internal server error",
        }
    }

    fn field_errors(&self) -> &[FieldError] {
        match self {
            AppError::BadRequest { errors, .. }
            | AppError::Conflict { errors, .. }
            | AppError::Validation { errors, .. } => errors,
            _ => &[],
        }
    }

    fn extra_field_errors(&self) -> Vec<FieldError> {
        match self {
            AppError::Exists { field, .. } => {
                vec![FieldError::new(field.clone(), "already registered")]
            }
            _ => Vec::new(),
        }
    }

    fn detail(&self) -> Cow<'static, str> {
        match self {
            // Never leak internal text.
            AppError::Internal(_) => {
                "An unexpected error occurred; it has been logged. Quote the request id when reporting it.".into()
            }
            AppError::Unavailable { .. } => {
                "The database is not answering; retry after the time in Retry-After.".into()
            }
            AppError::MethodNotAllowed { .. } => "This path does not accept this HTTP method.".into(),
            other => other.to_string().into(),
        }
    }

    /// The problem document for this error, without request context.
    pub fn problem(&self) -> Problem {
        let code = self.code().as_str();
        Problem {
            type_uri: format!("urn:mapce:problem:{code}"),
            title: self.title().to_string(),
            status: self.status_code().as_u16(),
            detail: self.detail().into_owned(),
            code: code.to_string(),
            instance: None,
            candidates: match self {
                AppError::PossibleDuplicates { candidates, .. } => Some(candidates.clone()),
                _ => None,
            },
            existing_id: match self {
                AppError::Exists { existing_id, .. } => Some(existing_id.clone()),
                _ => None,
            },
            suggestions: match self {
                AppError::UnknownLabel { suggestions, .. } => Some(suggestions.clone()),
                _ => None,
            },
            request_id: None,
            errors: [self.field_errors().to_vec(), self.extra_field_errors()].concat(),
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
            AppError::NotFound(_) | AppError::OutOfScope(_) | AppError::UnknownLabel { .. } => {
                StatusCode::NOT_FOUND
            }
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Conflict { .. }
            | AppError::PossibleDuplicates { .. }
            | AppError::Exists { .. } => StatusCode::CONFLICT,
            AppError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::PreconditionRequired(_) => StatusCode::PRECONDITION_REQUIRED,
            AppError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        problem_response(self, &self.problem())
    }
}

/// Renders a problem document with the headers its error calls for.
pub fn problem_response(error: &AppError, problem: &Problem) -> HttpResponse {
    let mut builder = HttpResponse::build(error.status_code());
    builder.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
    match error {
        AppError::Unavailable { retry_after_secs } => {
            builder.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
        }
        AppError::MethodNotAllowed { allow } => {
            builder.insert_header((header::ALLOW, allow.as_str()));
        }
        AppError::TooManyRequests { retry_after_secs } => {
            builder.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
        }
        AppError::Unauthorized { .. } => {
            builder.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"mapce\""));
        }
        _ => {}
    }
    // Serialising a struct of strings cannot fail; fall back to a fixed body.
    let body = serde_json::to_vec(problem).unwrap_or_else(|_| b"{}".to_vec());
    builder.body(body)
}

/// A stored value outside its vocabulary is a damaged database: the
/// request fails with 500 and the log says which value.
impl From<crate::domain::UnknownStored> for AppError {
    fn from(e: crate::domain::UnknownStored) -> Self {
        AppError::internal(e)
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::NotFound => AppError::NotFound("no such record".into()),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                let field = constraint_field(info.constraint_name(), info.message());
                AppError::Conflict {
                    code: ErrorCode::AlreadyExists,
                    detail: format!("a record with this {field} already exists"),
                    errors: vec![FieldError::new(format!("body.{field}"), "already in use")],
                }
            }
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            ) => AppError::Unavailable {
                retry_after_secs: 2,
            },
            // SQLite past its busy timeout: another writer holds the lock.
            Error::DatabaseError(_, info)
                if info.message().contains("database is locked")
                    || info.message().contains("database is busy") =>
            {
                AppError::Unavailable {
                    retry_after_secs: 1,
                }
            }
            other => AppError::Internal(other.into()),
        }
    }
}

impl From<r2d2::Error> for AppError {
    fn from(_: r2d2::Error) -> Self {
        // r2d2 only fails a checkout on timeout: the database is down or
        // every connection is busy. Either way the client should retry.
        AppError::Unavailable {
            retry_after_secs: 2,
        }
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        AppError::Internal(anyhow::anyhow!("blocking task failed: {error}"))
    }
}

/// Unique constraints and the request field each protects, so a violation
/// answers 409 naming the field. PostgreSQL reports the constraint name;
/// SQLite reports `UNIQUE constraint failed: table.column`.
const UNIQUE_CONSTRAINTS: &[(&str, &str)] = &[
    ("consulates_code_key", "code"),
    ("countries_alpha3_key", "alpha3"),
];

/// The request field behind a unique violation.
pub fn constraint_field(constraint: Option<&str>, message: &str) -> String {
    if let Some(name) = constraint {
        if let Some((_, field)) = UNIQUE_CONSTRAINTS.iter().find(|(c, _)| *c == name) {
            return (*field).to_string();
        }
    }
    if let Some(cols) = message.strip_prefix("UNIQUE constraint failed: ") {
        // "table.a, table.b" -> "a"
        if let Some(first) = cols.split(',').next() {
            if let Some((_, column)) = first.trim().split_once('.') {
                return column.to_string();
            }
        }
    }
    "value".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_services_field_names_are_placed_in_the_request() {
        let placed = AppError::invalid("value_date", "is in the future").under("body");
        match placed {
            AppError::Validation { detail, errors } => {
                assert_eq!(detail, "body.value_date: is in the future");
                assert_eq!(errors[0].field, "body.value_date");
            }
            other => panic!("unexpected {other:?}"),
        }
        let conflict = AppError::conflict(ErrorCode::Taken, Some("code"), "in use").under("body");
        match conflict {
            AppError::Conflict { detail, errors, .. } => {
                assert_eq!(detail, "in use");
                assert_eq!(errors[0].field, "body.code");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            AppError::not_found("x").under("body"),
            AppError::NotFound(_)
        ));
    }
}
