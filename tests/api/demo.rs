//! `mapce demo-data`: the same seed gives the same population; scale 1 is
//! about one year of the national volume, spread like the 2024 report.

use diesel::prelude::*;
use mapce::db::schema::{attention_types, attentions, cases, payments, persons, tasks};
use mapce::db::DbConn;
use mapce::services::demo::{self, Spec};

use crate::helpers::*;

/// Everything but the generated ids: counts, and every attention's day,
/// sex, country and type.
/// (day, sex, country, type) of one attention.
type Row = (String, String, String, String);

fn content(conn: &mut DbConn) -> (Vec<i64>, Vec<Row>) {
    let counts = vec![
        persons::table.count().get_result(conn).expect("persons"),
        cases::table.count().get_result(conn).expect("cases"),
        attentions::table
            .count()
            .get_result(conn)
            .expect("attentions"),
        tasks::table.count().get_result(conn).expect("tasks"),
        payments::table.count().get_result(conn).expect("payments"),
        payments::table
            .select(payments::amount_usd_cents)
            .load::<i64>(conn)
            .expect("amounts")
            .iter()
            .sum(),
    ];
    let codes: std::collections::HashMap<mapce::db::Id, String> = attention_types::table
        .select((attention_types::id, attention_types::code))
        .load(conn)
        .expect("types")
        .into_iter()
        .collect();
    let mut rows: Vec<Row> = attentions::table
        .select((
            attentions::attended_on,
            attentions::person_sex,
            attentions::country_code,
            attentions::attention_type_id,
        ))
        .load::<(
            chrono::NaiveDate,
            Option<String>,
            Option<String>,
            mapce::db::Id,
        )>(conn)
        .expect("attentions")
        .into_iter()
        .map(|(d, s, c, t)| {
            (
                d.to_string(),
                s.unwrap_or_default(),
                c.unwrap_or_default(),
                codes[&t].clone(),
            )
        })
        .collect();
    rows.sort();
    (counts, rows)
}

#[test]
fn the_same_seed_gives_the_same_population_and_scale_1_is_a_year() {
    let (a, b, c) = (TestDb::migrated(), TestDb::migrated(), TestDb::migrated());
    let small = Spec::scale(7, 0.05);
    demo::generate(&mut a.connect(), &small).expect("generate a");
    demo::generate(&mut b.connect(), &small).expect("generate b");
    let (ca, cb) = (content(&mut a.connect()), content(&mut b.connect()));
    assert!(ca.0.iter().all(|n| *n > 0), "{:?}", ca.0);
    assert_eq!(ca, cb, "same seed, same data");
    demo::generate(&mut c.connect(), &Spec::scale(8, 0.05)).expect("generate c");
    assert_ne!(
        content(&mut c.connect()).1,
        ca.1,
        "another seed, other data"
    );

    // scale 0.05 → 5 % of a year's persons, all within the year before END
    let n = ca.0[0] as f64;
    assert!(
        (n - 0.05 * demo::PERSONS_PER_YEAR as f64).abs() <= 1.0,
        "{n}"
    );
    let last = ca.1.iter().map(|r| r.0.clone()).max().expect("rows");
    let first = ca.1.iter().map(|r| r.0.clone()).min().expect("rows");
    assert!(
        last.as_str() <= "2025-12-31" && first.as_str() >= "2024-12-31",
        "{first}..{last}"
    );
    // spread like the report: Argentina first, women about half
    let ar = ca.1.iter().filter(|r| r.2 == "AR").count() as f64 / ca.1.len() as f64;
    let female = ca.1.iter().filter(|r| r.1 == "female").count() as f64 / ca.1.len() as f64;
    assert!((0.08..0.3).contains(&ar), "AR share {ar}");
    assert!((0.35..0.6).contains(&female), "female share {female}");
}
