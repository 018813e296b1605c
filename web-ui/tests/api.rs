//! The JSON API, health, readiness and metrics routes through `app()` with `oneshot`.

mod common;

use axum::http::StatusCode;
use common::*;
use migrator_core::orchestrator::Command;
use migrator_core::orchestrator::commands::CommandError;
use migrator_core::phase::Phase;
use migrator_core::status::{Snapshot, VerifyMode};

#[tokio::test]
async fn healthz_is_always_ok() {
    let h = harness(Snapshot::default(), None);
    assert_eq!(
        call(&h.state, get("/healthz")).await,
        (StatusCode::OK, "ok".into())
    );
}

#[tokio::test]
async fn readyz_needs_a_recent_snapshot() {
    let fresh = harness(snapshot(Phase::CatchUp, now()), None);
    assert_eq!(call(&fresh.state, get("/readyz")).await.0, StatusCode::OK);
    let none = harness(Snapshot::default(), None);
    let (code, body) = call(&none.state, get("/readyz")).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("not published"), "{body}");
    let stale = harness(snapshot(Phase::CatchUp, ago(120)), None);
    let (code, body) = call(&stale.state, get("/readyz")).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body.contains("120s old") || body.contains("121s old"),
        "{body}"
    );
}

#[tokio::test]
async fn api_status_is_the_snapshot_as_json() {
    let h = harness(snapshot(Phase::InitialSync, now()), None);
    let (code, body) = call(&h.state, get("/api/status")).await;
    assert_eq!(code, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["mappings"][0]["name"], "prod");
    assert_eq!(json["mappings"][0]["phase"], "initial_sync");
    assert_eq!(
        json["mappings"][0]["databases"][0]["tables"][1]["state"],
        "copying"
    );
    assert_eq!(json["mappings"][0]["databases"][0]["lag"]["bytes"], 123);
}

#[tokio::test]
async fn metrics_show_phase_lag_tables_and_readiness() {
    let mut shown = snapshot(Phase::CutoverReady, now());
    shown.mappings[0].databases[0].rates = Some(migrator_core::status::ApplyRates {
        wal_mb_per_min: 60.0,
        apply_mb_per_min: 30.0,
        over_seconds: 180.0,
    });
    let h = harness(shown, None);
    let (code, body) = call(&h.state, get("/metrics")).await;
    assert_eq!(code, StatusCode::OK);
    for line in [
        "pgmigrator_lag_bytes{mapping=\"prod\",database=\"shop\"} 123",
        "pgmigrator_lag_seconds{mapping=\"prod\",database=\"shop\"} 0.5",
        "pgmigrator_database_phase{mapping=\"prod\",database=\"shop\",phase=\"cutoverready\"} 1",
        "pgmigrator_tables{mapping=\"prod\",database=\"shop\",state=\"copying\"} 1",
        "pgmigrator_copied_bytes{mapping=\"prod\",database=\"shop\"} 900",
        "pgmigrator_mapping_cutover_ready{mapping=\"prod\"} 1",
        // 60 and 30 MB/min.
        "pgmigrator_source_wal_bytes_per_second{mapping=\"prod\",database=\"shop\"} 1048576.0",
        "pgmigrator_apply_bytes_per_second{mapping=\"prod\",database=\"shop\"} 524288.0",
        // 12.5 MB/s read; limit 50 MB/s held to 20 MB/s by the health guard.
        "pgmigrator_copy_read_bytes_per_second{mapping=\"prod\"} 13107200.0",
        "pgmigrator_copy_limit_bytes_per_second{mapping=\"prod\"} 20971520.0",
    ] {
        assert!(body.contains(line), "missing `{line}` in:\n{body}");
    }
}

