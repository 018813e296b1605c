//! The HTML pages through `app()` with `oneshot`: content for each phase, tabs, secrets absent,
//! the mark-complete form (CSRF, admin token, refusal, other sites), rate limit, security headers
//! and the warning about commands open to the network.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::{StatusCode, header};
use common::*;
use migrator_core::findings::{Code, Finding};
use migrator_core::orchestrator::Command;
use migrator_core::orchestrator::commands::CommandError;
use migrator_core::phase::Phase;
use migrator_core::status::{Snapshot, VerifyMode};
use web_ui::{LagHistory, LogEntry};

#[tokio::test]
async fn the_grid_shows_each_phase_with_its_light() {
    for (phase, class, words) in [
        (Phase::Preflight, "progress", "PREFLIGHT"),
        (Phase::InitialSync, "progress", "INITIAL SYNC"),
        (Phase::CatchUp, "progress", "CATCHING UP"),
        (Phase::CutoverReady, "ready", "CUTOVER READY"),
        (Phase::Completed, "completed", "COMPLETED"),
        (Phase::Problematic, "problem", "PROBLEM"),
    ] {
        let h = harness(snapshot(phase, now()), None);
        let (code, body) = call(&h.state, get("/")).await;
        assert_eq!(code, StatusCode::OK, "{phase:?}");
        assert!(
            body.contains(&format!("class=\"light {class}\"")),
            "{phase:?}: no {class} light in {body}"
        );
        assert!(body.contains(words), "{phase:?}: no {words}");
        assert!(body.contains("href=\"/mappings/prod\""));
        assert!(body.contains("postgres@old:5432/postgres"));
        let done = if matches!(phase, Phase::CutoverReady | Phase::Completed) {
            1
        } else {
            0
        };
        assert!(
            body.contains(&format!("{done} / 1")),
            "{phase:?}: databases done"
        );
    }
}

#[tokio::test]
async fn the_status_bar_counts_mappings_and_shows_freshness() {
    let mut s = snapshot(Phase::CutoverReady, now());
    let mut second = s.mappings[0].clone();
    second.name = "staging".into();
    second.phase = Phase::Problematic;
    let mut third = s.mappings[0].clone();
    third.name = "archive".into();
    third.phase = Phase::InitialSync;
    let mut fourth = s.mappings[0].clone();
    fourth.name = "erroring".into();
    fourth.phase = Phase::CatchUp;
    fourth.last_error = Some("connection refused".into());
    s.mappings.extend([second, third, fourth]);
    let h = harness(s, None);
    let (_, body) = call(&h.state, get("/")).await;
    assert!(body.contains("<b>1</b> cutover ready"), "{body}");
    assert!(
        body.contains("<b>2</b> problematic"),
        "a failing step is red on its card, so it counts as problematic"
    );
    assert!(body.contains("<b>1</b> in progress"));
    assert!(body.contains("<b>0</b> completed"));
    assert!(body.contains("class=\"fresh\""));
    assert!(body.contains("UTC"));

    let stale = harness(snapshot(Phase::CatchUp, ago(600)), None);
    let (_, body) = call(&stale.state, get("/")).await;
    assert!(body.contains("stopped reporting"), "{body}");
}

