//! Closed vocabularies kept in the database as text (statuses, kinds,
//! channels, roles…) and the one way to read them back: a value the
//! vocabulary does not know is an error ([`UnknownStored`]), never a default.
//! The columns are CHECK-constrained, so such a value means a damaged or
//! hand-edited database, and the request that met it must fail rather than,
//! say, move an unknown case status as if it were `open`.

use serde::de::DeserializeOwned;

/// A stored value outside its vocabulary, or a stored JSON column that does
/// not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the database holds `{value}`, which is no {what}")]
pub struct UnknownStored {
    pub what: &'static str,
    pub value: String,
}

/// A vocabulary stored as its code.
pub trait Stored: Copy + 'static {
    /// What a value is, for the error: "case status".
    const WHAT: &'static str;
    /// Every value, in the vocabulary's order.
    const VALUES: &'static [Self];

    /// The stored spelling.
    fn code(self) -> &'static str;

    /// The value a column holds.
    fn stored(value: &str) -> Result<Self, UnknownStored> {
        Self::VALUES
            .iter()
            .copied()
            .find(|v| v.code() == value)
            .ok_or_else(|| UnknownStored {
                what: Self::WHAT,
                value: value.to_owned(),
            })
    }
}

/// A JSON column (flags, languages, payloads…) read back; what does not
/// parse is an error like an unknown code.
pub fn stored_json<T: DeserializeOwned>(
    what: &'static str,
    text: &str,
) -> Result<T, UnknownStored> {
    serde_json::from_str(text).map_err(|_| UnknownStored {
        what,
        value: text.chars().take(80).collect(),
    })
}

/// `impl Stored` for an enum with `ALL` and `as_str`.
macro_rules! stored {
    ($name:ident, $what:literal) => {
        impl $crate::domain::stored::Stored for $name {
            const WHAT: &'static str = $what;
            const VALUES: &'static [Self] = &$name::ALL;
            fn code(self) -> &'static str {
                self.as_str()
            }
        }
    };
}

/// A closed vocabulary stored as its snake_case spelling: the enum, its
/// codes, `parse` for input, `choices` for error messages and [`Stored`]
/// for reading it back.
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(value: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == value)
            }

            /// `a, b or c`, for error messages.
            pub fn choices() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl $crate::domain::stored::Stored for $name {
            const WHAT: &'static str = stringify!($name);
            const VALUES: &'static [Self] = $name::ALL;
            fn code(self) -> &'static str {
                self.as_str()
            }
        }
    };
}

/// A closed set of codes the system writes but no client sends (audit
/// actions, timeline event kinds): the enum, its codes and [`Stored`],
/// without the serde and schema of [`vocabulary!`].
macro_rules! codes {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::domain::stored::Stored for $name {
            const WHAT: &'static str = stringify!($name);
            const VALUES: &'static [Self] = $name::ALL;
            fn code(self) -> &'static str {
                self.as_str()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::case::CaseStatus;

    #[test]
    fn an_unknown_stored_value_is_an_error_not_a_default() {
        assert_eq!(CaseStatus::stored("on_hold"), Ok(CaseStatus::OnHold));
        let err = CaseStatus::stored("archived").unwrap_err();
        assert_eq!(err.what, "case status");
        assert_eq!(err.value, "archived");
        assert!(stored_json::<Vec<String>>("case flags", "[\"minor\"").is_err());
        assert_eq!(
            stored_json::<Vec<String>>("case flags", "[\"minor\"]"),
            Ok(vec!["minor".to_owned()])
        );
    }
}
