//! Who may call what: one policy per operation, next to the route table.
//! A test checks that every `/api/v1` operation in the spec is either listed
//! here or public, and the authorization-matrix test exercises each one.

use crate::auth::Policy;
use crate::domain::role::Role::{self, Admin, HqAnalyst, Officer, Planner, Supervisor};

const EVERYONE: &[Role] = &[Officer, Supervisor, HqAnalyst, Planner, Admin];

/// Operations anyone may call without a token: logging in, the probes and
/// reference data that consulates publish anyway.
pub const PUBLIC: &[&str] = &[
    "login",
    "login_second_factor",
    "refresh_session",
    "list_regions",
    "list_countries",
    "list_consulates",
    "get_consulate",
    "healthz",
    "readyz",
    "list_public_attention_types",
];

const fn policy(operation: &'static str, roles: &'static [Role]) -> Policy {
    Policy {
        operation,
        roles,
        before_second_factor: false,
    }
}

/// Open to a session that still has to enrol its second factor.
const fn enrolment(operation: &'static str, roles: &'static [Role]) -> Policy {
    Policy {
        operation,
        roles,
        before_second_factor: true,
    }
}

// --- own session ---------------------------------------------------------------
pub const GET_ME: Policy = enrolment("get_me", EVERYONE);
pub const LOGOUT: Policy = enrolment("logout", EVERYONE);
pub const CHANGE_PASSWORD: Policy = enrolment("change_password", EVERYONE);
pub const ENROL_TOTP: Policy = enrolment("enrol_totp", EVERYONE);
pub const CONFIRM_TOTP: Policy = enrolment("confirm_totp", EVERYONE);
/// Only roles for which the second factor is optional may turn it off.
pub const DISABLE_TOTP: Policy = policy("disable_totp", &[Officer, Supervisor, Planner]);

// --- users (supervisors read their own consulate's) ----------------------------
pub const CREATE_USER: Policy = policy("create_user", &[Admin]);
pub const LIST_USERS: Policy = policy("list_users", &[Admin, Supervisor]);
pub const GET_USER: Policy = policy("get_user", &[Admin, Supervisor]);
pub const UPDATE_USER: Policy = policy("update_user", &[Admin]);
pub const RESET_USER_PASSWORD: Policy = policy("reset_user_password", &[Admin]);

// --- reference data writes -------------------------------------------------------
pub const CREATE_CONSULATE: Policy = policy("create_consulate", &[Admin]);
pub const UPDATE_CONSULATE: Policy = policy("update_consulate", &[Admin]);

// --- attention-type catalogue: every role reads, admins write ----------------
pub const LIST_ATTENTION_TYPES: Policy = policy("list_attention_types", EVERYONE);
pub const GET_ATTENTION_TYPE: Policy = policy("get_attention_type", EVERYONE);
pub const RESOLVE_ATTENTION_TYPE: Policy = policy("resolve_attention_type", EVERYONE);
pub const GET_ATTENTION_TYPE_PROTOCOL: Policy = policy("get_attention_type_protocol", EVERYONE);
pub const LIST_ATTENTION_TYPE_MERGES: Policy = policy("list_attention_type_merges", EVERYONE);
pub const CREATE_ATTENTION_TYPE: Policy = policy("create_attention_type", &[Admin]);
pub const UPDATE_ATTENTION_TYPE: Policy = policy("update_attention_type", &[Admin]);
pub const ADD_ATTENTION_TYPE_ALIAS: Policy = policy("add_attention_type_alias", &[Admin]);
pub const MERGE_ATTENTION_TYPE: Policy = policy("merge_attention_type", &[Admin]);
pub const PUT_ATTENTION_TYPE_PROTOCOL: Policy = policy("put_attention_type_protocol", &[Admin]);

// --- persons: case workers of the consulate, hq reads; dedup for hq and admin -
pub const CREATE_PERSON: Policy = policy("create_person", &[Officer, Supervisor]);
pub const LIST_PERSONS: Policy = policy("list_persons", &[Officer, Supervisor, HqAnalyst]);
pub const GET_PERSON: Policy = policy("get_person", &[Officer, Supervisor, HqAnalyst]);
pub const UPDATE_PERSON: Policy = policy("update_person", &[Officer, Supervisor]);
pub const GET_PERSON_HISTORY: Policy =
    policy("get_person_history", &[Officer, Supervisor, HqAnalyst]);
