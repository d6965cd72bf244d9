//! The HTTP API: one module per resource, and the single route table.

pub mod access;
pub mod audit;
pub mod auth;
pub mod cases;
pub mod catalogue;
pub mod detention;
pub mod disclosure;
pub mod followup;
pub mod health;
pub mod imports;
pub mod indicators;
pub mod ledger;
pub mod operations;
pub mod person_access;
pub mod persons;
pub mod reference;
pub mod repatriation;
pub mod reports;
pub mod support;
pub mod users;
pub mod vocabulary;
pub mod write;

pub use crate::services::input::{
    changed_meanwhile, check_version, field_changes, optional_text, text,
};

use actix_web::HttpRequest;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::error_code::ErrorCode;
use crate::error::AppError;
use crate::models::reference::Window;

/// Base path of the versioned API.
pub const API_BASE: &str = "/api/v1";

/// Default and maximum page sizes for every list.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// The route table: every `/api/v1` operation, registered with `.service()`
/// so that utoipa collects it into the spec, in the groups below and in the
/// order actix matches them (fixed paths before `{id}`). Who may call each
/// one is in [`access`].
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        utoipa_actix_web::scope(API_BASE)
            .configure(accounts_routes)
            .configure(reference_routes)
            .configure(persons_routes)
            .configure(cases_routes)
            .configure(support_routes)
            .configure(figures_routes),
    );
    cfg.service(health::healthz).service(health::readyz);
}

/// Signing in, one's own account, and the accounts administrators keep.
fn accounts_routes(cfg: &mut ServiceConfig) {
    cfg
        // auth and own account
        .service(auth::login)
        .service(auth::login_second_factor)
        .service(auth::refresh_session)
        .service(auth::logout)
        .service(auth::get_me)
        .service(auth::change_password)
        .service(auth::enrol_totp)
        .service(auth::confirm_totp)
        .service(auth::disable_totp)
        // users
        .service(users::create_user)
        .service(users::list_users)
        .service(users::get_user)
        .service(users::update_user)
        .service(users::reset_user_password);
}

/// Reference data, its spellings, and the attention-type catalogue.
fn reference_routes(cfg: &mut ServiceConfig) {
    cfg
        // reference data
        .service(reference::list_regions)
        .service(reference::list_countries)
        .service(reference::list_consulates)
        .service(reference::get_consulate)
        .service(reference::create_consulate)
        .service(reference::update_consulate)
        .service(vocabulary::add_consulate_alias)
        .service(vocabulary::add_country_alias)
        .service(vocabulary::add_channel_alias)
        .service(vocabulary::add_sex_alias)
        .service(vocabulary::add_document_type_alias)
        .service(vocabulary::list_vocabulary_aliases)
        .service(vocabulary::remove_vocabulary_alias)
        // attention-type catalogue (fixed paths before `{id}`)
        .service(catalogue::resolve_attention_type)
        .service(catalogue::list_attention_type_merges)
        .service(catalogue::list_attention_types)
        .service(catalogue::get_attention_type)
        .service(catalogue::create_attention_type)
        .service(catalogue::update_attention_type)
        .service(catalogue::add_attention_type_alias)
        .service(catalogue::merge_attention_type)
        .service(catalogue::put_attention_type_protocol)
        .service(catalogue::get_attention_type_protocol)
        .service(catalogue::list_public_attention_types);
}

/// Persons, their histories, access to protected ones, duplicates and merges.
fn persons_routes(cfg: &mut ServiceConfig) {
    cfg
        // persons, duplicates, merges
        .service(persons::create_person)
        .service(persons::list_persons)
        .service(persons::get_person)
        .service(persons::update_person)
        .service(persons::get_person_history)
        .service(person_access::request_person_access)
        .service(person_access::list_person_access)
        .service(person_access::decide_person_access)
        .service(person_access::revoke_person_access)
        .service(persons::list_duplicates)
        .service(persons::decide_duplicate)
        .service(persons::merge_person)
        .service(persons::undo_person_merge);
}

/// Cases, their attentions and workflow, and their follow-up.
fn cases_routes(cfg: &mut ServiceConfig) {
    cfg
        // cases
        .service(cases::create_case)
        .service(cases::list_cases)
        .service(cases::get_case)
        .service(cases::add_attention)
        .service(cases::void_attention)
        .service(cases::transition_case)
        .service(cases::decide_case_step)
        .service(cases::add_case_note)
        .service(followup::update_case)
        .service(followup::list_tasks)
        .service(followup::create_task)
        .service(followup::complete_task)
        .service(followup::request_transfer)
        .service(followup::decide_transfer)
        .service(followup::list_transfers);
}

