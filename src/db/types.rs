//! Our own SQL types for UUIDs and timestamps.
//!
//! Diesel's `Uuid` and `Timestamptz` SQL types cannot be used through the
//! `MultiConnection` derive, so we define `DbUuid` and `Tstz` and delegate to
//! diesel's own (de)serialisation per backend. PostgreSQL keeps native `uuid`
//! and `timestamptz`; SQLite stores text: lowercase hyphenated UUIDs and
//! RFC 3339 UTC timestamps with exactly six fractional digits, so that text
//! order is time order and both backends hold the same microsecond value.

use std::fmt;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::query_builder::QueryId;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{HasSqlType, SqlType};
use diesel::sqlite::{Sqlite, SqliteValue};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::MultiBackend;

/// A UUID column: `uuid` on PostgreSQL, `TEXT` on SQLite.
#[derive(SqlType, QueryId, Debug, Clone, Copy, Default)]
#[diesel(postgres_type(oid = 2950, array_oid = 2951))]
#[diesel(sqlite_type(name = "Text"))]
pub struct DbUuid;

/// A UTC timestamp column: `timestamptz` on PostgreSQL, `TEXT` on SQLite.
#[derive(SqlType, QueryId, Debug, Clone, Copy, Default)]
#[diesel(postgres_type(oid = 1184, array_oid = 1185))]
#[diesel(sqlite_type(name = "Text"))]
pub struct Tstz;

/// A record identifier: a UUIDv7, generated in Rust, time-ordered and not
/// guessable as a count.
#[derive(
    AsExpression,
    FromSqlRow,
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
)]
#[diesel(sql_type = DbUuid)]
#[serde(transparent)]
pub struct Id(pub Uuid);

impl Id {
    /// A fresh time-ordered identifier.
    pub fn new() -> Self {
        Id(Uuid::now_v7())
    }
}

impl Default for Id {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl From<Uuid> for Id {
    fn from(value: Uuid) -> Self {
        Id(value)
    }
}

/// A point in time, always UTC, truncated to microseconds (PostgreSQL's
/// precision) so a value reads back exactly as it was written on both backends.
#[derive(
    AsExpression,
    FromSqlRow,
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
)]
#[diesel(sql_type = Tstz)]
#[serde(transparent)]
pub struct Ts(pub DateTime<Utc>);

impl Ts {
    /// The current time, truncated to microseconds.
    pub fn now() -> Self {
        Ts(Utc::now().trunc_subsecs(6))
    }

    /// RFC 3339 text with six fractional digits and a `Z`: the SQLite storage
    /// form, which sorts as time.
    pub fn to_storage_string(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

impl From<DateTime<Utc>> for Ts {
    fn from(value: DateTime<Utc>) -> Self {
        Ts(value.trunc_subsecs(6))
    }
}

// --- PostgreSQL: delegate to diesel's native impls -------------------------

impl ToSql<DbUuid, Pg> for Id {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <Uuid as ToSql<diesel::sql_types::Uuid, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<DbUuid, Pg> for Id {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <Uuid as FromSql<diesel::sql_types::Uuid, Pg>>::from_sql(bytes).map(Id)
    }
}

impl ToSql<Tstz, Pg> for Ts {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <DateTime<Utc> as ToSql<diesel::sql_types::Timestamptz, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<Tstz, Pg> for Ts {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <DateTime<Utc> as FromSql<diesel::sql_types::Timestamptz, Pg>>::from_sql(bytes).map(Ts)
    }
}

// --- SQLite: text ------------------------------------------------------------

impl ToSql<DbUuid, Sqlite> for Id {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.0.hyphenated().to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<DbUuid, Sqlite> for Id {
    fn from_sql(bytes: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        // Borrow the text instead of copying it into a String: ids are read by
        // the hundred thousand in the indicator's pass.
        let text = <*const str as FromSql<diesel::sql_types::Text, Sqlite>>::from_sql(bytes)?;
        // SAFETY: diesel documents the pointer as valid until the value is
        // dropped, which is after this statement; it is only read here.
        let text: &str = unsafe { &*text };
        Ok(Id(Uuid::parse_str(text)?))
    }
}

impl ToSql<Tstz, Sqlite> for Ts {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.to_storage_string());
        Ok(IsNull::No)
    }
}

impl FromSql<Tstz, Sqlite> for Ts {
    fn from_sql(bytes: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<diesel::sql_types::Text, Sqlite>>::from_sql(bytes)?;
        Ok(Ts(DateTime::parse_from_rfc3339(&text)?.with_timezone(&Utc)))
    }
}

// --- The multi backend generated by `#[derive(MultiConnection)]` ------------

impl HasSqlType<DbUuid> for MultiBackend {
    fn metadata(lookup: &mut Self::MetadataLookup) -> Self::TypeMetadata {
        MultiBackend::lookup_sql_type::<DbUuid>(lookup)
    }
}

impl HasSqlType<Tstz> for MultiBackend {
    fn metadata(lookup: &mut Self::MetadataLookup) -> Self::TypeMetadata {
        MultiBackend::lookup_sql_type::<Tstz>(lookup)
    }
}

impl ToSql<DbUuid, MultiBackend> for Id {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
        out.set_value((DbUuid, self));
        Ok(IsNull::No)
    }
}

