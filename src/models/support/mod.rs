//! Support work around a case: the organisation directory and referrals,
//! detention records with visits and hearings, repatriations with their
//! steps, and the payment ledger with its exchange rates.

mod detention;
mod directory;
mod ledger;
mod repatriation;

pub use detention::*;
pub use directory::*;
pub use ledger::*;
pub use repatriation::*;

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::{
    detention_hearings, detention_visits, detentions, exchange_rates, organisation_consulates,
    organisations, payments, referrals, repatriation_steps, repatriations, tasks,
};
use crate::db::{DbConn, Id, MultiBackend, Ts};
use crate::models::reference::Window;