/// The work around a case: the support network, the ledger, detention and repatriation.
fn support_routes(cfg: &mut ServiceConfig) {
    cfg
        // support network and referrals
        .service(support::list_organisations)
        .service(support::create_organisation)
        .service(support::get_organisation)
        .service(support::update_organisation)
        .service(support::verify_organisation)
        .service(support::create_referral)
        .service(support::update_referral_status)
        .service(support::list_referrals)
        // ledger (fixed paths before `{id}`)
        .service(ledger::put_exchange_rate)
        .service(ledger::list_exchange_rates)
        .service(ledger::payment_totals)
        .service(ledger::list_payments)
        .service(ledger::request_payment)
        .service(ledger::get_payment)
        .service(ledger::update_payment)
        .service(ledger::decide_payment)
        .service(ledger::mark_payment_paid)
        .service(ledger::reverse_payment)
        // detention and repatriation
        .service(detention::open_detention)
        .service(detention::get_detention)
        .service(detention::update_detention)
        .service(detention::add_detention_visit)
        .service(detention::add_detention_hearing)
        .service(detention::list_detainees)
        .service(repatriation::create_repatriation)
        .service(repatriation::list_case_repatriations)
        .service(repatriation::get_repatriation)
        .service(repatriation::update_repatriation)
        .service(repatriation::decide_repatriation_step);
}

/// The figures, the legacy imports that feed them, and the audit.
fn figures_routes(cfg: &mut ServiceConfig) {
    cfg
        // indicators (fixed paths before `{year}`)
        .service(indicators::get_oei05)
        .service(indicators::get_oei05_series)
        .service(indicators::put_oei05_target)
        .service(indicators::close_oei05_year)
        .service(indicators::reopen_oei05_year)
        .service(indicators::export_oei05)
        .service(indicators::get_oei05_chart)
        .service(operations::get_operations)
        // legacy imports and data quality
        .service(imports::create_import)
        .service(imports::get_import)
        .service(imports::list_import_rejections)
        .service(imports::get_data_quality)
        // audit
        .service(audit::list_audit)
        .service(audit::list_lookups);
}

/// The id of the current request, in the request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The request id of a request, if the middleware has run.
pub fn request_id(req: &HttpRequest) -> Option<String> {
    use actix_web::HttpMessage;
    req.extensions().get::<RequestId>().map(|r| r.0.clone())
}

/// Where a request came from, for the audit log: `RequestMeta::of(&req)`
/// (HTTP stays out of `audit`, which services use).
pub trait RequestOrigin {
    fn of(req: &HttpRequest) -> Self;
}

impl RequestOrigin for crate::audit::RequestMeta {
    /// The client's address: the peer of the TCP connection, or, when that
    /// peer is one of `MAPCE_TRUSTED_PROXIES`, the nearest address in
    /// `X-Forwarded-For` that is not a trusted proxy (a header from any
    /// other peer is ignored: any client could forge it).
    fn of(req: &HttpRequest) -> crate::audit::RequestMeta {
        crate::audit::RequestMeta {
            request_id: request_id(req),
            client_addr: client_ip(req).map(|ip| ip.to_string()),
        }
    }
}

fn client_ip(req: &HttpRequest) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip();
    let trusted = req
        .app_data::<actix_web::web::Data<crate::AppState>>()
        .map(|s| s.trusted_proxies.clone())
        .unwrap_or_default();
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<std::net::IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted.contains(ip))
            .unwrap_or(peer),
    )
}

/// The caller as the person-access rules see it (`services::access`).
pub trait Viewing {
    /// `justified` when an hq_analyst's audited justification came with
    /// the request.
    fn viewer(&self, justified: bool) -> crate::services::access::Viewer;
}

impl Viewing for crate::auth::AuthUser {
    fn viewer(&self, justified: bool) -> crate::services::access::Viewer {
        crate::services::access::Viewer::of(self, justified)
    }
}

