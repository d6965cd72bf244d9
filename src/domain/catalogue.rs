//! Vocabulary of the attention-type catalogue and of intake.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The area of work an attention type belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttentionCategory {
    Legal,
    Humanitarian,
    Detention,
    EconomicAid,
    RepatriationReturn,
    GenderViolence,
    TraffickingSmuggling,
    MinorsFamily,
    HealthDeath,
    SearchLocation,
    MigrationLabour,
}

impl AttentionCategory {
    pub const ALL: [AttentionCategory; 11] = [
        AttentionCategory::Legal,
        AttentionCategory::Humanitarian,
        AttentionCategory::Detention,
        AttentionCategory::EconomicAid,
        AttentionCategory::RepatriationReturn,
        AttentionCategory::GenderViolence,
        AttentionCategory::TraffickingSmuggling,
        AttentionCategory::MinorsFamily,
        AttentionCategory::HealthDeath,
        AttentionCategory::SearchLocation,
        AttentionCategory::MigrationLabour,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttentionCategory::Legal => "legal",
            AttentionCategory::Humanitarian => "humanitarian",
            AttentionCategory::Detention => "detention",
            AttentionCategory::EconomicAid => "economic_aid",
            AttentionCategory::RepatriationReturn => "repatriation_return",
            AttentionCategory::GenderViolence => "gender_violence",
            AttentionCategory::TraffickingSmuggling => "trafficking_smuggling",
            AttentionCategory::MinorsFamily => "minors_family",
            AttentionCategory::HealthDeath => "health_death",
            AttentionCategory::SearchLocation => "search_location",
            AttentionCategory::MigrationLabour => "migration_labour",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == value)
    }
}

stored!(AttentionCategory, "attention category");

/// Legal assistance (advice and help with a legal problem) or humanitarian
/// assistance (going to the person's aid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttentionKind {
    Legal,
    Humanitarian,
}

impl AttentionKind {
    pub const ALL: [AttentionKind; 2] = [AttentionKind::Legal, AttentionKind::Humanitarian];

    pub fn as_str(self) -> &'static str {
        match self {
            AttentionKind::Legal => "legal",
            AttentionKind::Humanitarian => "humanitarian",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "legal" => Some(AttentionKind::Legal),
            "humanitarian" => Some(AttentionKind::Humanitarian),
            _ => None,
        }
    }
}

stored!(AttentionKind, "attention kind");

/// The five routes through which requests reach a consulate (the report's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntakeChannel {
    /// Teléfono.
    Phone,
    /// Cita electrónica.
    EAppointment,
    /// Ventanilla del consulado.
    ConsulateWindow,
    /// Correo institucional.
    InstitutionalEmail,
    /// Presencial en la Cancillería (Lima).
    InPersonMinistry,
}

impl IntakeChannel {
    pub const ALL: [IntakeChannel; 5] = [
        IntakeChannel::Phone,
        IntakeChannel::EAppointment,
        IntakeChannel::ConsulateWindow,
        IntakeChannel::InstitutionalEmail,
        IntakeChannel::InPersonMinistry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IntakeChannel::Phone => "phone",
            IntakeChannel::EAppointment => "e_appointment",
            IntakeChannel::ConsulateWindow => "consulate_window",
            IntakeChannel::InstitutionalEmail => "institutional_email",
            IntakeChannel::InPersonMinistry => "in_person_ministry",
        }
    }

    pub fn name_es(self) -> &'static str {
        match self {
            IntakeChannel::Phone => "Teléfono",
            IntakeChannel::EAppointment => "Cita electrónica",
            IntakeChannel::ConsulateWindow => "Ventanilla del consulado",
            IntakeChannel::InstitutionalEmail => "Correo institucional",
            IntakeChannel::InPersonMinistry => "Presencial en la Cancillería",
        }
    }

    pub fn name_en(self) -> &'static str {
        match self {
            IntakeChannel::Phone => "Telephone",
            IntakeChannel::EAppointment => "Electronic appointment",
            IntakeChannel::ConsulateWindow => "Consulate window",
            IntakeChannel::InstitutionalEmail => "Institutional e-mail",
            IntakeChannel::InPersonMinistry => "In person at the Ministry in Lima",
        }
    }

    /// By code or by Spanish or English name, ignoring accents and case.
    pub fn parse(value: &str) -> Option<Self> {
        // the folded code and names, computed once: a legacy import parses
        // a channel per row
        static KEYS: std::sync::OnceLock<Vec<(String, IntakeChannel)>> = std::sync::OnceLock::new();
        let keys = KEYS.get_or_init(|| {
            Self::ALL
                .into_iter()
                .flat_map(|c| {
                    [c.as_str(), c.name_es(), c.name_en()]
                        .map(|label| (super::text::fold_key(label), c))
                })
                .collect()
        });
        let key = super::text::fold_key(value);
        keys.iter().find(|(k, _)| *k == key).map(|&(_, c)| c)
    }
}

stored!(IntakeChannel, "intake channel");

#[cfg(test)]
mod tests {
    use super::IntakeChannel;

    #[test]
    fn channels_parse_by_code_and_by_either_name() {
        for c in IntakeChannel::ALL {
            assert_eq!(IntakeChannel::parse(c.as_str()), Some(c));
            assert_eq!(IntakeChannel::parse(c.name_es()), Some(c));
            assert_eq!(IntakeChannel::parse(&c.name_en().to_uppercase()), Some(c));
        }
        assert_eq!(
            IntakeChannel::parse("  CITA electronica "),
            Some(IntakeChannel::EAppointment)
        );
        assert_eq!(
            IntakeChannel::parse("Presencial en la Cancilleria"),
            Some(IntakeChannel::InPersonMinistry)
        );
        assert_eq!(IntakeChannel::parse("fax"), None);
        assert_eq!(IntakeChannel::parse(""), None);
    }
}
