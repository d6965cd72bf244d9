//! Request extractors whose failures name the field at fault.
//!
//! actix's own `Json` and `Query` report serde's message without the path of
//! the bad field; these use `serde_path_to_error` so a client reads
//! `body.documents[0].number: invalid type: integer, expected a string`.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use crate::domain::error_code::ErrorCode;
use crate::error::{AppError, FieldError};

/// Largest JSON body accepted: 256 KiB.
pub const JSON_LIMIT: usize = 256 * 1024;

/// A JSON request body, checked for content type and size, deserialised with
/// the path of any bad field. Unknown fields are refused by the DTOs
/// (`#[serde(deny_unknown_fields)]`).
///
/// A bad body does not fail the extraction: the error waits in
/// [`JsonBody::into_inner`], which handlers call after checking the caller's
/// role, so a role that may not call an operation gets 403 whatever it sent.
#[derive(Debug)]
pub struct JsonBody<T>(Result<T, AppError>);

impl<T> JsonBody<T> {
    pub fn into_inner(self) -> Result<T, AppError> {
        self.0
    }
}

fn is_json_content_type(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON document into `T`, naming the field of a type error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let value = match result {
        Ok(v) => v,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            return Err(json_error(&path, &inner));
        }
    };
    // Trailing data after the document is malformed JSON too.
    de.end().map_err(|e| json_error(".", &e))?;
    Ok(value)
}

fn json_error(path: &str, err: &serde_json::Error) -> AppError {
    use serde_json::error::Category;
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => AppError::BadRequest {
            code: ErrorCode::MalformedJson,
            detail: format!("the body is not valid JSON: {err}"),
            errors: vec![FieldError::new("body", err.to_string())],
        },
        Category::Data => {
            let field = if path == "." || path.is_empty() {
                "body".to_string()
            } else {
                format!("body.{path}")
            };
            // serde's message carries " at line X column Y"; the field path says more.
            let message = err.to_string();
            let reason = message
                .rsplit_once(" at line ")
                .map(|(m, _)| m.to_string())
                .unwrap_or(message);
            AppError::Validation {
                detail: format!("{field}: {reason}"),
                errors: vec![FieldError::new(field, reason)],
            }
        }
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type_ok = is_json_content_type(req);
        let declared_len = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let parsed = async {
                if !content_type_ok {
                    return Err(AppError::UnsupportedMediaType(
                        "send the body as JSON with Content-Type: application/json".into(),
                    ));
                }
                if declared_len.is_some_and(|len| len > JSON_LIMIT) {
                    return Err(AppError::PayloadTooLarge { limit: JSON_LIMIT });
                }
                let bytes = body
                    .await
                    .map_err(|e| payload_error(e.as_error::<actix_web::error::PayloadError>()))?;
                parse_json(&bytes)
            }
            .await;
            Ok(JsonBody(parsed))
        })
    }
}

fn payload_error(err: Option<&actix_web::error::PayloadError>) -> AppError {
    match err {
        Some(actix_web::error::PayloadError::Overflow) => {
            AppError::PayloadTooLarge { limit: JSON_LIMIT }
        }
        None => AppError::BadRequest {
            code: ErrorCode::UnreadableBody,
            detail: "the request body could not be read".into(),
            errors: vec![],
        },
        Some(other) => AppError::BadRequest {
            code: ErrorCode::UnreadableBody,
            detail: format!("the request body could not be read: {other}"),
            errors: vec![],
        },
    }
}

/// Query-string parameters, deserialised with the name of any bad parameter.
/// Unknown parameters are refused by the DTOs (`deny_unknown_fields`) so a
/// typo such as `?regoin=` is an error instead of an unfiltered list.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<T> QueryParams<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Parses a query string into `T`.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, AppError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let reason = err.into_inner().to_string();
        let field = if path == "." || path.is_empty() {
            // serde names the parameter in the message for unknown/missing ones
            match extract_backticked(&reason) {
                Some(name) => format!("query.{name}"),
                None => "query".to_string(),
            }
        } else {
            format!("query.{path}")
        };
        AppError::bad_query(field, reason)
    })
}

fn extract_backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(&message[start..end])
}

impl<T: DeserializeOwned> FromRequest for QueryParams<T> {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_query(req.query_string()).map(QueryParams))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        number: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        documents: Vec<Inner>,
    }

    fn field_of(err: AppError) -> String {
        match err {
            AppError::Validation { errors, .. } | AppError::BadRequest { errors, .. } => {
                errors[0].field.clone()
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn type_errors_name_the_nested_field() {
        let err = parse_json::<Outer>(br#"{"name":"a","documents":[{"number":5}]}"#).unwrap_err();
        assert_eq!(field_of(err), "body.documents[0].number");
    }

    #[test]
    fn unknown_fields_are_refused_with_their_place() {
        let err = parse_json::<Outer>(br#"{"name":"a","documents":[],"extra":1}"#).unwrap_err();
        assert!(matches!(err, AppError::Validation { .. }));
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        let err = parse_json::<Outer>(br#"{"name":"#).unwrap_err();
        assert_eq!(err.code(), "malformed_json");
        let err = parse_json::<Outer>(br#"{"name":"a","documents":[]} x"#).unwrap_err();
        assert_eq!(err.code(), "malformed_json");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Q {
        limit: Option<u32>,
    }

    #[test]
    fn query_errors_name_the_parameter() {
        assert_eq!(
            field_of(parse_query::<Q>("limit=abc").unwrap_err()),
            "query.limit"
        );
        assert_eq!(
            field_of(parse_query::<Q>("regoin=x").unwrap_err()),
            "query.regoin"
        );
        assert!(parse_query::<Q>("limit=5").is_ok());
    }
}
