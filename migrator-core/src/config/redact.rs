//! Serialisers that write secrets as `***`, used by `Settings`' `Serialize`.

use secrecy::{ExposeSecret, SecretString};
use serde::Serializer;

/// The placeholder written instead of a secret.
pub const MASK: &str = "***";

/// Writes `***` for a set secret and nothing for an unset one.
pub fn option<S: Serializer>(secret: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => s.serialize_some(MASK),
        None => s.serialize_none(),
    }
}

/// Writes a connection URL with its password replaced by `***` (the whole URL when it cannot be
/// parsed, since it may hold a password anywhere).
pub fn url<S: Serializer>(secret: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(url) => s.serialize_some(&redacted_url(url.expose_secret())),
        None => s.serialize_none(),
    }
}

/// A connection URL without its password.
pub fn redacted_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Cannot fail on a URL that already has a password.
                let _ = parsed.set_password(Some(MASK));
            }
            let has_secret_param = parsed
                .query_pairs()
                .any(|(k, _)| k == "password" || k == "sslpassword");
            if has_secret_param {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k == "password" || k == "sslpassword" {
                            MASK.to_owned()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        Err(_) => MASK.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn url_password_is_masked() {
        assert_eq!(
            redacted_url("postgres://app:s3cr%40t@db:5432/postgres"),
            "postgres://app:***@db:5432/postgres"
        );
        assert_eq!(
            redacted_url("postgres://app@db/postgres?password=hunter2&sslmode=require"),
            "postgres://app@db/postgres?password=***&sslmode=require"
        );
        assert_eq!(redacted_url("host=db password=x"), "***");
    }
}
