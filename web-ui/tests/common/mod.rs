//! Snapshots built by hand and a harness that drives `app()` with `oneshot`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use migrator_core::config::{ConfigSource, Settings};
use migrator_core::naming::ReplicationNames;
use migrator_core::orchestrator::{Command, Reply};
use migrator_core::phase::{Lag, Phase};
use migrator_core::status::{
    DatabaseStatus, MappingStatus, Partition, PartitionedTable, PasswordOutcome, RangeReport,
    RoleAction, RoleStatus, SequenceStatus, SlotStatus, Snapshot, TableState, TableStatus,
    VerifyDatabase, VerifyMode, VerifyStatus, VerifyTable,
};
use migrator_core::verify::Request as VerifyRequest;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tower::ServiceExt;
use web_ui::{AppState, LogBuffer, app};

/// A snapshot time of now.
pub fn now() -> Option<SystemTime> {
    Some(SystemTime::now())
}

/// A snapshot time `seconds` ago.
pub fn ago(seconds: u64) -> Option<SystemTime> {
    Some(SystemTime::now() - Duration::from_secs(seconds))
}

pub fn database(name: &str, phase: Phase) -> DatabaseStatus {
    DatabaseStatus {
        name: name.into(),
        phase,
        names: (&ReplicationNames::new("prod", name)).into(),
        findings: vec![],
        last_error: None,
        tables: vec![
            TableStatus {
                schema: "public".into(),
                table: "orders".into(),
                state: TableState::Ready,
                bytes_copied: 800,
                bytes_total: 800,
            },
            TableStatus {
                schema: "public".into(),
                table: "events".into(),
                state: TableState::Copying,
                bytes_copied: 100,
                bytes_total: 400,
            },
        ],
        lag: Some(Lag {
            bytes: 123,
            seconds: 0.5,
        }),
        slot: Some(SlotStatus {
            name: ReplicationNames::new("prod", name).slot,
            active: true,
            restart_lsn: Some("0/1A2B3C4".into()),
            confirmed_flush_lsn: Some("0/1A2B3D0".into()),
            retained_bytes: 5 * 1_048_576,
            wal_status: Some("reserved".into()),
            safe_wal_bytes: None,
        }),
        sequences_total: 2,
        sequences_behind: 1,
        sequences: vec![
            SequenceStatus {
                schema: "public".into(),
                name: "orders_id_seq".into(),
                source_value: Some(4242),
                destination_value: Some(5242),
                on_destination: true,
                behind: false,
            },
            SequenceStatus {
                schema: "public".into(),
                name: "new_seq".into(),
                source_value: Some(7),
                destination_value: None,
                on_destination: false,
                behind: true,
            },
        ],
        partitions: vec![PartitionedTable {
            schema: "public".into(),
            table: "events".into(),
            key: "RANGE (created_at)".into(),
            partitions: vec![Partition {
                schema: "public".into(),
                table: "events_2026".into(),
                bound: "FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')".into(),
            }],
        }],
        deferred_missing: 0,
        cutover_conditions_met: phase == Phase::CutoverReady,
        conditions_held_seconds: 0.0,
        eta_seconds: Some(12.0),
        rates: None,
    }
}

pub fn snapshot(phase: Phase, at: Option<SystemTime>) -> Snapshot {
    Snapshot {
        generated_at: at,
        mappings: vec![MappingStatus {
            name: "prod".into(),
            source: "postgres@old:5432/postgres".into(),
            destination: "postgres@new:5432/postgres".into(),
            phase,
            findings: vec![],
            last_error: None,
            last_tick: at,
            databases: vec![database("shop", phase)],
            acting_here: true,
            held_by: None,
            verify: None,
            backup: None,
            pooler: Vec::new(),
            wal: Some(migrator_core::status::WalForecast {
                generated_mb_per_min: Some(120.0),
                retained_mb: 5.0,
                retained_mb_per_min: Some(2.0),
                limit_mb: Some(4096.0),
                minutes_to_limit: Some(2045.5),
                minutes_to_limit_if_stalled: Some(34.1),
            }),
            roles: vec![RoleStatus {
                name: "app_owner".into(),
                action: RoleAction::Copied,
                login: true,
                password: PasswordOutcome::NeedsPassword,
                member_of: vec!["readers".into()],
            }],
            copy: migrator_core::status::CopyRate {
                bytes_per_second: 12.5 * 1024.0 * 1024.0,
                limit_mb_per_s: 50,
                health_cap_mb_per_s: Some(20.0),
                health_reason: Some(
                    "a standby of the source is 600 MB behind (limit 512 MB)".into(),
                ),
            },
            instructions: "Cutover of mapping prod\n1. Check it is ready".into(),
        }],
    }
}

