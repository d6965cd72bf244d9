//! Reading a period's attentions: one query, through diesel on both backends
//! or through the raw SQLite cursor (`db::bulk::raw_sqlite`) when the database is a
//! SQLite file, in chunks handed to the counting thread.

use super::*;

/// One attention as the indicator reads it: person, type, consulate,
/// country (the case's), channel, day, the person's sex and birth date.
pub(super) type Row = (
    Id,
    Id,
    Id,
    Option<Code>,
    Code,
    Day,
    Option<Code>,
    Option<Day>,
);

/// Rows travel from the scan to the counter in chunks of this many.
pub(super) const CHUNK: usize = 4096;

/// The scan, the same on both backends (the raw SQLite reader binds the
/// dates as `?1` and `?2`, as diesel does).
pub(super) const SCAN_SQL: &str =
    "SELECT person_id, attention_type_id, consulate_id, country_code, \
     channel, attended_on, person_sex, person_birth_date FROM attentions \
     WHERE attended_on >= ?1 AND attended_on <= ?2 AND voided_at IS NULL";

pub(super) fn scan_diesel(
    conn: &mut DbConn,
    from: NaiveDate,
    to: NaiveDate,
    sink: &mut Sink,
) -> QueryResult<()> {
    let rows = attentions::table
        .filter(attentions::attended_on.ge(from))
        .filter(attentions::attended_on.le(to))
        .filter(attentions::voided_at.is_null())
        .select((
            attentions::person_id,
            attentions::attention_type_id,
            attentions::consulate_id,
            attentions::country_code,
            attentions::channel,
            attentions::attended_on,
            attentions::person_sex,
            attentions::person_birth_date,
        ))
        .load_iter::<Row, diesel::connection::DefaultLoadingMode>(conn)?;
    for row in rows {
        sink.push(row?);
    }
    Ok(())
}

pub(super) fn scan_raw(
    path: &str,
    from: NaiveDate,
    to: NaiveDate,
    sink: &mut Sink,
) -> QueryResult<()> {
    let (from, to) = (
        from.format("%Y-%m-%d").to_string(),
        to.format("%Y-%m-%d").to_string(),
    );
    let mut reader = raw_sqlite::RawReader::open(path)?;
    reader.for_each_row(SCAN_SQL, &[&from, &to], |r| {
        sink.push(raw_row(r)?);
        Ok(())
    })
}

/// One scanned row from its column bytes, checked like diesel checks them.
pub(super) fn raw_row(r: &raw_sqlite::RawRow<'_>) -> QueryResult<Row> {
    use diesel::result::Error::DeserializationError;
    fn bad(column: &str) -> diesel::result::Error {
        DeserializationError(format!("attentions.{column}: unexpected value").into())
    }
    let id = |i: usize, column: &str| -> QueryResult<Id> {
        r.bytes(i)
            .and_then(|b| uuid::Uuid::try_parse_ascii(b).ok())
            .map(Id)
            .ok_or_else(|| bad(column))
    };
    let code = |i: usize, column: &str| -> QueryResult<Option<Code>> {
        r.bytes(i)
            .map(|b| {
                std::str::from_utf8(b)
                    .map(Code::new)
                    .map_err(|_| bad(column))
            })
            .transpose()
    };
    let day = |i: usize, column: &str| -> QueryResult<Option<Day>> {
        r.bytes(i)
            .map(|b| parse_day_bytes(b).map(Day).ok_or_else(|| bad(column)))
            .transpose()
    };
    Ok((
        id(0, "person_id")?,
        id(1, "attention_type_id")?,
        id(2, "consulate_id")?,
        code(3, "country_code")?,
        code(4, "channel")?.ok_or_else(|| bad("channel"))?,
        day(5, "attended_on")?.ok_or_else(|| bad("attended_on"))?,
        code(6, "person_sex")?,
        day(7, "person_birth_date")?,
    ))
}