/// Consulate staff ask; a supervisor of a consulate that holds the person,
/// or headquarters, decides (checked in the handler).
pub const REQUEST_PERSON_ACCESS: Policy = policy("request_person_access", &[Officer, Supervisor]);
pub const LIST_PERSON_ACCESS: Policy = policy(
    "list_person_access",
    &[Officer, Supervisor, HqAnalyst, Admin],
);
pub const DECIDE_PERSON_ACCESS: Policy = policy("decide_person_access", &[Supervisor, HqAnalyst]);
pub const REVOKE_PERSON_ACCESS: Policy = policy("revoke_person_access", &[Supervisor, HqAnalyst]);
pub const LIST_DUPLICATES: Policy = policy("list_duplicates", &[HqAnalyst, Admin]);
pub const DECIDE_DUPLICATE: Policy = policy("decide_duplicate", &[HqAnalyst, Admin]);
pub const MERGE_PERSON: Policy = policy("merge_person", &[HqAnalyst, Admin]);
pub const UNDO_PERSON_MERGE: Policy = policy("undo_person_merge", &[HqAnalyst, Admin]);

// --- cases: consulate staff work them; hq reads --------------------------------
pub const CREATE_CASE: Policy = policy("create_case", &[Officer, Supervisor]);
pub const LIST_CASES: Policy = policy("list_cases", &[Officer, Supervisor, HqAnalyst]);
pub const GET_CASE: Policy = policy("get_case", &[Officer, Supervisor, HqAnalyst]);
pub const ADD_ATTENTION: Policy = policy("add_attention", &[Officer, Supervisor]);
pub const VOID_ATTENTION: Policy = policy("void_attention", &[Officer, Supervisor]);
pub const TRANSITION_CASE: Policy = policy("transition_case", &[Officer, Supervisor]);
pub const DECIDE_CASE_STEP: Policy = policy("decide_case_step", &[Officer, Supervisor]);
pub const ADD_CASE_NOTE: Policy = policy("add_case_note", &[Officer, Supervisor]);
pub const UPDATE_CASE: Policy = policy("update_case", &[Officer, Supervisor]);
pub const LIST_TASKS: Policy = policy("list_tasks", &[Officer, Supervisor, HqAnalyst]);
pub const CREATE_TASK: Policy = policy("create_task", &[Officer, Supervisor]);
pub const COMPLETE_TASK: Policy = policy("complete_task", &[Officer, Supervisor]);
pub const REQUEST_TRANSFER: Policy = policy("request_transfer", &[Officer, Supervisor]);
/// Only the receiving consulate's supervisor (checked in the handler).
pub const DECIDE_TRANSFER: Policy = policy("decide_transfer", &[Supervisor]);
pub const LIST_TRANSFERS: Policy = policy("list_transfers", &[Officer, Supervisor]);

// --- support network: staff read theirs and the public ones; supervisors of
// the consulate and admins maintain ------------------------------------------
pub const LIST_ORGANISATIONS: Policy = policy(
    "list_organisations",
    &[Officer, Supervisor, HqAnalyst, Admin],
);
pub const GET_ORGANISATION: Policy =
    policy("get_organisation", &[Officer, Supervisor, HqAnalyst, Admin]);
pub const CREATE_ORGANISATION: Policy = policy("create_organisation", &[Supervisor, Admin]);
pub const UPDATE_ORGANISATION: Policy = policy("update_organisation", &[Supervisor, Admin]);
pub const VERIFY_ORGANISATION: Policy = policy("verify_organisation", &[Supervisor, Admin]);
pub const CREATE_REFERRAL: Policy = policy("create_referral", &[Officer, Supervisor]);
pub const UPDATE_REFERRAL_STATUS: Policy = policy("update_referral_status", &[Officer, Supervisor]);
pub const LIST_REFERRALS: Policy = policy("list_referrals", &[Officer, Supervisor, HqAnalyst]);

