//! The authorization matrix: every `/api/v1` operation × every role × own
//! or other consulate → the expected answer. Generated into one test per
//! run; a test also fails when the spec has an operation the matrix lacks.

use std::collections::BTreeSet;

use mapce::domain::role::Role;
use serde_json::{json, Value};

use crate::helpers::{Caller, TestApp};

/// What a caller must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Authorization passed: anything but 401/403/404-by-scope, and no 5xx.
    Allowed,
    /// A public operation: never 403, never 5xx (401 for bad credentials is
    /// its normal answer).
    Public,
    /// 401: no valid token.
    Unauthenticated,
    /// 403: the role may not.
    Forbidden,
    /// 404: the record is outside the caller's consulate.
    Hidden,
    /// 404 for a record that does not exist: authorization passed (403 would
    /// be a refusal).
    Missing,
}

use Expect::{
    Allowed as A, Forbidden as F, Hidden as H, Missing as M, Public as P, Unauthenticated as U,
};

/// Who calls: anonymous, officer and supervisor of consulate A, hq, planner, admin.
const CALLERS: [&str; 6] = [
    "anonymous",
    "officer",
    "supervisor",
    "hq_analyst",
    "planner",
    "admin",
];

struct Row {
    operation: &'static str,
    method: &'static str,
    /// `{own_user}`/`{other_user}` are users of consulate A and B.
    path: &'static str,
    body: Option<fn() -> Value>,
    expect: [Expect; 6],
}

fn wrong_password_change() -> Value {
    json!({ "current_password": "definitely not it", "new_password": "a brand new passphrase" })
}
fn bad_code() -> Value {
    json!({ "code": "000000" })
}
fn wrong_password() -> Value {
    json!({ "password": "definitely not it" })
}
fn new_user() -> Value {
    json!({ "username": format!("u{}", uuid::Uuid::now_v7().simple()), "display_name": "New", "role": "planner", "password": "a long enough passphrase" })
}
fn rename() -> Value {
    json!({ "display_name": "Renamed" })
}
fn reset() -> Value {
    json!({ "new_password": "a long enough passphrase" })
}
fn new_consulate() -> Value {
    let suffix: String = uuid::Uuid::now_v7()
        .simple()
        .to_string()
        .chars()
        .rev()
        .take(8)
        .collect();
    json!({ "code": format!("ES-X{}", suffix.to_uppercase()), "kind": "consulate", "country": "ES", "city": "Ciudad" })
}
fn login_body() -> Value {
    json!({ "username": "nobody.at.all", "password": "not a real password" })
}
fn challenge() -> Value {
    json!({ "challenge_token": "x", "code": "123456" })
}
fn access_reason() -> Value {
    json!({ "reason": "moved from the other consulate's city" })
}
fn revoke_reason() -> Value {
    json!({ "reason": "the person moved back" })
}
fn grant_access() -> Value {
    json!({ "decision": "grant", "reason": "checked with the family" })
}
fn refresh() -> Value {
    json!({ "refresh_token": "unknown" })
}

