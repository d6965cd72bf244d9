//! The vocabulary of person access (see `services::access`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How much of a person a caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// Every field.
    Full,
    /// Identifying fields withheld: the person is protected by a consulate
    /// whose protection the caller does not share (or, for headquarters,
    /// no justification was given).
    Masked,
    /// Known at another consulate: only the id; ask for access with
    /// `POST /api/v1/persons/{id}/access-requests`.
    NotHeld,
}

vocabulary!(
    /// What an access grant opens: `holder` lets a consulate work with the
    /// person; `protected` also shows a protected person's identity and the
    /// protected cases' text.
    AccessLevel {
        Holder = "holder",
        Protected = "protected",
    }
);

vocabulary!(
    /// A request's life: `pending → granted | refused`, `granted → revoked`.
    AccessStatus {
        Pending = "pending",
        Granted = "granted",
        Refused = "refused",
        Revoked = "revoked",
    }
);
