//! Commands that no other web site can trigger.
//!
//! The threat: the operator's browser can reach the dashboard (often `localhost:8080` through a
//! port-forward, or an address on the office network), and any page the operator opens while it
//! runs (a link in a chat, an ad, a compromised wiki) can make that browser POST to it. Browsers
//! send "simple" cross-site POSTs (bodies `text/plain`, `application/x-www-form-urlencoded` or
//! `multipart/form-data`) without asking the server first (no CORS preflight); the page cannot
//! read the answer, but the command has run by then. Without `server.admin_token` (the default),
//! one such request would mark a mapping complete and drop its replication slots.
//!
//! Two checks close that, token or not:
//!
//! - **Same origin** ([`cross_site`]), on the API and on the dashboard's forms: a browser says
//!   where a request comes from. `Origin`, when present, must be this dashboard's own origin
//!   (`http` or `https` `://` + the request's `Host`; `Origin: null`, sent by sandboxed frames
//!   and `data:` pages, is refused), and `Sec-Fetch-Site`, when present, must be `same-origin`
//!   or `none` (typed into the address bar). A request with neither header does not come from a
//!   web page (curl, kubectl, scripts) and passes. The dashboard's own forms pass: a same-origin
//!   form POST carries `Origin` equal to the page's origin (the pages' `Referrer-Policy:
//!   same-origin` keeps it from being sent as `null`) and `Sec-Fetch-Site: same-origin`.
//! - **JSON only** ([`api_command`]), on the API: a command must be `Content-Type:
//!   application/json`. A cross-site page can only send that type after a CORS preflight, which
//!   this server never answers, so the browser never sends the command. This covers browsers
//!   that send neither `Origin` nor `Sec-Fetch-Site`.
//!
//! - **Our own name** ([`rebound`]), on both, when the dashboard listens on a loopback address
//!   only: a page can make its own host name resolve to 127.0.0.1 (DNS rebinding), and its
//!   requests are then same-origin in the browser's eyes. A loopback dashboard is reached as
//!   `localhost` or by IP address (a port-forward, an SSH tunnel), never by another name, so a
//!   command whose `Host` is another name is refused.
//!
//! The forms keep their anti-CSRF token ([`crate::CsrfToken`]) besides; the admin token, when
//! configured, is checked after these (a refused request never learns whether it had it right).
//!
//! Behind a reverse proxy, the proxy must pass the `Host` the browser used (ingress-nginx and
//! most others do); `X-Forwarded-Host` is not trusted.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Uri, header, uri::Authority};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppError;
use crate::pages::PageError;

/// Where the dashboard listens, as the checks need it.
#[derive(Debug, Clone, Copy)]
pub struct Listening {
    /// `server.listen` is a loopback address: only `localhost` and IP addresses name us.
    pub loopback_only: bool,
}

/// Middleware of every `POST /api/...` command: refuses a request from another site (403) and
/// a body that is not JSON (415), both with a JSON `{"error": ...}` that says what to send.
pub async fn api_command(
    State(listening): State<Listening>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(reason) = refusal(listening, &request) {
        return AppError::Forbidden(format!(
            "{reason}. Commands are taken from the dashboard's own pages and from clients that \
             are not browsers (curl, scripts): send the request from one of those"
        ))
        .into_response();
    }
    if let Some(problem) = not_json(request.headers()) {
        return AppError::UnsupportedMediaType(format!(
            "{problem}: send the command with Content-Type: application/json, e.g. curl -X POST \
             -H 'Content-Type: application/json' {}",
            request.uri().path()
        ))
        .into_response();
    }
    next.run(request).await
}

/// Middleware of the dashboard's command forms: refuses a form posted from another site (403,
/// as a page). The form's anti-CSRF token is checked by its handler afterwards.
pub async fn form_command(
    State(listening): State<Listening>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(reason) = refusal(listening, &request) {
        return PageError(AppError::Forbidden(format!(
            "{reason}. Commands are only taken from this dashboard's own pages: open the \
             dashboard at its own address, reload the page and submit again"
        )))
        .into_response();
    }
    next.run(request).await
}

/// Why a command is refused before anything else is looked at: it names a loopback dashboard
/// by another name ([`rebound`]) or comes from another site ([`cross_site`]).
fn refusal(listening: Listening, request: &Request) -> Option<String> {
    rebound(listening, request.headers(), request.uri())
        .or_else(|| cross_site(request.headers(), request.uri()))
}