#[rustfmt::skip]
const MATRIX: &[Row] = &[
    // public
    Row { operation: "login", method: "POST", path: "/api/v1/auth/login", body: Some(login_body), expect: [P, P, P, P, P, P] },
    Row { operation: "login_second_factor", method: "POST", path: "/api/v1/auth/login/second-factor", body: Some(challenge), expect: [P, P, P, P, P, P] },
    Row { operation: "refresh_session", method: "POST", path: "/api/v1/auth/refresh", body: Some(refresh), expect: [P, P, P, P, P, P] },
    Row { operation: "list_regions", method: "GET", path: "/api/v1/regions", body: None, expect: [P, P, P, P, P, P] },
    Row { operation: "list_countries", method: "GET", path: "/api/v1/countries", body: None, expect: [P, P, P, P, P, P] },
    Row { operation: "list_consulates", method: "GET", path: "/api/v1/consulates", body: None, expect: [P, P, P, P, P, P] },
    Row { operation: "get_consulate", method: "GET", path: "/api/v1/consulates/IT-MILAN", body: None, expect: [P, P, P, P, P, P] },
    Row { operation: "healthz", method: "GET", path: "/healthz", body: None, expect: [P, P, P, P, P, P] },
    Row { operation: "readyz", method: "GET", path: "/readyz", body: None, expect: [P, P, P, P, P, P] },
    // own account
    Row { operation: "get_me", method: "GET", path: "/api/v1/auth/me", body: None, expect: [U, A, A, A, A, A] },
    Row { operation: "change_password", method: "POST", path: "/api/v1/auth/password", body: Some(wrong_password_change), expect: [U, A, A, A, A, A] },
    Row { operation: "enrol_totp", method: "POST", path: "/api/v1/auth/totp/enrol", body: None, expect: [U, A, A, A, A, A] },
    Row { operation: "confirm_totp", method: "POST", path: "/api/v1/auth/totp/confirm", body: Some(bad_code), expect: [U, A, A, A, A, A] },
    Row { operation: "disable_totp", method: "POST", path: "/api/v1/auth/totp/disable", body: Some(wrong_password), expect: [U, A, A, F, A, F] },
    // users
    Row { operation: "create_user", method: "POST", path: "/api/v1/users", body: Some(new_user), expect: [U, F, F, F, F, A] },
    Row { operation: "list_users", method: "GET", path: "/api/v1/users", body: None, expect: [U, F, A, F, F, A] },
    Row { operation: "get_user", method: "GET", path: "/api/v1/users/{own_user}", body: None, expect: [U, F, A, F, F, A] },
    Row { operation: "get_user", method: "GET", path: "/api/v1/users/{other_user}", body: None, expect: [U, F, H, F, F, A] },
    Row { operation: "update_user", method: "PATCH", path: "/api/v1/users/{own_user}", body: Some(rename), expect: [U, F, F, F, F, A] },
    Row { operation: "update_user", method: "PATCH", path: "/api/v1/users/{other_user}", body: Some(rename), expect: [U, F, F, F, F, A] },
    Row { operation: "reset_user_password", method: "POST", path: "/api/v1/users/{own_user}/password", body: Some(reset), expect: [U, F, F, F, F, A] },
    // reference data writes
    Row { operation: "create_consulate", method: "POST", path: "/api/v1/consulates", body: Some(new_consulate), expect: [U, F, F, F, F, A] },
    Row { operation: "update_consulate", method: "PATCH", path: "/api/v1/consulates/IT-MILAN", body: Some(rename_consulate), expect: [U, F, F, F, F, A] },
    Row { operation: "add_consulate_alias", method: "POST", path: "/api/v1/consulates/IT-MILAN/aliases", body: Some(new_spelling), expect: [U, F, F, F, F, A] },
    Row { operation: "add_country_alias", method: "POST", path: "/api/v1/countries/IT/aliases", body: Some(new_spelling), expect: [U, F, F, F, F, A] },
    Row { operation: "add_channel_alias", method: "POST", path: "/api/v1/channels/phone/aliases", body: Some(new_spelling), expect: [U, F, F, F, F, A] },
    Row { operation: "add_sex_alias", method: "POST", path: "/api/v1/sexes/female/aliases", body: Some(new_spelling), expect: [U, F, F, F, F, A] },
    Row { operation: "add_document_type_alias", method: "POST", path: "/api/v1/document-types/dni/aliases", body: Some(new_spelling), expect: [U, F, F, F, F, A] },
    Row { operation: "list_vocabulary_aliases", method: "GET", path: "/api/v1/aliases", body: None, expect: [U, F, F, A, F, A] },
    Row { operation: "remove_vocabulary_alias", method: "DELETE", path: "/api/v1/aliases/{own_person}", body: None, expect: [U, F, F, F, F, M] },
    // attention-type catalogue
    Row { operation: "list_public_attention_types", method: "GET", path: "/api/v1/public/attention-types", body: None, expect: [P, P, P, P, P, P] },
    Row { operation: "list_attention_types", method: "GET", path: "/api/v1/attention-types", body: None, expect: [U, A, A, A, A, A] },
    Row { operation: "get_attention_type", method: "GET", path: "/api/v1/attention-types/legal_orientation", body: None, expect: [U, A, A, A, A, A] },
    Row { operation: "resolve_attention_type", method: "GET", path: "/api/v1/attention-types/resolve?label=asesoria%20legal", body: None, expect: [U, A, A, A, A, A] },
    Row { operation: "get_attention_type_protocol", method: "GET", path: "/api/v1/attention-types/detainee_visit/protocol", body: None, expect: [U, A, A, A, A, A] },
    Row { operation: "list_attention_type_merges", method: "GET", path: "/api/v1/attention-types/merges", body: None, expect: [U, A, A, A, A, A] },
    Row { operation: "create_attention_type", method: "POST", path: "/api/v1/attention-types", body: Some(new_type), expect: [U, F, F, F, F, A] },
    Row { operation: "update_attention_type", method: "PATCH", path: "/api/v1/attention-types/legal_orientation", body: Some(describe), expect: [U, F, F, F, F, A] },
    Row { operation: "add_attention_type_alias", method: "POST", path: "/api/v1/attention-types/legal_orientation/aliases", body: Some(new_alias), expect: [U, F, F, F, F, A] },
    Row { operation: "merge_attention_type", method: "POST", path: "/api/v1/attention-types/economic_subsidy/merge", body: Some(merge_into_nothing), expect: [U, F, F, F, F, A] },
    Row { operation: "put_attention_type_protocol", method: "PUT", path: "/api/v1/attention-types/legal_orientation/protocol", body: Some(protocol), expect: [U, F, F, F, F, A] },
    // persons ({own_person} registered at consulate A, {other_person} at B)
    Row { operation: "create_person", method: "POST", path: "/api/v1/persons", body: Some(new_person), expect: [U, A, A, F, F, F] },
    Row { operation: "list_persons", method: "GET", path: "/api/v1/persons", body: None, expect: [U, A, A, A, F, F] },
    Row { operation: "get_person", method: "GET", path: "/api/v1/persons/{own_person}", body: None, expect: [U, A, A, A, F, F] },
    Row { operation: "get_person", method: "GET", path: "/api/v1/persons/{other_person}", body: None, expect: [U, H, H, A, F, F] },
    Row { operation: "update_person", method: "PATCH", path: "/api/v1/persons/{own_person}", body: Some(person_fix), expect: [U, A, A, F, F, F] },
    Row { operation: "update_person", method: "PATCH", path: "/api/v1/persons/{other_person}", body: Some(person_fix), expect: [U, H, H, F, F, F] },
    Row { operation: "get_person_history", method: "GET", path: "/api/v1/persons/{own_person}/history", body: None, expect: [U, A, A, A, F, F] },
    Row { operation: "get_person_history", method: "GET", path: "/api/v1/persons/{other_person}/history", body: None, expect: [U, H, H, A, F, F] },
    Row { operation: "request_person_access", method: "POST", path: "/api/v1/persons/{other_person}/access-requests", body: Some(access_reason), expect: [U, A, A, F, F, F] },
    Row { operation: "list_person_access", method: "GET", path: "/api/v1/access-requests", body: None, expect: [U, A, A, A, F, A] },
    Row { operation: "decide_person_access", method: "POST", path: "/api/v1/access-requests/{own_person}/decision", body: Some(grant_access), expect: [U, F, M, M, F, F] },
    Row { operation: "revoke_person_access", method: "POST", path: "/api/v1/access-requests/{own_person}/revocation", body: Some(revoke_reason), expect: [U, F, M, M, F, F] },
    Row { operation: "list_duplicates", method: "GET", path: "/api/v1/duplicates", body: None, expect: [U, F, F, A, F, A] },
    Row { operation: "decide_duplicate", method: "POST", path: "/api/v1/duplicates/{own_person}/decision", body: Some(bad_decision), expect: [U, F, F, A, F, A] },
    Row { operation: "merge_person", method: "POST", path: "/api/v1/persons/{own_person}/merge", body: Some(merge_into_garbage), expect: [U, F, F, A, F, A] },
    Row { operation: "undo_person_merge", method: "POST", path: "/api/v1/merges/{own_person}/undo", body: None, expect: [U, F, F, M, F, M] },
    // cases ({own_case} at consulate A, {other_case} at B)
    Row { operation: "create_case", method: "POST", path: "/api/v1/cases", body: Some(bad_case), expect: [U, A, A, F, F, F] },
    Row { operation: "list_cases", method: "GET", path: "/api/v1/cases", body: None, expect: [U, A, A, A, F, F] },
    Row { operation: "get_case", method: "GET", path: "/api/v1/cases/{own_case}", body: None, expect: [U, A, A, A, F, F] },
    Row { operation: "get_case", method: "GET", path: "/api/v1/cases/{other_case}", body: None, expect: [U, H, H, A, F, F] },
    Row { operation: "add_attention", method: "POST", path: "/api/v1/cases/{own_case}/attentions", body: Some(bad_attention), expect: [U, A, A, F, F, F] },
    Row { operation: "add_attention", method: "POST", path: "/api/v1/cases/{other_case}/attentions", body: Some(bad_attention), expect: [U, H, H, F, F, F] },
    Row { operation: "void_attention", method: "POST", path: "/api/v1/cases/{other_case}/attentions/{other_case}/void", body: Some(void_reason), expect: [U, H, H, F, F, F] },
    Row { operation: "transition_case", method: "POST", path: "/api/v1/cases/{own_case}/transitions", body: Some(to_progress), expect: [U, A, A, F, F, F] },
    Row { operation: "transition_case", method: "POST", path: "/api/v1/cases/{other_case}/transitions", body: Some(to_progress), expect: [U, H, H, F, F, F] },
    Row { operation: "decide_case_step", method: "POST", path: "/api/v1/cases/{other_case}/steps/{other_case}", body: Some(step_done), expect: [U, H, H, F, F, F] },
    Row { operation: "add_case_note", method: "POST", path: "/api/v1/cases/{own_case}/notes", body: Some(note), expect: [U, A, A, F, F, F] },
    Row { operation: "add_case_note", method: "POST", path: "/api/v1/cases/{other_case}/notes", body: Some(note), expect: [U, H, H, F, F, F] },
    Row { operation: "update_case", method: "PATCH", path: "/api/v1/cases/{own_case}", body: Some(city), expect: [U, A, A, F, F, F] },
    Row { operation: "update_case", method: "PATCH", path: "/api/v1/cases/{other_case}", body: Some(city), expect: [U, H, H, F, F, F] },
    Row { operation: "list_tasks", method: "GET", path: "/api/v1/tasks?overdue=true", body: None, expect: [U, A, A, A, F, F] },
    Row { operation: "create_task", method: "POST", path: "/api/v1/cases/{other_case}/tasks", body: Some(task), expect: [U, H, H, F, F, F] },
    Row { operation: "create_task", method: "POST", path: "/api/v1/cases/{own_case}/tasks", body: Some(task), expect: [U, A, A, F, F, F] },
    Row { operation: "complete_task", method: "POST", path: "/api/v1/tasks/{other_case}/done", body: None, expect: [U, M, M, F, F, F] },
    Row { operation: "request_transfer", method: "POST", path: "/api/v1/cases/{other_case}/transfers", body: Some(transfer), expect: [U, H, H, F, F, F] },
    Row { operation: "decide_transfer", method: "POST", path: "/api/v1/transfers/{other_case}/decision", body: Some(accept), expect: [U, F, M, F, F, F] },
    Row { operation: "list_transfers", method: "GET", path: "/api/v1/transfers", body: None, expect: [U, A, A, F, F, F] },
    // support network ({own_org} serves consulate A, {other_org} serves B, not public)
    Row { operation: "list_organisations", method: "GET", path: "/api/v1/organisations?stale=true", body: None, expect: [U, A, A, A, F, A] },
    Row { operation: "get_organisation", method: "GET", path: "/api/v1/organisations/{own_org}", body: None, expect: [U, A, A, A, F, A] },
    Row { operation: "get_organisation", method: "GET", path: "/api/v1/organisations/{other_org}", body: None, expect: [U, H, H, A, F, A] },
    Row { operation: "create_organisation", method: "POST", path: "/api/v1/organisations", body: Some(new_org), expect: [U, F, A, F, F, A] },
    Row { operation: "update_organisation", method: "PATCH", path: "/api/v1/organisations/{other_org}", body: Some(org_fix), expect: [U, F, H, F, F, A] },
    Row { operation: "verify_organisation", method: "POST", path: "/api/v1/organisations/{own_org}/verification", body: None, expect: [U, F, A, F, F, A] },
    Row { operation: "verify_organisation", method: "POST", path: "/api/v1/organisations/{other_org}/verification", body: None, expect: [U, F, H, F, F, A] },
    Row { operation: "create_referral", method: "POST", path: "/api/v1/cases/{own_case}/referrals", body: Some(referral_to_nowhere), expect: [U, A, A, F, F, F] },
    Row { operation: "create_referral", method: "POST", path: "/api/v1/cases/{other_case}/referrals", body: Some(referral_to_nowhere), expect: [U, H, H, F, F, F] },
    Row { operation: "update_referral_status", method: "POST", path: "/api/v1/referrals/{other_case}/status", body: Some(referral_accepted), expect: [U, M, M, F, F, F] },
    Row { operation: "list_referrals", method: "GET", path: "/api/v1/referrals", body: None, expect: [U, A, A, A, F, F] },
    // ledger
    Row { operation: "put_exchange_rate", method: "PUT", path: "/api/v1/exchange-rates/EUR/2026-01-05", body: Some(eur_rate), expect: [U, F, F, F, A, A] },
    Row { operation: "list_exchange_rates", method: "GET", path: "/api/v1/exchange-rates", body: None, expect: [U, A, A, A, A, A] },
    Row { operation: "request_payment", method: "POST", path: "/api/v1/cases/{own_case}/payments", body: Some(bad_payment), expect: [U, A, A, F, F, F] },
    Row { operation: "request_payment", method: "POST", path: "/api/v1/cases/{other_case}/payments", body: Some(bad_payment), expect: [U, H, H, F, F, F] },
    Row { operation: "list_payments", method: "GET", path: "/api/v1/payments", body: None, expect: [U, A, A, A, F, F] },
    Row { operation: "payment_totals", method: "GET", path: "/api/v1/payments/totals?year=2026", body: None, expect: [U, A, A, A, A, A] },
    Row { operation: "get_payment", method: "GET", path: "/api/v1/payments/{other_case}", body: None, expect: [U, M, M, M, F, F] },
    Row { operation: "update_payment", method: "PATCH", path: "/api/v1/payments/{other_case}", body: Some(payment_fix), expect: [U, M, M, F, F, F] },
    Row { operation: "decide_payment", method: "POST", path: "/api/v1/payments/{other_case}/decision", body: Some(approve), expect: [U, F, M, F, F, F] },
    Row { operation: "mark_payment_paid", method: "POST", path: "/api/v1/payments/{other_case}/paid", body: Some(paid), expect: [U, M, M, F, F, F] },
    Row { operation: "reverse_payment", method: "POST", path: "/api/v1/payments/{other_case}/reversal", body: Some(reversal), expect: [U, F, M, F, F, F] },
    // detention and repatriation
    Row { operation: "open_detention", method: "POST", path: "/api/v1/cases/{other_case}/detention", body: Some(bad_detention), expect: [U, H, H, F, F, F] },
    Row { operation: "open_detention", method: "POST", path: "/api/v1/cases/{own_case}/detention", body: Some(bad_detention), expect: [U, A, A, F, F, F] },
    Row { operation: "get_detention", method: "GET", path: "/api/v1/cases/{own_case}/detention", body: None, expect: [U, M, M, M, F, F] },
    Row { operation: "get_detention", method: "GET", path: "/api/v1/cases/{other_case}/detention", body: None, expect: [U, H, H, M, F, F] },
    Row { operation: "update_detention", method: "PATCH", path: "/api/v1/cases/{other_case}/detention", body: Some(detention_fix), expect: [U, H, H, F, F, F] },
    Row { operation: "add_detention_visit", method: "POST", path: "/api/v1/cases/{other_case}/detention/visits", body: Some(visit), expect: [U, H, H, F, F, F] },
    Row { operation: "add_detention_hearing", method: "POST", path: "/api/v1/cases/{other_case}/detention/hearings", body: Some(hearing), expect: [U, H, H, F, F, F] },
    Row { operation: "list_detainees", method: "GET", path: "/api/v1/detentions", body: None, expect: [U, A, A, A, F, F] },
    Row { operation: "create_repatriation", method: "POST", path: "/api/v1/cases/{other_case}/repatriations", body: Some(repatriation), expect: [U, H, H, F, F, F] },
    Row { operation: "list_case_repatriations", method: "GET", path: "/api/v1/cases/{own_case}/repatriations", body: None, expect: [U, A, A, A, F, F] },
    Row { operation: "list_case_repatriations", method: "GET", path: "/api/v1/cases/{other_case}/repatriations", body: None, expect: [U, H, H, A, F, F] },
    Row { operation: "get_repatriation", method: "GET", path: "/api/v1/repatriations/{other_case}", body: None, expect: [U, M, M, M, F, F] },
    Row { operation: "update_repatriation", method: "PATCH", path: "/api/v1/repatriations/{other_case}", body: Some(repatriation_fix), expect: [U, M, M, F, F, F] },
    Row { operation: "decide_repatriation_step", method: "POST", path: "/api/v1/repatriations/{other_case}/steps/ticket", body: Some(step_done), expect: [U, M, M, F, F, F] },
    // indicators
    Row { operation: "get_oei05", method: "GET", path: "/api/v1/indicators/oei05?year=2026", body: None, expect: [U, F, F, A, A, A] },
    Row { operation: "get_oei05_series", method: "GET", path: "/api/v1/indicators/oei05/series?from=2024&to=2026", body: None, expect: [U, F, F, A, A, A] },
    Row { operation: "put_oei05_target", method: "PUT", path: "/api/v1/indicators/oei05/targets/2030", body: Some(target), expect: [U, F, F, F, A, A] },
    Row { operation: "close_oei05_year", method: "POST", path: "/api/v1/indicators/oei05/2031/close", body: None, expect: [U, F, F, F, A, A] },
    Row { operation: "reopen_oei05_year", method: "POST", path: "/api/v1/indicators/oei05/2020/reopen", body: Some(reversal), expect: [U, F, F, F, F, M] },
    Row { operation: "export_oei05", method: "GET", path: "/api/v1/exports/oei05.json?year=2026", body: None, expect: [U, F, F, A, A, A] },
    Row { operation: "get_oei05_chart", method: "GET", path: "/api/v1/charts/oei05/country.svg?year=2026", body: None, expect: [U, F, F, A, A, A] },
    Row { operation: "get_operations", method: "GET", path: "/api/v1/indicators/operations?from=2026-01-01&to=2026-12-31", body: None, expect: [U, F, A, A, A, A] },
    // audit
    Row { operation: "create_import", method: "POST", path: "/api/v1/imports", body: Some(bad_code), expect: [U, F, F, F, F, A] },
    Row { operation: "get_import", method: "GET", path: "/api/v1/imports/{own_person}", body: None, expect: [U, F, F, F, F, M] },
    Row { operation: "list_import_rejections", method: "GET", path: "/api/v1/imports/{own_person}/rejections", body: None, expect: [U, F, F, F, F, M] },
    Row { operation: "get_data_quality", method: "GET", path: "/api/v1/data-quality", body: None, expect: [U, F, F, A, F, A] },
    Row { operation: "list_audit", method: "GET", path: "/api/v1/audit", body: None, expect: [U, F, F, F, F, A] },
    Row { operation: "list_lookups", method: "GET", path: "/api/v1/lookups", body: None, expect: [U, F, F, F, F, A] },
    // logout last: it ends the caller's session
    Row { operation: "logout", method: "POST", path: "/api/v1/auth/logout", body: None, expect: [U, A, A, A, A, A] },
];

