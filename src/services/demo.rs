//! Synthetic, deterministic data for demos and benchmarks: persons spread
//! over countries, sexes and attention types roughly like the 2024 report,
//! each with cases, attentions, follow-up tasks, payments for the paid kinds
//! of assistance, and the timeline events the API would write. Dates run
//! back from a fixed day (`END`), so one seed always gives the same data.
//! Rows are written in large batches, not through the API.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::db::schema::{attention_types, consulates, payments, tasks, users};
use crate::db::{DbConn, Id, Ts};
use crate::domain::audit::AuditAction;
use crate::domain::person::name_key;
use crate::domain::timeline::TimelineKind;
use crate::models::cases::{Attention, Case, Task};
use crate::models::persons::{Person, TimelineEvent};
use crate::models::support::Payment;

const FEMALE: &[&str] = &[
    "María", "Rosa", "Ana", "Carmen", "Luz", "Juana", "Elena", "Sofía", "Lucía", "Milagros",
    "Patricia", "Gloria", "Julia", "Teresa", "Flor", "Norma", "Diana", "Carla", "Valeria",
    "Isabel", "Silvia", "Nancy", "Yolanda", "Liliana", "Gabriela", "Mónica", "Sandra", "Roxana",
    "Pilar", "Victoria",
];
const MALE: &[&str] = &[
    "José", "Juan", "Luis", "Carlos", "Jorge", "Pedro", "Miguel", "César", "Víctor", "Manuel",
    "Javier", "Alberto", "Raúl", "Walter", "Óscar", "Julio", "Marco", "Fernando", "Ricardo",
    "Hugo", "Daniel", "Edwin", "Wilmer", "Percy", "Alex", "Diego", "Renzo", "Iván", "Héctor",
    "Félix",
];
const SURNAMES: &[&str] = &[
    "Quispe",
    "Flores",
    "Rodríguez",
    "Sánchez",
    "García",
    "Huamán",
    "Mamani",
    "Rojas",
    "Vásquez",
    "Chávez",
    "Ramos",
    "Torres",
    "Díaz",
    "Mendoza",
    "Castillo",
    "Ramírez",
    "Gonzales",
    "Espinoza",
    "López",
    "Pérez",
    "Condori",
    "Salazar",
    "Cruz",
    "Gutiérrez",
    "Morales",
    "Vargas",
    "Reyes",
    "Córdova",
    "Medina",
    "Aguilar",
    "Romero",
    "Herrera",
    "Cárdenas",
    "Castro",
    "Ruiz",
    "Mendoza",
    "Palomino",
    "Ccama",
    "Apaza",
    "Ticona",
    "Huanca",
    "Paredes",
    "Fernández",
    "Alvarado",
    "Vega",
    "Núñez",
    "Campos",
    "Silva",
    "Zapata",
    "Rivera",
    "Benites",
    "Chumpitaz",
    "Inga",
    "Coaquira",
    "Taipe",
    "Yupanqui",
    "Villanueva",
    "Cáceres",
    "Lazo",
    "Soto",
];

/// Persons per country in the report (2024), used as weights.
const COUNTRY_WEIGHTS: &[(&str, u32)] = &[
    ("AR", 4506),
    ("CL", 3140),
    ("BR", 2196),
    ("IT", 1301),
    ("ES", 915),
    ("US", 700),
    ("BO", 520),
    ("CN", 475),
    ("JP", 381),
    ("EC", 300),
    ("VE", 250),
    ("MX", 200),
    ("CO", 180),
    ("FR", 120),
    ("DE", 100),
    ("GB", 60),
    ("CH", 50),
    ("KR", 60),
    ("AU", 18),
    ("ZA", 20),
    ("MA", 12),
    ("EG", 10),
];

