//! Passwords, session tokens and roles. Passwords are stored only as argon2id hashes; session
//! tokens and CSRF tokens are 256-bit random values, and the store keeps only a SHA-256 of the
//! session token, so a copy of the database does not let anyone in.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What an account may do. Each role can do everything the one before it can.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Role {
    /// Reads governance records.
    Viewer,
    /// Creates, edits and archives programme records.
    Editor,
    /// Manages accounts and settings.
    Admin,
}

impl Role {
    /// The role's stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// The role with this stored name.
    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 10;

/// Why a password was refused.
pub fn password_problem(password: &str) -> Option<String> {
    if password.chars().count() < MIN_PASSWORD {
        Some(format!("the password must be at least {MIN_PASSWORD} characters"))
    } else if password.len() > 1024 {
        Some("the password must be at most 1,024 bytes".into())
    } else {
        None
    }
}

/// An argon2id hash of `password` in PHC string form.
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC `hash`. A malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A new random token, hex encoded.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

/// A password to hand to a new account holder: 20 characters from 56 without look-alikes
/// (no 0/O, 1/l/I), about 116 bits, drawn uniformly.
pub fn generate_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

/// What the store keeps of a session token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Failed sign-ins allowed per account within [`LOCKOUT`] before further attempts are refused.
pub const MAX_FAILURES: usize = 5;
/// The window and the lock-out period.
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);

/// Counts failed sign-ins per account name, in memory: after [`MAX_FAILURES`] failures within
/// [`LOCKOUT`], the account cannot sign in until the oldest failure is that old.
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    /// How long `username` must wait before trying again, if it must.
    pub fn wait(&self, username: &str, now: Instant) -> Option<Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let list = map.entry(username.to_lowercase()).or_default();
        list.retain(|t| now.duration_since(*t) < LOCKOUT);
        (list.len() >= MAX_FAILURES).then(|| LOCKOUT - now.duration_since(list[0]))
    }

    /// Records a failed attempt.
    pub fn failed(&self, username: &str, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            // Bounded: forget everything rather than grow without limit under a spray of names.
            map.clear();
        }
        map.entry(username.to_lowercase()).or_default().push(now);
    }

    /// Forgets an account's failures after it signs in.
    pub fn succeeded(&self, username: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(&username.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse battery!", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(password_problem("short").is_some());
        assert!(password_problem("long enough pass").is_none());
    }

    #[test]
    fn generated_passwords_are_long_unambiguous_and_acceptable() {
        let (a, b) = (generate_password(), generate_password());
        assert_eq!(a.chars().count(), 20);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() && !"0O1lI".contains(c)), "{a}");
        assert!(password_problem(&a).is_none());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_ne!(token_hash(&a), a);
        assert!(same_secret(&a, &a.clone()) && !same_secret(&a, &b) && !same_secret("ab", "abc"));
    }

    #[test]
    fn five_failures_lock_an_account_for_fifteen_minutes() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(l.wait("Ann", t0), None, "attempt {i}");
            l.failed("ann", t0);
        }
        assert!(l.wait("ANN", t0 + Duration::from_secs(60)).is_some());
        assert_eq!(l.wait("bob", t0), None);
        assert_eq!(l.wait("ann", t0 + LOCKOUT), None);
        l.failed("bob", t0);
        l.succeeded("bob");
        assert!(l.failures.lock().unwrap().get("bob").is_none());
    }

    #[test]
    fn roles_order_and_parse() {
        assert!(Role::Admin > Role::Editor && Role::Editor > Role::Viewer);
        assert_eq!(Role::parse(" Editor "), Some(Role::Editor));
        assert_eq!(Role::parse("root"), None);
    }
}
