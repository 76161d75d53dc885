//! Roles of API keys and what each may do.

use super::text_enum;

text_enum! {
    /// What an API key may do.
    Role {
        /// Pushes contact events only.
        Ingest => "ingest",
        /// Reads everything and runs analyses.
        Analyst => "analyst",
        /// Also manages touchpoints, standards and keys.
        Admin => "admin",
    }
}

/// The kind of access a method needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Pushing contact events.
    Ingest,
    /// Reading resources and analyses.
    Read,
    /// Changing configuration: touchpoints, standards, keys.
    Manage,
}

impl Role {
    /// Whether a key of this role may call a method that needs `access`.
    pub fn allows(self, access: Access) -> bool {
        match self {
            Role::Ingest => access == Access::Ingest,
            Role::Analyst => access == Access::Read,
            Role::Admin => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_keys_only_push_and_analysts_only_read() {
        assert!(Role::Ingest.allows(Access::Ingest));
        assert!(!Role::Ingest.allows(Access::Read));
        assert!(!Role::Ingest.allows(Access::Manage));
        assert!(Role::Analyst.allows(Access::Read));
        assert!(!Role::Analyst.allows(Access::Manage));
        assert!(!Role::Analyst.allows(Access::Ingest));
        for access in [Access::Ingest, Access::Read, Access::Manage] {
            assert!(Role::Admin.allows(access));
        }
    }
}