/// A name search's folded key (`domain::text::fold_key`). Blank is 400;
/// a text with no letter or digit (`+`, `¿?`) finds nothing, `None`. (The
/// spec can only say "not blank": which characters are letters depends on
/// the Unicode version of whoever reads the pattern.)
pub fn search_text(field: &str, raw: &str) -> Result<Option<String>, AppError> {
    if raw.trim().is_empty() {
        return Err(AppError::bad_query(field, "must not be blank"));
    }
    let key = crate::domain::text::fold_key(raw);
    Ok((!key.is_empty()).then_some(key))
}

/// One page of a list, and how to get the next.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// How many items match the filters in all.
    pub total: i64,
    pub limit: u32,
    pub offset: u64,
    /// Path and query of the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

impl<T> Page<T> {
    pub fn new(req: &HttpRequest, items: Vec<T>, total: i64, window: Window) -> Self {
        let end = window.offset + items.len() as i64;
        let next = (end < total && !items.is_empty()).then(|| next_page_link(req, end));
        Page {
            items,
            total,
            limit: u32::try_from(window.limit).unwrap_or(DEFAULT_LIMIT),
            offset: u64::try_from(window.offset).unwrap_or(0),
            next,
        }
    }
}

/// The same request with `offset` moved forward.
fn next_page_link(req: &HttpRequest, offset: i64) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(req.query_string().as_bytes()) {
        if key != "offset" {
            query.append_pair(&key, &value);
        }
    }
    query.append_pair("offset", &offset.to_string());
    format!("{}?{}", req.path(), query.finish())
}

/// Validates `limit`/`offset` query parameters.
pub fn window(limit: Option<u32>, offset: Option<u64>) -> Result<Window, AppError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AppError::bad_query(
            "query.limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let offset = offset.unwrap_or(0);
    let offset =
        i64::try_from(offset).map_err(|_| AppError::bad_query("query.offset", "is too large"))?;
    Ok(Window {
        limit: i64::from(limit),
        offset,
    })
}

/// The characters `str::trim` removes (Unicode White_Space), as ranges.
const TRIMMED: &[(char, char)] = &[
    ('\t', '\r'),
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

/// The spec's pattern for a text the server trims and refuses when blank:
/// one character `trim` keeps. Annotations write it `\S`, and the spec's
/// JSON spells the set out (`openapi::to_json`), because regex engines
/// disagree on `\s`: ECMAScript's includes U+FEFF, Python's U+001C–U+001F
/// but not U+0085 in every tool, and Rust trims neither U+FEFF nor U+001C.
pub fn visible_text_pattern() -> String {
    let u = |c: char| format!("\\u{:04x}", c as u32);
    let set: String = TRIMMED
        .iter()
        .map(|&(a, b)| {
            if a == b {
                u(a)
            } else {
                format!("{}-{}", u(a), u(b))
            }
        })
        .collect();
    format!("[^{set}]")
}

/// The `If-Match` values `if_match_version` reads, as the spec declares them.
pub const IF_MATCH_PATTERN: &str = r#"^\s*(W/)?("[0-9]{1,9}"|[0-9]{1,9})\s*$"#;

/// The version a client says it is updating, from `If-Match: "N"`.
/// Missing → 428; unparsable → 400.
pub fn if_match_version(req: &HttpRequest) -> Result<i32, AppError> {
    let raw = req
        .headers()
        .get(actix_web::http::header::IF_MATCH)
        .ok_or_else(|| {
            AppError::PreconditionRequired(
                "send If-Match with the ETag you read, so concurrent edits are detected".into(),
            )
        })?
        .to_str()
        .unwrap_or("");
    // `"N"`, `W/"N"` or a bare `N`, N of 1 to 9 digits: IF_MATCH_PATTERN
    let t = raw.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    let t = t
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(t);
    let digits = (1..=9).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit());
    let parsed = if digits { t.parse::<i32>().ok() } else { None };
    parsed.ok_or_else(|| AppError::BadRequest {
        code: ErrorCode::InvalidHeader,
        detail: format!("If-Match `{raw}` is not an ETag this API issued"),
        errors: vec![crate::error::FieldError::new(
            "header.If-Match",
            "not an ETag this API issued",
        )],
    })
}

/// A representation with its `ETag` and `Location`: 201 for a creation, else 200.
pub fn with_etag<T: Serialize>(
    created: bool,
    version: i32,
    location: String,
    body: &T,
) -> actix_web::HttpResponse {
    let mut b = if created {
        actix_web::HttpResponse::Created()
    } else {
        actix_web::HttpResponse::Ok()
    };
    b.insert_header((actix_web::http::header::ETAG, etag(version)))
        .insert_header((actix_web::http::header::LOCATION, location))
        .json(body)
}

