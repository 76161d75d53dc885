//! Plain types and rules: what a valid touchpoint, key or page is. Nothing here
//! knows about tonic or SQL.

pub mod analysis;
pub mod api_key;
pub mod code;
pub mod content_digest;
pub mod cycle_fold;
pub mod cycle_map;
pub mod deviation;
pub mod diagram;
pub mod encounter;
pub mod escalation;
pub mod evaluation;
pub mod event_log;
pub mod feed;
pub mod fhir;
pub mod histogram;
pub mod hl7;
pub mod journey;
pub mod local_time;
pub mod manual;
pub mod organisation;
pub mod paging;
pub mod pseudonym;
pub mod recovery;
pub mod refusal;
pub mod role;
pub mod standard;
pub mod text;
pub mod touchpoint;
pub mod violation;
pub mod webhook;

/// A closed set of values stored as text.
pub trait TextEnum: Sized {
    /// The type's name, for messages about values that do not parse.
    const NAME: &'static str;

    fn parse_text(text: &str) -> Option<Self>;
}

/// Declares a closed set of values stored as lowercase text, with the
/// conversions to and from that text.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text this value is stored as.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value stored as `text`, if there is one.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl $crate::domain::TextEnum for $name {
            const NAME: &'static str = stringify!($name);

            fn parse_text(text: &str) -> Option<Self> {
                Self::parse(text)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;

#[cfg(test)]
mod tests {
    use super::touchpoint::{Channel, Occurrence, Stage};

    #[test]
    fn every_text_enum_value_round_trips_through_its_text() {
        for stage in Stage::ALL {
            assert_eq!(Stage::parse(stage.as_str()), Some(*stage));
        }
        for channel in Channel::ALL {
            assert_eq!(Channel::parse(channel.as_str()), Some(*channel));
        }
        for occurrence in Occurrence::ALL {
            assert_eq!(Occurrence::parse(occurrence.as_str()), Some(*occurrence));
        }
        assert_eq!(Stage::parse("Service"), None);
    }
}
