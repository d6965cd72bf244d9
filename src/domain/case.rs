//! The case workflow: statuses, allowed transitions, outcomes and flags.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Open,
    InProgress,
    OnHold,
    Closed,
    Reopened,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 5] = [
        CaseStatus::Open,
        CaseStatus::InProgress,
        CaseStatus::OnHold,
        CaseStatus::Closed,
        CaseStatus::Reopened,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::InProgress => "in_progress",
            CaseStatus::OnHold => "on_hold",
            CaseStatus::Closed => "closed",
            CaseStatus::Reopened => "reopened",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// `open → in_progress ⇄ on_hold → closed → reopened → …`
    pub fn allowed_next(self) -> &'static [CaseStatus] {
        use CaseStatus::*;
        match self {
            Open => &[InProgress],
            InProgress => &[OnHold, Closed],
            OnHold => &[InProgress, Closed],
            Closed => &[Reopened],
            Reopened => &[InProgress, OnHold, Closed],
        }
    }

    pub fn is_open(self) -> bool {
        self != CaseStatus::Closed
    }
}

stored!(CaseStatus, "case status");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseOutcome {
    Resolved,
    Referred,
    Withdrawn,
    Unreachable,
    Deceased,
    Other,
}

impl CaseOutcome {
    pub const ALL: [CaseOutcome; 6] = [
        CaseOutcome::Resolved,
        CaseOutcome::Referred,
        CaseOutcome::Withdrawn,
        CaseOutcome::Unreachable,
        CaseOutcome::Deceased,
        CaseOutcome::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseOutcome::Resolved => "resolved",
            CaseOutcome::Referred => "referred",
            CaseOutcome::Withdrawn => "withdrawn",
            CaseOutcome::Unreachable => "unreachable",
            CaseOutcome::Deceased => "deceased",
            CaseOutcome::Other => "other",
        }
    }
}

stored!(CaseOutcome, "case outcome");

/// Vulnerability flags of a case.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    Detained,
    Destitute,
    GenderViolenceVictim,
    TraffickingVictim,
    Minor,
    Disability,
    Hospitalised,
    Deceased,
}

impl Flag {
    /// Flags that make a case protected.
    pub fn protects(self) -> bool {
        matches!(
            self,
            Flag::GenderViolenceVictim | Flag::TraffickingVictim | Flag::Minor
        )
    }
}

/// Who asked for help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequesterKind {
    /// The person concerned.
    #[serde(rename = "self")]
    Myself,
    /// A relative, usually in Peru.
    Relative,
}

impl RequesterKind {
    pub const ALL: [RequesterKind; 2] = [RequesterKind::Myself, RequesterKind::Relative];

    pub fn as_str(self) -> &'static str {
        match self {
            RequesterKind::Myself => "self",
            RequesterKind::Relative => "relative",
        }
    }
}

stored!(RequesterKind, "requester kind");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workflow_allows_what_the_issue_draws() {
        use CaseStatus::*;
        assert!(Open.allowed_next().contains(&InProgress));
        assert!(!Open.allowed_next().contains(&Closed));
        assert!(
            InProgress.allowed_next().contains(&OnHold)
                && OnHold.allowed_next().contains(&InProgress)
        );
        assert_eq!(Closed.allowed_next(), &[Reopened]);
        assert!(Reopened.allowed_next().contains(&InProgress));
    }
}
