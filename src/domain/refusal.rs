//! Refusals: a well-formed request that the state of a resource forbids.

/// Why a change is refused, with an UPPER_SNAKE reason for machines and a
/// sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}
