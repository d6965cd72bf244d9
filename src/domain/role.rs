//! Who a user is to the system.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A user's role. Officers and supervisors belong to one consulate and act
/// only on its records; the others are national.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Consular officer: records and follows cases of their consulate.
    Officer,
    /// Consular supervisor: an officer who also approves and manages their consulate's work.
    Supervisor,
    /// DGC headquarters analyst: reads everything personal, writes nothing
    /// but what is explicitly granted (dedup decisions).
    HqAnalyst,
    /// Planning office: aggregates and exports, never personal data.
    Planner,
    /// Administrator: users, reference data and the catalogue; not a case worker.
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Officer,
        Role::Supervisor,
        Role::HqAnalyst,
        Role::Planner,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Officer => "officer",
            Role::Supervisor => "supervisor",
            Role::HqAnalyst => "hq_analyst",
            Role::Planner => "planner",
            Role::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == value)
    }

    /// Officers and supervisors belong to a consulate; the others must not.
    pub fn is_consulate_scoped(self) -> bool {
        matches!(self, Role::Officer | Role::Supervisor)
    }

    /// Roles that may not work without a second factor.
    pub fn requires_second_factor(self) -> bool {
        matches!(self, Role::Admin | Role::HqAnalyst)
    }
}

stored!(Role, "role");

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
