//! The tool killed (SIGKILL) in the middle of the fast copy, again during catch-up, and `complete`
//! killed in the middle of mark complete: each time the tool resumes from what the databases show
//! (the interrupted copy starts over, the begun completion is finished), and the result is the
//! same: no row lost or doubled, nothing left on the source.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

use migrator_core::testkit::{Cluster, sample};
use tokio_postgres::NoTls;

fn status_json(config: &Path) -> serde_json::Value {
    let out = binary()
        .args(["status", "--json", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn databases(status: &serde_json::Value) -> Vec<serde_json::Value> {
    status["mappings"][0]["databases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Source databases whose subscription on `destination` is disabled.
async fn disabled_subscriptions(destination: &Cluster) -> Vec<String> {
    connect(destination, "postgres")
        .await
        .query(
            "SELECT d.datname::text FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid \
             WHERE NOT s.subenabled",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Non-idle sessions of a cluster, for failure messages.
async fn activity(cluster: &Cluster) -> String {
    connect(cluster, "postgres")
        .await
        .query(
            "SELECT format('%s %s %s wait=%s/%s xact=%s: %s', pid, datname, state, wait_event_type, wait_event, \
               now() - xact_start, left(query, 200)) FROM pg_stat_activity WHERE state <> 'idle' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Like [`query_i64`], but 0 while the database does not exist yet.
async fn try_query_i64(cluster: &Cluster, db: &str, sql: &str) -> i64 {
    let Ok((client, connection)) = cluster.pg_config(db).connect(NoTls).await else {
        return 0;
    };
    tokio::spawn(connection);
    client
        .query_one(sql, &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_during_initial_sync_and_catch_up_the_tool_resumes_without_loss() {
    let (source, destination, load, dir, config) = migration_under_load().await;
    let log = dir.path().join("run.log");

    // 1. Kill in the middle of the fast copy: the slot exists, the tool's COPY sessions are
    //    streaming, no subscription yet.
    let mut run = start(&config, &log);
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if Instant::now() > end {
            panic!(
                "no copy was seen running; source:\n{}\ndestination:\n{}\nlog:\n{}",
                activity(&source).await,
                activity(&destination).await,
                std::fs::read_to_string(&log).unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let copying = try_query_i64(
            &source,
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'shop' AND query LIKE 'COPY %TO STDOUT%'",
        )
        .await;
        let copied = try_query_i64(
            &destination,
            sample::SHOP,
            "SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM orders)",
        )
        .await;
        if copying > 0 && copied > 0 {
            break;
        }
    }
    run.kill().unwrap();
    run.wait().unwrap();
    let subscriptions = try_query_i64(
        &destination,
        sample::SHOP,
        "SELECT count(*) FROM pg_subscription \
         WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .await;
    assert_eq!(subscriptions, 0, "killed after shop's copy had finished");

    // 2. Restart; kill again once every database streams (catch-up).
    let mut run = start(&config, &log);
    wait_until("catch-up everywhere", Duration::from_secs(180), || {
        let s = status_json(&config);
        let dbs = databases(&s);
        let all = dbs.len() == 4
            && dbs.iter().all(|d| {
                matches!(
                    d["phase"].as_str(),
                    Some("catch_up") | Some("cutover_ready")
                )
            });
        if all { Ok(()) } else { Err(s.to_string()) }
    })
    .await;
    run.kill().unwrap();
    run.wait().unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("dropped the slot of an interrupted copy"),
        "the second run did not start the interrupted copy over:\n{log_text}"
    );

    // 3. Restart; wait until every cutover condition holds everywhere.
    let mut run = start(&config, &log);
    wait_until("cutover conditions", Duration::from_secs(180), || {
        let s = status_json(&config);
        let dbs = databases(&s);
        if dbs.len() == 4 && dbs.iter().all(|d| d["cutover_conditions_met"] == true) {
            Ok(())
        } else {
            Err(s.to_string())
        }
    })
    .await;
    // The running process serves its API: the address is in its log (port 0 in the config).
    let address = address(&log).expect("the log names the HTTP address");
    let ready = http_get(&address, "/readyz");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let api = http_get(&address, "/api/status");
    assert!(
        api.starts_with("HTTP/1.1 200") && api.contains("\"name\":\"k\""),
        "{api}"
    );
    assert!(
        !api.contains(source.password()),
        "a password reached the API"
    );

    let rounds = load.stop().await.unwrap();
    assert!(rounds > 10);
    // SIGTERM: a graceful stop.
    terminate(&run);
    let exit = run.wait().unwrap();
    assert!(
        exit.success(),
        "run did not stop cleanly on SIGTERM: {exit:?}"
    );

    // 4. SIGKILL `complete` right after it has disabled a subscription: the databases it had
    //    begun show "completing" (never "disabled by hand"), and `run` alone finishes them.
    let mut complete = binary()
        .args(["complete", "k", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_count(
        &destination,
        "postgres",
        "SELECT count(*) FROM pg_subscription WHERE NOT subenabled",
        (Duration::from_millis(5), Duration::from_secs(90)),
        "complete never disabled a subscription",
    )
    .await;
    complete.kill().unwrap();
    complete.wait().unwrap();
    let begun = disabled_subscriptions(&destination).await;
    assert!(!begun.is_empty());
    let look = status_json(&config);
    for d in databases(&look) {
        let name = d["name"].as_str().unwrap().to_owned();
        if begun.contains(&name) {
            assert!(
                matches!(d["phase"].as_str(), Some("completing" | "completed")),
                "{name}: {d}"
            );
            assert!(
                !d["findings"].to_string().contains("subscription_disabled"),
                "{d}"
            );
        }
    }
    let mut run = start(&config, &log);
    wait_until(
        "run to finish the begun completions",
        Duration::from_secs(120),
        || {
            let s = status_json(&config);
            let done = databases(&s).iter().all(|d| {
                !begun.contains(&d["name"].as_str().unwrap_or_default().to_owned())
                    || d["phase"] == "completed"
            });
            if done { Ok(()) } else { Err(s.to_string()) }
        },
    )
    .await;
    terminate(&run);
    run.wait().unwrap();

    // 5. `complete` again finishes the rest.
    let out = binary()
        .args(["complete", "k", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "complete failed: {}", printed(&out));

    // Same rows on both sides, table by table.
    let ctx = mapping_k(&config);
    let mut rows = 0;
    for db in sample::DATABASES {
        let verified = verify_database(&ctx, db).await;
        let report = migrator_core::verify::report::lines("k", &verified).join("\n");
        assert_eq!(
            verified.outcome(),
            migrator_core::status::VerifyOutcome::Equal,
            "{report}"
        );
        assert!(verified.tables().count() > 0, "{report}");
        rows += verified.totals().rows;
    }
    assert!(rows > 500_000, "compared {rows} rows");
    assert_eq!(replication_slots(&source).await, 0);
    for db in sample::DATABASES {
        assert_eq!(
            query_i64(&source, db, "SELECT count(*) FROM pg_publication").await,
            0,
            "{db}"
        );
    }
}