fn unique() -> String {
    uuid::Uuid::now_v7()
        .simple()
        .to_string()
        .chars()
        .rev()
        .take(10)
        .collect()
}
fn new_type() -> Value {
    let u = unique();
    json!({ "code": format!("t_{u}"), "name_es": format!("Tipo {u}"), "name_en": format!("Type {u}"), "category": "legal", "kind": "legal",
            "description_es": "d", "description_en": "d", "who_may_ask_es": "w", "who_may_ask_en": "w", "requirements_es": "r", "requirements_en": "r" })
}
fn describe() -> Value {
    json!({ "description_en": "Guidance on a legal problem." })
}
fn new_spelling() -> Value {
    json!({ "spelling": format!("spelling {}", unique()) })
}
fn new_alias() -> Value {
    json!({ "label": format!("alias {}", unique()) })
}
fn merge_into_nothing() -> Value {
    json!({ "into": "no_such_type", "reason": "test" })
}
fn protocol() -> Value {
    json!({ "steps": [{ "title_es": "Paso", "title_en": "Step", "required_to_close": false, "deadline_hours": null }] })
}

fn new_person() -> Value {
    let u: String = unique()
        .chars()
        .filter(|c| c.is_ascii_alphabetic())
        .collect();
    json!({ "given_names": format!("Ana {u}"), "first_surname": "Matrix", "sex": "female" })
}
fn person_fix() -> Value {
    json!({ "address_abroad": "Calle 1" })
}
fn bad_decision() -> Value {
    json!({ "decision": "maybe", "reason": "x" })
}
fn merge_into_garbage() -> Value {
    json!({ "into": "not-an-id", "reason": "x" })
}