impl FromSql<DbUuid, MultiBackend> for Id {
    fn from_sql(
        bytes: <MultiBackend as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        bytes.from_sql::<Id, DbUuid>()
    }
}

impl ToSql<Tstz, MultiBackend> for Ts {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
        out.set_value((Tstz, self));
        Ok(IsNull::No)
    }
}

impl FromSql<Tstz, MultiBackend> for Ts {
    fn from_sql(
        bytes: <MultiBackend as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        bytes.from_sql::<Ts, Tstz>()
    }
}

// --- OpenAPI: both are strings on the wire -------------------------------

impl utoipa::PartialSchema for Id {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
            .description(Some("Identifier (UUIDv7)"))
            .into()
    }
}

impl utoipa::ToSchema for Id {}

impl utoipa::PartialSchema for Ts {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("RFC 3339 time in UTC"))
            .into()
    }
}

impl utoipa::ToSchema for Ts {}

// --- Hot-path readers for the indicator's year scan -------------------------

/// A calendar day read from a `DATE` column. On SQLite the text is parsed
/// by hand (diesel parses every value with a strftime format, which
/// dominated reading a year of attentions); on PostgreSQL diesel's binary
/// decoding is used.
#[derive(FromSqlRow, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub chrono::NaiveDate);

/// `YYYY-MM-DD` (what diesel writes for `DATE` on SQLite).
fn parse_day(s: &str) -> Option<chrono::NaiveDate> {
    parse_day_bytes(s.as_bytes())
}

/// A `YYYY-MM-DD` date from its bytes (other spellings chrono accepts for
/// `%Y-%m-%d` take the slow path).
pub(crate) fn parse_day_bytes(b: &[u8]) -> Option<chrono::NaiveDate> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        let s = std::str::from_utf8(b).ok()?;
        return chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    }
    let num = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0_u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    chrono::NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)
}

impl FromSql<diesel::sql_types::Date, Pg> for Day {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <chrono::NaiveDate as FromSql<diesel::sql_types::Date, Pg>>::from_sql(bytes).map(Day)
    }
}

impl FromSql<diesel::sql_types::Date, Sqlite> for Day {
    fn from_sql(bytes: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <*const str as FromSql<diesel::sql_types::Text, Sqlite>>::from_sql(bytes)?;
        // SAFETY: valid until the value is dropped, after this statement.
        let text: &str = unsafe { &*text };
        parse_day(text)
            .map(Day)
            .ok_or_else(|| format!("`{text}` is not a date").into())
    }
}

impl FromSql<diesel::sql_types::Date, MultiBackend> for Day {
    fn from_sql(
        bytes: <MultiBackend as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        bytes.from_sql::<Day, diesel::sql_types::Date>()
    }
}

/// A short code (country, channel, sex) read without a heap allocation:
/// up to 23 bytes inline; longer text keeps its tail out (never the case for
/// the codes it is used for, and then it still compares as itself).
#[derive(FromSqlRow, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code {
    len: u8,
    bytes: [u8; 23],
}

impl Code {
    pub fn new(s: &str) -> Code {
        let mut bytes = [0_u8; 23];
        if s.len() <= bytes.len() {
            // the usual case: the whole code fits
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            return Code {
                len: s.len() as u8,
                bytes,
            };
        }
        let mut len = 0;
        for (i, ch) in s.char_indices() {
            if i + ch.len_utf8() > bytes.len() {
                break;
            }
            len = i + ch.len_utf8();
        }
        bytes[..len].copy_from_slice(&s.as_bytes()[..len]);
        Code {
            len: len as u8,
            bytes,
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    /// `unknown`, for a missing code.
    pub fn new_unknown() -> Code {
        Code::new("unknown")
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl FromSql<diesel::sql_types::Text, Pg> for Code {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        Ok(Code::new(std::str::from_utf8(bytes.as_bytes())?))
    }
}

impl FromSql<diesel::sql_types::Text, Sqlite> for Code {
    fn from_sql(bytes: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <*const str as FromSql<diesel::sql_types::Text, Sqlite>>::from_sql(bytes)?;
        // SAFETY: valid until the value is dropped, after this statement.
        Ok(Code::new(unsafe { &*text }))
    }
}

impl FromSql<diesel::sql_types::Text, MultiBackend> for Code {
    fn from_sql(
        bytes: <MultiBackend as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        bytes.from_sql::<Code, diesel::sql_types::Text>()
    }
}

#[cfg(test)]
mod hot_path_tests {
    use super::*;

    #[test]
    fn days_and_codes_read_back_what_was_written() {
        let d = chrono::NaiveDate::from_ymd_opt(2025, 2, 28).expect("date");
        assert_eq!(parse_day("2025-02-28"), Some(d));
        assert_eq!(parse_day("2025-02-30"), None);
        assert_eq!(parse_day("2025-0x-01"), None);
        assert_eq!(
            Code::new("institutional_email").as_str(),
            "institutional_email"
        );
        assert_eq!(Code::new("AR").as_str(), "AR");
        assert_eq!(Code::new(&"ñ".repeat(20)).as_str(), "ñ".repeat(11));
    }
}
