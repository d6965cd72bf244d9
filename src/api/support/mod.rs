//! The support-network directory (organisations a consulate refers people
//! to) and referrals from cases to them. The rules live in
//! `services::support`; these handlers check the request, call it and shape
//! the answer.

mod organisations;
mod referrals;

pub use organisations::{
    create_organisation, get_organisation, list_organisations, update_organisation,
    verify_organisation, OrganisationResponse,
};
pub use referrals::{
    create_referral, list_referrals, referral_responses, update_referral_status, ReferralResponse,
};

use crate::auth::AuthUser;
use crate::db::Id;

pub use crate::services::input::past_date;

/// The consulate a list is limited to: staff always their own, national
/// roles the one they ask for (or all).
pub fn scoped_consulate(user: &AuthUser, asked: Option<Id>) -> Option<Id> {
    if user.role.is_consulate_scoped() {
        Some(user.consulate_id.unwrap_or_default())
    } else {
        asked
    }
}
