//! The coded fields of an attention that administrators teach new spellings
//! to (besides attention types, which have their catalogue), and the channel
//! as stored, which may be `not_recorded`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::catalogue::IntakeChannel;

vocabulary!(
    /// A coded field whose spellings resolve through codes, names and
    /// administrators' aliases.
    Vocabulary {
        Channel = "channel",
        Consulate = "consulate",
        Country = "country",
        Sex = "sex",
        DocumentType = "document_type",
    }
);

impl Vocabulary {
    /// The column of a legacy extract that carries it.
    pub fn legacy_field(self) -> &'static str {
        match self {
            Vocabulary::Channel => "canal",
            Vocabulary::Consulate => "consulado",
            Vocabulary::Country => "pais",
            Vocabulary::Sex => "sexo",
            Vocabulary::DocumentType => "tipo_documento",
        }
    }

    pub fn from_legacy_field(field: &str) -> Option<Vocabulary> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.legacy_field() == field)
    }
}

vocabulary!(
    /// The channel a case or attention carries: one of the five routes, or
    /// `not_recorded` when the record named none, or named it in a spelling
    /// nothing resolved (legacy rows; the spelling is kept).
    RecordedChannel {
        Phone = "phone",
        EAppointment = "e_appointment",
        ConsulateWindow = "consulate_window",
        InstitutionalEmail = "institutional_email",
        InPersonMinistry = "in_person_ministry",
        NotRecorded = "not_recorded",
    }
);

impl RecordedChannel {
    /// The route, when one was recorded.
    pub fn intake(self) -> Option<IntakeChannel> {
        IntakeChannel::ALL
            .into_iter()
            .find(|c| c.as_str() == self.as_str())
    }
}

impl From<IntakeChannel> for RecordedChannel {
    fn from(c: IntakeChannel) -> Self {
        match c {
            IntakeChannel::Phone => RecordedChannel::Phone,
            IntakeChannel::EAppointment => RecordedChannel::EAppointment,
            IntakeChannel::ConsulateWindow => RecordedChannel::ConsulateWindow,
            IntakeChannel::InstitutionalEmail => RecordedChannel::InstitutionalEmail,
            IntakeChannel::InPersonMinistry => RecordedChannel::InPersonMinistry,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_a_recorded_channel_and_back() {
        for c in IntakeChannel::ALL {
            assert_eq!(RecordedChannel::from(c).intake(), Some(c));
            assert_eq!(RecordedChannel::from(c).as_str(), c.as_str());
        }
        assert_eq!(RecordedChannel::NotRecorded.intake(), None);
        assert_eq!(
            Vocabulary::from_legacy_field("canal"),
            Some(Vocabulary::Channel)
        );
    }
}