#[tokio::test]
async fn live_pages_refresh_with_and_without_javascript() {
    let h = harness(snapshot(Phase::CatchUp, now()), None);
    for uri in ["/", "/mappings/prod"] {
        let (_, body) = call(&h.state, get(uri)).await;
        assert!(body.starts_with("<!DOCTYPE html>"), "{uri}");
        assert!(
            body.contains("<main id=\"live\" data-refresh=\"5\">"),
            "{uri}: {body}"
        );
        assert!(
            body.contains("<noscript><meta http-equiv=\"refresh\" content=\"5\">"),
            "{uri}"
        );
        assert!(body.contains("src=\"/assets/refresh.js\""), "{uri}");
    }
    let (code, script) = call(&h.state, get("/assets/refresh.js")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(script.contains("getElementById(\"live\")"));
    let (code, css) = call(&h.state, get("/assets/style.css")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(css.contains("@media (max-width: 640px)"));
}

#[tokio::test]
async fn every_tab_renders_its_facts() {
    let mut shown = snapshot(Phase::CatchUp, now());
    shown.mappings[0].databases[0].rates = Some(migrator_core::status::ApplyRates {
        wal_mb_per_min: 96.34,
        apply_mb_per_min: 41.0,
        over_seconds: 180.0,
    });
    let h = harness(shown, None);
    let at = SystemTime::now();
    let mut s = snapshot(Phase::CatchUp, Some(at - Duration::from_secs(60)));
    h.state.history.record(&s);
    s.generated_at = Some(at);
    s.mappings[0].databases[0].lag.as_mut().unwrap().bytes = 3 * 1_048_576;
    h.state.history.record(&s);
    h.state.logs.push(
        "prod",
        LogEntry {
            at,
            level: tracing::Level::WARN,
            message: "step failed; retrying".into(),
            fields: "database=shop".into(),
        },
    );
    for (tab, expected) in [
        (
            "databases",
            vec![
                "shop",
                "catching up",
                "1 / 2",
                "WAL / applied (MB/min)",
                "96.3 / 41.0",
            ],
        ),
        (
            "tables",
            vec!["public.orders", "public.events", "copying", "ready", "25 %"],
        ),
        (
            "partitions",
            vec![
                "RANGE (created_at)",
                "public.events_2026",
                "FOR VALUES FROM",
            ],
        ),
        (
            "sequences",
            vec![
                "public.orders_id_seq",
                "4242",
                "5242",
                "missing on the destination",
            ],
        ),
        (
            "roles",
            vec![
                "app_owner",
                "copied",
                "none: set one before cutover",
                "readers",
            ],
        ),
        (
            "slot",
            vec![
                "0/1A2B3C4",
                "0/1A2B3D0",
                "5.0 MB",
                "active",
                "pgmig_prod_shop_",
            ],
        ),
        (
            "metrics",
            vec![
                "<svg",
                "<polyline points=\"",
                "class=\"series\"",
                "3.3 MB",
                "−60 min",
            ],
        ),
        (
            "logs",
            vec!["step failed; retrying", "database=shop", "WARN"],
        ),
        (
            "verify",
            vec![
                "No verification has run on this instance yet",
                "key range by key range",
            ],
        ),
        ("instructions", vec!["Cutover of mapping prod"]),
    ] {
        let (code, body) = call(&h.state, get(&format!("/mappings/prod?tab={tab}"))).await;
        assert_eq!(code, StatusCode::OK, "{tab}");
        assert!(body.contains(&format!("id=\"tab-{tab}\"")), "{tab}: {body}");
        assert!(
            body.contains(&format!(
                "href=\"/mappings/prod?tab={tab}\" class=\"tab current\""
            )),
            "{tab}: {body}"
        );
        for text in expected {
            assert!(body.contains(text), "tab {tab}: no {text:?} in\n{body}");
        }
    }
    let (_, body) = call(&h.state, get("/mappings/prod?tab=nonsense")).await;
    assert!(body.contains("id=\"tab-databases\""));
}

#[tokio::test]
async fn the_lag_history_keeps_one_sample_per_spacing_and_drops_old_ones() {
    let history = LagHistory::new(Duration::from_secs(60), Duration::from_secs(5));
    let t0 = SystemTime::now();
    let mut s = snapshot(Phase::CatchUp, Some(t0));
    for offset in [0, 2, 5, 30, 70] {
        s.generated_at = Some(t0 + Duration::from_secs(offset));
        history.record(&s);
    }
    let at: Vec<u64> = history
        .samples("prod")
        .iter()
        .map(|x| x.at.duration_since(t0).unwrap().as_secs())
        .collect();
    assert_eq!(
        at,
        [30, 70],
        "0 and 5 are older than 60 s at 70; 2 came too soon after 0"
    );
}

#[tokio::test]
async fn findings_and_errors_are_shown_with_their_fix() {
    let mut s = snapshot(Phase::Problematic, now());
    s.mappings[0].findings.push(Finding::blocking(
        Code::WalLevel,
        "wal_level is replica on the source",
        "set wal_level = logical and restart the source",
    ));
    s.mappings[0].databases[0].last_error = Some("connection refused".into());
    let h = harness(s, None);
    let (_, body) = call(&h.state, get("/mappings/prod")).await;
    assert!(body.contains("wal_level is replica on the source"));
    assert!(body.contains("Fix: "));
    assert!(body.contains("set wal_level = logical"));
    assert!(body.contains("connection refused"));
    let (_, grid) = call(&h.state, get("/")).await;
    assert!(grid.contains("wal_level is replica on the source"));
}

#[tokio::test]
async fn names_are_escaped() {
    let mut s = snapshot(Phase::CatchUp, now());
    s.mappings[0].databases[0].name = "Café \"CRM\" <script>alert(1)</script>".into();
    let h = harness(s, None);
    let (_, body) = call(&h.state, get("/mappings/prod")).await;
    assert!(!body.contains("<script>alert(1)"), "{body}");
    assert!(body.contains("Café \"CRM\" &lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[tokio::test]
async fn config_and_pages_show_no_secret() {
    let token = "adm1n-T0ken-value";
    let h = harness(snapshot(Phase::CutoverReady, now()), Some(token));
    let (code, body) = call(&h.state, get("/config")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(body.contains("[mappings.prod"), "{body}");
    assert!(body.contains("***"));
    for uri in [
        "/config",
        "/",
        "/mappings/prod",
        "/mappings/prod?tab=instructions",
        "/mappings/prod/complete",
        "/api/status",
    ] {
        let (_, body) = call(&h.state, get(uri)).await;
        for secret in [token, SOURCE_PASSWORD, DESTINATION_PASSWORD] {
            assert!(!body.contains(secret), "{uri} shows a secret");
        }
    }
}

#[tokio::test]
async fn unknown_mappings_and_pages_are_404_pages() {
    let h = harness(snapshot(Phase::CatchUp, now()), None);
    for uri in ["/mappings/nope", "/mappings/nope/complete", "/nowhere"] {
        let (code, body) = call(&h.state, get(uri)).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{uri}");
        assert!(body.contains("<!DOCTYPE html>"), "{uri}");
    }
}

#[tokio::test]
async fn mark_complete_is_offered_only_when_cutover_ready() {
    let h = harness(snapshot(Phase::CatchUp, now()), None);
    let (_, body) = call(&h.state, get("/mappings/prod")).await;
    assert!(body.contains("disabled"), "{body}");
    assert!(body.contains(
        "Available once the light is green; the mapping is catching up (0 of 1 databases ready)"
    ));
    let (code, body) = call(&h.state, get("/mappings/prod/complete")).await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert!(body.contains("not cutover ready"), "{body}");

    let ready = harness(snapshot(Phase::CutoverReady, now()), None);
    let (_, body) = call(&ready.state, get("/mappings/prod")).await;
    assert!(body.contains("action=\"/mappings/prod/complete\""));
    assert!(!body.contains("disabled"));
    let (code, body) = call(&ready.state, get("/mappings/prod/complete")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(body.contains("Mark prod complete?"));
    let names = migrator_core::naming::ReplicationNames::new("prod", "shop");
    for name in [&names.slot, &names.publication, &names.subscription] {
        assert!(
            body.contains(name.as_str()),
            "the confirmation names {name}"
        );
    }
    assert!(body.contains(&format!(
        "name=\"csrf\" value=\"{}\"",
        ready.state.csrf.value()
    )));
    assert!(
        !body.contains("admin_token"),
        "no token field without a token"
    );
    assert!(
        !body.contains("data-refresh"),
        "the confirmation does not refresh under the operator"
    );
}

/// Answers commands as the orchestrator would for a cutover-ready mapping; the task ends, with
/// the number of commands it saw, once the returned state (the last sender) is dropped.
fn answer_completes(h: Harness) -> (web_ui::AppState, tokio::task::JoinHandle<usize>) {
    h.orchestrated(|mut commands| async move {
        let mut n = 0;
        while let Some(Command::Complete { mapping, reply }) = commands.recv().await {
            n += 1;
            let _ = reply.send(if mapping == "prod" {
                Ok(vec![format!("\"shop\": completed (call {n})")])
            } else {
                Err(CommandError::UnknownMapping(mapping))
            });
        }
        n
    })
}

#[tokio::test]
async fn the_form_needs_this_servers_csrf_token() {
    let h = harness(snapshot(Phase::CutoverReady, now()), None);
    let csrf = h.state.csrf.value().to_owned();
    let (state, answers) = answer_completes(h);
    for form in [
        "",
        "csrf=",
        "csrf=0000",
        &format!("csrf={}", "a".repeat(64)),
    ] {
        let (code, body) = post(&state, "/mappings/prod/complete", form).await;
        assert_eq!(code, StatusCode::FORBIDDEN, "{form}");
        assert!(body.contains("reload the page"), "{body}");
    }
    let (code, body) = post(&state, "/mappings/prod/complete", &format!("csrf={csrf}")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(body.contains("prod is complete"));
    assert!(body.contains("completed (call 1)"));
    // A double submit goes to the orchestrator again, which answers as for a completed mapping.
    let (code, _) = post(&state, "/mappings/prod/complete", &format!("csrf={csrf}")).await;
    assert_eq!(code, StatusCode::OK);
    drop(state);
    assert_eq!(
        answers.await.unwrap(),
        2,
        "the refused posts never reached the orchestrator"
    );
}

#[tokio::test]
async fn the_form_needs_the_admin_token_when_one_is_set() {
    let h = harness(snapshot(Phase::CutoverReady, now()), Some("let-me-in"));
    let csrf = h.state.csrf.value().to_owned();
    let (_, confirm) = call(&h.state, get("/mappings/prod/complete")).await;
    assert!(confirm.contains("name=\"admin_token\""));
    let (state, answers) = answer_completes(h);
    let uri = "/mappings/prod/complete";
    let (code, _) = post(&state, uri, &format!("csrf={csrf}&admin_token=wrong")).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, body) = post(&state, uri, &format!("csrf={csrf}&admin_token=let-me-in")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    drop(state);
    assert_eq!(answers.await.unwrap(), 1);
}

#[tokio::test]
async fn a_refusal_from_the_orchestrator_is_shown_with_its_reason() {
    let h = harness(snapshot(Phase::CutoverReady, now()), None);
    let (state, answers) = h.orchestrated(|mut commands| async move {
        while let Some(Command::Complete { reply, .. }) = commands.recv().await {
            let _ = reply.send(Err(CommandError::Refused(
                "mapping prod is catching up, not cutover ready".into(),
            )));
        }
    });
    let csrf = state.csrf.value().to_owned();
    let (code, body) = post(&state, "/mappings/prod/complete", &format!("csrf={csrf}")).await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert!(body.contains("catching up, not cutover ready"), "{body}");
    drop(state);
    answers.await.unwrap();
}

#[tokio::test]
async fn api_and_commands_are_rate_limited_per_client() {
    let mut h = harness(snapshot(Phase::CatchUp, now()), None);
    h.state.rate_limit = (3, Duration::from_secs(60));
    // One router, as the server has: the limiter's state lives in it.
    let router = web_ui::app(h.state.clone());
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(send(&router, get("/api/status")).await.0);
    }
    assert_eq!(&codes[..3], [StatusCode::OK; 3]);
    assert_eq!(&codes[3..], [StatusCode::TOO_MANY_REQUESTS; 2]);
    let (code, headers, _) = send(&router, complete(None)).await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key(header::RETRY_AFTER), "{headers:?}");
    let (code, _, _) = send(&router, post_form("/mappings/prod/complete", "csrf=x")).await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS);
    // Pages, health and metrics are not limited (Kubernetes probes, Prometheus, the refresh).
    for uri in ["/healthz", "/metrics", "/", "/mappings/prod"] {
        assert_eq!(send(&router, get(uri)).await.0, StatusCode::OK, "{uri}");
    }
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let h = harness(snapshot(Phase::CatchUp, now()), None);
    let (_, headers, _) = call_with_headers(&h.state, get("/")).await;
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    // Not no-referrer: under it the dashboard's own forms would carry `Origin: null`.
    assert_eq!(headers[header::REFERRER_POLICY], "same-origin");
    let (_, headers, _) = call_with_headers(&h.state, get("/assets/style.css")).await;
    assert_eq!(headers[header::CACHE_CONTROL], "max-age=300");
}

#[tokio::test]
async fn the_page_follows_the_latest_snapshot() {
    let h = harness(snapshot(Phase::CatchUp, now()), None);
    let (_, before) = call(&h.state, get("/")).await;
    assert!(before.contains("CATCHING UP"));
    h.status
        .send_replace(Arc::new(snapshot(Phase::CutoverReady, now())));
    let (_, after) = call(&h.state, get("/")).await;
    assert!(after.contains("CUTOVER READY"));
    h.status.send_replace(Arc::new(Snapshot::default()));
    let (_, empty) = call(&h.state, get("/")).await;
    assert!(empty.contains("No mapping reported yet"));
}

/// The forms to `/mappings/prod/{command}` (with the command's own `fields`) that must be refused,
/// with the status of each refusal: a forged CSRF token (with the right admin token
/// `let-me-in`), then a wrong admin token.
fn refused_forms(csrf: &str, fields: &str) -> [(String, StatusCode); 2] {
    [
        (
            format!("csrf=forged&admin_token=let-me-in{fields}"),
            StatusCode::FORBIDDEN,
        ),
        (
            format!("csrf={csrf}&admin_token=wrong{fields}"),
            StatusCode::UNAUTHORIZED,
        ),
    ]
}

#[tokio::test]
async fn schema_drift_offers_the_safe_changes_behind_a_checked_form() {
    let mut s = snapshot(Phase::Problematic, now());
    s.mappings[0].databases[0].findings.push(Finding::blocking(
        Code::SchemaDrift,
        "the schema of \"shop\" changed on the source after it was copied: column nickname (text) was added to app.accounts",
        "press \"Apply safe schema changes\" on the dashboard or run `postgres-migrator resync MAPPING` (new tables and columns), or run on the destination database ...",
    ).resolvable_by_resync(true));
    let (state, answers) = harness(s, Some("let-me-in")).answering(resync, |_| {
        "\"shop\": column nickname (text) was added to app.accounts -> added on the destination"
            .into()
    });
    let csrf = state.csrf.value().to_owned();
    let (_, page) = call(&state, get("/mappings/prod")).await;
    assert!(page.contains("action=\"/mappings/prod/resync\""), "{page}");
    assert!(page.contains("Apply safe schema changes"));
    assert!(page.contains(&format!("name=\"csrf\" value=\"{csrf}\"")));
    assert!(page.contains("name=\"admin_token\""));

    let uri = "/mappings/prod/resync";
    for (form, code) in refused_forms(&csrf, "") {
        let (got, _) = post(&state, uri, &form).await;
        assert_eq!(got, code, "{form}");
    }
    let (code, body) = post(&state, uri, &format!("csrf={csrf}&admin_token=let-me-in")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(body.contains("added on the destination"), "{body}");
    drop(state);
    assert_eq!(answers.await.unwrap(), vec!["prod".to_owned()]);

    // Without drift, no button.
    let h = harness(snapshot(Phase::CatchUp, now()), None);
    let (_, page) = call(&h.state, get("/mappings/prod")).await;
    assert!(!page.contains("/resync"));
}

#[tokio::test]
async fn the_copy_rate_shows_with_its_limit_and_a_checked_form_changes_it() {
    let (state, answers) = harness(snapshot(Phase::InitialSync, now()), Some("let-me-in"))
        .answering(rate_limit, |(_, mb_per_s)| {
            format!("copy rate limit of prod: {mb_per_s} MB/s")
        });
    let csrf = state.csrf.value().to_owned();
    let (_, page) = call(&state, get("/mappings/prod")).await;
    assert!(
        page.contains("12.5 MB/s (limit 50 MB/s; held to 20.0 MB/s: a standby of the source is 600 MB behind (limit 512 MB))"),
        "{page}"
    );
    assert!(
        page.contains("action=\"/mappings/prod/rate-limit\""),
        "{page}"
    );
    assert!(page.contains("name=\"mb_per_s\""));

    let uri = "/mappings/prod/rate-limit";
    let negative = format!("csrf={csrf}&admin_token=let-me-in&mb_per_s=-3");
    for (form, code) in refused_forms(&csrf, "&mb_per_s=5")
        .into_iter()
        .chain([(negative, StatusCode::BAD_REQUEST)])
    {
        let (got, body) = post(&state, uri, &form).await;
        assert_eq!(got, code, "{form}: {body}");
        if code == StatusCode::BAD_REQUEST {
            assert!(body.contains("whole MB per second"), "{body}");
        }
    }
    let form = format!("csrf={csrf}&admin_token=let-me-in&mb_per_s=+7+");
    let (code, body) = post(&state, uri, &form).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(body.contains("copy rate limit of prod: 7 MB/s"), "{body}");
    drop(state);
    assert_eq!(answers.await.unwrap(), vec![("prod".to_owned(), 7)]);
}

#[tokio::test]
async fn a_copy_the_tool_gave_up_on_offers_retry_behind_a_checked_form() {
    let mut s = snapshot(Phase::Problematic, now());
    s.mappings[0].databases[0].findings.push(Finding::blocking(
        Code::CopyFailing,
        "the initial copy of \"shop\" failed 5 times in a row, so the tool stopped retrying it",
        "fix the cause named in the error, then press Retry on the mapping's page",
    ));
    let (state, answers) = harness(s, Some("let-me-in"))
        .answering(retry, |_| "mapping prod: failures forgotten".into());
    let csrf = state.csrf.value().to_owned();
    let (_, page) = call(&state, get("/mappings/prod")).await;
    assert!(page.contains("action=\"/mappings/prod/retry\""), "{page}");
    // The WAL forecast sits among the key figures.
    assert!(page.contains("WAL on the source"), "{page}");
    assert!(
        page.contains("slots hold 5.0 MB, growing 2.0 MB/min"),
        "{page}"
    );

    let uri = "/mappings/prod/retry";
    for (form, code) in refused_forms(&csrf, "") {
        let (got, _) = post(&state, uri, &form).await;
        assert_eq!(got, code, "{form}");
    }
    let (code, body) = post(&state, uri, &format!("csrf={csrf}&admin_token=let-me-in")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(body.contains("failures forgotten"), "{body}");
    drop(state);
    assert_eq!(answers.await.unwrap(), vec!["prod".to_owned()]);

    // Without the finding, no button.
    let h = harness(snapshot(Phase::CatchUp, now()), None);
    let (_, page) = call(&h.state, get("/mappings/prod")).await;
    assert!(!page.contains("/retry"));
}

#[tokio::test]
async fn forms_from_another_site_are_refused_even_with_the_csrf_token() {
    let (state, answers) = harness(snapshot(Phase::CutoverReady, now()), None).answer_all();
    let csrf = state.csrf.value().to_owned();
    let forms = [
        ("/mappings/prod/complete", format!("csrf={csrf}")),
        ("/mappings/prod/resync", format!("csrf={csrf}")),
        ("/mappings/prod/retry", format!("csrf={csrf}")),
        (
            "/mappings/prod/rate-limit",
            format!("csrf={csrf}&mb_per_s=5"),
        ),
        ("/mappings/prod/verify", format!("csrf={csrf}&exact=on")),
    ];
    let host = ("host", "localhost:8080");
    for (uri, form) in &forms {
        for headers in [
            vec![host, ("origin", "http://evil.example")],
            vec![host, ("origin", "null")],
            vec![host, ("sec-fetch-site", "cross-site")],
            vec![
                host,
                ("origin", "http://localhost:8080"),
                ("sec-fetch-site", "same-site"),
            ],
        ] {
            let (code, body) = call(&state, post_form_with(uri, form, &headers)).await;
            assert_eq!(code, StatusCode::FORBIDDEN, "{uri} {headers:?}: {body}");
            assert!(body.starts_with("<!DOCTYPE html>"), "a page: {body}");
            assert!(body.contains("own pages"), "{body}");
        }
    }
    // As the dashboard's own page sends them (and as curl does, without browser headers).
    for (uri, form) in &forms {
        for headers in [
            vec![
                host,
                ("origin", "http://localhost:8080"),
                ("sec-fetch-site", "same-origin"),
            ],
            vec![host],
        ] {
            let (code, body) = call(&state, post_form_with(uri, form, &headers)).await;
            assert_eq!(code, StatusCode::OK, "{uri} {headers:?}: {body}");
        }
    }
    drop(state);
    assert_eq!(
        answers.await.unwrap(),
        [
            "complete",
            "complete",
            "resync",
            "resync",
            "retry",
            "retry",
            "rate-limit",
            "rate-limit",
            "verify",
            "verify"
        ],
        "only the same-origin posts reached the orchestrator"
    );
}

#[tokio::test]
async fn the_status_bar_warns_when_commands_are_open_to_the_network() {
    // The defaults: listen = 0.0.0.0:8080, no admin token.
    let open = harness(snapshot(Phase::CatchUp, now()), None);
    for uri in ["/", "/mappings/prod"] {
        let (_, body) = call(&open.state, get(uri)).await;
        assert!(body.contains("class=\"open-commands\""), "{uri}: {body}");
        for hint in [
            "0.0.0.0:8080",
            "Set server.admin_token",
            "listen on 127.0.0.1",
        ] {
            assert!(body.contains(hint), "{uri}: missing `{hint}` in {body}");
        }
    }
    let token = harness(snapshot(Phase::CatchUp, now()), Some("let-me-in"));
    for uri in ["/", "/mappings/prod"] {
        let (_, body) = call(&token.state, get(uri)).await;
        assert!(!body.contains("open-commands"), "{uri}: {body}");
        assert!(!body.contains("let-me-in"), "{uri}");
    }
    let mut settings = settings(None);
    settings.server.listen = "127.0.0.1:8080".into();
    let local = web_ui::AppState::new(
        &settings,
        open.state.status.clone(),
        open.state.commands.clone(),
        web_ui::LogBuffer::new(10),
    );
    let (_, body) = call(&local, get("/")).await;
    assert!(!body.contains("open-commands"), "{body}");
}

#[tokio::test]
async fn the_verify_tab_shows_the_verdict_progress_and_each_differing_range_escaped() {
    let mut s = snapshot(Phase::CatchUp, now());
    s.mappings[0].verify = Some(verification());
    let h = harness(s, None);
    let (code, body) = call(&h.state, get("/mappings/prod?tab=verify")).await;
    assert_eq!(code, StatusCode::OK);
    for text in [
        // The verdict, as a red light.
        "<div role=\"img\" aria-label=\"DIFFERENCES\" class=\"light problem\">",
        "DIFFERENCES FOUND",
        "exact (writes stopped)",
        "every database and table",
        "<dt>Took</dt><dd>1 min 20 s</dd>",
        "<dt>Ranges checked</dt><dd>8 / 8</dd>",
        "<dt>Rows compared</dt><dd>6507</dd>",
        "<dt>Differing ranges</dt><dd>1</dd>",
        // Progress of the whole, of the database and of each table.
        "<progress max=\"8\" value=\"8\" class=\"ranges\"></progress>",
        "shop — 8 of 8 ranges checked, 6507 rows, 3 tables",
        "<progress max=\"3\" value=\"3\" class=\"ranges\"></progress>",
        // Each table: key, LSNs, result, note.
        "<code>id</code>",
        "0/16B3740 … 0/16B3A10",
        "<span class=\"badge ready\">equal</span>",
        "differs in 1 range(s)",
        "compared whole",
        "no primary key or replica identity index",
        // The range, its rows and the query to look at it, escaped.
        "public.\"&lt;b&gt;events&lt;/b&gt;\"",
        "<code>(\"id\") &gt;= ('1000') AND (\"id\") &lt; ('2000')</code>",
        "1000 row(s) on the source, 998 on the destination",
        "<li><code>id=1042: missing on the destination</code></li>",
        "id=1043: &lt;i&gt;changed&lt;/i&gt;",
        "... and 3 more",
        "<pre class=\"inspect\"><code>SELECT * FROM public.\"&lt;b&gt;events&lt;/b&gt;\" WHERE",
    ] {
        assert!(body.contains(text), "no {text:?} in\n{body}");
    }
    assert!(!body.contains("<b>events</b>"), "{body}");
    assert!(!body.contains("<i>changed"), "{body}");
    assert!(!body.contains("No verification has run"), "{body}");
}

#[tokio::test]
async fn a_running_verification_is_grey_with_its_progress_and_cannot_be_started_twice() {
    let mut s = snapshot(Phase::CatchUp, now());
    let mut running = verification();
    running.finished_at = None;
    running.mode = VerifyMode::Online;
    running.database = Some("shop".into());
    let table = &mut running.databases[0].tables[1];
    table.checked = 1;
    table.differing.clear();
    s.mappings[0].verify = Some(running);
    let h = harness(s, None);
    let (_, body) = call(&h.state, get("/mappings/prod?tab=verify")).await;
    for text in [
        "<div role=\"img\" aria-label=\"RUNNING\" class=\"light neutral\">",
        "online (writes running)",
        "database \"shop\"",
        "<dt>Running for</dt>",
        "<dt>Ranges checked</dt><dd>6 / 8</dd>",
        "<progress max=\"8\" value=\"6\" class=\"ranges\"></progress>",
        "<progress max=\"3\" value=\"1\" class=\"ranges\"></progress>",
        "<span class=\"badge neutral\">checking</span>",
        // The header's button waits for it.
        "A verification is running: ",
    ] {
        assert!(body.contains(text), "no {text:?} in\n{body}");
    }
    assert!(!body.contains("action=\"/mappings/prod/verify\""), "{body}");
}

#[tokio::test]
async fn the_verify_button_starts_a_verification_behind_a_checked_form() {
    let (state, answers) = harness(snapshot(Phase::CatchUp, now()), Some("let-me-in")).answering(
        verify,
        |(mapping, request)| {
            format!(
                "verification ({}) of mapping {mapping} started",
                request.mode
            )
        },
    );
    let csrf = state.csrf.value().to_owned();
    let (_, page) = call(&state, get("/mappings/prod")).await;
    assert!(page.contains("action=\"/mappings/prod/verify\""), "{page}");
    assert!(page.contains("Verify data"), "{page}");
    assert!(
        page.contains("<input type=\"checkbox\" name=\"exact\" value=\"on\">"),
        "{page}"
    );
    assert!(page.contains("exact (writes stopped)"), "{page}");

    let uri = "/mappings/prod/verify";
    for (form, code) in refused_forms(&csrf, "&exact=on") {
        let (got, _) = post(&state, uri, &form).await;
        assert_eq!(got, code, "{form}");
    }
    let (code, body) = post(&state, uri, &format!("csrf={csrf}&admin_token=let-me-in")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(
        body.contains("verification (online) of mapping prod started"),
        "{body}"
    );
    assert!(
        body.contains("href=\"/mappings/prod?tab=verify\""),
        "{body}"
    );
    let form = format!("csrf={csrf}&admin_token=let-me-in&exact=on");
    let (code, body) = post(&state, uri, &form).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(
        body.contains("verification (exact) of mapping prod started"),
        "{body}"
    );
    drop(state);
    let modes: Vec<_> = answers
        .await
        .unwrap()
        .into_iter()
        .map(|(mapping, r)| (mapping, r.mode, r.database, r.table))
        .collect();
    assert_eq!(
        modes,
        [
            ("prod".to_owned(), VerifyMode::Online, None, None),
            ("prod".to_owned(), VerifyMode::Exact, None, None)
        ]
    );
}

#[tokio::test]
async fn a_verification_already_running_is_refused_with_its_reason() {
    let h = harness(snapshot(Phase::CatchUp, now()), None);
    let (state, answers) = h.orchestrated(|mut commands| async move {
        while let Some(Command::Verify { reply, .. }) = commands.recv().await {
            let _ = reply.send(Err(CommandError::Refused(
                "a verification of mapping prod is already running".into(),
            )));
        }
    });
    let csrf = state.csrf.value().to_owned();
    let (code, body) = post(&state, "/mappings/prod/verify", &format!("csrf={csrf}")).await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert!(body.contains("already running"), "{body}");
    drop(state);
    answers.await.unwrap();
}

#[tokio::test]
async fn start_over_names_what_it_deletes_and_sends_a_checked_purge() {
    let (state, answers) = harness(snapshot(Phase::CatchUp, now()), Some("let-me-in")).answering(
        purge,
        |(mapping, db, request)| {
            format!("{mapping}/{db}: {:?} drop={}", request.tables, request.drop)
        },
    );
    let (_, tab) = call(&state, get("/mappings/prod?tab=databases")).await;
    assert!(
        tab.contains("href=\"/mappings/prod/databases/shop/purge\""),
        "{tab}"
    );
    let (code, page) = call(&state, get("/mappings/prod/databases/shop/purge")).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    let names = &snapshot(Phase::CatchUp, now()).mappings[0].databases[0].names;
    for says in [
        names.subscription.as_str(),
        names.slot.as_str(),
        "name=\"admin_token\"",
        "name=\"drop\"",
    ] {
        assert!(page.contains(says), "{says} not in {page}");
    }
    let csrf = state.csrf.value().to_owned();
    let uri = "/mappings/prod/databases/shop/purge";
    for (form, code) in refused_forms(&csrf, "") {
        let (got, _) = post(&state, uri, &form).await;
        assert_eq!(got, code, "{form}");
    }
    let (code, body) = post(
        &state,
        uri,
        &format!("csrf={csrf}&admin_token=let-me-in&tables=public.a%2C+b&drop="),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(body.contains("drop=false"), "{body}");
    let (code, body) = post(
        &state,
        uri,
        &format!("csrf={csrf}&admin_token=let-me-in&tables=&drop=on"),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(body.contains("drop=true"), "{body}");
    drop(state);
    let sent = answers.await.unwrap();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].2.tables, ["public.a", "b"]);
    // Only a ticked box (`drop=on`) drops: an empty field does not.
    assert!(!sent[0].2.drop);
    assert!(sent[1].2.drop);

    // A completed database: no link, and the page refuses.
    let h = harness(snapshot(Phase::Completed, now()), None);
    let (_, tab) = call(&h.state, get("/mappings/prod?tab=databases")).await;
    assert!(!tab.contains("/purge"), "{tab}");
    let (code, page) = call(&h.state, get("/mappings/prod/databases/shop/purge")).await;
    assert_eq!(code, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("never deletes it"), "{page}");
}

#[tokio::test]
async fn the_backups_tab_lists_this_mappings_backups_with_progress_and_checked_forms() {
    use migrator_core::backup::manifest::Manifest;
    use migrator_core::status::{BackupProgress, BackupRun};
    let store = tempfile::tempdir().unwrap();
    let finished = "20261204T101010Z-prod-source";
    std::fs::create_dir_all(store.path().join(finished).join("db0")).unwrap();
    std::fs::write(store.path().join(finished).join("db0/toc.dat"), b"toc").unwrap();
    Manifest {
        key: finished.into(),
        mapping: "prod".into(),
        side: "source".into(),
        server: "postgres@old:5432".into(),
        server_version: "15.14".into(),
        dump_tool: "pg_dump (PostgreSQL) 15.14".into(),
        started_at: "2026-12-04T10:10:10Z".into(),
        finished_at: "2026-12-04T10:12:00Z".into(),
        databases: Vec::new(),
        roles: None,
        roles_note: None,
        files: migrator_core::backup::manifest::sums(&store.path().join(finished)).unwrap(),
    }
    .write(&store.path().join(finished))
    .unwrap();
    std::fs::create_dir_all(store.path().join("20261204T111111Z-prod-destination")).unwrap();
    std::fs::create_dir_all(store.path().join("20261204T121212Z-other-source")).unwrap();
    let mut s = snapshot(Phase::CatchUp, now());
    s.mappings[0].backup = Some(BackupRun {
        side: "destination".into(),
        started_at: SystemTime::now(),
        finished_at: None,
        key: None,
        progress: Some(BackupProgress {
            database: "shop".into(),
            done: 2,
            total: 7,
        }),
        error: None,
    });
    let mut h = harness(s, Some("let-me-in"));
    h.state.backup.dir = Some(store.path().to_owned());
    let (state, sent) = h.orchestrated(|mut commands| async move {
        let mut seen = Vec::new();
        while let Some(command) = commands.recv().await {
            match command {
                Command::Backup {
                    mapping,
                    side,
                    reply,
                } => {
                    seen.push(format!("backup {mapping} {}", side.as_str()));
                    let _ = reply.send(Ok(vec!["started".into()]));
                }
                Command::DeleteBackup {
                    mapping,
                    key,
                    reply,
                } => {
                    seen.push(format!("delete {mapping} {key}"));
                    let _ = reply.send(Ok(vec!["deleted".into()]));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        seen
    });
    let (code, tab) = call(&state, get("/mappings/prod?tab=backups")).await;
    assert_eq!(code, StatusCode::OK);
    for says in [
        finished,
        "2026-12-04T10:12:00Z",
        "20261204T111111Z-prod-destination",
        "unfinished: not restorable",
        "shop: table 2 of 7",
        "action=\"/mappings/prod/backups\"",
        &format!("action=\"/mappings/prod/backups/{finished}/delete\""),
    ] {
        assert!(tab.contains(says), "{says} not in {tab}");
    }
    assert!(!tab.contains("-other-source"), "{tab}");
    let csrf = state.csrf.value().to_owned();
    for (form, code) in refused_forms(&csrf, "&side=source") {
        let (got, _) = post(&state, "/mappings/prod/backups", &form).await;
        assert_eq!(got, code, "{form}");
    }
    let (code, body) = post(
        &state,
        "/mappings/prod/backups",
        &format!("csrf={csrf}&admin_token=let-me-in&side=destination"),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, _) = post(
        &state,
        "/mappings/prod/backups",
        &format!("csrf={csrf}&admin_token=let-me-in&side=elsewhere"),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let (code, body) = post(
        &state,
        &format!("/mappings/prod/backups/{finished}/delete"),
        &format!("csrf={csrf}&admin_token=let-me-in"),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    drop(state);
    assert_eq!(
        sent.await.unwrap(),
        [
            "backup prod destination".to_owned(),
            format!("delete prod {finished}")
        ]
    );

    // Without backup.dir, the tab says what to set.
    let h = harness(snapshot(Phase::CatchUp, now()), None);
    let (_, tab) = call(&h.state, get("/mappings/prod?tab=backups")).await;
    assert!(tab.contains("MIGRATOR__BACKUP__DIR"), "{tab}");
}
