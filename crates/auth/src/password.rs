//! Passwords: argon2id (the crate's defaults: 19 MiB, 2 passes), checked against a policy.
//! Hashing is CPU-bound: call these off the async executor, on a few long-lived threads.
//!
//! Each thread computes in one block buffer of its own, allocated at its first check and
//! reused for every later one. Letting argon2 allocate its 19 MiB per check left that memory
//! resident in whichever malloc arena the thread happened to use, and threads change arenas
//! under contention: a flood of failed sign-ins grew the server to 400 MB on two threads.

use std::cell::RefCell;
use std::sync::LazyLock;

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};

pub const MIN_CHARS: usize = 10;
pub const MAX_BYTES: usize = 1024;

/// The most memory a stored hash may ask for (64 MiB); a hash asking more does not verify.
const MAX_BLOCKS: usize = 64 * 1024;
const SALT_BYTES: usize = 16;

/// At least 10 characters and at most 1,024 bytes.
pub fn check_policy(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_CHARS {
        return Err(format!("must be at least {MIN_CHARS} characters"));
    }
    if password.len() > MAX_BYTES {
        return Err(format!("must be at most {MAX_BYTES} bytes"));
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct HashError(String);

thread_local! {
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Computes the argon2 output of `password` into `out` in this thread's block buffer.
fn compute(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), String> {
    let needed = argon2.params().block_count();
    if needed > MAX_BLOCKS {
        return Err(format!("the hash asks for {needed} KiB of memory"));
    }
    BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        if blocks.len() < needed {
            blocks.resize(needed, Block::default());
        }
        argon2
            .hash_password_into_with_memory(password, salt, out, &mut blocks[..needed])
            .map_err(|e| e.to_string())
    })
}

/// The PHC string of a fresh salted argon2id hash.
pub fn hash(password: &str) -> Result<String, HashError> {
    let mut salt = [0u8; SALT_BYTES];
    getrandom::fill(&mut salt).map_err(|e| HashError(e.to_string()))?;
    let argon2 = Argon2::default();
    let params = argon2.params().clone();
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    compute(&argon2, password.as_bytes(), &salt, &mut out).map_err(HashError)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::default().into()),
        params: ParamsString::try_from(&params).map_err(|e| HashError(e.to_string()))?,
        salt: Some(Salt::new(&salt).map_err(|e| HashError(e.to_string()))?),
        hash: Some(Output::new(&out).map_err(|e| HashError(e.to_string()))?),
    };
    Ok(phc.to_string())
}

/// True when `password` matches the PHC string `hash`; false for a mismatch or a hash that
/// cannot be read.
pub fn verify(password: &str, hash: &str) -> bool {
    matches(password, hash).unwrap_or(false)
}

fn matches(password: &str, hash: &str) -> Option<bool> {
    let phc = PasswordHash::new(hash).ok()?;
    let algorithm = Algorithm::try_from(phc.algorithm.as_str()).ok()?;
    let version = match phc.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(&phc).ok()?;
    let (salt, expected) = (phc.salt.as_ref()?, phc.hash.as_ref()?);
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    compute(&argon2, password.as_bytes(), salt.as_ref(), &mut out).ok()?;
    // `Output`'s equality is constant-time.
    Some(Output::new(&out).ok()? == *expected)
}

/// A hash of nothing anyone knows, verified against when the email is unknown so that a
/// login with an unknown email costs what one with a wrong password costs.
pub fn verify_against_nothing(password: &str) {
    static DUMMY: LazyLock<String> = LazyLock::new(|| {
        hash("a password nobody has, used to spend the time of a real check").unwrap_or_default()
    });
    let _ = verify(password, &DUMMY);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_counts_characters_and_bytes() {
        assert!(check_policy("short").is_err());
        assert!(check_policy("ten chars!").is_ok());
        assert!(
            check_policy("王安王安王安王安王安").is_ok(),
            "10 characters, 30 bytes"
        );
        assert!(check_policy(&"x".repeat(1024)).is_ok());
        assert!(check_policy(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = hash("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &hash));
        assert!(!verify("correct horse battery!", &hash));
        assert!(!verify("anything", "not a hash"));
    }

    #[test]
    fn hashes_made_by_the_crate_itself_still_verify() {
        use argon2::PasswordHasher;
        let theirs = Argon2::default()
            .hash_password(b"correct horse battery")
            .unwrap()
            .to_string();
        assert!(verify("correct horse battery", &theirs));
        assert!(!verify("correct horse batter", &theirs));
        let ours = hash("correct horse battery").unwrap();
        use argon2::PasswordVerifier;
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", ours.as_str())
                .is_ok()
        );
    }

    #[test]
    fn a_hash_asking_for_more_memory_than_allowed_does_not_verify() {
        let greedy = hash("correct horse battery")
            .unwrap()
            .replace("m=19456", "m=1048576");
        assert!(greedy.contains("m=1048576"));
        assert!(!verify("correct horse battery", &greedy));
    }
}
