//! Passwords, session tokens and roles. Passwords are stored only as argon2id hashes; session
//! tokens and CSRF tokens are 256-bit random values, and the store keeps only a SHA-256 of the
//! session token, so a copy of the database does not let anyone in.

use argon2::{Argon2, PasswordHash};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::time::Duration;

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

/// Most argon2 memory a stored hash may ask for (KiB): ours ask for 19 MiB; a hash asking for
/// more than this is treated as malformed rather than allowed to allocate it.
const MAX_ARGON2_KIB: u32 = 64 * 1024;

thread_local! {
    /// argon2's working memory, kept by each thread that hashes and reused for the next hash.
    /// Allocating 19 MiB (64-byte aligned) for every check left glibc's heap holding each freed
    /// block: 8 sign-ins in a row grew the server by 137 MB, 64 at once by 370 MB.
    static ARGON2_MEMORY: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs argon2 `a` over this thread's reusable memory.
fn argon2_into(a: &Argon2, password: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), argon2::Error> {
    ARGON2_MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        let blocks = a.params().block_count();
        if memory.len() < blocks {
            memory.resize(blocks, argon2::Block::new());
        }
        a.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
    })
}

/// An argon2id hash of `password` in PHC string form (argon2's default cost: 19 MiB, 2 passes).
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::phc::{Output, ParamsString, Salt};
    let a = Argon2::default();
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
    argon2_into(&a, password.as_bytes(), &salt, &mut out).map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: argon2::Algorithm::Argon2id.ident(),
        version: Some(argon2::Version::V0x13.into()),
        params: ParamsString::try_from(a.params()).map_err(|e| e.to_string())?,
        salt: Some(Salt::new(&salt).map_err(|e| e.to_string())?),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC `hash`. A malformed hash, or one asking for more than
/// 64 MiB, never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    let check = || -> Option<bool> {
        let phc = PasswordHash::new(hash).ok()?;
        let params = argon2::Params::try_from(&phc).ok()?;
        if params.m_cost() > MAX_ARGON2_KIB {
            return None;
        }
        let algorithm = argon2::Algorithm::try_from(phc.algorithm.as_str()).ok()?;
        let version = phc.version.map(argon2::Version::try_from).transpose().ok()?.unwrap_or_default();
        let (salt, expected) = (phc.salt?, phc.hash?);
        let mut out = vec![0u8; expected.len()];
        argon2_into(&Argon2::new(algorithm, version, params), password.as_bytes(), &salt, &mut out).ok()?;
        Some(same_bytes(&out, expected.as_bytes()))
    };
    check().unwrap_or(false)
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
    same_bytes(a.as_bytes(), b.as_bytes())
}

/// [`same_secret`] for bytes (tokens and password hashes alike).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Failed sign-ins allowed per account within [`LOCKOUT`] before further attempts are refused.
pub const MAX_FAILURES: usize = 5;
/// Failed sign-ins allowed from one client address within [`LOCKOUT`]: enough for a busy office
/// behind one address to mistype, too few to spray passwords across many accounts.
pub const MAX_CLIENT_FAILURES: usize = 30;
/// The window and the lock-out period.
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Why a sign-in attempt is refused before any password is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The account has failed [`MAX_FAILURES`] times within [`LOCKOUT`].
    Account(Duration),
    /// The client address has failed [`MAX_CLIENT_FAILURES`] times within [`LOCKOUT`].
    Client(Duration),
}

/// The failed sign-ins that count now, newest first: the account's since it last signed in, and
/// the client address's, each within [`LOCKOUT`] and at most its limit. They are read from the
/// sign-in log in the database ([`crate::GovernanceStore::recent_failures`]), so every server
/// sharing one database sees the same counts, and a flood of other names cannot push an
/// account's failures out of memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecentFailures {
    /// When the account's counted failures happened.
    pub account: Vec<chrono::DateTime<chrono::Utc>>,
    /// When the address's counted failures happened.
    pub client: Vec<chrono::DateTime<chrono::Utc>>,
}

impl RecentFailures {
    /// Whether an attempt must wait, and how long: until the oldest of the failures that reach
    /// the limit is [`LOCKOUT`] old. The address is looked at first, as it stops a spray across
    /// many accounts.
    pub fn refusal(&self, now: chrono::DateTime<chrono::Utc>) -> Option<Refusal> {
        let wait = |times: &[chrono::DateTime<chrono::Utc>], max: usize| {
            let recent: Vec<_> = times
                .iter()
                .filter(|t| now.signed_duration_since(**t).to_std().map_or(true, |d| d < LOCKOUT))
                .collect();
            let oldest = **recent.get(max.checked_sub(1)?)?;
            let age = now.signed_duration_since(oldest).to_std().unwrap_or_default();
            Some(LOCKOUT.saturating_sub(age).max(Duration::from_secs(1)))
        };
        wait(&self.client, MAX_CLIENT_FAILURES)
            .map(Refusal::Client)
            .or_else(|| wait(&self.account, MAX_FAILURES).map(Refusal::Account))
    }
}