// --- ledger: staff request and pay, a supervisor approves (not their own),
// totals are aggregates anyone may read; rates are kept by admins and planning
pub const PUT_EXCHANGE_RATE: Policy = policy("put_exchange_rate", &[Admin, Planner]);
pub const LIST_EXCHANGE_RATES: Policy = policy("list_exchange_rates", EVERYONE);
pub const REQUEST_PAYMENT: Policy = policy("request_payment", &[Officer, Supervisor]);
pub const UPDATE_PAYMENT: Policy = policy("update_payment", &[Officer, Supervisor]);
/// The handler also checks: supervisor of the payment's consulate, not its requester.
pub const DECIDE_PAYMENT: Policy = policy("decide_payment", &[Supervisor]);
pub const MARK_PAYMENT_PAID: Policy = policy("mark_payment_paid", &[Officer, Supervisor]);
pub const REVERSE_PAYMENT: Policy = policy("reverse_payment", &[Supervisor]);
pub const GET_PAYMENT: Policy = policy("get_payment", &[Officer, Supervisor, HqAnalyst]);
pub const LIST_PAYMENTS: Policy = policy("list_payments", &[Officer, Supervisor, HqAnalyst]);
pub const PAYMENT_TOTALS: Policy = policy("payment_totals", EVERYONE);

// --- detention and repatriation: consulate staff work them; hq reads ----------
pub const OPEN_DETENTION: Policy = policy("open_detention", &[Officer, Supervisor]);
pub const GET_DETENTION: Policy = policy("get_detention", &[Officer, Supervisor, HqAnalyst]);
pub const UPDATE_DETENTION: Policy = policy("update_detention", &[Officer, Supervisor]);
pub const ADD_DETENTION_VISIT: Policy = policy("add_detention_visit", &[Officer, Supervisor]);
pub const ADD_DETENTION_HEARING: Policy = policy("add_detention_hearing", &[Officer, Supervisor]);
pub const LIST_DETAINEES: Policy = policy("list_detainees", &[Officer, Supervisor, HqAnalyst]);
pub const CREATE_REPATRIATION: Policy = policy("create_repatriation", &[Officer, Supervisor]);
pub const LIST_CASE_REPATRIATIONS: Policy =
    policy("list_case_repatriations", &[Officer, Supervisor, HqAnalyst]);
pub const GET_REPATRIATION: Policy = policy("get_repatriation", &[Officer, Supervisor, HqAnalyst]);
pub const UPDATE_REPATRIATION: Policy = policy("update_repatriation", &[Officer, Supervisor]);
pub const DECIDE_REPATRIATION_STEP: Policy =
    policy("decide_repatriation_step", &[Officer, Supervisor]);

// --- indicators: aggregates for planning, hq and admins; supervisors see
// their consulate's operational figures ------------------------------------------
pub const GET_OEI05: Policy = policy("get_oei05", &[Planner, HqAnalyst, Admin]);
pub const GET_OEI05_SERIES: Policy = policy("get_oei05_series", &[Planner, HqAnalyst, Admin]);
pub const PUT_OEI05_TARGET: Policy = policy("put_oei05_target", &[Planner, Admin]);
pub const CLOSE_OEI05_YEAR: Policy = policy("close_oei05_year", &[Planner, Admin]);
pub const REOPEN_OEI05_YEAR: Policy = policy("reopen_oei05_year", &[Admin]);
pub const EXPORT_OEI05: Policy = policy("export_oei05", &[Planner, HqAnalyst, Admin]);
pub const GET_OEI05_CHART: Policy = policy("get_oei05_chart", &[Planner, HqAnalyst, Admin]);
pub const GET_OPERATIONS: Policy =
    policy("get_operations", &[Supervisor, Planner, HqAnalyst, Admin]);

// --- legacy imports (admins) and data quality (admins, hq) ----------------------
pub const CREATE_IMPORT: Policy = policy("create_import", &[Admin]);
pub const GET_IMPORT: Policy = policy("get_import", &[Admin]);
pub const LIST_IMPORT_REJECTIONS: Policy = policy("list_import_rejections", &[Admin]);
pub const GET_DATA_QUALITY: Policy = policy("get_data_quality", &[HqAnalyst, Admin]);

// --- vocabularies: aliases taught by admins; hq reads them ------------------------
pub const ADD_CONSULATE_ALIAS: Policy = policy("add_consulate_alias", &[Admin]);
pub const ADD_COUNTRY_ALIAS: Policy = policy("add_country_alias", &[Admin]);
pub const ADD_CHANNEL_ALIAS: Policy = policy("add_channel_alias", &[Admin]);
pub const ADD_SEX_ALIAS: Policy = policy("add_sex_alias", &[Admin]);
pub const ADD_DOCUMENT_TYPE_ALIAS: Policy = policy("add_document_type_alias", &[Admin]);
pub const LIST_VOCABULARY_ALIASES: Policy = policy("list_vocabulary_aliases", &[HqAnalyst, Admin]);
pub const REMOVE_VOCABULARY_ALIAS: Policy = policy("remove_vocabulary_alias", &[Admin]);