#[tokio::test]
async fn complete_forwards_to_the_orchestrator_and_maps_its_answer() {
    let mut h = harness(snapshot(Phase::CutoverReady, now()), None);
    let state = h.state.clone();
    let answers = tokio::spawn(async move {
        let mut n = 0;
        while let Some(Command::Complete { mapping, reply }) = h.commands.recv().await {
            assert_eq!(mapping, "prod");
            n += 1;
            let _ = reply.send(if n == 1 {
                Ok(vec!["\"shop\": done".into()])
            } else {
                Err(CommandError::Refused("mapping prod is catching up".into()))
            });
        }
    });
    let (code, body) = call(&state, complete(None)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(body.contains("\\\"shop\\\": done"), "{body}");
    let (code, body) = call(&state, complete(None)).await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert!(body.contains("catching up"), "{body}");
    drop(state);
    answers.abort();
}

#[tokio::test]
async fn complete_needs_the_admin_token_when_one_is_set() {
    let h = harness(snapshot(Phase::CutoverReady, now()), Some("s3cret-token"));
    for token in [None, Some("wrong")] {
        let (code, body) = call(&h.state, complete(token)).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(!body.contains("s3cret-token"));
    }
}

#[tokio::test]
async fn complete_without_a_running_orchestrator_is_503() {
    let h = harness(snapshot(Phase::CutoverReady, now()), None);
    let state = h.state.clone();
    drop(h.commands);
    let (code, _) = call(&state, complete(None)).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn resync_needs_the_admin_token_and_forwards_to_the_orchestrator() {
    let (state, answers) =
        harness(snapshot(Phase::Problematic, now()), Some("tok")).answering(resync, |mapping| {
            assert_eq!(mapping, "prod");
            "table app.t created".into()
        });
    let (code, _) = call(&state, api_command("resync", Some("wrong"))).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, body) = call(&state, api_command("resync", Some("tok"))).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body, r#"{"done":["table app.t created"]}"#);
    drop(state);
    assert_eq!(answers.await.unwrap().len(), 1);
}

#[tokio::test]
async fn retry_needs_the_admin_token_and_forwards_to_the_orchestrator() {
    let (state, answers) =
        harness(snapshot(Phase::Problematic, now()), Some("tok")).answering(retry, |mapping| {
            assert_eq!(mapping, "prod");
            "mapping prod: failures forgotten".into()
        });
    let (code, _) = call(&state, api_command("retry", None)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, body) = call(&state, api_command("retry", Some("tok"))).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body, r#"{"done":["mapping prod: failures forgotten"]}"#);
    drop(state);
    assert_eq!(answers.await.unwrap().len(), 1);
}

#[tokio::test]
async fn rate_limit_takes_json_needs_the_admin_token_and_forwards_the_limit() {
    let (state, answers) = harness(snapshot(Phase::InitialSync, now()), Some("tok"))
        .answering(rate_limit, |_| "set".into());
    let request = |token: &str, body: &str| {
        axum::http::Request::post("/api/mappings/prod/rate-limit")
            .header(axum::http::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap()
    };
    let (code, _) = call(&state, request("wrong", r#"{"mb_per_s": 5}"#)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, body) = call(&state, request("tok", r#"{"mb_per_s": "fast"}"#)).await;
    assert!(code.is_client_error(), "{code} {body}");
    let (code, body) = call(&state, request("tok", r#"{"mb_per_s": 25}"#)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body, r#"{"done":["set"]}"#);
    drop(state);
    assert_eq!(answers.await.unwrap(), vec![("prod".to_owned(), 25)]);
}

/// `POST /api/mappings/{mapping}/verify` as curl sends it, with the bearer `token` and `body`.
fn verify_request(
    mapping: &str,
    token: Option<&str>,
    body: &str,
) -> axum::http::Request<axum::body::Body> {
    let mut r = axum::http::Request::post(format!("/api/mappings/{mapping}/verify"))
        .header(axum::http::header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        r = r.header(axum::http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    r.body(axum::body::Body::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn verify_needs_the_admin_token_and_starts_what_the_body_asks() {
    let (state, answers) = harness(snapshot(Phase::CatchUp, now()), Some("tok")).answering(
        verify,
        |(mapping, request)| {
            format!(
                "verification ({}) of mapping {mapping} started",
                request.mode
            )
        },
    );
    for token in [None, Some("wrong")] {
        let (code, body) = call(&state, verify_request("prod", token, "{}")).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{token:?}: {body}");
    }
    // An empty body takes the defaults: online, every database and table.
    let (code, body) = call(&state, verify_request("prod", Some("tok"), "")).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        body,
        r#"{"done":["verification (online) of mapping prod started"]}"#
    );
    let exact = r#"{"exact": true, "database": "shop", "table": "public.orders"}"#;
    let (code, body) = call(&state, verify_request("prod", Some("tok"), exact)).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    assert!(body.contains("verification (exact)"), "{body}");
    // What it cannot use is refused before the orchestrator, saying what to send.
    for bad in [
        r#"{"exact": "yes"}"#,
        r#"{"exat": true}"#,
        "[true]",
        "exact",
    ] {
        let (code, body) = call(&state, verify_request("prod", Some("tok"), bad)).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body.contains("\\\"exact\\\": true|false"), "{bad}: {body}");
    }
    drop(state);
    let seen: Vec<_> = answers
        .await
        .unwrap()
        .into_iter()
        .map(|(mapping, r)| (mapping, r.mode, r.database, r.table))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("prod".to_owned(), VerifyMode::Online, None, None),
            (
                "prod".to_owned(),
                VerifyMode::Exact,
                Some("shop".to_owned()),
                Some("public.orders".to_owned())
            ),
        ]
    );
}

#[tokio::test]
async fn verify_answers_404_for_an_unknown_mapping_and_409_while_one_runs() {
    let (state, answers) =
        harness(snapshot(Phase::CatchUp, now()), None).orchestrated(|mut commands| async move {
            let mut n = 0;
            while let Some(Command::Verify { mapping, reply, .. }) = commands.recv().await {
                n += 1;
                let _ = reply.send(if mapping == "prod" {
                    Err(CommandError::Refused(
                        "a verification of mapping prod is already running".into(),
                    ))
                } else {
                    Err(CommandError::UnknownMapping(mapping))
                });
            }
            n
        });
    let (code, body) = call(&state, verify_request("nope", None, "{}")).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("nope"), "{body}");
    let (code, body) = call(&state, verify_request("prod", None, "{}")).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("already running"), "{body}");
    drop(state);
    assert_eq!(answers.await.unwrap(), 2);
}

#[tokio::test]
async fn metrics_show_the_last_verification() {
    let none = harness(snapshot(Phase::CatchUp, now()), None);
    let (_, body) = call(&none.state, get("/metrics")).await;
    assert!(
        body.contains("pgmigrator_verify_running{mapping=\"prod\"} 0"),
        "{body}"
    );
    assert!(
        !body.contains("pgmigrator_verify_ranges_planned{"),
        "no figures before the first verification: {body}"
    );

    let mut s = snapshot(Phase::CatchUp, now());
    s.mappings[0].verify = Some(verification());
    let finished = harness(s.clone(), None);
    let (_, body) = call(&finished.state, get("/metrics")).await;
    for line in [
        "# HELP pgmigrator_verify_ranges_differing ",
        "# TYPE pgmigrator_verify_ranges_planned gauge",
        "pgmigrator_verify_running{mapping=\"prod\"} 0",
        "pgmigrator_verify_ranges_planned{mapping=\"prod\"} 8",
        "pgmigrator_verify_ranges_checked{mapping=\"prod\"} 8",
        "pgmigrator_verify_ranges_differing{mapping=\"prod\"} 1",
        "pgmigrator_verify_ranges_unsettled{mapping=\"prod\"} 0",
        "pgmigrator_verify_rows{mapping=\"prod\"} 6507",
    ] {
        assert!(body.contains(line), "missing `{line}` in:\n{body}");
    }

    let running = s.mappings[0].verify.as_mut().unwrap();
    running.finished_at = None;
    running.databases[0].tables[1].checked = 1;
    running.databases[0].tables[1].unsettled = running.databases[0].tables[1].differing.clone();
    let running = harness(s, None);
    let (_, body) = call(&running.state, get("/metrics")).await;
    for line in [
        "pgmigrator_verify_running{mapping=\"prod\"} 1",
        "pgmigrator_verify_ranges_checked{mapping=\"prod\"} 6",
        "pgmigrator_verify_ranges_unsettled{mapping=\"prod\"} 1",
    ] {
        assert!(body.contains(line), "missing `{line}` in:\n{body}");
    }
}

/// A browser on a page of another site, posting to the dashboard it can reach.
const EVIL: (&str, &str) = ("origin", "http://evil.example");
const HOST: (&str, &str) = ("host", "localhost:8080");
const JSON: (&str, &str) = ("content-type", "application/json");

/// An API command to send: its name, headers and body.
type Post<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

/// Sends each of `requests` and returns the status and body of each,
/// and the commands that reached the orchestrator.
async fn send_all(
    token: Option<&str>,
    requests: &[Post<'_>],
) -> (Vec<(StatusCode, String)>, Vec<&'static str>) {
    let (state, answers) = harness(snapshot(Phase::CutoverReady, now()), token).answer_all();
    let mut got = Vec::new();
    for (command, headers, body) in requests {
        got.push(call(&state, api_post(command, headers, body)).await);
    }
    drop(state);
    (got, answers.await.unwrap())
}

/// Every API command with each of the header sets `cases` and a JSON body it accepts.
fn every_command<'a>(cases: &[Vec<(&'a str, &'a str)>]) -> Vec<Post<'a>> {
    API_COMMANDS
        .iter()
        .flat_map(|c| cases.iter().map(|h| (*c, h.clone(), json_body(c))))
        .collect()
}

/// The `error` of an API answer.
fn error_message(body: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    json["error"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn commands_from_another_site_are_refused_before_the_orchestrator() {
    let cases: [Vec<(&str, &str)>; 5] = [
        vec![HOST, EVIL, JSON],
        vec![HOST, ("origin", "null"), JSON],
        // Another port of the same host is another origin (a dev server, another tool).
        vec![HOST, ("origin", "http://localhost:3000"), JSON],
        vec![HOST, ("sec-fetch-site", "cross-site"), JSON],
        vec![HOST, ("sec-fetch-site", "same-site"), JSON],
    ];
    let requests = every_command(&cases);
    let (answers, reached) = send_all(None, &requests).await;
    for ((command, headers, _), (code, body)) in requests.iter().zip(&answers) {
        assert_eq!(
            code,
            &StatusCode::FORBIDDEN,
            "{command} {headers:?}: {body}"
        );
        let message = error_message(body);
        assert!(message.contains("refused"), "{message}");
        assert!(message.contains("curl"), "says what to do: {message}");
    }
    assert_eq!(
        reached,
        Vec::<&str>::new(),
        "nothing reached the orchestrator"
    );
}

#[tokio::test]
async fn a_refusal_names_the_foreign_origin() {
    let (answers, _) = send_all(None, &[("complete", vec![HOST, EVIL, JSON], "{}")]).await;
    let (code, body) = &answers[0];
    assert_eq!(*code, StatusCode::FORBIDDEN);
    assert!(
        body.contains("http://evil.example") && body.contains("localhost:8080"),
        "{body}"
    );
}

#[tokio::test]
async fn commands_that_are_not_json_are_415_with_what_to_send() {
    let cases: [(Vec<(&str, &str)>, &str); 4] = [
        (vec![("content-type", "text/plain")], "{}"),
        (
            vec![("content-type", "application/x-www-form-urlencoded")],
            "mb_per_s=5",
        ),
        (
            vec![("content-type", "multipart/form-data; boundary=x")],
            "--x--",
        ),
        (vec![], ""),
    ];
    let requests: Vec<_> = API_COMMANDS
        .iter()
        .flat_map(|c| cases.iter().map(|(h, b)| (*c, h.clone(), *b)))
        .collect();
    let (answers, reached) = send_all(None, &requests).await;
    for ((command, headers, _), (code, body)) in requests.iter().zip(&answers) {
        assert_eq!(
            code,
            &StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{command} {headers:?}: {body}"
        );
        let message = error_message(body);
        assert!(
            message.contains("Content-Type: application/json"),
            "{message}"
        );
        assert!(
            message.contains(&format!("/api/mappings/prod/{command}")),
            "{message}"
        );
    }
    assert_eq!(reached, Vec::<&str>::new());
}

#[tokio::test]
async fn same_origin_and_non_browser_json_commands_are_accepted() {
    let cases: [Vec<(&str, &str)>; 6] = [
        // The dashboard's own origin, as a browser on it sends it.
        vec![
            HOST,
            ("origin", "http://localhost:8080"),
            ("sec-fetch-site", "same-origin"),
            JSON,
        ],
        // Behind a TLS-terminating ingress that keeps the Host.
        vec![
            ("host", "migrator.example.com"),
            ("origin", "https://migrator.example.com"),
            JSON,
        ],
        vec![HOST, ("sec-fetch-site", "none"), JSON],
        // curl, kubectl, scripts: no Origin, no Sec-Fetch-Site.
        vec![HOST, JSON],
        vec![JSON],
        vec![HOST, ("content-type", "application/json; charset=utf-8")],
    ];
    let requests = every_command(&cases);
    let (answers, reached) = send_all(None, &requests).await;
    for ((command, headers, _), (code, body)) in requests.iter().zip(&answers) {
        assert_eq!(code, &accepted(command), "{command} {headers:?}: {body}");
        assert_eq!(body, r#"{"done":["ok"]}"#);
    }
    assert_eq!(reached.len(), requests.len());
}

#[tokio::test]
async fn same_origin_json_still_needs_the_admin_token_when_one_is_set() {
    let same_origin = vec![
        HOST,
        ("origin", "http://localhost:8080"),
        ("sec-fetch-site", "same-origin"),
        JSON,
    ];
    let mut with_token = same_origin.clone();
    with_token.push(("authorization", "Bearer s3cret-token"));
    let mut requests: Vec<_> = API_COMMANDS
        .iter()
        .map(|c| (*c, same_origin.clone(), json_body(c)))
        .collect();
    requests.push(("complete", with_token, "{}"));
    let (answers, reached) = send_all(Some("s3cret-token"), &requests).await;
    let n = API_COMMANDS.len();
    for ((command, _, _), (code, body)) in requests.iter().zip(&answers).take(n) {
        assert_eq!(code, &StatusCode::UNAUTHORIZED, "{command}: {body}");
        assert!(!body.contains("s3cret-token"), "{body}");
    }
    assert_eq!(answers[n].0, StatusCode::OK, "{}", answers[n].1);
    assert_eq!(reached, vec!["complete"]);
}

#[tokio::test]
async fn a_foreign_origin_is_refused_even_with_the_right_token() {
    let (answers, reached) = send_all(
        Some("s3cret-token"),
        &[(
            "complete",
            vec![HOST, EVIL, JSON, ("authorization", "Bearer s3cret-token")],
            "{}",
        )],
    )
    .await;
    assert_eq!(answers[0].0, StatusCode::FORBIDDEN, "{}", answers[0].1);
    assert!(reached.is_empty());
}

#[tokio::test]
async fn a_loopback_dashboard_refuses_commands_that_name_it_otherwise() {
    let (mut state, answers) = harness(snapshot(Phase::CutoverReady, now()), None).answer_all();
    state.loopback_only = true;
    // A page of rebind.example whose name now resolves to 127.0.0.1: same origin to the browser.
    let rebound = call(
        &state,
        api_post(
            "complete",
            &[
                ("host", "rebind.example:8080"),
                ("origin", "http://rebind.example:8080"),
                ("sec-fetch-site", "same-origin"),
                JSON,
            ],
            "{}",
        ),
    )
    .await;
    assert_eq!(rebound.0, StatusCode::FORBIDDEN, "{}", rebound.1);
    assert!(rebound.1.contains("DNS rebinding"), "{}", rebound.1);
    // The dashboard's own page, opened as localhost, still works.
    let own = call(
        &state,
        api_post(
            "complete",
            &[HOST, ("origin", "http://localhost:8080"), JSON],
            "{}",
        ),
    )
    .await;
    assert_eq!(own.0, StatusCode::OK, "{}", own.1);
    drop(state);
    assert_eq!(answers.await.unwrap(), vec!["complete"]);
}

#[tokio::test]
async fn purge_needs_the_admin_token_and_forwards_the_database_and_what_to_empty() {
    let (state, answers) = harness(snapshot(Phase::CatchUp, now()), Some("tok")).answering(
        purge,
        |(mapping, database, request)| {
            format!(
                "{mapping}/{database}: {:?} drop={}",
                request.tables, request.drop
            )
        },
    );
    let request = |db: &str, token: &str, body: &str| {
        axum::http::Request::post(format!("/api/mappings/prod/databases/{db}/purge"))
            .header(axum::http::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap()
    };
    let (code, _) = call(&state, request("shop", "wrong", "")).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, body) = call(&state, request("shop", "tok", r#"{"tables": 5}"#)).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("not a purge request"), "{body}");
    let (code, body) = call(&state, request("shop", "tok", "")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body, r#"{"done":["prod/shop: [] drop=false"]}"#);
    // A database name with a quote, a slash and Unicode arrives decoded.
    let (code, body) = call(
        &state,
        request(
            "Ord%C3%A9r%20%22x%22%2Fy",
            "tok",
            r#"{"tables": ["public.orders"], "drop": false}"#,
        ),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(
        body.contains(r#"prod/Ordér \"x\"/y: [\"public.orders\"] drop=false"#),
        "{body}"
    );
    drop(state);
    assert_eq!(answers.await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_refused_purge_is_409_with_the_reason() {
    let (state, _answers) =
        harness(snapshot(Phase::CatchUp, now()), None).orchestrated(|mut commands| async move {
            while let Some(command) = commands.recv().await {
                let (_, reply) = purge(command).unwrap_or_else(|other| panic!("{other:?}"));
                let _ = reply.send(Err(CommandError::Refused(
                    "database \"shop\" is completed".into(),
                )));
            }
        });
    let (code, body) = call(
        &state,
        axum::http::Request::post("/api/mappings/prod/databases/shop/purge")
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert!(error_message(&body).contains("is completed"), "{body}");
}
