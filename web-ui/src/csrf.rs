//! The anti-CSRF token of the command forms (synchronizer-token pattern): one random token per
//! process, written into every form this server renders and required back on every form POST.
//! Another site cannot read our pages, so it cannot learn the token; after a restart old pages
//! hold a stale token and the POST is refused with "reload the page".

use std::sync::Arc;

use rand::RngCore;
use subtle::ConstantTimeEq;

#[derive(Clone)]
pub struct CsrfToken(Arc<str>);

impl CsrfToken {
    /// 32 random bytes from the OS generator, as hex.
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        CsrfToken(
            bytes
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into(),
        )
    }

    /// The value forms carry.
    pub fn value(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this token (constant time).
    pub fn matches(&self, given: &str) -> bool {
        bool::from(given.as_bytes().ct_eq(self.0.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_match_themselves() {
        let (a, b) = (CsrfToken::random(), CsrfToken::random());
        assert_eq!(a.value().len(), 64);
        assert_ne!(a.value(), b.value());
        assert!(a.matches(a.value()));
        assert!(!a.matches(b.value()));
        assert!(!a.matches(""));
    }
}