// --- audit -----------------------------------------------------------------------
pub const LIST_AUDIT: Policy = policy("list_audit", &[Admin]);
pub const LIST_LOOKUPS: Policy = policy("list_lookups", &[Admin]);

/// Every protected operation.
pub const ALL: &[Policy] = &[
    GET_ME,
    LOGOUT,
    CHANGE_PASSWORD,
    ENROL_TOTP,
    CONFIRM_TOTP,
    DISABLE_TOTP,
    CREATE_USER,
    LIST_USERS,
    GET_USER,
    UPDATE_USER,
    RESET_USER_PASSWORD,
    CREATE_CONSULATE,
    UPDATE_CONSULATE,
    ADD_CONSULATE_ALIAS,
    ADD_COUNTRY_ALIAS,
    ADD_CHANNEL_ALIAS,
    ADD_SEX_ALIAS,
    ADD_DOCUMENT_TYPE_ALIAS,
    LIST_VOCABULARY_ALIASES,
    REMOVE_VOCABULARY_ALIAS,
    LIST_ATTENTION_TYPES,
    GET_ATTENTION_TYPE,
    RESOLVE_ATTENTION_TYPE,
    GET_ATTENTION_TYPE_PROTOCOL,
    LIST_ATTENTION_TYPE_MERGES,
    CREATE_ATTENTION_TYPE,
    UPDATE_ATTENTION_TYPE,
    ADD_ATTENTION_TYPE_ALIAS,
    MERGE_ATTENTION_TYPE,
    PUT_ATTENTION_TYPE_PROTOCOL,
    CREATE_PERSON,
    LIST_PERSONS,
    GET_PERSON,
    UPDATE_PERSON,
    GET_PERSON_HISTORY,
    REQUEST_PERSON_ACCESS,
    LIST_PERSON_ACCESS,
    DECIDE_PERSON_ACCESS,
    REVOKE_PERSON_ACCESS,
    LIST_DUPLICATES,
    DECIDE_DUPLICATE,
    MERGE_PERSON,
    UNDO_PERSON_MERGE,
    CREATE_CASE,
    LIST_CASES,
    GET_CASE,
    ADD_ATTENTION,
    VOID_ATTENTION,
    TRANSITION_CASE,
    DECIDE_CASE_STEP,
    ADD_CASE_NOTE,
    UPDATE_CASE,
    LIST_TASKS,
    CREATE_TASK,
    COMPLETE_TASK,
    REQUEST_TRANSFER,
    DECIDE_TRANSFER,
    LIST_TRANSFERS,
    LIST_ORGANISATIONS,
    GET_ORGANISATION,
    CREATE_ORGANISATION,
    UPDATE_ORGANISATION,
    VERIFY_ORGANISATION,
    CREATE_REFERRAL,
    UPDATE_REFERRAL_STATUS,
    LIST_REFERRALS,
    PUT_EXCHANGE_RATE,
    LIST_EXCHANGE_RATES,
    REQUEST_PAYMENT,
    UPDATE_PAYMENT,
    DECIDE_PAYMENT,
    MARK_PAYMENT_PAID,
    REVERSE_PAYMENT,
    GET_PAYMENT,
    LIST_PAYMENTS,
    PAYMENT_TOTALS,
    OPEN_DETENTION,
    GET_DETENTION,
    UPDATE_DETENTION,
    ADD_DETENTION_VISIT,
    ADD_DETENTION_HEARING,
    LIST_DETAINEES,
    CREATE_REPATRIATION,
    LIST_CASE_REPATRIATIONS,
    GET_REPATRIATION,
    UPDATE_REPATRIATION,
    DECIDE_REPATRIATION_STEP,
    GET_OEI05,
    GET_OEI05_SERIES,
    PUT_OEI05_TARGET,
    CLOSE_OEI05_YEAR,
    REOPEN_OEI05_YEAR,
    EXPORT_OEI05,
    GET_OEI05_CHART,
    GET_OPERATIONS,
    CREATE_IMPORT,
    GET_IMPORT,
    LIST_IMPORT_REJECTIONS,
    GET_DATA_QUALITY,
    LIST_AUDIT,
    LIST_LOOKUPS,
];