/// The key a client address is counted under: the address itself for IPv4, its /64 network for
/// IPv6 (one household or host is usually given a whole /64, so single addresses are free).
pub fn client_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Password hashing and checking on a fixed set of threads, one per core, with a short queue.
/// argon2 needs about 19 MiB per hash: on a fixed pool that memory is allocated by a known number
/// of threads and reused, and a burst of sign-ins waits or is told to come back rather than
/// growing the process by 19 MiB per concurrent attempt.
pub struct PasswordWorkers {
    queue: std::sync::mpsc::SyncSender<Job>,
    threads: usize,
}

type Job = Box<dyn FnOnce() + Send>;

/// The hashing pool is full; the caller should answer "busy, try again shortly".
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the server is busy checking other passwords; try again in a moment")]
pub struct Busy;

/// Jobs that may wait per hashing thread before new ones are turned away.
pub const QUEUE_PER_THREAD: usize = 4;

impl PasswordWorkers {
    /// A pool of `threads` hashing threads (at least one).
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let (queue, jobs) = std::sync::mpsc::sync_channel::<Job>(threads * QUEUE_PER_THREAD);
        let jobs = std::sync::Arc::new(std::sync::Mutex::new(jobs));
        for i in 0..threads {
            let jobs = jobs.clone();
            let spawned = std::thread::Builder::new().name(format!("ipmo-password-{i}")).spawn(move || {
                loop {
                    let job = match jobs.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    };
                    job();
                }
            });
            if spawned.is_err() {
                break;
            }
        }
        Self { queue, threads }
    }

    /// The process's pool, one thread per core.
    pub fn shared() -> &'static PasswordWorkers {
        static SHARED: std::sync::OnceLock<PasswordWorkers> = std::sync::OnceLock::new();
        SHARED.get_or_init(|| PasswordWorkers::new(std::thread::available_parallelism().map_or(2, |n| n.get())))
    }

    /// How many hashes can run at once.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `work` on the pool, or refuses at once when the queue is full.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(work());
        });
        self.queue.try_send(job).map_err(|_| Busy)?;
        rx.await.map_err(|_| Busy)
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
        // Hashes made by the argon2 crate's own API check the same way (accounts made before).
        use argon2::PasswordHasher;
        let theirs = Argon2::default().hash_password(b"correct horse battery").unwrap().to_string();
        assert!(verify_password("correct horse battery", &theirs));
        assert!(!verify_password("correct horse batterz", &theirs));
        // A stored hash cannot make a check allocate without bound.
        let greedy = theirs.replace("m=19456", "m=4000000");
        assert!(!verify_password("correct horse battery", &greedy));
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

    fn minutes_ago(now: chrono::DateTime<chrono::Utc>, minutes: &[i64]) -> Vec<chrono::DateTime<chrono::Utc>> {
        minutes.iter().map(|m| now - chrono::Duration::minutes(*m)).collect()
    }

    #[test]
    fn five_failures_lock_an_account_until_the_oldest_is_fifteen_minutes_old() {
        let now = chrono::Utc::now();
        let four = RecentFailures { account: minutes_ago(now, &[0, 1, 2, 3]), client: vec![] };
        assert_eq!(four.refusal(now), None);
        let five = RecentFailures { account: minutes_ago(now, &[0, 1, 2, 3, 10]), client: vec![] };
        assert_eq!(five.refusal(now), Some(Refusal::Account(Duration::from_secs(5 * 60))));
        // Older failures fall out of the window one by one.
        let aged = RecentFailures { account: minutes_ago(now, &[0, 1, 2, 3, 15, 16]), client: vec![] };
        assert_eq!(aged.refusal(now), None);
    }

    #[test]
    fn one_address_spraying_many_accounts_is_stopped_first() {
        let now = chrono::Utc::now();
        let spray: Vec<i64> = (0..MAX_CLIENT_FAILURES as i64).map(|i| i / 3).collect();
        let both = RecentFailures { account: minutes_ago(now, &[0, 0, 0, 0, 0]), client: minutes_ago(now, &spray) };
        assert!(matches!(both.refusal(now), Some(Refusal::Client(_))));
        let fewer = RecentFailures { account: vec![], client: minutes_ago(now, &spray[1..]) };
        assert_eq!(fewer.refusal(now), None);
    }

    #[test]
    fn ipv6_clients_are_counted_by_network() {
        let a: std::net::IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: std::net::IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_eq!(client_key("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
        assert_eq!(client_key("127.0.0.1".parse().unwrap()), "127.0.0.1");
    }

    #[tokio::test]
    async fn the_password_pool_runs_a_bounded_number_at_once_and_turns_the_rest_away() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let pool = std::sync::Arc::new(PasswordWorkers::new(2));
        let (running, peak) = (std::sync::Arc::new(AtomicUsize::new(0)), std::sync::Arc::new(AtomicUsize::new(0)));
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        let mut done = 0;
        let mut busy = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => done += 1,
                Err(Busy) => busy += 1,
            }
        }
        assert!(peak.load(Ordering::SeqCst) <= 2, "peak {}", peak.load(Ordering::SeqCst));
        assert!((2..=2 + 2 * QUEUE_PER_THREAD).contains(&done), "done {done}");
        assert_eq!(done + busy, 64);
    }

    #[test]
    fn roles_order_and_parse() {
        assert!(Role::Admin > Role::Editor && Role::Editor > Role::Viewer);
        assert_eq!(Role::parse(" Editor "), Some(Role::Editor));
        assert_eq!(Role::parse("root"), None);
    }
}
