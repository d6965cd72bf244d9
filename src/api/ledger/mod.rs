//! The financial assistance ledger: exchange rates, payment requests with
//! four-eyes approval, payment, reversal, and exact totals. The rules live
//! in `services::ledger`; these handlers check the request, call it and
//! shape the answer.

mod payments;
mod rates;
mod totals;

pub use payments::{
    decide_payment, get_payment, list_payments, mark_payment_paid, request_payment,
    reverse_payment, update_payment, PaymentResponse,
};
pub use rates::{list_exchange_rates, put_exchange_rate};
pub use totals::payment_totals;
