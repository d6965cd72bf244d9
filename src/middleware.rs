//! The request-context middleware, outermost on every route:
//!
//! - gives each request an id (the client's `X-Request-Id` when sane) and
//!   returns it in the `X-Request-Id` header;
//! - opens one tracing span per request with method, route, status, latency
//!   and request id (never bodies, tokens or personal data);
//! - turns every 4xx/5xx into an RFC 9457 problem document carrying the
//!   request id and path, and logs the cause of a 500 once;
//! - sets `Cache-Control: no-store` and `X-Content-Type-Options: nosniff`.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use tracing::field::Empty;
use tracing::Instrument;

use crate::api::RequestOrigin as _;
use crate::domain::audit::AuditAction;
use crate::error::{problem_response, AppError, Problem, PROBLEM_JSON};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A client-supplied id is echoed only when it is short and plain, so it
/// cannot inject text into logs or headers.
fn sane_request_id(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut()
        .insert(crate::api::RequestId(request_id.clone()));

    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        route = Empty,
        status = Empty,
        latency_ms = Empty,
        request_id = %request_id,
    );
    // Handlers and extractors turn their errors into responses (with the
    // error attached), so an `Err` here is rare; it is rendered by actix via
    // `ResponseError`, still as a problem document. (The request cannot be
    // kept aside for it: routing needs it unshared.)
    let mut res = next
        .call(req)
        .instrument(span.clone())
        .await?
        .map_into_boxed_body();

    if res.status().is_client_error() || res.status().is_server_error() {
        audit_refusal(&res).instrument(span.clone()).await;
        res = into_problem(res, &request_id, &span);
    }

    let headers = res.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );

    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16();
    span.record("route", route.as_str());
    span.record("status", status);
    span.record("latency_ms", started.elapsed().as_micros() as f64 / 1000.0);
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!("request failed");
        } else {
            tracing::info!("request completed");
        }
    });
    Ok(res)
}

/// Writes refusals (401 for a bad token, 403, 404 outside the caller's
/// consulate) to the audit log before the response leaves.
async fn audit_refusal(res: &ServiceResponse<BoxBody>) {
    let Some(error) = res
        .response()
        .error()
        .and_then(|e| e.as_error::<AppError>())
    else {
        return;
    };
    if !error.is_audited_refusal() {
        return;
    }
    let req = res.request();
    let Some(state) = req
        .app_data::<actix_web::web::Data<crate::AppState>>()
        .cloned()
    else {
        return;
    };
    let actor = req
        .extensions()
        .get::<crate::auth::AuthUser>()
        .map(|u| u.actor());
    let meta = crate::audit::RequestMeta::of(req);
    // The route pattern, never a raw path a client made up (unmatched
    // paths are one route).
    let route = format!(
        "{} {}",
        req.method(),
        req.match_pattern()
            .unwrap_or_else(|| "(no route)".to_owned())
    );
    let mut details = serde_json::json!({
        "status": res.status().as_u16(),
        "code": error.code().as_str(),
    });
    let mut bursts = Vec::new();
    if actor.is_none() {
        // Without a valid token: one row per address and minute.
        let addr = meta.client_addr.clone().unwrap_or_default();
        let minute = chrono::Utc::now().timestamp().div_euclid(60);
        let (first, finished) = state.refusals.note(&addr, &route, minute);
        if !first && finished.is_empty() {
            return;
        }
        bursts = finished;
        if !first {
            details = serde_json::Value::Null;
        }
    } else {
        // A signed-in caller probing another consulate's records: which
        // record is the point (bounded, as paths are bounded by then).
        details["path"] = req.path().chars().take(512).collect::<String>().into();
    }
    let result = crate::db::run(&state.pool, move |conn| {
        for b in bursts {
            crate::audit::record_alone(
                conn,
                None,
                &crate::audit::RequestMeta {
                    request_id: None,
                    client_addr: Some(b.addr.clone()),
                },
                crate::audit::Event::new(AuditAction::AccessDeniedBurst, "route", None)
                    .outcome(crate::audit::Outcome::Denied)
                    .details(serde_json::json!({
                        "status": 401,
                        "minute": chrono::DateTime::from_timestamp(b.minute * 60, 0)
                            .map(|t| t.to_rfc3339()),
                        "count": b.count,
                        "routes": b.routes,
                    })),
            )?;
        }
        if !details.is_null() {
            crate::audit::record_alone(
                conn,
                actor.as_ref(),
                &meta,
                crate::audit::Event::new(AuditAction::AccessDenied, "route", Some(route))
                    .outcome(crate::audit::Outcome::Denied)
                    .details(details),
            )?;
        }
        Ok(())
    })
    .await;
    if let Err(err) = result {
        tracing::error!(error = %err, "could not audit a refusal");
    }
}

