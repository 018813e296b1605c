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

/// A value for an error message: shown in backticks when it is a plain lowercase word (a
/// misspelt keyword such as `verify_full`), else not repeated, since a value in the wrong place
/// may be a password or a url holding one.
pub(crate) fn shown(value: &str) -> String {
    let word = !value.is_empty()
        && value.len() <= 24
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c == '-' || c == '.');
    if word {
        format!("`{value}`")
    } else {
        "the value given (not repeated: it may be a secret)".to_owned()
    }
}

/// A parser's message with every double-quoted value left out (serde quotes the values it
/// could not use: `invalid type: string "postgres://u:secret@h"`); keys stay.
pub(crate) fn without_values(message: &str) -> String {
    message
        .split('"')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                "(value not shown)"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join("")
}

/// A TOML syntax error as line, column and what is wrong, without the source excerpt the
/// parser prints (the line may hold a password, e.g. an unterminated password string).
pub(crate) fn toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end_matches('\n');
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn values_that_may_be_secrets_are_not_repeated() {
        assert_eq!(shown("verify_full"), "`verify_full`");
        assert!(!shown("hunter2").contains("hunter2"));
        assert!(!shown("postgres://u:pw@h/db").contains("pw"));
        assert_eq!(
            without_values(
                "invalid type: string \"postgres://u:pw@h\", expected a map for key `mappings.a.databases`"
            ),
            "invalid type: string (value not shown), expected a map for key `mappings.a.databases`"
        );
        let text = "[server]\nadmin_token = \"s3cret-unterminated\n";
        let error = toml::from_str::<toml::Table>(text).unwrap_err();
        let message = toml_error(text, &error);
        assert!(message.starts_with("line 2, column"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }
}
