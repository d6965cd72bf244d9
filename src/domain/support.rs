//! Vocabularies of the support work around a case: organisations and
//! referrals, the payment ledger, detention follow-up, repatriation.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The first consular contact with a detainee is due within this many
/// hours of the consulate being notified (Vienna Convention practice).
pub const FIRST_CONTACT_HOURS: i64 = 24;

vocabulary!(
    /// What kind of organisation a support-network entry is.
    OrganisationKind {
        LegalAid = "legal_aid",
        Ngo = "ngo",
        Shelter = "shelter",
        Hospital = "hospital",
        LocalAuthority = "local_authority",
        InternationalOrganisation = "international_organisation",
        Other = "other",
    }
);

vocabulary!(
    /// `sent → accepted | declined`, `accepted → completed`.
    ReferralStatus {
        Sent = "sent",
        Accepted = "accepted",
        Declined = "declined",
        Completed = "completed",
    }
);

impl ReferralStatus {
    pub fn allowed_next(self) -> &'static [ReferralStatus] {
        match self {
            ReferralStatus::Sent => &[ReferralStatus::Accepted, ReferralStatus::Declined],
            ReferralStatus::Accepted => &[ReferralStatus::Completed],
            ReferralStatus::Declined | ReferralStatus::Completed => &[],
        }
    }
}

vocabulary!(
    /// What a ledger entry pays for.
    PaymentKind {
        EconomicSubsidy = "economic_subsidy",
        ConsularFeesDestitute = "consular_fees_destitute",
        DetaineeHelp = "detainee_help",
        RepatriationCost = "repatriation_cost",
        Other = "other",
    }
);

vocabulary!(
    /// `requested → approved | rejected`, `approved → paid`; a paid entry is
    /// corrected by a new `reversed` entry with the opposite amount.
    PaymentStatus {
        Requested = "requested",
        Approved = "approved",
        Rejected = "rejected",
        Paid = "paid",
        Reversed = "reversed",
    }
);

vocabulary!(
    /// Where a detainee's proceedings stand; `released` and `deported` end
    /// the follow-up.
    LegalSituation {
        Arrested = "arrested",
        PreTrialDetention = "pre_trial_detention",
        OnTrial = "on_trial",
        Sentenced = "sentenced",
        Appeal = "appeal",
        Released = "released",
        Deported = "deported",
    }
);

impl LegalSituation {
    pub fn ends_detention(self) -> bool {
        matches!(self, LegalSituation::Released | LegalSituation::Deported)
    }
}

vocabulary!(
    LawyerKind {
        None = "none",
        PublicDefender = "public_defender",
        Private = "private",
        ProBono = "pro_bono",
    }
);

vocabulary!(
    VisitKind {
        InPerson = "in_person",
        Phone = "phone",
        Video = "video",
    }
);

vocabulary!(
    /// A person brought home, a returning migrant helped, or a transfer of remains.
    RepatriationKind {
        Repatriation = "repatriation",
        ReturnAssistance = "return_assistance",
        RemainsTransfer = "remains_transfer",
    }
);

impl RepatriationKind {
    /// The steps each kind follows, in order; the last one completes it.
    pub fn steps(self) -> &'static [&'static str] {
        match self {
            RepatriationKind::Repatriation | RepatriationKind::ReturnAssistance => {
                &["travel_document", "ticket", "escort", "arrival"]
            }
            RepatriationKind::RemainsTransfer => &[
                "death_certificate",
                "local_permits",
                "embalming",
                "transport",
                "reception_in_peru",
            ],
        }
    }
}

vocabulary!(
    RepatriationStatus {
        Planned = "planned",
        InProgress = "in_progress",
        Completed = "completed",
        Cancelled = "cancelled",
    }
);

impl RepatriationStatus {
    /// `planned → in_progress | cancelled`, `in_progress → completed |
    /// cancelled`; completed and cancelled are final.
    pub fn allowed_next(self) -> &'static [RepatriationStatus] {
        match self {
            RepatriationStatus::Planned => &[
                RepatriationStatus::InProgress,
                RepatriationStatus::Cancelled,
            ],
            RepatriationStatus::InProgress => {
                &[RepatriationStatus::Completed, RepatriationStatus::Cancelled]
            }
            RepatriationStatus::Completed | RepatriationStatus::Cancelled => &[],
        }
    }
}

vocabulary!(
    StepStatus {
        Pending = "pending",
        Done = "done",
        NotNeeded = "not_needed",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabularies_round_trip_through_their_spelling() {
        for k in PaymentKind::ALL {
            assert_eq!(PaymentKind::parse(k.as_str()), Some(*k));
            let json = serde_json::to_value(k).expect("json");
            assert_eq!(json, serde_json::Value::String(k.as_str().into()));
        }
        assert_eq!(
            LegalSituation::parse("sentenced"),
            Some(LegalSituation::Sentenced)
        );
        assert!(ReferralStatus::Sent
            .allowed_next()
            .contains(&ReferralStatus::Accepted));
        assert!(ReferralStatus::Completed.allowed_next().is_empty());
    }
}
