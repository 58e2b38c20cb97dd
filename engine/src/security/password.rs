//! Password hashing: argon2id PHC strings, salted from the operating system's generator.
//!
//! Invariant: a plaintext password is never stored, logged or kept after the call that
//! hashes or verifies it; only [`hash`]'s PHC string is.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Longest password accepted (argon2 takes far more; this bounds the work per attempt).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest PHC string accepted from configuration or the API.
pub const MAX_HASH_BYTES: usize = 512;

/// A PHC string for `password` (argon2id, the crate's defaults: 19 MiB, 2 passes).
pub fn hash(password: &str) -> Result<String, String> {
    check_password(password)?;
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `password` matches the PHC string `phc`. A malformed hash matches nothing.
pub fn verify(phc: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES || phc.len() > MAX_HASH_BYTES {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

/// A password must be non-empty and at most [`MAX_PASSWORD_BYTES`].
pub fn check_password(password: &str) -> Result<(), String> {
    if password.is_empty() {
        return Err("the password is empty".into());
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("the password is {} bytes, at most {MAX_PASSWORD_BYTES}", password.len()));
    }
    Ok(())
}

/// A stored hash must be an argon2id PHC string.
pub fn check_hash(phc: &str) -> Result<(), String> {
    if phc.len() > MAX_HASH_BYTES {
        return Err(format!("{} bytes, at most {MAX_HASH_BYTES}", phc.len()));
    }
    let h = PasswordHash::new(phc).map_err(|e| format!("not a PHC string ({e}); expected $argon2id$v=19$..."))?;
    if h.algorithm.as_str() != "argon2id" {
        return Err(format!("algorithm {} is not accepted; use argon2id", h.algorithm));
    }
    if h.hash.is_none() || h.salt.is_none() {
        return Err("the PHC string has no salt or no hash".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_is_salted() {
        let h = hash("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("s3cret"));
        check_hash(&h).unwrap();
        assert!(verify(&h, "s3cret"));
        assert!(!verify(&h, "s3cret "));
        assert_ne!(hash("s3cret").unwrap(), h, "a fresh salt every time");
    }

    #[test]
    fn malformed_hashes_and_passwords_are_refused() {
        assert!(!verify("plaintext", "plaintext"));
        assert!(check_hash("plaintext").unwrap_err().contains("not a PHC string"));
        assert!(check_hash("$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo")
            .unwrap_err()
            .contains("argon2id"));
        assert!(hash("").is_err());
        assert!(hash(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }
}
