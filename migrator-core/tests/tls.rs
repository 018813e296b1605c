//! TLS to PostgreSQL, against clusters started with `ssl = on` and certificates made at test
//! time: a whole migration with `verify-full` and channel binding on every connection where
//! `pg_hba.conf` rejects plaintext, and each way a certificate check must refuse, with the
//! error naming the setting to change.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use migrator_core::config::{ChannelBinding, ConnectionSettings, ResolvedConnection, SslMode};
use migrator_core::orchestrator;
use migrator_core::pg;
use migrator_core::phase::Phase;
use migrator_core::testkit::tls::{ServerTls, TestCa, write_file};
use migrator_core::testkit::{Cluster, ClusterOptions};
use migrator_core::walsender::ReplicationConnection;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

/// pg_hba.conf lines that refuse every connection without TLS, replication included.
const NO_PLAINTEXT: [&str; 2] = [
    "hostnossl all all 0.0.0.0/0 reject",
    "hostnossl replication all 0.0.0.0/0 reject",
];

/// A directory every OS user can read (the destination server reads the CA from it).
fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn tls_options(base: ClusterOptions, ca: &TestCa, names: &[&str]) -> ClusterOptions {
    base.with_tls(ServerTls {
        server: ca.server(names).unwrap(),
        client_ca_pem: ca.pem().to_owned(),
    })
}

fn settings_with(
    cluster: &Cluster,
    edit: impl FnOnce(&mut ConnectionSettings),
) -> Result<ResolvedConnection, String> {
    let mut settings = cluster.connection_settings();
    edit(&mut settings);
    settings
        .resolve("test")
        .map_err(|problems| format!("{problems:?}"))
}

