//! Resolving rows: each parsed row becomes a person (found, matched within
//! the file, or new), a legacy case and an attention, or a rejection; the
//! fingerprint that makes a second run of the same file add nothing.

use super::*;
use crate::domain::timeline::TimelineKind;
use crate::domain::Stored;

/// The identity a row names, hashed: its document when it has one, else
/// its full name and birth date (folded), for "persons affected".
pub(super) fn row_person(values: &[String; FIELDS.len()]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let number = crate::domain::person::normalize_document_number(&values[read::F_DOC_NUMBER]);
    if number.is_empty() {
        (
            1u8,
            fold_key(&values[read::F_NAME]),
            values[read::F_BIRTH].trim(),
        )
            .hash(&mut h);
    } else {
        (2u8, fold_key(&values[read::F_DOC_TYPE]), number).hash(&mut h);
    }
    h.finish()
}

/// A fingerprint as written by `fingerprint` (32 lowercase hex digits) as a
/// number; `None` for any other text, which no new row's fingerprint equals.
pub(super) fn fingerprint_bits(f: &str) -> Option<u128> {
    let canonical = f.len() == 32 && f.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    canonical
        .then(|| u128::from_str_radix(f, 16).ok())
        .flatten()
}

/// The row's fingerprint: a hash of its values (in field order) and of how
/// many identical rows came before it, so a file's rows all differ but the
/// same file always gives the same fingerprints.
pub(super) fn fingerprint(
    seen: &mut HashMap<u64, u32>,
    values: &[String; FIELDS.len()],
) -> (String, bool) {
    let mut h = Sha256::new();
    for v in values {
        h.update(v.as_bytes());
        h.update([0x1f]);
    }
    let content: [u8; 32] = h.finalize().into();
    let mut key = [0_u8; 8];
    key.copy_from_slice(&content[..8]);
    let n = seen.entry(u64::from_le_bytes(key)).or_insert(0);
    let occurrence = *n;
    *n += 1;
    let mut h = Sha256::new();
    h.update(content);
    h.update(occurrence.to_le_bytes());
    (hex::encode(&h.finalize()[..16]), occurrence > 0)
}

/// Resolves persons and cases for a batch of parsed rows; `None` on a dry
/// run (which only counts the likely duplicates it would queue).
pub(super) fn resolve_batch(
    conn: &mut DbConn,
    st: &mut State,
    rows: Vec<(Parsed, String)>,
    rejected: Vec<Rejection>,
) -> Result<Option<Pending>, AppError> {
    let mut b = Batch {
        import_id: st.import_id,
        ..Batch::default()
    };
    count_rejections(st, &rejected);
    b.rejections = rejected;
    let rows = drop_imported(conn, st, rows)?;
    let by_doc = persons_by_document(conn, st, &rows)?;
    let now = Ts::now();
    let mut resolved: Vec<(Parsed, String, Id)> = Vec::with_capacity(rows.len());
    // legacy cases of earlier runs for persons already in the database
    let mut case_keys: Vec<(CaseKey, Id, Id, Code, i32)> = Vec::new();
    for (p, fp) in rows {
        let (person_id, in_db) = match_person(st, &mut b, &p, &by_doc, now);
        let ck = st.case_key(person_id, p.consulate_id, &p.country, p.attended_on.year());
        // (with the keys aside, `cases` already holds every stored one)
        if in_db && !st.cases.contains_key(&ck) && !st.report.keys_set_aside {
            case_keys.push((
                ck,
                person_id,
                p.consulate_id,
                Code::new(&p.country),
                p.attended_on.year(),
            ));
        }
        resolved.push((p, fp, person_id));
    }
    load_earlier_cases(conn, st, &case_keys)?;
    for (p, fp, person_id) in resolved {
        add_row(st, &mut b, p, fp, person_id, now);
    }
    // likely duplicates of new persons without a document (against
    // everyone already in the database; written only when not dry)
    if st.opts.dry_run {
        let found = crate::services::persons::same_name_duplicates(conn, &b.undocumented)?;
        st.report.duplicates_queued += found.iter().filter(|f| !f.is_empty()).count() as i64;
        return Ok(None);
    }
    Ok(Some(Pending {
        batch: b,
        actor: st.actor.clone(),
        foreign_keys: st.foreign_keys.clone(),
        progress: (
            st.report.rows,
            st.report.rows_imported,
            st.report.rows_already_imported,
            st.report.rows_rejected,
        ),
    }))
}

