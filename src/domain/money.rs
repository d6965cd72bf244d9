//! Exact money: ISO 4217 currencies with their minor units, amounts as
//! integers in that minor unit, exchange rates as integers in billionths,
//! and one rounding rule. No float ever holds an amount.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

const CURRENCIES_TSV: &str = include_str!("../reference/currencies.tsv");

/// Exchange rates are stored as units of PEN (or USD) per unit of the
/// currency, times this.
pub const RATE_SCALE: i64 = 1_000_000_000;
/// Digits after the point a rate may have.
pub const RATE_DECIMALS: u32 = 9;
/// The largest amount one entry may carry, in major units.
pub const MAX_MAJOR_UNITS: i64 = 1_000_000_000;

/// An ISO 4217 currency the ledger accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency {
    pub code: &'static str,
    /// Digits of the minor unit: 2 for PEN/USD/EUR, 0 for JPY/CLP, 3 for KWD.
    pub exponent: u32,
    pub name: &'static str,
    /// `current`, or `superseded(XXX)` for codes kept for old records.
    pub status: &'static str,
}

fn currencies() -> &'static HashMap<&'static str, Currency> {
    static TABLE: OnceLock<HashMap<&'static str, Currency>> = OnceLock::new();
    TABLE.get_or_init(|| {
        CURRENCIES_TSV
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let cols: Vec<&'static str> = l.split('\t').collect();
                let exponent = cols.get(2)?.parse().ok()?;
                Some((
                    *cols.first()?,
                    Currency {
                        code: cols[0],
                        exponent,
                        name: cols.get(3)?,
                        status: cols.get(4)?,
                    },
                ))
            })
            .collect()
    })
}

/// The currency with this alpha-3 code (case-insensitive).
pub fn currency(code: &str) -> Option<&'static Currency> {
    currencies().get(code.trim().to_ascii_uppercase().as_str())
}

/// Every accepted currency, by code.
pub fn all_currencies() -> Vec<&'static Currency> {
    let mut all: Vec<_> = currencies().values().collect();
    all.sort_by_key(|c| c.code);
    all
}

/// A decimal as a client sends it: preferably a string (`"150.00"`); a JSON
/// number is taken by its shortest exact spelling (`150.5` → `"150.5"`).
/// DTO fields of this type document themselves as strings
/// (`#[schema(value_type = String)]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DecimalInput {
    Text(String),
    Number(serde_json::Number),
}

impl DecimalInput {
    fn spelling(&self) -> String {
        match self {
            DecimalInput::Text(s) => s.trim().to_owned(),
            DecimalInput::Number(n) => n.to_string(),
        }
    }
}

/// Why a decimal was refused; the caller names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecimalError {
    NotADecimal,
    NotPositive,
    TooManyDecimals(u32),
    TooLarge,
}

impl DecimalError {
    pub fn reason(&self, what: &str) -> String {
        match self {
            DecimalError::NotADecimal => {
                "must be a decimal like \"150.00\" (digits, one optional point)".to_owned()
            }
            DecimalError::NotPositive => format!("{what} must be greater than zero"),
            DecimalError::TooManyDecimals(0) => {
                format!("{what} takes no decimals in this currency")
            }
            DecimalError::TooManyDecimals(n) => {
                format!("{what} takes at most {n} decimals")
            }
            DecimalError::TooLarge => format!("{what} is too large"),
        }
    }
}

/// Parses a positive decimal into an integer scaled by 10^`decimals`,
/// refusing more fractional digits than `decimals` (never rounding).
/// Trailing zeros past the limit are refused too: `"1.500"` is not an
/// amount in a two-decimal currency, it is a typo to ask about.
pub fn parse_scaled(
    input: &DecimalInput,
    decimals: u32,
    max_integer_part: i64,
) -> Result<i64, DecimalError> {
    let s = input.spelling();
    if let Some(rest) = s.strip_prefix('-') {
        return if is_decimal(rest) {
            Err(DecimalError::NotPositive)
        } else {
            Err(DecimalError::NotADecimal)
        };
    }
    if !is_decimal(&s) {
        return Err(DecimalError::NotADecimal);
    }
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    if frac.len() > decimals as usize {
        return Err(DecimalError::TooManyDecimals(decimals));
    }
    let int = int.trim_start_matches('0');
    if int.len() > 18 {
        return Err(DecimalError::TooLarge);
    }
    let int: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| DecimalError::TooLarge)?
    };
    if int > max_integer_part {
        return Err(DecimalError::TooLarge);
    }
    let scale = 10_i64.pow(decimals);
    let frac_value: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<i64>().map_err(|_| DecimalError::NotADecimal)?
            * 10_i64.pow(decimals - frac.len() as u32)
    };
    let value = int
        .checked_mul(scale)
        .and_then(|v| v.checked_add(frac_value))
        .ok_or(DecimalError::TooLarge)?;
    if value == 0 {
        return Err(DecimalError::NotPositive);
    }
    Ok(value)
}