/// Settings as a deployment would have them, with secrets that must never be shown.
pub fn settings(admin_token: Option<&str>) -> Settings {
    let mut env: HashMap<String, String> = [
        (
            "MIGRATOR__MAPPINGS__PROD__SOURCE__URL",
            format!("postgres://app:{SOURCE_PASSWORD}@old:5432/postgres"),
        ),
        (
            "MIGRATOR__MAPPINGS__PROD__DESTINATION__HOST",
            "new".to_owned(),
        ),
        (
            "MIGRATOR__MAPPINGS__PROD__DESTINATION__USER",
            "postgres".to_owned(),
        ),
        (
            "MIGRATOR__MAPPINGS__PROD__DESTINATION__PASSWORD",
            DESTINATION_PASSWORD.to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(token) = admin_token {
        env.insert("MIGRATOR__SERVER__ADMIN_TOKEN".into(), token.into());
    }
    migrator_core::config::load(&ConfigSource {
        file: None,
        env: Some(env),
    })
    .expect("test settings are valid")
}

pub const SOURCE_PASSWORD: &str = "src-Pa55word";
pub const DESTINATION_PASSWORD: &str = "dst-Pa55word";

pub struct Harness {
    pub state: AppState,
    pub commands: mpsc::Receiver<Command>,
    /// Kept so that the state's receiver stays connected.
    pub status: watch::Sender<Arc<Snapshot>>,
}

pub fn harness(snapshot: Snapshot, token: Option<&str>) -> Harness {
    let (status_tx, status) = watch::channel(Arc::new(snapshot));
    let (commands_tx, commands) = mpsc::channel(4);
    let mut state = AppState::new(&settings(token), status, commands_tx, LogBuffer::new(50));
    state.stale_after = Duration::from_secs(30);
    Harness {
        state,
        commands,
        status: status_tx,
    }
}

impl Harness {
    /// Splits the harness into its state and a task that plays the orchestrator: `orchestrator`
    /// over the commands the state sends. The task also holds the status sender, so that the
    /// state's receiver stays connected while it runs.
    pub fn orchestrated<F>(
        self,
        orchestrator: impl FnOnce(mpsc::Receiver<Command>) -> F,
    ) -> (AppState, JoinHandle<F::Output>)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let Harness {
            state,
            commands,
            status,
        } = self;
        let run = orchestrator(commands);
        let task = tokio::spawn(async move {
            let _status = status;
            run.await
        });
        (state, task)
    }

    /// [`Harness::orchestrated`] by an orchestrator for the one kind of command `take` takes
    /// apart: it records what `take` gives of each and answers `Ok(vec![answer(&recorded)])`, and
    /// panics at a command of another kind. The task ends, with what it recorded, once every
    /// sender of commands (the state) is gone.
    pub fn answering<T: Send + 'static>(
        self,
        take: Take<T>,
        answer: impl Fn(&T) -> String + Send + 'static,
    ) -> (AppState, JoinHandle<Vec<T>>) {
        self.orchestrated(|mut commands| async move {
            let mut seen = Vec::new();
            while let Some(command) = commands.recv().await {
                let (recorded, reply) =
                    take(command).unwrap_or_else(|other| panic!("unexpected {other:?}"));
                let text = answer(&recorded);
                seen.push(recorded);
                let _ = reply.send(Ok(vec![text]));
            }
            seen
        })
    }

    /// Plays the orchestrator for every command: answers each with `{"done": ["ok"]}`; the task's
    /// result is the kind of every command that reached it, once every sender is gone.
    pub fn answer_all(self) -> (AppState, JoinHandle<Vec<&'static str>>) {
        self.answering(kind, |_| "ok".into())
    }
}