/// Counts refusals by reason and keeps the first ones for the report.
fn count_rejections(st: &mut State, rejected: &[Rejection]) {
    for r in rejected {
        *st.report
            .rejections_by_reason
            .entry(format!("{}: {}", r.field, r.reason))
            .or_default() += 1;
        if st.report.rejections.len() < st.opts.keep_rejections {
            st.report.rejections.push(r.clone());
        }
    }
}

/// Leaves out the rows an earlier run brought (by fingerprint).
fn drop_imported(
    conn: &mut DbConn,
    st: &mut State,
    rows: Vec<(Parsed, String)>,
) -> Result<Vec<(Parsed, String)>, AppError> {
    let fps: Vec<&str> = rows.iter().map(|(_, f)| f.as_str()).collect();
    let mut done: HashSet<String> = HashSet::new();
    match &st.known_fingerprints {
        // the keys are aside: the stored fingerprints were read at the start
        Some(known) => done.extend(
            fps.iter()
                .filter(|f| fingerprint_bits(f).is_some_and(|bits| known.contains(&bits)))
                .map(|f| (*f).to_owned()),
        ),
        None => {
            for chunk in fps.chunks(900) {
                let found: Vec<String> = legacy_rows::table
                    .filter(legacy_rows::fingerprint.eq_any(chunk))
                    .select(legacy_rows::fingerprint)
                    .load(conn)?;
                done.extend(found);
            }
        }
    }
    let rows: Vec<(Parsed, String)> = rows
        .into_iter()
        .filter(|(_, f)| {
            let old = done.contains(f);
            if old {
                st.report.rows_already_imported += 1;
            }
            !old
        })
        .collect();

    Ok(rows)
}

/// Persons of the database named by the batch's documents (those the
/// import has not met yet), with the sex and birth date they keep.
fn persons_by_document(
    conn: &mut DbConn,
    st: &mut State,
    rows: &[(Parsed, String)],
) -> Result<HashMap<PersonKey, Id>, AppError> {
    let wanted: Vec<String> = rows
        .iter()
        .filter_map(|(p, _)| p.document.as_ref())
        .filter(|(t, n, c)| {
            !st.persons
                .contains_key(&PersonKey::Document(t.as_str(), n.clone(), c.clone()))
        })
        .map(|(_, n, _)| n.clone())
        .collect();
    let mut by_doc: HashMap<PersonKey, Id> = HashMap::new();
    for chunk in wanted.chunks(900) {
        let found: Vec<(String, String, String, Id)> = person_documents::table
            .filter(person_documents::number.eq_any(chunk))
            .select((
                person_documents::doc_type,
                person_documents::number,
                person_documents::issuing_country,
                person_documents::person_id,
            ))
            .load(conn)?;
        for (t, n, c, id) in found {
            if let Some(t) = crate::domain::person::DocumentType::parse(&t) {
                by_doc.insert(PersonKey::Document(t.as_str(), n, c), id);
                st.db_persons.insert(id);
            }
        }
    }
    let unknown_facts: Vec<Id> = by_doc
        .values()
        .filter(|id| !st.facts.contains_key(id))
        .copied()
        .collect();
    for chunk in unknown_facts.chunks(900) {
        let found: Vec<(Id, String, Option<NaiveDate>)> = persons::table
            .filter(persons::id.eq_any(chunk))
            .select((persons::id, persons::sex, persons::birth_date))
            .load(conn)?;
        for (id, sex, birth) in found {
            let sex = crate::domain::person::Sex::stored(&sex)?.as_str();
            st.facts.insert(id, PersonFacts { sex, birth });
        }
    }

    Ok(by_doc)
}