/// Why a request to a dashboard that listens on loopback only names it by a host name other
/// than `localhost` (DNS rebinding), if it does. IP addresses, `localhost` and `*.localhost`
/// pass; so does a request without a `Host` (not a browser).
pub fn rebound(listening: Listening, headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if !listening.loopback_only {
        return None;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(Authority::as_str))?;
    let name = host
        .parse::<Authority>()
        .map(|a| a.host().to_owned())
        .unwrap_or_else(|_| host.to_owned());
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    let lower = bare.to_ascii_lowercase();
    let ours = bare.parse::<std::net::IpAddr>().is_ok()
        || lower == "localhost"
        || lower.ends_with(".localhost");
    (!ours).then(|| {
        format!(
            "refused: this dashboard listens on a loopback address, yet the request names it              {host:?}; a web page that points its own name at this machine (DNS rebinding) sends              such requests. Open the dashboard as http://localhost:PORT or http://127.0.0.1:PORT,              or listen on another address (with server.admin_token set)"
        )
    })
}

/// Why the browser headers of a request say it comes from another site, if they do. `None`
/// when both `Origin` and `Sec-Fetch-Site` are absent (not a browser) or agree with this server.
pub fn cross_site(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(reason) = fetch_site_problem(headers) {
        return Some(reason);
    }
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let origin = origins.next()?;
    if origins.next().is_some() {
        return Some("refused: the request carries more than one Origin header".into());
    }
    let Ok(origin) = origin.to_str() else {
        return Some("refused: the request's Origin header is not readable text".into());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(Authority::as_str));
    let Some(host) = host else {
        return Some(
            "refused: the request has an Origin but no Host header to compare it with".into(),
        );
    };
    if same_origin(origin, host) {
        None
    } else {
        Some(format!(
            "cross-site request refused: it comes from a page of {origin}, not from this \
             dashboard ({host}); behind a reverse proxy, make it pass the Host header unchanged"
        ))
    }
}

/// `Sec-Fetch-Site` (sent by current browsers on every request), when present, must say the
/// request comes from our own pages (`same-origin`) or from the user (`none`). `same-site` is
/// refused too: another port of `localhost` is the same site.
fn fetch_site_problem(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("sec-fetch-site")?;
    match value.to_str() {
        Ok("same-origin" | "none") => None,
        Ok(other) => Some(format!(
            "cross-site request refused: the browser says it comes from another page \
             (Sec-Fetch-Site: {other})"
        )),
        Err(_) => Some("refused: the request's Sec-Fetch-Site header is not readable text".into()),
    }
}

/// Whether `origin` (`scheme://host[:port]`) names the server reached as `host` (`host[:port]`,
/// the `Host` header): `http` or `https`, the same host (case-insensitive), and the same port,
/// an absent one being the scheme's default. `null` and anything with a path, user or query
/// never match.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    if rest.contains(['/', '?', '#', '@']) {
        return false;
    }
    let (Ok(origin), Ok(host)) = (rest.parse::<Authority>(), host.parse::<Authority>()) else {
        return false;
    };
    if host.as_str().contains('@') {
        return false;
    }
    origin.host().eq_ignore_ascii_case(host.host())
        && origin.port_u16().unwrap_or(default_port) == host.port_u16().unwrap_or(default_port)
}