/// Takes a command of one kind apart into what a test records of it and where its answer goes;
/// gives back a command of another kind.
pub type Take<T> = fn(Command) -> Result<(T, Reply), Command>;

/// A [`Take`] for every command: its kind (`complete`, `resync`, `retry`, `rate-limit`,
/// `verify` or `purge`).
pub fn kind(command: Command) -> Result<(&'static str, Reply), Command> {
    Ok(match command {
        Command::Complete { reply, .. } => ("complete", reply),
        Command::Resync { reply, .. } => ("resync", reply),
        Command::Retry { reply, .. } => ("retry", reply),
        Command::SetRateLimit { reply, .. } => ("rate-limit", reply),
        Command::Verify { reply, .. } => ("verify", reply),
        Command::Purge { reply, .. } => ("purge", reply),
        Command::Backup { reply, .. } => ("backup", reply),
        Command::DeleteBackup { reply, .. } => ("backup-delete", reply),
    })
}

/// A [`Take`] for [`Command::Verify`]: its mapping and what it asks to compare.
pub fn verify(command: Command) -> Result<((String, VerifyRequest), Reply), Command> {
    match command {
        Command::Verify {
            mapping,
            request,
            reply,
        } => Ok(((mapping, request), reply)),
        other => Err(other),
    }
}

/// A [`Take`] for [`Command::Purge`]: its mapping, database and request.
pub fn purge(
    command: Command,
) -> Result<
    (
        (String, String, migrator_core::phases::purge::Request),
        Reply,
    ),
    Command,
> {
    match command {
        Command::Purge {
            mapping,
            database,
            request,
            reply,
        } => Ok(((mapping, database, request), reply)),
        other => Err(other),
    }
}

/// A [`Take`] for [`Command::Resync`]: its mapping.
pub fn resync(command: Command) -> Result<(String, Reply), Command> {
    match command {
        Command::Resync { mapping, reply } => Ok((mapping, reply)),
        other => Err(other),
    }
}

/// A [`Take`] for [`Command::Retry`]: its mapping.
pub fn retry(command: Command) -> Result<(String, Reply), Command> {
    match command {
        Command::Retry { mapping, reply } => Ok((mapping, reply)),
        other => Err(other),
    }
}

/// A [`Take`] for [`Command::SetRateLimit`]: its mapping and limit.
pub fn rate_limit(command: Command) -> Result<((String, u64), Reply), Command> {
    match command {
        Command::SetRateLimit {
            mapping,
            mb_per_s,
            reply,
        } => Ok(((mapping, mb_per_s), reply)),
        other => Err(other),
    }
}

/// Sends `request` to a new router over `state`.
pub async fn call_with_headers(
    state: &AppState,
    request: Request<Body>,
) -> (StatusCode, HeaderMap, String) {
    send(&app(state.clone()), request).await
}

