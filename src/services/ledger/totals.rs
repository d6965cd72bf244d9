//! Ledger totals: what was requested, approved, paid and reversed, by
//! currency and in soles, per group.

use super::*;

#[derive(Debug, Serialize, ToSchema)]
pub struct TotalsGroup {
    pub consulate_id: Id,
    pub year: i32,
    pub kind: PaymentKind,
    pub currency: String,
    pub entries: i64,
    /// Exact sum in the currency.
    pub amount: String,
    /// Sum of the entries' PEN amounts.
    pub amount_pen: String,
    pub amount_usd: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CurrencyTotal {
    pub currency: String,
    pub entries: i64,
    pub amount: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TotalsResponse {
    pub year: Option<i32>,
    /// The statuses added up.
    pub statuses: Vec<PaymentStatus>,
    /// Per consulate, year, kind and currency.
    pub groups: Vec<TotalsGroup>,
    pub by_currency: Vec<CurrencyTotal>,
    pub entries: i64,
    pub total_pen: String,
    pub total_usd: String,
}

/// Exact totals of the entries a filter selects (`statuses` as asked),
/// per consulate, year, kind and currency, and per currency: each the sum
/// of the entries it covers, PEN and USD as the entries' own conversions.
pub fn totals(
    conn: &mut DbConn,
    filter: &model::PaymentFilter,
    statuses: Vec<PaymentStatus>,
    year: Option<i32>,
) -> Result<TotalsResponse, AppError> {
    let lines = model::ledger_lines(conn, filter)?;
    type Key = (Id, i32, String, String);
    let mut groups: BTreeMap<Key, (i64, i32, i128, i128, i128)> = BTreeMap::new();
    let mut currencies: BTreeMap<String, (i64, i32, i128)> = BTreeMap::new();
    let (mut pen, mut usd, mut entries) = (0_i128, 0_i128, 0_i64);
    for l in lines {
        let g = groups
            .entry((
                l.consulate_id,
                l.value_date.year(),
                l.kind.clone(),
                l.currency.clone(),
            ))
            .or_insert((0, l.currency_exponent, 0, 0, 0));
        g.0 += 1;
        g.2 += i128::from(l.amount_minor);
        g.3 += i128::from(l.amount_pen_cents);
        g.4 += i128::from(l.amount_usd_cents);
        let c = currencies
            .entry(l.currency.clone())
            .or_insert((0, l.currency_exponent, 0));
        c.0 += 1;
        c.2 += i128::from(l.amount_minor);
        pen += i128::from(l.amount_pen_cents);
        usd += i128::from(l.amount_usd_cents);
        entries += 1;
    }
    let fmt = |v: i128, exp: i32| format_scaled(v, u32::try_from(exp).unwrap_or(2));
    Ok(TotalsResponse {
        year,
        statuses,
        groups: groups
            .into_iter()
            .map(
                |((consulate_id, year, kind, currency), (n, exp, amount, p, u))| {
                    Ok(TotalsGroup {
                        consulate_id,
                        year,
                        kind: PaymentKind::stored(&kind)?,
                        currency,
                        entries: n,
                        amount: fmt(amount, exp),
                        amount_pen: fmt(p, 2),
                        amount_usd: fmt(u, 2),
                    })
                },
            )
            .collect::<Result<_, AppError>>()?,
        by_currency: currencies
            .into_iter()
            .map(|(currency, (n, exp, amount))| CurrencyTotal {
                currency,
                entries: n,
                amount: fmt(amount, exp),
            })
            .collect(),
        entries,
        total_pen: fmt(pen, 2),
        total_usd: fmt(usd, 2),
    })
}
