//! Teaching a vocabulary a spelling, and taking it back: the entry it
//! names, the spelling taken elsewhere, and the recoding a channel alias
//! causes.

use super::*;
use crate::domain::audit::AuditAction;

/// Why an alias was not added.
#[derive(Debug)]
pub enum AliasError {
    /// The spelling folds to nothing.
    Empty,
    /// No such entry to point at.
    NoTarget(String),
    /// The spelling already names an entry (code, name, city or alias).
    Taken {
        spelling: String,
        names: String,
    },
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for AliasError {
    fn from(e: diesel::result::Error) -> Self {
        AliasError::Db(e)
    }
}

/// What adding an alias did.
#[derive(Debug, Clone)]
pub struct AliasAdded {
    pub alias: AliasRow,
    /// Attentions (and cases) imported with this channel spelling, now
    /// given the alias's channel.
    pub recoded: Recoded,
}

/// The stored target of an entry named in a path: a consulate by id or
/// code (its id), a country by alpha-2 or alpha-3, the other vocabularies
/// by code.
pub fn target_of(
    conn: &mut DbConn,
    vocabulary: Vocabulary,
    entry: &str,
) -> QueryResult<Option<String>> {
    Ok(match vocabulary {
        Vocabulary::Consulate => {
            let by_id = entry.parse::<uuid::Uuid>().ok().map(Id);
            let mut q = consulates::table.select(consulates::id).into_boxed();
            q = match by_id {
                Some(id) => q.filter(consulates::id.eq(id)),
                None => q.filter(consulates::code.eq(entry.to_uppercase())),
            };
            q.first::<Id>(conn).optional()?.map(|id| id.to_string())
        }
        Vocabulary::Country => countries::table
            .filter(
                countries::alpha2
                    .eq(entry.to_uppercase())
                    .or(countries::alpha3.eq(entry.to_uppercase())),
            )
            .select(countries::alpha2)
            .first::<String>(conn)
            .optional()?,
        Vocabulary::Channel => IntakeChannel::ALL
            .into_iter()
            .find(|c| c.as_str() == entry)
            .map(|c| c.as_str().to_owned()),
        Vocabulary::Sex => Sex::parse(entry).map(|s| s.as_str().to_owned()),
        Vocabulary::DocumentType => DocumentType::parse(entry).map(|d| d.as_str().to_owned()),
    })
}

/// Teaches a vocabulary a spelling: `spelling` resolves to the entry `entry`
/// names from now on. A channel spelling imported rows kept recodes them
/// (and the audit row says how many, per year: a closed year's figures
/// drift by them). Runs inside the write recipe.
pub fn add_alias(
    conn: &mut DbConn,
    journal: &mut Journal,
    actor: Id,
    vocabulary: Vocabulary,
    entry: &str,
    spelling: &str,
) -> Result<AliasAdded, AliasError> {
    let target =
        target_of(conn, vocabulary, entry)?.ok_or_else(|| AliasError::NoTarget(entry.into()))?;
    let folded = fold_key(spelling);
    if folded.is_empty() {
        return Err(AliasError::Empty);
    }
    let resolver = Resolver::load(conn)?;
    if let Some(names) = resolver.taken(vocabulary, &folded) {
        return Err(AliasError::Taken {
            spelling: spelling.to_owned(),
            names,
        });
    }
    let alias = AliasRow {
        id: Id::new(),
        vocabulary: vocabulary.as_str().to_owned(),
        spelling: spelling.trim().to_owned(),
        folded: folded.clone(),
        target: target.clone(),
        created_by: Some(actor),
        created_at: Ts::now(),
        removed_at: None,
        removed_by: None,
    };
    model::insert_alias(conn, &alias)?;
    let recoded = match vocabulary {
        Vocabulary::Channel => model::recode_channel(conn, &folded, &target)?,
        _ => Recoded::default(),
    };
    journal.audit(
        Event::new(
            AuditAction::VocabularyAliasAdd,
            "vocabulary_alias",
            Some(alias.id.to_string()),
        )
        .details(serde_json::json!({
            "vocabulary": alias.vocabulary,
            "spelling": alias.spelling,
            "target": alias.target,
        })),
    );
    if recoded.attentions > 0 || recoded.cases > 0 {
        journal.audit(
            Event::new(
                AuditAction::LegacyChannelRecode,
                "vocabulary_alias",
                Some(alias.id.to_string()),
            )
            .details(serde_json::json!({
                "spelling": alias.spelling,
                "from": "not_recorded",
                "to": alias.target,
                "attentions": recoded.attentions,
                "cases": recoded.cases,
                "attentions_by_year": recoded
                    .years
                    .iter()
                    .map(|(y, n)| (y.to_string(), serde_json::json!(n)))
                    .collect::<serde_json::Map<_, _>>(),
            })),
        );
    }
    Ok(AliasAdded { alias, recoded })
}

/// Takes an alias out of the lookup. Its row stays (removed), and so do the
/// recodings it made: they are corrections of their own, in the audit log.
/// None when there is no such live alias.
pub fn remove_alias(
    conn: &mut DbConn,
    journal: &mut Journal,
    actor: Id,
    id: Id,
) -> QueryResult<Option<AliasRow>> {
    let Some(alias) = model::find_alias(conn, id)? else {
        return Ok(None);
    };
    let now = Ts::now();
    if !model::remove_alias(conn, id, actor, now)? {
        return Ok(None);
    }
    journal.audit(
        Event::new(
            AuditAction::VocabularyAliasRemove,
            "vocabulary_alias",
            Some(id.to_string()),
        )
        .details(serde_json::json!({
            "vocabulary": alias.vocabulary,
            "spelling": alias.spelling,
            "target": alias.target,
        })),
    );
    Ok(Some(AliasRow {
        removed_at: Some(now),
        removed_by: Some(actor),
        ..alias
    }))
}