/// Attentions per type, weights after the report's largest three.
const TYPE_WEIGHTS: &[(&str, u32)] = &[
    ("legal_orientation", 4042),
    ("consular_fees_destitute", 2150),
    ("migration_orientation", 1466),
    ("detainee_visit", 900),
    ("detainee_economic_aid", 600),
    ("economic_subsidy", 500),
    ("repatriation", 300),
    ("humanitarian_assistance", 400),
    ("labour_orientation", 350),
    ("hospitalised_or_sick", 250),
    ("death_abroad", 150),
    ("transfer_of_remains", 100),
    ("gender_violence", 200),
    ("trafficking_in_persons", 40),
    ("search_and_location", 120),
    ("minors_at_risk", 80),
    ("return_assistance", 300),
    ("lost_or_stolen_documents", 250),
];

const CHANNELS: &[&str] = &[
    "phone",
    "e_appointment",
    "consulate_window",
    "institutional_email",
    "in_person_ministry",
];

fn pick<'a, T>(rng: &mut StdRng, weights: &'a [(T, u32)]) -> &'a T {
    let total: u32 = weights.iter().map(|w| w.1).sum();
    let mut n = rng.random_range(0..total);
    for (v, w) in weights {
        if n < *w {
            return v;
        }
        n -= w;
    }
    &weights[0].0
}

/// The last day of generated data: data never depend on when they are made.
pub const END: (i32, u32, u32) = (2025, 12, 31);

/// One year of the national volume (the report's 2024 figure: 17 268
/// persons) and how many attentions they received, about 1.7 each.
pub const PERSONS_PER_YEAR: usize = 17_268;
pub const ATTENTIONS_PER_YEAR: usize = 29_500;

/// What to generate: `scale` years of the national volume, or explicit
/// counts spread over ten years.
#[derive(Debug, Clone)]
pub struct Spec {
    pub seed: u64,
    pub persons: usize,
    pub attentions: usize,
    /// Years the data cover, ending at `END`.
    pub years: u32,
    pub heavy: usize,
    pub heavy_events: usize,
}

impl Spec {
    /// Scale 1 ≈ one year of the national volume; scale N covers N years
    /// (at least one) with N times the persons and attentions.
    pub fn scale(seed: u64, scale: f64) -> Spec {
        let scale = scale.max(0.001);
        Spec {
            seed,
            persons: ((PERSONS_PER_YEAR as f64 * scale).round() as usize).max(1),
            attentions: ((ATTENTIONS_PER_YEAR as f64 * scale).round() as usize).max(1),
            years: (scale.ceil() as u32).max(1),
            heavy: 0,
            heavy_events: 0,
        }
    }
}

/// What was generated.
#[derive(Debug, Default)]
pub struct DemoReport {
    pub persons: i64,
    pub cases: i64,
    pub attentions: i64,
    pub events: i64,
    pub tasks: i64,
    pub payments: i64,
    /// Persons given `heavy_events` attentions each (for history benchmarks).
    pub heavy_persons: Vec<Id>,
}

/// Attention types that come with a payment, and the payment's kind.
const PAID: &[(&str, &str)] = &[
    ("consular_fees_destitute", "consular_fees_destitute"),
    ("economic_subsidy", "economic_subsidy"),
    ("repatriation", "repatriation_cost"),
];

const TASKS: &[&str] = &[
    "Llamar a la persona",
    "Pedir documentos",
    "Coordinar con la red de apoyo",
    "Visitar",
    "Informar a la familia",
];