/// What is wrong with the `Content-Type` of an API command, if anything: it must be
/// `application/json` (parameters such as `charset` allowed).
fn not_json(headers: &HeaderMap) -> Option<String> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Some("the request has no Content-Type".into());
    };
    let text = value.to_str().unwrap_or("");
    let essence = text.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        None
    } else {
        Some(format!(
            "Content-Type {} is not accepted",
            if text.is_empty() {
                "(unreadable)"
            } else {
                text
            }
        ))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn a_loopback_dashboard_answers_only_to_localhost_and_ip_addresses() {
        let uri = Uri::from_static("/api/x");
        let loopback = Listening {
            loopback_only: true,
        };
        for host in [
            "localhost:8080",
            "LOCALHOST",
            "127.0.0.1:8080",
            "[::1]:8080",
            "app.localhost:8080",
        ] {
            assert_eq!(
                rebound(loopback, &headers(&[("host", host)]), &uri),
                None,
                "{host}"
            );
        }
        for host in [
            "evil.example:8080",
            "attacker.test",
            "localhost.evil.example",
        ] {
            let reason = rebound(loopback, &headers(&[("host", host)]), &uri);
            assert!(
                reason.is_some_and(|r| r.contains("DNS rebinding")),
                "{host}"
            );
        }
        // Not a browser: no Host at all.
        assert_eq!(rebound(loopback, &HeaderMap::new(), &uri), None);
        // Listening beyond loopback: any name may be ours (an ingress, a DNS name).
        let open = Listening {
            loopback_only: false,
        };
        assert_eq!(
            rebound(open, &headers(&[("host", "evil.example")]), &uri),
            None
        );
    }

    fn refused(pairs: &[(&str, &str)]) -> bool {
        cross_site(&headers(pairs), &Uri::from_static("/api/x")).is_some()
    }

    #[test]
    fn the_dashboards_own_origin_passes_in_either_scheme() {
        for (origin, host) in [
            ("http://localhost:8080", "localhost:8080"),
            ("https://migrator.example.com", "migrator.example.com"),
            ("HTTPS://Migrator.Example.com", "migrator.example.com"),
            ("http://migrator.example.com", "migrator.example.com:80"),
            ("https://migrator.example.com:443", "migrator.example.com"),
            ("http://[::1]:8080", "[::1]:8080"),
            ("http://127.0.0.1:8080", "127.0.0.1:8080"),
        ] {
            assert!(same_origin(origin, host), "{origin} vs {host}");
        }
    }

    #[test]
    fn other_origins_and_null_are_refused() {
        for (origin, host) in [
            ("http://evil.example", "localhost:8080"),
            ("http://localhost:3000", "localhost:8080"),
            ("http://localhost", "localhost:8080"),
            ("https://migrator.example.com", "migrator.example.com:80"),
            ("http://localhost:8080.evil.example", "localhost:8080"),
            ("null", "localhost:8080"),
            ("", "localhost:8080"),
            ("file://localhost:8080", "localhost:8080"),
            ("http://localhost:8080/", "localhost:8080"),
            ("http://user@localhost:8080", "localhost:8080"),
            ("http://localhost:8080", "evil@localhost:8080"),
        ] {
            assert!(!same_origin(origin, host), "{origin} vs {host}");
        }
    }

    #[test]
    fn requests_without_browser_headers_pass() {
        assert!(!refused(&[]));
        assert!(!refused(&[("host", "localhost:8080")]));
    }

    #[test]
    fn sec_fetch_site_must_be_same_origin_or_none() {
        assert!(!refused(&[("sec-fetch-site", "same-origin")]));
        assert!(!refused(&[("sec-fetch-site", "none")]));
        for value in ["cross-site", "same-site", "something-new"] {
            assert!(refused(&[("sec-fetch-site", value)]), "{value}");
        }
        // Both must agree.
        assert!(refused(&[
            ("host", "localhost:8080"),
            ("origin", "http://localhost:8080"),
            ("sec-fetch-site", "cross-site"),
        ]));
        assert!(refused(&[
            ("host", "localhost:8080"),
            ("origin", "http://evil.example"),
            ("sec-fetch-site", "same-origin"),
        ]));
    }

    #[test]
    fn an_origin_needs_a_host_to_match_and_only_one_origin() {
        assert!(refused(&[("origin", "http://localhost:8080")]));
        let authority = Uri::from_static("http://localhost:8080/api/x");
        assert!(
            cross_site(&headers(&[("origin", "http://localhost:8080")]), &authority).is_none(),
            "HTTP/2 carries the host in the URI"
        );
        assert!(refused(&[
            ("host", "localhost:8080"),
            ("origin", "http://localhost:8080"),
            ("origin", "http://evil.example"),
        ]));
    }

    #[test]
    fn only_json_is_accepted() {
        for value in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
        ] {
            assert_eq!(
                not_json(&headers(&[("content-type", value)])),
                None,
                "{value}"
            );
        }
        for value in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "text/plain; application/json",
        ] {
            let problem = not_json(&headers(&[("content-type", value)])).expect(value);
            assert!(problem.contains(value), "{problem}");
        }
        assert!(
            not_json(&HeaderMap::new())
                .unwrap()
                .contains("no Content-Type")
        );
    }
}
