//! Customer references become pseudonyms: a keyed hash under a secret of
//! the organisation, so the same reference always finds the same customer
//! while the database never holds the reference itself, and a hash stolen
//! without the key cannot be matched against guessed references.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The length of an organisation's customer key, in bytes.
pub const KEY_LEN: usize = 32;

/// The pseudonym of `customer_ref` under `key`: HMAC-SHA-256.
pub fn pseudonym(key: &[u8], customer_ref: &str) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable_key(),
    };
    mac.update(customer_ref.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[cold]
fn unreachable_key() -> ! {
    unreachable!("HMAC accepts keys of every length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_reference_and_key_give_the_same_pseudonym() {
        let key = [7u8; KEY_LEN];
        assert_eq!(pseudonym(&key, "patient-1"), pseudonym(&key, "patient-1"));
        assert_ne!(pseudonym(&key, "patient-1"), pseudonym(&key, "patient-2"));
        assert_ne!(
            pseudonym(&key, "patient-1"),
            pseudonym(&[8u8; KEY_LEN], "patient-1")
        );
        assert_eq!(pseudonym(&key, "patient-1").len(), 32);
    }

    #[test]
    fn matches_the_rfc_4231_test_vector() {
        // RFC 4231, test case 2.
        let mac = pseudonym(b"Jefe", "what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
