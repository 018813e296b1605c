//! TCP keepalives and `TCP_USER_TIMEOUT`: how a connection notices a server that vanished
//! without closing it (host powered off, network cut, a firewall that forgot the connection).
//! Without them a read from such a server waits for hours (the kernel's two-hour keepalive
//! default) and a write for about fifteen minutes (`tcp_retries2`), and the mapping's task hangs
//! with it.
//!
//! The defaults give up on a dead server within a minute: an idle connection sends its first
//! probe after 30 s and then one every 10 s, and is dropped after 3 unanswered ones (30 + 3 × 10
//! = 60 s); a connection whose sent data stays unacknowledged for 60 s is dropped too. Both are
//! far beyond what a live server on a working network takes to answer (milliseconds), so they
//! only catch real failures. A dropped connection is an ordinary transient error: the tick that
//! saw it retries with a new connection.
//!
//! The values are set on the `tokio_postgres::Config` that every connection of the instance is
//! opened from (`pg::connect`, `pg::pool`, and the replication client, which
//! reads them back from it), so there is one place that decides them.
//!
//! A `url` may carry them as libpq does, in libpq's names and units: `keepalives` (0 or 1),
//! `keepalives_idle`, `keepalives_interval` (seconds), `keepalives_count` (also
//! `keepalives_retries`, tokio-postgres's name) and `tcp_user_timeout` (milliseconds). They are
//! taken out of the url before tokio-postgres parses it, because tokio-postgres reads
//! `tcp_user_timeout` in seconds and does not know `keepalives_count`. A field of the same
//! name wins over the url, as `sslmode` and `connect_timeout` do.

use std::time::Duration;

use super::Problem;
use super::pooler::OtherClients;
use super::tls::TlsLayer;

/// Idle time before the first keepalive probe, unless configured.
pub const DEFAULT_KEEPALIVES_IDLE: Duration = Duration::from_secs(30);
/// Time between unanswered keepalive probes, unless configured.
pub const DEFAULT_KEEPALIVES_INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered keepalive probes before the connection is dropped, unless configured.
pub const DEFAULT_KEEPALIVES_COUNT: u32 = 3;
/// How long sent data may stay unacknowledged, unless configured.
pub const DEFAULT_TCP_USER_TIMEOUT: Duration = Duration::from_secs(60);

/// Linux's limits for `TCP_KEEPIDLE`/`TCP_KEEPINTVL` (seconds) and `TCP_KEEPCNT`.
const MAX_KEEPALIVE_SECS: u64 = 32_767;
const MAX_KEEPALIVES_COUNT: u32 = 127;

/// tokio-postgres's own idle default: a `keepalives_idle` different from it was set by a
/// key=value connection string.
const TOKIO_POSTGRES_KEEPALIVES_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

/// TCP settings as one layer (the fields, or the url) gives them; `None` = not said there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpLayer {
    pub keepalives: Option<bool>,
    pub keepalives_idle: Option<Duration>,
    pub keepalives_interval: Option<Duration>,
    pub keepalives_count: Option<u32>,
    pub tcp_user_timeout: Option<Duration>,
}

impl TcpLayer {
    /// Each setting from `self`, else from `other`.
    pub fn or(self, other: TcpLayer) -> TcpLayer {
        TcpLayer {
            keepalives: self.keepalives.or(other.keepalives),
            keepalives_idle: self.keepalives_idle.or(other.keepalives_idle),
            keepalives_interval: self.keepalives_interval.or(other.keepalives_interval),
            keepalives_count: self.keepalives_count.or(other.keepalives_count),
            tcp_user_timeout: self.tcp_user_timeout.or(other.tcp_user_timeout),
        }
    }

    /// What tokio-postgres itself took from a key=value connection string (`host=...
    /// keepalives_idle=...`); a `postgres://` url has had these taken out by [`split_url`].
    pub fn parsed_by(pg: &tokio_postgres::Config) -> TcpLayer {
        TcpLayer {
            keepalives: (!pg.get_keepalives()).then_some(false),
            keepalives_idle: Some(pg.get_keepalives_idle())
                .filter(|idle| *idle != TOKIO_POSTGRES_KEEPALIVES_IDLE),
            keepalives_interval: pg.get_keepalives_interval(),
            keepalives_count: pg.get_keepalives_retries(),
            tcp_user_timeout: pg.get_tcp_user_timeout().copied(),
        }
    }