/// Sends `request` from 127.0.0.1 (the rate limit keys on the peer address) to `router`.
pub async fn send(router: &Router, mut request: Request<Body>) -> (StatusCode, HeaderMap, String) {
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

pub async fn call(state: &AppState, request: Request<Body>) -> (StatusCode, String) {
    let (status, _, body) = call_with_headers(state, request).await;
    (status, body)
}

/// Posts `form` to `uri` of a new router over `state`.
pub async fn post(state: &AppState, uri: &str, form: &str) -> (StatusCode, String) {
    call(state, post_form(uri, form)).await
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

pub fn post_form(uri: &str, form: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .unwrap()
}

/// [`post_form`] with the browser headers `headers` (`Host`, `Origin`, `Sec-Fetch-Site`).
pub fn post_form_with(uri: &str, form: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut request = post_form(uri, form);
    for (name, value) in headers {
        request.headers_mut().append(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            axum::http::HeaderValue::from_str(value).unwrap(),
        );
    }
    request
}

pub fn complete(token: Option<&str>) -> Request<Body> {
    api_command("complete", token)
}

/// `POST /api/mappings/prod/{command}` as JSON (as curl or a script sends it: no `Origin`), with
/// the bearer `token`, if any.
pub fn api_command(command: &str, token: Option<&str>) -> Request<Body> {
    let mut r = Request::post(format!("/api/mappings/prod/{command}"))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    r.body(Body::from(json_body(command))).unwrap()
}

/// Every API command.
pub const API_COMMANDS: [&str; 8] = [
    "complete",
    "resync",
    "retry",
    "rate-limit",
    "verify",
    "databases/shop/purge",
    "backups",
    "backups/20261204T000000Z-prod-source/delete",
];

/// A JSON body `command` accepts.
pub fn json_body(command: &str) -> &'static str {
    match command {
        "rate-limit" => r#"{"mb_per_s": 5}"#,
        "verify" => r#"{"exact": false}"#,
        "databases/shop/purge" => r#"{"drop": false}"#,
        "backups" => r#"{"side": "source"}"#,
        _ => "{}",
    }
}

/// The status of `command` once the orchestrator took it: 202 for a verification, which runs
/// in the background, 200 for the others, which are done.
pub fn accepted(command: &str) -> StatusCode {
    match command {
        "verify" | "backups" => StatusCode::ACCEPTED,
        _ => StatusCode::OK,
    }
}

/// `POST /api/mappings/prod/{command}` with exactly `headers` and `body`.
pub fn api_post(command: &str, headers: &[(&str, &str)], body: &str) -> Request<Body> {
    let mut r = Request::post(format!("/api/mappings/prod/{command}"));
    for (name, value) in headers {
        r = r.header(*name, *value);
    }
    r.body(Body::from(body.to_owned())).unwrap()
}

/// A finished exact verification of database `shop` with one table equal and one whose range
/// `("id") >= ('1000') AND ("id") < ('2000')` differs (two rows listed, 3 more); the names,
/// condition and rows carry markup that must come out escaped.
pub fn verification() -> VerifyStatus {
    let started = SystemTime::now() - Duration::from_secs(95);
    VerifyStatus {
        mode: VerifyMode::Exact,
        database: None,
        table: None,
        started_at: started,
        finished_at: Some(started + Duration::from_secs(80)),
        error: None,
        databases: vec![VerifyDatabase {
            name: "shop".into(),
            error: None,
            tables: vec![
                VerifyTable {
                    table: "public.orders".into(),
                    key: vec!["id".into()],
                    ranges: 4,
                    checked: 4,
                    rows: 4000,
                    first_lsn: Some("0/16B3740".into()),
                    last_lsn: Some("0/16B3A10".into()),
                    differing: vec![],
                    unsettled: vec![],
                    error: None,
                    note: None,
                },
                VerifyTable {
                    table: "public.\"<b>events</b>\"".into(),
                    key: vec!["id".into()],
                    ranges: 3,
                    checked: 3,
                    rows: 2500,
                    first_lsn: Some("0/16B3740".into()),
                    last_lsn: Some("0/16B3740".into()),
                    differing: vec![RangeReport {
                        condition: Some("(\"id\") >= ('1000') AND (\"id\") < ('2000')".into()),
                        source_rows: 1000,
                        destination_rows: 998,
                        rows: vec![
                            "id=1042: missing on the destination".into(),
                            "id=1043: <i>changed</i>".into(),
                        ],
                        more_rows: 3,
                        inspect: "SELECT * FROM public.\"<b>events</b>\" WHERE (\"id\") >= ('1000') AND (\"id\") < ('2000') ORDER BY 1".into(),
                    }],
                    unsettled: vec![],
                    error: None,
                    note: None,
                },
                VerifyTable {
                    table: "public.audit_log".into(),
                    key: vec![],
                    ranges: 1,
                    checked: 1,
                    rows: 7,
                    first_lsn: Some("0/16B3800".into()),
                    last_lsn: None,
                    differing: vec![],
                    unsettled: vec![],
                    error: None,
                    note: Some("no primary key or replica identity index".into()),
                },
            ],
        }],
    }
}