/// The ETag of a version.
pub fn etag(version: i32) -> String {
    format!("\"{version}\"")
}

/// Deserialises a field so that absent (`None`) and `null` (`Some(None)`)
/// differ: PATCH bodies clear a value with `null`.
pub mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(de).map(Some)
    }
}

/// Deserialises an integer body field from any JSON number without a
/// fraction: JSON Schema counts `177.0` as an integer, serde's integers do
/// not. `177.5`, and numbers outside the field's type, are refused.
pub mod whole_number {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};

    fn whole<E: Error, T: TryFrom<i64>>(n: serde_json::Number) -> Result<T, E> {
        n.as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() <= 9.0e15)
                    .map(|f| f as i64)
            })
            .and_then(|v| T::try_from(v).ok())
            .ok_or_else(|| E::custom(format!("`{n}` is not a whole number in range")))
    }

    pub fn deserialize<'de, D, T>(de: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i64>,
    {
        whole(serde_json::Number::deserialize(de)?)
    }

    /// The same for an optional field (absent or `null` is `None`).
    pub mod option {
        use super::*;

        pub fn deserialize<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
        where
            D: Deserializer<'de>,
            T: TryFrom<i64>,
        {
            Option::<serde_json::Number>::deserialize(de)?
                .map(whole)
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(value: &str) -> Result<i32, AppError> {
        let req = actix_web::test::TestRequest::default()
            .insert_header(("If-Match", value))
            .to_http_request();
        if_match_version(&req)
    }

    #[test]
    fn if_match_reads_exactly_the_etags_the_spec_declares() {
        for (value, expected) in [
            ("\"3\"", 3),
            ("W/\"12\"", 12),
            ("7", 7),
            ("\"999999999\"", 999_999_999),
        ] {
            assert_eq!(version(value).ok(), Some(expected), "{value}");
        }
        for value in [
            "*",
            "\"3",
            "\"\"",
            "\"-1\"",
            "\"+1\"",
            "\"1234567890\"",
            "W/3x",
            "\"1 2\"",
        ] {
            assert!(
                matches!(
                    version(value),
                    Err(AppError::BadRequest {
                        code: crate::domain::error_code::ErrorCode::InvalidHeader,
                        ..
                    })
                ),
                "{value} must be refused"
            );
        }
        let missing = if_match_version(&actix_web::test::TestRequest::default().to_http_request());
        assert!(matches!(missing, Err(AppError::PreconditionRequired(_))));
    }

    #[test]
    fn the_visible_text_pattern_excludes_exactly_what_trim_removes() {
        let trimmed = |c: char| TRIMMED.iter().any(|&(a, b)| (a..=b).contains(&c));
        for c in (0..=0x10ffff_u32).filter_map(char::from_u32) {
            assert_eq!(c.is_whitespace(), trimmed(c), "U+{:04X}", c as u32);
        }
        assert_eq!(
            visible_text_pattern(),
            "[^\\u0009-\\u000d\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028-\\u2029\\u202f\\u205f\\u3000]"
        );
    }

    #[test]
    fn whole_numbers_are_read_with_or_without_a_zero_fraction() {
        #[derive(serde::Deserialize)]
        struct Body {
            #[serde(deserialize_with = "whole_number::deserialize")]
            n: i32,
            #[serde(default, deserialize_with = "whole_number::option::deserialize")]
            m: Option<i64>,
        }
        let read = |json: &str| serde_json::from_str::<Body>(json).map(|b| (b.n, b.m));
        assert_eq!(read(r#"{"n": 177}"#).ok(), Some((177, None)));
        assert_eq!(
            read(r#"{"n": 177.0, "m": -3.0}"#).ok(),
            Some((177, Some(-3)))
        );
        assert_eq!(read(r#"{"n": 1e3, "m": null}"#).ok(), Some((1000, None)));
        for bad in [
            r#"{"n": 177.5}"#,
            r#"{"n": 3000000000}"#,
            r#"{"n": "7"}"#,
            r#"{"n": 1e300}"#,
        ] {
            assert!(read(bad).is_err(), "{bad} must be refused");
        }
    }
}