fn bad_case() -> Value {
    json!({ "person_id": uuid::Uuid::nil(), "channel": "phone", "requester": { "kind": "self" }, "summary": "x" })
}
fn bad_attention() -> Value {
    json!({ "attention_type": "no such type", "date": "2020-01-01", "description": "x" })
}
fn void_reason() -> Value {
    json!({ "reason": "typo" })
}
fn to_progress() -> Value {
    json!({ "to": "in_progress" })
}
fn step_done() -> Value {
    json!({ "status": "done" })
}
fn note() -> Value {
    json!({ "text": "called the family" })
}

fn city() -> Value {
    json!({ "city": "Milano" })
}
fn task() -> Value {
    json!({ "title": "Call the lawyer" })
}
fn transfer() -> Value {
    json!({ "to": "IT-ROMA", "reason": "moved" })
}
fn accept() -> Value {
    json!({ "decision": "accept" })
}

fn new_org() -> Value {
    json!({ "name": format!("Org {}", unique()), "kind": "ngo", "country": "AR" })
}
fn org_fix() -> Value {
    json!({ "phone": "+54 11 5555 0000" })
}
fn referral_to_nowhere() -> Value {
    json!({ "organisation_id": uuid::Uuid::nil(), "reason": "legal aid" })
}
fn referral_accepted() -> Value {
    json!({ "status": "accepted" })
}
fn eur_rate() -> Value {
    json!({ "pen_per_unit": "4.05", "usd_per_unit": "1.08", "source": "SBS" })
}
fn bad_payment() -> Value {
    json!({ "kind": "economic_subsidy", "amount": "-1", "currency": "ARS", "budget_line": "x", "description": "y" })
}
fn payment_fix() -> Value {
    json!({ "description": "corrected" })
}
fn approve() -> Value {
    json!({ "decision": "approve" })
}
fn paid() -> Value {
    json!({ "reference": "TRX-1" })
}
fn reversal() -> Value {
    json!({ "reason": "paid twice" })
}
fn bad_detention() -> Value {
    json!({ "place": "", "arrested_on": "2026-01-01", "notified_at": "2026-01-01T10:00:00Z" })
}
fn detention_fix() -> Value {
    json!({ "charges": "none" })
}
fn visit() -> Value {
    json!({ "visited_at": "2026-01-02T10:00:00Z", "kind": "in_person" })
}
fn hearing() -> Value {
    json!({ "held_on": "2026-01-03", "court": "Juzgado 1", "outcome": "postponed" })
}
fn repatriation() -> Value {
    json!({ "kind": "repatriation", "destination": "Lima" })
}
fn repatriation_fix() -> Value {
    json!({ "notes": "n" })
}
fn target() -> Value {
    json!({ "target": 19030, "sense": "ascending" })
}
fn rename_consulate() -> Value {
    json!({ "city": "Milán" })
}