/// A paid (or still requested) payment in US dollars for an attention.
fn payment(rng: &mut StdRng, a: &Attention, kind: &str, requester: Id) -> Payment {
    let amount_minor: i64 = rng.random_range(20..400) * 100;
    let paid = rng.random_bool(0.85);
    // 3.75 soles per dollar: one fixed rate keeps the data reproducible
    let pen_per_unit_e9: i64 = 3_750_000_000;
    Payment {
        id: Id::new(),
        case_id: a.case_id,
        person_id: a.person_id,
        consulate_id: a.consulate_id,
        repatriation_id: None,
        kind: kind.into(),
        status: if paid { "paid" } else { "requested" }.into(),
        amount_minor,
        currency: "USD".into(),
        currency_exponent: 2,
        value_date: a.attended_on,
        pen_per_unit_e9,
        usd_per_unit_e9: 1_000_000_000,
        amount_pen_cents: amount_minor * pen_per_unit_e9 / 1_000_000_000,
        amount_usd_cents: amount_minor,
        budget_line: "demo".into(),
        description: "Pago de demostración".into(),
        requested_by: requester,
        requested_at: a.created_at,
        decided_by: paid.then_some(requester),
        decided_at: paid.then_some(a.created_at),
        decision_note: None,
        paid_by: paid.then_some(requester),
        paid_at: paid.then_some(a.created_at),
        payment_reference: paid.then(|| format!("DEMO-{}", a.id)),
        reverses_id: None,
        version: 1,
        created_at: a.created_at,
        updated_at: a.created_at,
    }
}

/// One batch of generated rows.
#[derive(Default)]
struct Rows {
    persons: Vec<Person>,
    keys: Vec<(Id, String)>,
    cases: Vec<Case>,
    attentions: Vec<Attention>,
    events: Vec<TimelineEvent>,
    tasks: Vec<Task>,
    payments: Vec<Payment>,
}

impl Rows {
    fn write(&mut self, conn: &mut DbConn, report: &mut DemoReport) -> QueryResult<()> {
        report.persons += self.persons.len() as i64;
        report.attentions += self.attentions.len() as i64;
        report.events += self.events.len() as i64;
        report.tasks += self.tasks.len() as i64;
        report.payments += self.payments.len() as i64;
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            crate::models::bulk::insert_population(
                conn,
                &self.persons,
                &self.keys,
                &self.cases,
                &self.attentions,
                &self.events,
            )?;
            for chunk in self.tasks.chunks(1000) {
                crate::per_backend!(conn, |c| diesel::insert_into(tasks::table)
                    .values(chunk)
                    .execute(c))?;
            }
            for chunk in self.payments.chunks(500) {
                crate::per_backend!(conn, |c| diesel::insert_into(payments::table)
                    .values(chunk)
                    .execute(c))?;
            }
            Ok(())
        })?;
        *self = Rows::default();
        Ok(())
    }
}

/// The account generated payments are requested by: inactive, with a
/// random password nobody knows (created once, found afterwards).
fn demo_account(conn: &mut DbConn) -> anyhow::Result<Id> {
    const NAME: &str = "demo.data";
    let found: Option<Id> = users::table
        .filter(users::username.eq(NAME))
        .select(users::id)
        .first(conn)
        .optional()?;
    if let Some(id) = found {
        return Ok(id);
    }
    let password: String = {
        let mut rng = rand::rng();
        (0..40)
            .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
            .collect()
    };
    let id = crate::services::users::create(
        conn,
        crate::auth::password::HashCost::TESTING,
        crate::services::users::NewAccount {
            username: NAME.into(),
            display_name: "Datos de demostración".into(),
            role: crate::domain::role::Role::Admin,
            consulate: None,
            password,
        },
        AuditAction::UserCreateCli,
    )
    .map_err(|e| anyhow::anyhow!("demo account: {e}"))?;
    diesel::update(users::table.find(id))
        .set(users::active.eq(false))
        .execute(conn)?;
    Ok(id)
}

