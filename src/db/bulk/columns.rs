//! The one column list of each table the bulk paths write
//! ([`super::raw_insert`]), in the order a row's values are bound. A
//! column added to one of these tables by a migration is added here, and
//! the binding closure of its writer follows the same order (a row that
//! binds fewer or more values than its list is refused).

/// A table and the columns a bulk insert gives values for.
#[derive(Debug)]
pub struct Columns {
    pub table: &'static str,
    pub names: &'static [&'static str],
}

pub const PERSONS: Columns = Columns {
    table: "persons",
    names: &[
        "id",
        "given_names",
        "first_surname",
        "second_surname",
        "birth_date",
        "sex",
        "nationalities",
        "phone",
        "email",
        "address_abroad",
        "name_key",
        "registered_consulate_id",
        "merged_into_id",
        "version",
        "created_at",
        "updated_at",
    ],
};

pub const PERSON_MATCH_KEYS: Columns = Columns {
    table: "person_match_keys",
    names: &["person_id", "match_key"],
};

pub const PERSON_DOCUMENTS: Columns = Columns {
    table: "person_documents",
    names: &[
        "id",
        "person_id",
        "doc_type",
        "number",
        "issuing_country",
        "created_at",
    ],
};

pub const CASES: Columns = Columns {
    table: "cases",
    names: &[
        "id",
        "person_id",
        "consulate_id",
        "country_code",
        "city",
        "channel",
        "requester_kind",
        "requester_name",
        "requester_relationship",
        "requester_contact",
        "summary",
        "flags",
        "protected",
        "status",
        "outcome",
        "closed_at",
        "assigned_officer_id",
        "opened_at",
        "created_by",
        "version",
        "created_at",
        "updated_at",
    ],
};

pub const ATTENTIONS: Columns = Columns {
    table: "attentions",
    names: &[
        "id",
        "case_id",
        "person_id",
        "consulate_id",
        "attention_type_id",
        "attended_on",
        "channel",
        "officer_id",
        "description",
        "late_registration",
        "voided_at",
        "voided_by",
        "void_reason",
        "created_at",
        "country_code",
        "person_sex",
        "person_birth_date",
    ],
};

pub const TIMELINE_EVENTS: Columns = Columns {
    table: "timeline_events",
    names: &[
        "id",
        "person_id",
        "case_id",
        "consulate_id",
        "kind",
        "at",
        "actor_id",
        "attention_type_id",
        "payload",
    ],
};

pub const LEGACY_CASES: Columns = Columns {
    table: "legacy_cases",
    names: &[
        "person_id",
        "consulate_id",
        "country_code",
        "year",
        "case_id",
    ],
};

pub const LEGACY_ROWS: Columns = Columns {
    table: "legacy_rows",
    names: &["fingerprint", "import_id", "line", "attention_id"],
};