/// Fields that identify a person; a planner must never receive one.
const PERSONAL_FIELDS: &[&str] = &[
    "username",
    "display_name",
    "given_names",
    "first_surname",
    "documents",
    "birth_date",
    "email",
    "phone",
    "actor_username",
];

fn contains_personal_field(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if PERSONAL_FIELDS.contains(&k.as_str()) {
                Some(k.clone())
            } else {
                contains_personal_field(v)
            }
        }),
        Value::Array(items) => items.iter().find_map(contains_personal_field),
        _ => None,
    }
}

/// A non-public directory entry serving `consulate`; returns its id.
async fn supervised_org(app: &TestApp, consulate: &str) -> String {
    let supervisor = app.caller(
        &format!("m.sup.{consulate}"),
        Role::Supervisor,
        Some(consulate),
    );
    let resp = app
        .call(
            "POST",
            "/api/v1/organisations",
            Some(&supervisor.token),
            Some(&json!({ "name": format!("Org of {consulate}"), "kind": "legal_aid", "country": "AR" })),
        )
        .await;
    assert_eq!(resp.status, 201, "{:?}", resp.json());
    resp.json()["id"].as_str().expect("org id").to_owned()
}

#[actix_web::test]
async fn authorization_matrix_holds_for_every_operation_role_and_scope() {
    let app = TestApp::spawn().await;
    let own_user = app.create_user("target.own", Role::Officer, Some("AR-BUENOS-AIRES"));
    let other_user = app.create_user("target.other", Role::Officer, Some("CL-SANTIAGO"));
    let officer_b = app.caller("m.officer.b", Role::Officer, Some("CL-SANTIAGO"));
    let other_person = app
        .register_person(
            &officer_b,
            json!({ "given_names": "Pedro", "first_surname": "Other", "sex": "male" }),
        )
        .await;
    let callers: Vec<Option<Caller>> = vec![
        None,
        Some(app.caller("m.officer", Role::Officer, Some("AR-BUENOS-AIRES"))),
        Some(app.caller("m.supervisor", Role::Supervisor, Some("AR-BUENOS-AIRES"))),
        Some(app.caller("m.hq", Role::HqAnalyst, None)),
        Some(app.caller("m.planner", Role::Planner, None)),
        Some(app.caller("m.admin", Role::Admin, None)),
    ];
    let own_person = app
        .register_person(
            callers[1].as_ref().expect("officer"),
            json!({ "given_names": "Rosa", "first_surname": "Own", "sex": "female" }),
        )
        .await;
    let case_body = |person: mapce::db::Id| json!({ "person_id": person, "channel": "phone", "requester": { "kind": "self" }, "summary": "matrix case" });
    let own_case = app
        .call(
            "POST",
            "/api/v1/cases",
            Some(&callers[1].as_ref().expect("officer").token),
            Some(&case_body(own_person)),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("own case")
        .to_owned();
    let other_case = app
        .call(
            "POST",
            "/api/v1/cases",
            Some(&officer_b.token),
            Some(&case_body(other_person)),
        )
        .await
        .json()["id"]
        .as_str()
        .expect("other case")
        .to_owned();
    let own_org = supervised_org(&app, "AR-BUENOS-AIRES").await;
    let other_org = supervised_org(&app, "CL-SANTIAGO").await;
    // hq and admin have TOTP already: enrol would be a conflict, which is
    // still "allowed" (authorization passed).
    let mut failures = Vec::new();
    for row in MATRIX {
        let path = row
            .path
            .replace("{own_user}", &own_user.to_string())
            .replace("{other_user}", &other_user.to_string())
            .replace("{own_person}", &own_person.to_string())
            .replace("{other_person}", &other_person.to_string())
            .replace("{own_case}", &own_case)
            .replace("{other_case}", &other_case)
            .replace("{own_org}", &own_org)
            .replace("{other_org}", &other_org);
        for (i, caller) in callers.iter().enumerate() {
            let body = row.body.map(|b| b());
            let resp = app
                .call(
                    row.method,
                    &path,
                    caller.as_ref().map(|c| c.token.as_str()),
                    body.as_ref(),
                )
                .await;
            let ok = match row.expect[i] {
                Expect::Allowed => {
                    resp.status < 500 && ![401, 403].contains(&resp.status) && resp.status != 404
                }
                Expect::Public => resp.status < 500 && resp.status != 403,
                Expect::Unauthenticated => resp.status == 401,
                Expect::Forbidden => resp.status == 403,
                Expect::Hidden | Expect::Missing => resp.status == 404,
            };
            if !ok {
                failures.push(format!(
                    "{} {} as {}: expected {:?}, got {} {}",
                    row.method,
                    row.path,
                    CALLERS[i],
                    row.expect[i],
                    resp.status,
                    String::from_utf8_lossy(&resp.body)
                ));
            }
            if CALLERS[i] == "planner"
                && resp.status < 300
                && !resp.body.is_empty()
                && row.method == "GET"
                && !row.path.contains("auth/me")
                && resp
                    .header("content-type")
                    .is_some_and(|c| c.contains("json"))
            {
                if let Some(field) = contains_personal_field(&resp.json()) {
                    failures.push(format!(
                        "{} {} gave the planner the personal field `{field}`",
                        row.method, row.path
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "authorization matrix failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_spec_operation_is_in_the_matrix_and_protected_unless_public() {
    let spec: Value = serde_json::from_str(&mapce::openapi::spec_json()).expect("spec");
    let in_matrix: BTreeSet<&str> = MATRIX.iter().map(|r| r.operation).collect();
    let policies: BTreeSet<&str> = mapce::api::access::ALL
        .iter()
        .map(|p| p.operation)
        .collect();
    let public: BTreeSet<&str> = mapce::api::access::PUBLIC.iter().copied().collect();
    let mut problems = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let id = op["operationId"].as_str().unwrap_or("?");
            if !in_matrix.contains(id) {
                problems.push(format!(
                    "{method} {path} ({id}) is missing from the authorization matrix"
                ));
            }
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if public.contains(id) {
                if secured {
                    problems.push(format!("{id} is public but declares security"));
                }
            } else {
                if !secured {
                    problems.push(format!(
                        "{method} {path} ({id}) has no security entry and is not public"
                    ));
                }
                if !policies.contains(id) {
                    problems.push(format!("{id} has no policy in api::access"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[actix_web::test]
async fn out_of_scope_reads_are_audited_but_look_like_absence() {
    let app = TestApp::spawn().await;
    let supervisor = app.caller("sup.a", Role::Supervisor, Some("AR-BUENOS-AIRES"));
    let other = app.create_user("off.b", Role::Officer, Some("CL-SANTIAGO"));
    let hidden = app
        .call(
            "GET",
            &format!("/api/v1/users/{other}"),
            Some(&supervisor.token),
            None,
        )
        .await;
    let hidden_body = hidden.assert_problem(404, "not_found");
    let missing_id = uuid::Uuid::now_v7();
    let missing = app
        .call(
            "GET",
            &format!("/api/v1/users/{missing_id}"),
            Some(&supervisor.token),
            None,
        )
        .await;
    let missing_body = missing.assert_problem(404, "not_found");
    assert_eq!(hidden_body["title"], missing_body["title"]);
    assert_eq!(
        hidden_body["detail"]
            .as_str()
            .map(|d| d.replace(&other.to_string(), "ID")),
        missing_body["detail"]
            .as_str()
            .map(|d| d.replace(&missing_id.to_string(), "ID")),
    );
    // The supervisor's list never shows the other consulate.
    let list = app
        .call(
            "GET",
            "/api/v1/users?limit=200",
            Some(&supervisor.token),
            None,
        )
        .await
        .json();
    assert!(list["items"]
        .as_array()
        .expect("items")
        .iter()
        .all(|u| u["consulate_code"] == "AR-BUENOS-AIRES"));

    let admin = app.caller("aud.admin", Role::Admin, None);
    let denied = app
        .call(
            "GET",
            "/api/v1/audit?action=access.denied",
            Some(&admin.token),
            None,
        )
        .await
        .json();
    let rows = denied["items"].as_array().expect("items");
    assert!(
        rows.iter().any(|r| r["actor_username"] == "sup.a"
            && r["details"]["path"] == format!("/api/v1/users/{other}")),
        "out-of-scope read audited: {denied}"
    );
    assert!(
        !rows
            .iter()
            .any(|r| r["details"]["path"] == format!("/api/v1/users/{missing_id}")),
        "a plain miss is not a refusal"
    );
}