fn is_decimal(s: &str) -> bool {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// An amount of `currency` in its minor unit.
pub fn parse_amount(input: &DecimalInput, currency: &Currency) -> Result<i64, DecimalError> {
    parse_scaled(input, currency.exponent, MAX_MAJOR_UNITS)
}

/// An exchange rate in billionths.
pub fn parse_rate(input: &DecimalInput) -> Result<i64, DecimalError> {
    parse_scaled(input, RATE_DECIMALS, 1_000_000_000)
}

/// `-150050, 2` → `"-1500.50"`; `1200, 0` → `"1200"`. Takes sums too (i128).
pub fn format_scaled(value: impl Into<i128>, decimals: u32) -> String {
    let value: i128 = value.into();
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    if decimals == 0 {
        return format!("{sign}{abs}");
    }
    let scale = 10_u128.pow(decimals);
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = decimals as usize
    )
}

/// A rate in billionths, without trailing zeros: `3_750_000_000` → `"3.75"`.
pub fn format_rate(rate_e9: i64) -> String {
    let s = format_scaled(rate_e9, RATE_DECIMALS);
    let s = s.trim_end_matches('0');
    s.strip_suffix('.').unwrap_or(s).to_owned()
}

/// Converts `minor` units of a currency with `exponent` digits into cents of
/// the target currency at `rate_e9` target units per unit, rounding half
/// away from zero once (so a reversal converts to exactly the opposite).
pub fn convert_to_cents(minor: i64, exponent: u32, rate_e9: i64) -> i64 {
    // cents = minor / 10^exp * rate_e9 / 10^9 * 100
    let numerator = i128::from(minor) * i128::from(rate_e9) * 100;
    let denominator = 10_i128.pow(exponent) * i128::from(RATE_SCALE);
    let q = numerator / denominator;
    let r = numerator % denominator;
    let rounded = if 2 * r.abs() >= denominator {
        q + numerator.signum()
    } else {
        q
    };
    i64::try_from(rounded).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> DecimalInput {
        DecimalInput::Text(s.into())
    }

    #[test]
    fn currencies_carry_their_minor_units() {
        assert_eq!(currency("pen").map(|c| c.exponent), Some(2));
        assert_eq!(currency("JPY").map(|c| c.exponent), Some(0));
        assert_eq!(currency("KWD").map(|c| c.exponent), Some(3));
        assert!(currency("XAU").is_none(), "metals are not money here");
        assert!(currency("ABC").is_none());
        assert!(all_currencies().len() > 150);
    }

    #[test]
    fn amounts_parse_exactly_or_not_at_all() {
        let usd = currency("USD").expect("USD");
        let jpy = currency("JPY").expect("JPY");
        assert_eq!(parse_amount(&text("150.5"), usd), Ok(15050));
        assert_eq!(parse_amount(&text("0.01"), usd), Ok(1));
        assert_eq!(parse_amount(&text("1200"), jpy), Ok(1200));
        assert_eq!(
            parse_amount(&text("10.123"), usd),
            Err(DecimalError::TooManyDecimals(2))
        );
        assert_eq!(
            parse_amount(&text("10.5"), jpy),
            Err(DecimalError::TooManyDecimals(0))
        );
        assert_eq!(
            parse_amount(&text("-5"), usd),
            Err(DecimalError::NotPositive)
        );
        assert_eq!(
            parse_amount(&text("0.00"), usd),
            Err(DecimalError::NotPositive)
        );
        for bad in ["", "1e3", "1.", ".5", "1,50", "NaN", "--1", "+1", "1 000"] {
            assert_eq!(
                parse_amount(&text(bad), usd),
                Err(DecimalError::NotADecimal),
                "{bad}"
            );
        }
        assert_eq!(
            parse_amount(&text("99999999999999999999999"), usd),
            Err(DecimalError::TooLarge)
        );
        let n: serde_json::Number = serde_json::from_str("150.25").expect("number");
        assert_eq!(parse_amount(&DecimalInput::Number(n), usd), Ok(15025));
        let n: serde_json::Number = serde_json::from_str("0.1").expect("number");
        assert_eq!(parse_amount(&DecimalInput::Number(n), usd), Ok(10));
    }

    #[test]
    fn formatting_round_trips() {
        assert_eq!(format_scaled(-150050, 2), "-1500.50");
        assert_eq!(format_scaled(5, 3), "0.005");
        assert_eq!(format_scaled(1200, 0), "1200");
        assert_eq!(format_rate(3_750_000_000), "3.75");
        assert_eq!(format_rate(1_000_000_000), "1");
        assert_eq!(format_rate(1), "0.000000001");
        assert_eq!(parse_rate(&text("3.7512")), Ok(3_751_200_000));
    }

    #[test]
    fn conversion_rounds_half_away_from_zero_and_symmetrically() {
        // 100.00 EUR at 4.05 PEN = 405.00 PEN
        assert_eq!(convert_to_cents(10000, 2, 4_050_000_000), 40500);
        // 1 JPY at 0.0251 PEN = 2.51 cents → 3 cents
        assert_eq!(convert_to_cents(1, 0, 25_100_000), 3);
        // 0.005 KWD at 1 = 0.5 cent → 1 cent
        assert_eq!(convert_to_cents(5, 3, RATE_SCALE), 1);
        assert_eq!(convert_to_cents(-5, 3, RATE_SCALE), -1);
        assert_eq!(convert_to_cents(12345, 2, 3_333_333_333), 41150);
        for minor in [1, 7, 123, 99_999, 1_000_001] {
            assert_eq!(
                convert_to_cents(-minor, 2, 3_761_000_000),
                -convert_to_cents(minor, 2, 3_761_000_000)
            );
        }
    }
}
