//! Roles of API keys and what each may do.

use super::text_enum;

text_enum! {
    /// What an API key may do.
    Role {
        /// Pushes contact events, and reads the touchpoint catalogue.
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
    /// Reading the touchpoint catalogue: the codes a feed sends. Every role
    /// may, so that whoever holds a feed's key can find them.
    Catalogue,
    /// Reading resources and analyses.
    Read,
    /// Changing configuration: touchpoints, standards, keys.
    Manage,
}

impl Role {
    /// Whether a key of this role may call a method that needs `access`.
    pub fn allows(self, access: Access) -> bool {
        match self {
            Role::Ingest => matches!(access, Access::Ingest | Access::Catalogue),
            Role::Analyst => matches!(access, Access::Read | Access::Catalogue),
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
        assert!(Role::Ingest.allows(Access::Catalogue));
        assert!(Role::Analyst.allows(Access::Catalogue));
        assert!(!Role::Ingest.allows(Access::Read));
        assert!(!Role::Ingest.allows(Access::Manage));
        assert!(Role::Analyst.allows(Access::Read));
        assert!(!Role::Analyst.allows(Access::Manage));
        assert!(!Role::Analyst.allows(Access::Ingest));
        for access in [
            Access::Ingest,
            Access::Catalogue,
            Access::Read,
            Access::Manage,
        ] {
            assert!(Role::Admin.allows(access));
        }
    }
}