    /// Checks the values (`key` is the connection's key) and sets them, defaults filled in, on
    /// `pg`.
    pub fn apply(self, pg: &mut tokio_postgres::Config, key: &str, problems: &mut Vec<Problem>) {
        let idle = self.keepalives_idle.unwrap_or(DEFAULT_KEEPALIVES_IDLE);
        let interval = self
            .keepalives_interval
            .unwrap_or(DEFAULT_KEEPALIVES_INTERVAL);
        let count = self.keepalives_count.unwrap_or(DEFAULT_KEEPALIVES_COUNT);
        for (field, value) in [("keepalives_idle", idle), ("keepalives_interval", interval)] {
            if value < Duration::from_secs(1)
                || value > Duration::from_secs(MAX_KEEPALIVE_SECS)
                || value.subsec_nanos() != 0
            {
                problems.push(Problem::new(
                    format!("{key}.{field}"),
                    format!(
                        "must be whole seconds from 1s to {MAX_KEEPALIVE_SECS}s, e.g. \"{}s\"",
                        if field == "keepalives_idle" {
                            DEFAULT_KEEPALIVES_IDLE.as_secs()
                        } else {
                            DEFAULT_KEEPALIVES_INTERVAL.as_secs()
                        }
                    ),
                ));
            }
        }
        if !(1..=MAX_KEEPALIVES_COUNT).contains(&count) {
            problems.push(Problem::new(
                format!("{key}.keepalives_count"),
                format!(
                    "must be from 1 to {MAX_KEEPALIVES_COUNT}, e.g. {DEFAULT_KEEPALIVES_COUNT}"
                ),
            ));
        }
        pg.keepalives(self.keepalives.unwrap_or(true))
            .keepalives_idle(idle)
            .keepalives_interval(interval)
            .keepalives_retries(count);
        // Zero makes the socket keep the system's default (as libpq's 0 does).
        pg.tcp_user_timeout(self.tcp_user_timeout.unwrap_or(DEFAULT_TCP_USER_TIMEOUT));
    }
}