/// The person a row names: met earlier in the import, found by document,
/// or new (added to the batch). Also whether the person is in the
/// database, and notes a documented person whose sex or birth date
/// conflicts with the row.
fn match_person(
    st: &mut State,
    b: &mut Batch,
    p: &Parsed,
    by_doc: &HashMap<PersonKey, Id>,
    now: Ts,
) -> (Id, bool) {
    let key = match &p.document {
        Some((t, n, c)) => Some(PersonKey::Document(t.as_str(), n.clone(), c.clone())),
        None => p.birth.map(|b| {
            PersonKey::NameBirth(
                name_key(
                    &p.given_names,
                    &p.first_surname,
                    p.second_surname.as_deref(),
                ),
                b,
            )
        }),
    };
    let known = key.as_ref().and_then(|k| {
        st.persons
            .get(k)
            .copied()
            .or_else(|| by_doc.get(k).copied())
    });
    let (person_id, in_db) = match known {
        Some(id) => {
            if let Some(k) = &key {
                if !st.persons.contains_key(k) {
                    st.persons.insert(k.clone(), id);
                    if by_doc.contains_key(k) {
                        st.report.persons_matched += 1;
                    }
                }
            }
            (id, st.db_persons.contains(&id))
        }
        None => {
            let person = new_person(p, now);
            st.report.persons_new += 1;
            if let Some((t, n, c)) = &p.document {
                b.documents.push(Document {
                    id: Id::new(),
                    person_id: person.id,
                    doc_type: t.as_str().to_owned(),
                    number: n.clone(),
                    issuing_country: c.clone(),
                    created_at: now,
                });
            } else {
                b.undocumented.push(person.clone());
            }
            for k in crate::services::persons::keys_for(&person) {
                b.keys.push((person.id, k));
            }
            st.facts.insert(
                person.id,
                PersonFacts {
                    sex: p.sex,
                    birth: p.birth,
                },
            );
            if let Some(k) = key {
                st.persons.insert(k, person.id);
            }
            let id = person.id;
            b.persons.push(person);
            (id, false)
        }
    };
    if let Some(f) = st.facts.get(&person_id) {
        let sex_differs = p.sex != "not_recorded" && f.sex != "not_recorded" && f.sex != p.sex;
        let birth_differs = matches!((p.birth, f.birth), (Some(a), Some(b)) if a != b);
        if p.document.is_some() && (sex_differs || birth_differs) {
            st.conflicts.insert(person_id);
        }
    }
    (person_id, in_db)
}

/// Finds the legacy cases earlier runs opened for these keys.
fn load_earlier_cases(
    conn: &mut DbConn,
    st: &mut State,
    case_keys: &[(CaseKey, Id, Id, Code, i32)],
) -> Result<(), AppError> {
    for chunk in case_keys.chunks(200) {
        for (ck, person, consulate, country, year) in chunk {
            let found: Option<Id> = legacy_cases::table
                .filter(legacy_cases::person_id.eq(person))
                .filter(legacy_cases::consulate_id.eq(consulate))
                .filter(legacy_cases::country_code.eq(country.as_str()))
                .filter(legacy_cases::year.eq(year))
                .select(legacy_cases::case_id)
                .first(conn)
                .optional()?;
            if let Some(c) = found {
                st.cases.insert(*ck, c);
            }
        }
    }

    Ok(())
}