/// Generates `spec.persons` persons with about `spec.attentions`
/// attentions in all, the first `spec.heavy` of them with
/// `spec.heavy_events` attentions each.
pub fn generate(conn: &mut DbConn, spec: &Spec) -> anyhow::Result<DemoReport> {
    let Spec {
        seed,
        persons,
        attentions,
        years,
        heavy,
        heavy_events,
    } = spec.clone();
    let end = NaiveDate::from_ymd_opt(END.0, END.1, END.2).unwrap_or_default();
    let end_ts = Ts(end.and_hms_opt(18, 0, 0).unwrap_or_default().and_utc());
    let span_days = i64::from(years.max(1)) * 365;
    let requester = demo_account(conn)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let consulate_rows: Vec<(Id, String)> = consulates::table
        .select((consulates::id, consulates::country_code))
        .load(conn)?;
    let mut by_country: HashMap<String, Vec<Id>> = HashMap::new();
    for (id, country) in consulate_rows {
        by_country.entry(country).or_default().push(id);
    }
    let type_rows: Vec<(Id, String)> = attention_types::table
        .select((attention_types::id, attention_types::code))
        .load(conn)?;
    let type_codes: HashMap<Id, String> =
        type_rows.iter().map(|(id, c)| (*id, c.clone())).collect();
    let type_ids: HashMap<String, Id> =
        type_rows.into_iter().map(|(id, code)| (code, id)).collect();
    let type_weights: Vec<(Id, u32)> = TYPE_WEIGHTS
        .iter()
        .filter_map(|(c, w)| type_ids.get(*c).map(|id| (*id, *w)))
        .collect();
    let countries: Vec<(&str, u32)> = COUNTRY_WEIGHTS
        .iter()
        .filter(|(c, _)| by_country.contains_key(*c))
        .copied()
        .collect();
    anyhow::ensure!(
        !type_weights.is_empty() && !countries.is_empty(),
        "migrate first: no catalogue or consulates"
    );

    let mut report = DemoReport::default();
    let base_day = NaiveDate::from_ymd_opt(2015, 1, 1).unwrap_or_default();
    let normal = persons.saturating_sub(heavy).max(1);
    let per_person =
        (attentions.saturating_sub(heavy * heavy_events) as f64 / normal as f64).max(1.0);
    let mut rows = Rows::default();
    for i in 0..persons {
        let female = rng.random_bool(0.48);
        let sex = if rng.random_bool(0.003) {
            "not_recorded"
        } else if female {
            "female"
        } else {
            "male"
        };
        let given = if female {
            FEMALE[rng.random_range(0..FEMALE.len())]
        } else {
            MALE[rng.random_range(0..MALE.len())]
        };
        let s1 = SURNAMES[rng.random_range(0..SURNAMES.len())];
        let s2 = SURNAMES[rng.random_range(0..SURNAMES.len())];
        let birth = (!rng.random_bool(0.1)).then(|| {
            NaiveDate::from_ymd_opt(
                rng.random_range(1940..2020),
                rng.random_range(1..=12),
                rng.random_range(1..=28),
            )
            .unwrap_or(base_day)
        });
        let country = *pick(&mut rng, &countries);
        let consulate_list = &by_country[country];
        let consulate = consulate_list[rng.random_range(0..consulate_list.len())];
        let created = Ts(end_ts.0 - chrono::Duration::days(rng.random_range(0..span_days)));
        let person = Person {
            id: Id::new(),
            given_names: given.to_owned(),
            first_surname: s1.to_owned(),
            second_surname: Some(s2.to_owned()),
            birth_date: birth,
            sex: sex.to_owned(),
            nationalities: r#"["PE"]"#.to_owned(),
            phone: None,
            email: None,
            address_abroad: None,
            name_key: name_key(given, s1, Some(s2)),
            registered_consulate_id: Some(consulate),
            merged_into_id: None,
            version: 1,
            created_at: created,
            updated_at: created,
        };
        for k in crate::services::persons::keys_for(&person) {
            rows.keys.push((person.id, k));
        }
        let n_att = if i < heavy {
            heavy_events
        } else {
            let frac = per_person - per_person.floor();
            per_person.floor() as usize + usize::from(rng.random_bool(frac.clamp(0.0, 1.0)))
        };
        let n_cases = (n_att / 3).clamp(1, 40);
        let mut case_list = Vec::new();
        for _ in 0..n_cases {
            let opened = Ts(created.0 + chrono::Duration::days(rng.random_range(0..30)));
            let case = Case {
                id: Id::new(),
                person_id: person.id,
                consulate_id: consulate,
                country_code: country.to_owned(),
                city: None,
                channel: CHANNELS[rng.random_range(0..CHANNELS.len())].to_owned(),
                requester_kind: "self".into(),
                requester_name: None,
                requester_relationship: None,
                requester_contact: None,
                summary: "Caso de demostración".into(),
                flags: "[]".into(),
                protected: false,
                status: if rng.random_bool(0.7) {
                    "closed"
                } else {
                    "in_progress"
                }
                .into(),
                outcome: None,
                closed_at: None,
                assigned_officer_id: None,
                opened_at: opened,
                created_by: None,
                version: 1,
                created_at: opened,
                updated_at: opened,
            };
            rows.events.push(TimelineEvent {
                id: Id::new(),
                person_id: person.id,
                case_id: Some(case.id),
                consulate_id: Some(consulate),
                kind: TimelineKind::CaseOpened.as_str().into(),
                at: opened,
                actor_id: None,
                attention_type_id: None,
                payload: "{}".into(),
            });
            case_list.push(case);
        }
        for a in 0..n_att {
            let case = &case_list[a % case_list.len()];
            let type_id = *pick(&mut rng, &type_weights);
            let at = Ts(
                (case.opened_at.0 + chrono::Duration::hours(rng.random_range(0..2000)))
                    .min(end_ts.0),
            );
            let day = at.0.date_naive();
            let attention = Attention {
                id: Id::new(),
                case_id: case.id,
                person_id: person.id,
                consulate_id: consulate,
                attention_type_id: type_id,
                attended_on: day,
                channel: case.channel.clone(),
                officer_id: None,
                description: "Atención de demostración".into(),
                late_registration: false,
                voided_at: None,
                voided_by: None,
                void_reason: None,
                created_at: at,
                country_code: Some(case.country_code.clone()),
                person_sex: Some(person.sex.clone()),
                person_birth_date: person.birth_date,
            };
            rows.events.push(TimelineEvent {
                id: Id::new(),
                person_id: person.id,
                case_id: Some(case.id),
                consulate_id: Some(consulate),
                kind: TimelineKind::AttentionRecorded.as_str().into(),
                at,
                actor_id: None,
                attention_type_id: Some(type_id),
                payload: format!(
                    r#"{{"attention_id":"{}","year":{}}}"#,
                    attention.id,
                    day.year()
                ),
            });
            if let Some(kind) = PAID
                .iter()
                .find(|(code, _)| type_codes.get(&type_id).map(String::as_str) == Some(*code))
            {
                rows.payments
                    .push(payment(&mut rng, &attention, kind.1, requester));
            }
            rows.attentions.push(attention);
        }
        for case in &case_list {
            // follow-up: most cases had a task, done unless the case is open
            if rng.random_bool(0.6) {
                let due = Ts(case.opened_at.0 + chrono::Duration::days(rng.random_range(1..30)));
                rows.tasks.push(Task {
                    id: Id::new(),
                    case_id: case.id,
                    consulate_id: case.consulate_id,
                    title: TASKS[rng.random_range(0..TASKS.len())].into(),
                    assignee_id: None,
                    due_at: Some(due),
                    done_at: (case.status == "closed").then_some(Ts(due.0.min(end_ts.0))),
                    case_step_id: None,
                    created_by: None,
                    created_at: case.opened_at,
                });
            }
        }
        if i < heavy {
            report.heavy_persons.push(person.id);
        }
        report.cases += case_list.len() as i64;
        rows.cases.extend(case_list);
        rows.persons.push(person);
        if rows.persons.len() >= 5000 || i + 1 == persons {
            rows.write(conn, &mut report)?;
        }
    }
    Ok(report)
}