/// Takes the TCP parameters (libpq's names and units, see the module documentation) and the TLS
/// ones (into `tls`, see [`super::tls`]) out of a `postgres://` url: the url left for
/// tokio-postgres, and what they said. Malformed values are
/// reported under `key` (the url's key), never with the url itself, which holds a password.
/// Anything else, key=value connection strings included, is returned unchanged.
pub fn split_url(
    url: &str,
    key: &str,
    tls: &mut TlsLayer,
    others: &mut OtherClients,
    problems: &mut Vec<Problem>,
) -> (String, TcpLayer) {
    let mut layer = TcpLayer::default();
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return (url.to_owned(), layer);
    }
    // Where tokio-postgres (like libpq) sees the query: after the credentials, which end at the
    // first '@', at the first '?'.
    let after_credentials = url.find('@').map_or(0, |at| at + 1);
    let Some(question) = url[after_credentials..].find('?') else {
        return (url.to_owned(), layer);
    };
    let question = after_credentials + question;
    let (base, query) = (&url[..question], &url[question + 1..]);
    let mut kept = Vec::new();
    let mut count_names = Vec::new();
    for pair in query.split('&') {
        let Some((name, value)) = pair.split_once('=') else {
            kept.push(pair);
            continue;
        };
        let bad = |what: &str| {
            Problem::new(
                key,
                format!("the url's {name}={value} is not {what}; fix it or set {name} as a field"),
            )
        };
        match name {
            "keepalives" => match value.parse::<u32>() {
                Ok(n) => layer.keepalives = Some(n != 0),
                Err(_) => problems.push(bad("0 or 1")),
            },
            "keepalives_idle" | "keepalives_interval" => match value.parse::<u64>() {
                Ok(secs) => {
                    let slot = if name == "keepalives_idle" {
                        &mut layer.keepalives_idle
                    } else {
                        &mut layer.keepalives_interval
                    };
                    *slot = Some(Duration::from_secs(secs));
                }
                Err(_) => problems.push(bad("a whole number of seconds")),
            },
            "keepalives_count" | "keepalives_retries" => match value.parse::<u32>() {
                Ok(n) => {
                    layer.keepalives_count = Some(n);
                    count_names.push(name);
                }
                Err(_) => problems.push(bad("a whole number")),
            },
            "tcp_user_timeout" => match value.parse::<u64>() {
                Ok(millis) => layer.tcp_user_timeout = Some(Duration::from_millis(millis)),
                Err(_) => problems.push(bad("a whole number of milliseconds")),
            },
            _ if tls.take_url_parameter(name, value, key, problems) => {}
            _ if others.take_url_parameter(name, value) => {}
            _ => kept.push(pair),
        }
    }
    if count_names.len() > 1 {
        problems.push(Problem::new(
            key,
            "the url sets keepalives_count more than once (keepalives_retries is the same setting): keep one",
        ));
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (rest, layer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, TcpLayer, Vec<Problem>) {
        let (rest, layer, _, problems) = split_with_tls(url);
        (rest, layer, problems)
    }

    fn split_with_tls(url: &str) -> (String, TcpLayer, TlsLayer, Vec<Problem>) {
        let mut problems = Vec::new();
        let mut tls = TlsLayer::default();
        let mut others = OtherClients::default();
        let (rest, layer) = split_url(url, "k.url", &mut tls, &mut others, &mut problems);
        (rest, layer, tls, problems)
    }

    #[test]
    fn libpq_names_and_units_are_taken_out_of_the_url() {
        let (rest, layer, tls, problems) = split_with_tls(
            "postgres://u:p@h:5432/db?sslmode=disable&keepalives_idle=45&keepalives_interval=5\
             &keepalives_count=4&tcp_user_timeout=1500&application_name=x",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(rest, "postgres://u:p@h:5432/db?application_name=x");
        assert_eq!(tls.sslmode, Some(crate::config::SslMode::Disable));
        assert_eq!(
            layer,
            TcpLayer {
                keepalives: None,
                keepalives_idle: Some(Duration::from_secs(45)),
                keepalives_interval: Some(Duration::from_secs(5)),
                keepalives_count: Some(4),
                tcp_user_timeout: Some(Duration::from_millis(1500)),
            }
        );
    }

    #[test]
    fn a_url_with_only_tcp_parameters_loses_its_question_mark() {
        let (rest, layer, _) = split("postgresql://h/db?keepalives=0&keepalives_retries=2");
        assert_eq!(rest, "postgresql://h/db");
        assert_eq!(layer.keepalives, Some(false));
        assert_eq!(layer.keepalives_count, Some(2));
    }

    #[test]
    fn a_question_mark_in_the_password_is_not_the_query() {
        let (rest, layer, problems) = split("postgres://u:p?ss@h/db?keepalives_idle=7");
        assert!(problems.is_empty());
        assert_eq!(rest, "postgres://u:p?ss@h/db");
        assert_eq!(layer.keepalives_idle, Some(Duration::from_secs(7)));
    }

    #[test]
    fn other_forms_are_left_alone() {
        for url in [
            "postgres://u:p@h/db",
            "postgres://u:p@h/db?application_name=x",
            "host=h keepalives_idle=9",
        ] {
            let (rest, layer, problems) = split(url);
            assert_eq!(rest, url);
            assert_eq!(layer, TcpLayer::default());
            assert!(problems.is_empty());
        }
    }

    #[test]
    fn malformed_values_are_reported_without_the_url() {
        let (_, _, problems) = split(
            "postgres://u:s3cret@h/db?keepalives_idle=30s&keepalives_count=3&keepalives_retries=3",
        );
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:#?}");
        assert!(
            text[0].starts_with(
                "k.url: the url's keepalives_idle=30s is not a whole number of seconds"
            ),
            "{text:#?}"
        );
        assert!(text[1].contains("more than once"), "{text:#?}");
        assert!(!text.iter().any(|t| t.contains("s3cret")));
    }

    #[test]
    fn defaults_give_up_on_a_dead_server_within_a_minute() {
        let mut pg = tokio_postgres::Config::new();
        let mut problems = Vec::new();
        TcpLayer::default().apply(&mut pg, "k", &mut problems);
        assert!(problems.is_empty());
        assert!(pg.get_keepalives());
        let idle = pg.get_keepalives_idle();
        let probes = pg.get_keepalives_interval().unwrap() * pg.get_keepalives_retries().unwrap();
        assert_eq!(idle + probes, Duration::from_secs(60));
        assert_eq!(pg.get_tcp_user_timeout(), Some(&Duration::from_secs(60)));
    }

    #[test]
    fn out_of_range_values_are_refused_with_the_field() {
        let mut pg = tokio_postgres::Config::new();
        let mut problems = Vec::new();
        TcpLayer {
            keepalives_idle: Some(Duration::from_millis(1500)),
            keepalives_interval: Some(Duration::ZERO),
            keepalives_count: Some(0),
            ..TcpLayer::default()
        }
        .apply(&mut pg, "k", &mut problems);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "k.keepalives_idle",
                "k.keepalives_interval",
                "k.keepalives_count"
            ]
        );
    }

    #[test]
    fn a_zero_tcp_user_timeout_is_kept_as_the_system_default() {
        let mut pg = tokio_postgres::Config::new();
        let mut problems = Vec::new();
        TcpLayer {
            tcp_user_timeout: Some(Duration::ZERO),
            ..TcpLayer::default()
        }
        .apply(&mut pg, "k", &mut problems);
        assert!(problems.is_empty());
        assert_eq!(pg.get_tcp_user_timeout(), Some(&Duration::ZERO));
    }
}