/// A resolved row's attention (in its person's legacy case of the year,
/// opened when new), its timeline events and what the report counts.
fn add_row(st: &mut State, b: &mut Batch, p: Parsed, fp: String, person_id: Id, now: Ts) {
    let year = p.attended_on.year();
    let ck = st.case_key(person_id, p.consulate_id, &p.country, year);
    let case_id = match st.cases.get(&ck) {
        Some(id) => *id,
        None => {
            let case = legacy_case(&p, person_id, year, st.today, now);
            st.report.cases_new += 1;
            b.events.push(TimelineEvent {
                    id: Id::new(),
                    person_id,
                    case_id: Some(case.id),
                    consulate_id: Some(p.consulate_id),
                    kind: TimelineKind::CaseImported.as_str().into(),
                    at: case.opened_at,
                    actor_id: st.actor.as_ref().map(|a| a.user_id),
                    attention_type_id: None,
                    payload: serde_json::json!({ "source": "mapce", "import_id": st.import_id, "year": year }).to_string(),
                });
            b.legacy_cases
                .push((person_id, p.consulate_id, p.country.clone(), year, case.id));
            st.cases.insert(ck, case.id);
            let id = case.id;
            b.cases.push(case);
            id
        }
    };
    let facts = st.facts.get(&person_id).copied().unwrap_or(PersonFacts {
        sex: p.sex,
        birth: p.birth,
    });
    let attention = legacy_attention(&p, case_id, person_id, facts, now);
    if let Some(spelling) = &p.channel_spelling {
        b.spellings.push((
            attention.id,
            case_id,
            Vocabulary::Channel.as_str(),
            spelling.clone(),
            fold_key(spelling),
        ));
    }
    let at = p
        .attended_on
        .and_hms_opt(12, 0, 0)
        .map(|t| Ts(t.and_utc()))
        .unwrap_or(now);
    b.events.push(TimelineEvent {
        id: Id::new(),
        person_id,
        case_id: Some(case_id),
        consulate_id: Some(p.consulate_id),
        kind: TimelineKind::AttentionRecorded.as_str().into(),
        at,
        actor_id: st.actor.as_ref().map(|a| a.user_id),
        attention_type_id: Some(p.type_id),
        payload: serde_json::json!({
            "attention_id": attention.id,
            "attended_on": p.attended_on,
            "channel": p.channel,
            "source": "mapce",
            "import_id": st.import_id,
            "line": p.line,
        })
        .to_string(),
    });
    if p.outside_jurisdiction {
        st.report.quality.outside_jurisdiction += 1;
    }
    if p.sex == "not_recorded" {
        st.report.quality.missing_sex += 1;
    }
    *st.volumes
        .entry((
            p.consulate_id,
            format!("{}-{:02}", year, p.attended_on.month()),
        ))
        .or_default() += 1;
    b.legacy_rows
        .push((fp, st.import_id, p.line as i64, attention.id));
    b.attentions.push(attention);
    st.report.rows_imported += 1;
}

pub(super) fn new_person(p: &Parsed, now: Ts) -> Person {
    Person {
        id: Id::new(),
        given_names: p.given_names.clone(),
        first_surname: p.first_surname.clone(),
        second_surname: p.second_surname.clone(),
        birth_date: p.birth,
        sex: p.sex.to_owned(),
        nationalities: r#"["PE"]"#.to_owned(),
        phone: None,
        email: None,
        address_abroad: None,
        name_key: name_key(
            &p.given_names,
            &p.first_surname,
            p.second_surname.as_deref(),
        ),
        registered_consulate_id: Some(p.consulate_id),
        merged_into_id: None,
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

/// The attention a legacy row becomes, with the person's facts as first
/// recorded (`facts`).
pub(super) fn legacy_attention(
    p: &Parsed,
    case_id: Id,
    person_id: Id,
    facts: PersonFacts,
    now: Ts,
) -> Attention {
    Attention {
        id: Id::new(),
        case_id,
        person_id,
        consulate_id: p.consulate_id,
        attention_type_id: p.type_id,
        attended_on: p.attended_on,
        channel: p.channel.to_owned(),
        officer_id: None,
        description: format!("Importado de MAPCE (línea {})", p.line),
        late_registration: false,
        voided_at: None,
        voided_by: None,
        void_reason: None,
        created_at: now,
        country_code: Some(p.country.clone()),
        person_sex: Some(facts.sex.to_owned()),
        person_birth_date: facts.birth,
    }
}

pub(super) fn legacy_case(p: &Parsed, person_id: Id, year: i32, today: NaiveDate, now: Ts) -> Case {
    let start = Utc
        .with_ymd_and_hms(year, 1, 1, 0, 0, 0)
        .single()
        .map(Ts)
        .unwrap_or(now);
    let end = Utc
        .with_ymd_and_hms(year, 12, 31, 23, 59, 59)
        .single()
        .map(Ts)
        .unwrap_or(now);
    let closed = if end.0.date_naive() > today { now } else { end };
    Case {
        id: Id::new(),
        person_id,
        consulate_id: p.consulate_id,
        country_code: p.country.clone(),
        city: None,
        channel: p.channel.to_owned(),
        requester_kind: "self".into(),
        requester_name: None,
        requester_relationship: None,
        requester_contact: None,
        summary: format!("Atenciones {year} importadas de MAPCE"),
        flags: "[]".into(),
        protected: false,
        status: "closed".into(),
        outcome: None,
        closed_at: Some(closed),
        assigned_officer_id: None,
        opened_at: start,
        created_by: None,
        version: 1,
        created_at: now,
        updated_at: now,
    }
}
