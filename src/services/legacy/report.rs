//! The import's report: what was read, imported, skipped and refused, the
//! labels and coded values nothing resolved (with the closest entries), and
//! the closing of a run (counts, audit, the `imports` row).

use super::*;
use crate::domain::audit::AuditAction;

/// A label no attention type has, with how often it came and the closest types.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UnmappedLabel {
    pub label: String,
    pub rows: i64,
    /// Distinct persons those rows name (by document, else by name and
    /// birth date as written).
    #[serde(default)]
    pub persons: i64,
    pub closest: Vec<ClosestType>,
}

/// A spelling of a coded field that nothing resolved: teach it with an
/// alias (`POST /api/v1/{consulates|countries|channels|sexes|document-types}/{id}/aliases`)
/// or add the missing entry, then run the file again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UnresolvedValue {
    /// `consulado`, `pais`, `canal`, `sexo` or `tipo_documento`.
    pub field: String,
    pub spelling: String,
    pub rows: i64,
    /// Distinct persons those rows name (by document, else by name and
    /// birth date as written).
    #[serde(default)]
    pub persons: i64,
    /// Set when the rows were imported anyway: a channel nothing resolved
    /// is `not_recorded`, and an alias added later recodes those rows.
    /// Rows with other unresolved fields were refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_as: Option<String>,
    pub closest: Vec<ClosestEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClosestEntry {
    /// The entry's folded code, name or city.
    pub entry: String,
    /// Jaro-Winkler similarity of the folded spellings, 0 to 1.
    pub score: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClosestType {
    pub code: String,
    pub name_es: String,
    /// Jaro-Winkler similarity of the folded spellings, 0 to 1.
    pub score: f64,
}

/// What an import did (or, dry, would do).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Report {
    pub dry_run: bool,
    pub atomic: bool,
    /// An atomic import with refused rows writes nothing: it is rolled back
    /// whole and its status is `failed`.
    pub rolled_back: bool,
    pub format: String,
    /// Data rows read (the header is not counted).
    pub rows: i64,
    pub rows_imported: i64,
    /// Rows an earlier import already brought (same fingerprint).
    pub rows_already_imported: i64,
    pub rows_rejected: i64,
    pub persons_new: i64,
    pub persons_matched: i64,
    pub cases_new: i64,
    /// Rows repeating another row of the file value for value (imported:
    /// MAPCE could record the same attention twice in a day).
    pub identical_rows: i64,
    /// Likely duplicates of new persons without a document, put in the
    /// review queue (`GET /api/v1/duplicates`).
    pub duplicates_queued: i64,
    pub unmapped_labels: Vec<UnmappedLabel>,
    /// Consulates, countries, channels, sexes and document types no entry
    /// resolved, most rows first, with the persons affected and the
    /// closest entries: what to teach (an alias) or add (an office) next.
    pub unresolved_values: Vec<UnresolvedValue>,
    /// Refused rows per field and reason.
    pub rejections_by_reason: BTreeMap<String, i64>,
    /// The first `keep_rejections` refused fields, in file order.
    pub rejections: Vec<Rejection>,
    pub quality: quality::ImportQuality,
    /// Whether secondary indexes were set aside while writing, and how long
    /// rebuilding them took (included in `seconds`).
    pub indexes_set_aside: bool,
    /// For `--indexes auto`: the rows of the file estimated to be new (from
    /// a sample of its head and tail), which decided whether to set the
    /// indexes aside; a file run again is mostly rows already imported.
    pub rows_estimated_new: Option<i64>,
    /// Whether the import's own unique keys (fingerprints, legacy cases)
    /// were set aside too (SQLite, the only import running; the import
    /// guaranteed them meanwhile) and rebuilt with the indexes.
    pub keys_set_aside: bool,
    pub index_rebuild_seconds: f64,
    pub seconds: f64,
    pub rows_per_second: f64,
}

pub(super) fn finish(
    conn: &mut DbConn,
    mut st: State,
    lookup: Lookup,
    started: std::time::Instant,
) -> Result<Report, AppError> {
    let mut unresolved: Vec<((String, String), Affected)> = st.unresolved.drain().collect();
    unresolved.sort_by(|a, b| b.1.rows.cmp(&a.1.rows).then_with(|| a.0.cmp(&b.0)));
    for ((field, spelling), affected) in unresolved {
        let closest = lookup
            .closest(&field, &spelling)
            .into_iter()
            .map(|(entry, score)| ClosestEntry { entry, score })
            .collect();
        st.report.unresolved_values.push(UnresolvedValue {
            imported_as: (field == FIELDS[read::F_CHANNEL]).then(|| "not_recorded".to_owned()),
            field,
            spelling,
            rows: affected.rows,
            persons: affected.persons.len() as i64,
            closest,
        });
    }
    drop(lookup);
    let mut unmapped: Vec<(String, Affected)> = st.unmapped.drain().collect();
    unmapped.sort_by(|a, b| b.1.rows.cmp(&a.1.rows).then_with(|| a.0.cmp(&b.0)));
    for (label, affected) in unmapped {
        let closest = crate::services::catalogue::suggest(conn, &label, 3)?
            .into_iter()
            .map(|(t, score, _)| ClosestType {
                code: t.code,
                name_es: t.name_es,
                score: (score * 1000.0).round() / 1000.0,
            })
            .collect();
        st.report.unmapped_labels.push(UnmappedLabel {
            label,
            rows: affected.rows,
            persons: affected.persons.len() as i64,
            closest,
        });
    }
    st.report.quality.conflicting_documents = st.conflicts.len() as i64;
    st.report.quality.volume_outliers = quality::outliers(&st.volumes);
    st.report.seconds = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    st.report.rows_per_second = if st.report.seconds > 0.0 {
        (st.report.rows as f64 / st.report.seconds).round()
    } else {
        0.0
    };
    if !st.opts.dry_run {
        let report = serde_json::to_string(&st.report).map_err(AppError::internal)?;
        let meta = RequestMeta::default();
        crate::services::journal::run(conn, st.actor.as_ref(), &meta, |conn, j| {
            diesel::update(imports::table.find(st.import_id))
                .set((
                    imports::status.eq(if st.report.rolled_back {
                        "failed"
                    } else {
                        "succeeded"
                    }),
                    imports::rows_read.eq(st.report.rows),
                    imports::rows_imported.eq(st.report.rows_imported),
                    imports::rows_skipped.eq(st.report.rows_already_imported),
                    imports::rows_rejected.eq(st.report.rows_rejected),
                    imports::report.eq(&report),
                    imports::finished_at.eq(Ts::now()),
                ))
                .execute(conn)?;
            j.audit(
                Event::new(
                    AuditAction::ImportFinished,
                    "import",
                    Some(st.import_id.to_string()),
                )
                .details(serde_json::json!({
                    "rows": st.report.rows,
                    "imported": st.report.rows_imported,
                    "already_imported": st.report.rows_already_imported,
                    "rejected": st.report.rows_rejected,
                    "persons_new": st.report.persons_new,
                })),
            );
            Ok(())
        })?;
    }
    Ok(st.report)
}