/// Rebuilds an error response as a problem document with request context,
/// keeping its extra headers (`Retry-After`, `Allow`, …).
fn into_problem(
    res: ServiceResponse<BoxBody>,
    request_id: &str,
    span: &tracing::Span,
) -> ServiceResponse<BoxBody> {
    let status = res.status();
    let app_error = res
        .response()
        .error()
        .and_then(|e| e.as_error::<AppError>());
    let (mut problem, mut rebuilt) = match app_error {
        Some(err) => {
            if let AppError::Internal(cause) = err {
                span.in_scope(|| tracing::error!(error = ?cause, "internal error"));
            }
            (err.problem(), problem_response(err, &err.problem()))
        }
        None => {
            if let Some(err) = res.response().error() {
                if status.is_server_error() {
                    span.in_scope(|| tracing::error!(error = %err, "internal error"));
                }
            }
            // Already a problem document from elsewhere? Leave it.
            let is_problem = res
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
            if is_problem {
                return res;
            }
            generic_problem(status, res.response().error())
        }
    };
    problem.instance = Some(res.request().path().to_owned());
    problem.request_id = Some(request_id.to_owned());
    let body = serde_json::to_vec(&problem).unwrap_or_else(|_| b"{}".to_vec());

    for (name, value) in res.headers() {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && !rebuilt.headers().contains_key(name)
        {
            rebuilt.headers_mut().insert(name.clone(), value.clone());
        }
    }
    let rebuilt = rebuilt.set_body(BoxBody::new(body));
    res.into_response(rebuilt)
}

/// A problem for an error that did not come from our handlers (actix's own
/// extractors, static files): the status decides the code; a 5xx gets no text.
fn generic_problem(
    status: StatusCode,
    error: Option<&actix_web::Error>,
) -> (Problem, HttpResponse) {
    let (code, title) = match status {
        StatusCode::BAD_REQUEST => ("bad_request", "Bad request"),
        StatusCode::UNAUTHORIZED => ("unauthorized", "Unauthorized"),
        StatusCode::FORBIDDEN => ("forbidden", "Forbidden"),
        StatusCode::NOT_FOUND => ("not_found", "Not found"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "Method not allowed"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "Payload too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "Unsupported media type"),
        s if s.is_server_error() => ("internal_error", "Internal server error"),
        _ => ("request_failed", "Request failed"),
    };
    let detail = match error {
        Some(err) if status.is_client_error() => err.to_string(),
        _ if status.is_client_error() => status.canonical_reason().unwrap_or("request failed").to_owned(),
        _ => "An unexpected error occurred; it has been logged. Quote the request id when reporting it.".to_owned(),
    };
    let problem = Problem {
        type_uri: format!("urn:mapce:problem:{code}"),
        title: title.to_owned(),
        status: status.as_u16(),
        detail,
        code: code.to_owned(),
        instance: None,
        candidates: None,
        existing_id: None,
        suggestions: None,
        request_id: None,
        errors: vec![],
    };
    let mut response = HttpResponse::build(status);
    response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
    (problem, response.finish())
}

/// The default service: a path nobody registered is 404; a registered path
/// reached with another method is 405.
pub async fn fallback(req: HttpRequest) -> Result<HttpResponse, AppError> {
    if req.resource_map().has_resource(req.path()) {
        Err(AppError::MethodNotAllowed {
            allow: crate::openapi::allowed_methods(req.path()),
        })
    } else {
        Err(AppError::not_found(format!(
            "no resource at {}",
            req.path()
        )))
    }
}
