//! Reference vocabulary: the kinds of consular office.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What sort of consular office this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsulateKind {
    /// Consulado General.
    ConsulateGeneral,
    /// Consulado.
    Consulate,
    /// Sección consular de una embajada.
    ConsularSection,
}

impl ConsulateKind {
    pub const ALL: [ConsulateKind; 3] = [
        ConsulateKind::ConsulateGeneral,
        ConsulateKind::Consulate,
        ConsulateKind::ConsularSection,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConsulateKind::ConsulateGeneral => "consulate_general",
            ConsulateKind::Consulate => "consulate",
            ConsulateKind::ConsularSection => "consular_section",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }

    /// The office's official name in Spanish, e.g. "Consulado General del
    /// Perú en Milán".
    pub fn name_es(self, city_es: &str) -> String {
        match self {
            ConsulateKind::ConsulateGeneral => format!("Consulado General del Perú en {city_es}"),
            ConsulateKind::Consulate => format!("Consulado del Perú en {city_es}"),
            ConsulateKind::ConsularSection => {
                format!("Sección Consular de la Embajada del Perú en {city_es}")
            }
        }
    }

    /// The office's name in English, e.g. "Consulate General of Peru in Milan".
    pub fn name_en(self, city_en: &str) -> String {
        match self {
            ConsulateKind::ConsulateGeneral => format!("Consulate General of Peru in {city_en}"),
            ConsulateKind::Consulate => format!("Consulate of Peru in {city_en}"),
            ConsulateKind::ConsularSection => {
                format!("Consular Section of the Embassy of Peru in {city_en}")
            }
        }
    }
}

stored!(ConsulateKind, "consulate kind");
