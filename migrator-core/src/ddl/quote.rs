//! Quoting: the one place where names and values become SQL text.

use crate::catalog::model::QualifiedName;

/// `name` as a quoted identifier: always quoted, inner quotes doubled, so any name (mixed case,
/// spaces, quotes, unicode, reserved words) is safe.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `schema.name`, both quoted.
pub fn qualified(name: &QualifiedName) -> String {
    format!("{}.{}", ident(&name.schema), ident(&name.name))
}

/// `value` as a string literal. With a backslash in it, the `E''` form, so the result does not
/// depend on `standard_conforming_strings`.
pub fn literal(value: &str) -> String {
    let doubled = value.replace('\'', "''");
    if value.contains('\\') {
        format!("E'{}'", doubled.replace('\\', "\\\\"))
    } else {
        format!("'{doubled}'")
    }
}

/// A libpq connection-string value: single-quoted, with `\` and `'` escaped.
pub fn conninfo_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_always_quoted_and_quotes_doubled() {
        assert_eq!(ident("users"), "\"users\"");
        assert_eq!(ident("My \"Table\""), "\"My \"\"Table\"\"\"");
        assert_eq!(ident("日本"), "\"日本\"");
        assert_eq!(
            qualified(&QualifiedName::new("Sales Dept", "order")),
            "\"Sales Dept\".\"order\""
        );
    }

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal(r"a\b'c"), r"E'a\\b''c'");
        assert_eq!(conninfo_value(r"p'w\d"), r"'p\'w\\d'");
    }
}