/// Connects both ways the tool does (a client and a replication connection); the errors as text.
async fn try_both(conn: &ResolvedConnection) -> (Result<(), String>, Result<(), String>) {
    let client = match pg::connect(conn, "postgres").await {
        Ok(client) => client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .map_err(|e| e.to_string())
            .and_then(|row| {
                row.get::<_, bool>(0)
                    .then_some(())
                    .ok_or_else(|| "connected without TLS".to_owned())
            }),
        Err(e) => Err(e.to_string()),
    };
    let replication = match ReplicationConnection::connect(conn, "postgres").await {
        Ok(walsender) => {
            walsender.close().await;
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    };
    (client, replication)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_with_verify_full_and_channel_binding_everywhere_never_speaks_plaintext() {
    let ca = TestCa::new("migration CA").unwrap();
    let names = ["localhost", "127.0.0.1"];
    let mut source_options = tls_options(ClusterOptions::source(), &ca, &names);
    let mut destination_options = tls_options(ClusterOptions::destination(), &ca, &names);
    for line in NO_PLAINTEXT {
        source_options = source_options.with_hba(line);
        destination_options = destination_options.with_hba(line);
    }
    let source = Cluster::start(&source_options).unwrap();
    let destination = Cluster::start(&destination_options).unwrap();
    let files = shared_dir();
    let ca_file = write_file(files.path(), "ca.crt", ca.pem(), 0o644).unwrap();

    let admin = connect(&source, "postgres").await;
    admin.batch_execute("CREATE DATABASE app").await.unwrap();
    let app = connect(&source, "app").await;
    app.batch_execute(
        "CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL); \
         INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 5000) g",
    )
    .await
    .unwrap();

    let ca_path = ca_file.display().to_string();
    let mut extra = vec![("MIGRATOR__MAPPINGS__TLS__DATABASES__INCLUDE", "app")];
    let keys: Vec<(String, String)> = ["SOURCE", "DESTINATION"]
        .iter()
        .flat_map(|side| {
            [
                (
                    format!("MIGRATOR__MAPPINGS__TLS__{side}__SSLMODE"),
                    "verify-full".to_owned(),
                ),
                (
                    format!("MIGRATOR__MAPPINGS__TLS__{side}__SSLROOTCERT"),
                    ca_path.clone(),
                ),
                (
                    format!("MIGRATOR__MAPPINGS__TLS__{side}__CHANNEL_BINDING"),
                    "require".to_owned(),
                ),
            ]
        })
        .chain([(
            "MIGRATOR__MAPPINGS__TLS__SOURCE__SUBSCRIPTION_SSLROOTCERT".to_owned(),
            ca_path.clone(),
        )])
        .collect();
    extra.extend(keys.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let settings = settings(&[("tls", &source, &destination)], &extra);
    let shutdown = CancellationToken::new();
    let handle = orchestrator::start(&settings, shutdown.clone()).unwrap();
    let mut status = handle.status.clone();
    let ready = |phase: Phase| matches!(phase, Phase::CatchUp | Phase::CutoverReady);
    wait_until("app to catch up over TLS", Duration::from_secs(120), || {
        let snapshot = status.borrow_and_update().clone();
        async move {
            let m = snapshot.mapping("tls").ok_or("no mapping yet")?;
            match m.databases.iter().find(|d| d.name == "app") {
                Some(d) if ready(d.phase) => Ok(()),
                _ => Err(serde_json::to_string_pretty(&*snapshot).unwrap()),
            }
        }
    })
    .await;

    // Rows written now reach the destination only through the subscription (verify-full with
    // the CA file on the destination server).
    app.batch_execute(
        "INSERT INTO items (name) SELECT 'late ' || g FROM generate_series(1, 100) g",
    )
    .await
    .unwrap();
    wait_until_replicated(&source, Duration::from_secs(60)).await;
    assert_eq!(
        assert_same_contents(&source, &destination, "app").await,
        5100
    );

    // Every session on the source, the subscription's walsender included, is TLS.
    let sessions = admin
        .query(
            "SELECT a.backend_type, coalesce(a.application_name, ''), s.ssl \
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.backend_type IN ('client backend', 'walsender')",
            &[],
        )
        .await
        .unwrap();
    let walsenders = sessions
        .iter()
        .filter(|r| r.get::<_, &str>(0) == "walsender")
        .count();
    assert!(walsenders >= 1, "the subscription streams");
    for row in &sessions {
        assert!(
            row.get::<_, bool>(2),
            "{} {:?} is not TLS",
            row.get::<_, &str>(0),
            row.get::<_, &str>(1)
        );
    }
    // The conninfo stored on the destination asks for verify-full.
    let dst = connect(&destination, "app").await;
    let conninfo: String = dst
        .query_one("SELECT subconninfo FROM pg_subscription", &[])
        .await
        .unwrap()
        .get(0);
    for expected in [
        "sslmode='verify-full'".to_owned(),
        format!("sslrootcert='{ca_path}'"),
        "channel_binding='require'".to_owned(),
    ] {
        assert!(
            conninfo.contains(&expected),
            "{expected} not in the subscription's conninfo"
        );
    }

    shutdown.cancel();
    handle.join.await.unwrap();
    // pg_hba.conf rejected no plaintext attempt: none was made.
    for (side, cluster) in [("source", &source), ("destination", &destination)] {
        let log = cluster.server_log();
        assert!(
            !log.contains("no encryption"),
            "{side} saw a plaintext attempt:\n{log}"
        );
    }
}

#[tokio::test]
async fn certificate_checks_refuse_what_libpq_refuses_and_say_which_setting_to_change() {
    let ca = TestCa::new("right CA").unwrap();
    let other = TestCa::new("other CA").unwrap();
    // Issued for a name only: connecting to 127.0.0.1 is a host name mismatch.
    let source = Cluster::start(&tls_options(
        ClusterOptions::source(),
        &ca,
        &["db.internal"],
    ))
    .unwrap();
    let files = shared_dir();
    let right = write_file(files.path(), "right.crt", ca.pem(), 0o644).unwrap();
    let wrong = write_file(files.path(), "wrong.crt", other.pem(), 0o644).unwrap();
    let with = |mode: SslMode, root: Option<&PathBuf>| {
        settings_with(&source, |s| {
            s.sslmode = Some(mode);
            s.sslrootcert = root.cloned();
        })
        .unwrap()
    };

    // Under verify-full the name must match...
    let (client, replication) = try_both(&with(SslMode::VerifyFull, Some(&right))).await;
    for result in [client, replication] {
        let error = result.unwrap_err();
        assert!(error.contains("not issued for the host"), "{error}");
        assert!(error.contains("verify-ca"), "{error}");
    }
    // ...verify-ca checks the CA only, and require without a CA checks nothing.
    let (client, replication) = try_both(&with(SslMode::VerifyCa, Some(&right))).await;
    assert_eq!((client, replication), (Ok(()), Ok(())));
    let (client, replication) = try_both(&with(SslMode::Require, None)).await;
    assert_eq!((client, replication), (Ok(()), Ok(())));
    // A CA that did not sign the server's certificate is refused, also under require with
    // sslrootcert (libpq then checks, as verify-ca does).
    for mode in [SslMode::VerifyCa, SslMode::Require] {
        let (client, replication) = try_both(&with(mode, Some(&wrong))).await;
        for result in [client, replication] {
            let error = result.unwrap_err();
            assert!(
                error.contains("not signed by a CA in sslrootcert"),
                "{mode:?}: {error}"
            );
        }
    }

    // A server without TLS: require refuses, prefer falls back, channel_binding=require refuses.
    let plain = Cluster::start(&ClusterOptions::source()).unwrap();
    let require = settings_with(&plain, |s| s.sslmode = Some(SslMode::Require)).unwrap();
    let (client, replication) = try_both(&require).await;
    for result in [client, replication] {
        let error = result.unwrap_err();
        assert!(error.contains("does not offer TLS"), "{error}");
    }
    let prefer = settings_with(&plain, |_| {}).unwrap();
    let walsender = ReplicationConnection::connect(&prefer, "postgres").await;
    assert!(walsender.is_ok(), "prefer falls back to plaintext");
    walsender.unwrap().close().await;
    let bound = settings_with(&plain, |s| {
        s.channel_binding = Some(ChannelBinding::Require)
    })
    .unwrap();
    let (client, replication) = try_both(&bound).await;
    for result in [client, replication] {
        let error = result.unwrap_err();
        assert!(error.contains("channel binding"), "{error}");
    }
}

#[tokio::test]
async fn a_client_certificate_logs_in_where_pg_hba_says_cert_and_nothing_else_does() {
    let ca = TestCa::new("client CA").unwrap();
    let stranger = TestCa::new("stranger CA").unwrap();
    let options = tls_options(ClusterOptions::source(), &ca, &["localhost", "127.0.0.1"])
        .with_hba("hostssl all cert_user 127.0.0.1/32 cert")
        .with_hba("hostssl replication cert_user 127.0.0.1/32 cert");
    let source = Cluster::start(&options).unwrap();
    connect(&source, "postgres")
        .await
        .batch_execute("CREATE ROLE cert_user LOGIN REPLICATION")
        .await
        .unwrap();
    let files = shared_dir();
    let root = write_file(files.path(), "ca.crt", ca.pem(), 0o644).unwrap();
    let issued = ca.client("cert_user").unwrap();
    let cert = write_file(files.path(), "client.crt", &issued.cert_pem, 0o644).unwrap();
    let key = write_file(files.path(), "client.key", &issued.key_pem, 0o600).unwrap();
    let foreign = stranger.client("cert_user").unwrap();
    let foreign_cert = write_file(files.path(), "foreign.crt", &foreign.cert_pem, 0o644).unwrap();
    let foreign_key = write_file(files.path(), "foreign.key", &foreign.key_pem, 0o600).unwrap();
    let as_cert_user = |cert: Option<(&PathBuf, &PathBuf)>| {
        settings_with(&source, |s| {
            s.user = Some("cert_user".into());
            s.password = None;
            s.sslmode = Some(SslMode::VerifyFull);
            s.sslrootcert = Some(root.clone());
            s.sslcert = cert.map(|(c, _)| c.clone());
            s.sslkey = cert.map(|(_, k)| k.clone());
        })
        .unwrap()
    };

    let (client, replication) = try_both(&as_cert_user(Some((&cert, &key)))).await;
    assert_eq!((client, replication), (Ok(()), Ok(())));

    let (client, replication) = try_both(&as_cert_user(None)).await;
    for result in [client, replication] {
        let error = result.unwrap_err();
        assert!(error.contains("sslcert and sslkey"), "{error}");
    }
    let (client, _) = try_both(&as_cert_user(Some((&foreign_cert, &foreign_key)))).await;
    let error = client.unwrap_err();
    assert!(error.contains("refused the client certificate"), "{error}");
}

#[tokio::test]
async fn the_url_carries_every_ssl_setting_and_a_field_wins() {
    let ca = TestCa::new("url CA").unwrap();
    let source =
        Cluster::start(&tls_options(ClusterOptions::source(), &ca, &["localhost"])).unwrap();
    let files = shared_dir();
    let root = write_file(files.path(), "ca file.crt", ca.pem(), 0o644).unwrap();
    let url = |host: &str, query: &str| ConnectionSettings {
        url: Some(SecretString::from(format!(
            "postgres://postgres:{}@{host}:{}/postgres?{query}",
            source.password(),
            source.port()
        ))),
        ..ConnectionSettings::default()
    };
    let encoded_root = root.display().to_string().replace(' ', "%20");
    let full = url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={encoded_root}&channel_binding=require"),
    )
    .resolve("test")
    .unwrap();
    assert_eq!(full.sslmode, SslMode::VerifyFull);
    assert_eq!(try_both(&full).await, (Ok(()), Ok(())));

    // 127.0.0.1 is not in the certificate: the url's verify-full refuses it, a field's
    // verify-ca wins over the url and accepts it.
    let mismatch = url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={encoded_root}"),
    );
    let error = pg::connect(&mismatch.resolve("test").unwrap(), "postgres")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("not issued for the host"), "{error}");
    let mut relaxed = mismatch.clone();
    relaxed.sslmode = Some(SslMode::VerifyCa);
    assert_eq!(
        try_both(&relaxed.resolve("test").unwrap()).await,
        (Ok(()), Ok(()))
    );

    // A bad value names the key and the valid values, and never echoes the url.
    let problems = url("localhost", "sslmode=verify_full")
        .resolve("test")
        .unwrap_err();
    let text = format!("{problems:?}");
    assert!(text.contains("verify-full"), "{text}");
    assert!(!text.contains(source.password()), "{text}");
}
