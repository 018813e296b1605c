//! One actor per mapping, as operators run it: two `run` processes on one configuration, under a
//! write load. Exactly one acts (the other's status names the holder); the holder killed with
//! SIGKILL in the middle of the copy is replaced by the other within a minute, which reaches
//! cutover ready with equal data; `complete` and `resync` from the command line are refused while
//! an instance holds the mapping, and work once it has stopped.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

use migrator_core::testkit::sample;

fn read(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

fn api_status(address: &str) -> serde_json::Value {
    let response = http_get(address, "/api/status");
    serde_json::from_str(body(&response)).unwrap_or_else(|e| panic!("{e}: {response}"))
}

/// Waits (for `what`, failing after `deadline`) until `log` holds `text`.
async fn wait_for_log(what: &str, deadline: Duration, log: &Path, text: &str) {
    wait_until(what, deadline, || {
        let logged = read(log);
        if logged.contains(text) {
            Ok(())
        } else {
            Err(logged)
        }
    })
    .await
}

/// The HTTP address of the `run` logging to `log`, once it listens.
async fn wait_for_address(log: &Path) -> String {
    wait_until(
        "the HTTP address in the log",
        Duration::from_secs(30),
        || address(log).ok_or_else(|| read(log)),
    )
    .await
}

fn command(args: &[&str], config: &Path) -> std::process::Output {
    binary()
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_one_actor_and_a_takeover_when_the_holder_dies() {
    let (source, destination, load, dir, config) = migration_under_load().await;
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));

    // 1. A takes the lease; B, started after, watches and names A.
    let mut a = start(&config, &log_a);
    wait_for_log(
        "A to take the lease",
        Duration::from_secs(30),
        &log_a,
        "took the mapping's lease",
    )
    .await;
    let mut b = start(&config, &log_b);
    let address_b = wait_for_address(&log_b).await;
    let held = wait_until("B to name the holder", Duration::from_secs(30), || {
        let s = api_status(&address_b);
        let m = &s["mappings"][0];
        if m["held_by"].is_object() {
            Ok(m.clone())
        } else {
            Err(s.to_string())
        }
    })
    .await;
    let holder = held["held_by"]["application_name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        holder.contains(&format!("pid {}", a.id())),
        "B names A ({}) as the holder: {held}",
        a.id()
    );
    assert_eq!(held["acting_here"], false);
    assert!(
        http_get(&address_b, "/metrics").contains("pgmigrator_mapping_lease_held{mapping=\"k\"} 0")
    );
    assert!(http_get(&address_b, "/readyz").starts_with("HTTP/1.1 200"));

    // 2. Commands from the command line while A holds the mapping: refused, exit 3, naming A.
    let slots_before = replication_slots(&source).await;
    for args in [
        ["complete", "k", "--force"].as_slice(),
        ["resync", "k"].as_slice(),
    ] {
        let out = command(args, &config);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(
            stderr.contains("held by another instance")
                && stderr.contains(&format!("pid {}", a.id())),
            "{args:?}: {stderr}"
        );
    }
    assert!(
        replication_slots(&source).await >= slots_before,
        "a refused command dropped nothing"
    );

    // 3. Kill A in the middle of the copy (only A copies: B has not started one).
    wait_for_log(
        "A's copy on the source",
        Duration::from_secs(60),
        &log_a,
        "starting the fast copy",
    )
    .await;
    wait_for_count(
        &source,
        "postgres",
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY %TO STDOUT%'",
        (Duration::from_millis(50), Duration::from_secs(60)),
        "no copy seen running",
    )
    .await;
    assert!(
        !read(&log_b).contains("starting the fast copy"),
        "B acted while A held the lease"
    );
    a.kill().unwrap();
    a.wait().unwrap();
    let killed = Instant::now();
    wait_for_log(
        "B to take over",
        Duration::from_secs(60),
        &log_b,
        "took the mapping's lease",
    )
    .await;
    eprintln!("B took over {:?} after A was killed", killed.elapsed());
    wait_until(
        "B: cutover ready everywhere",
        Duration::from_secs(240),
        || {
            let s = api_status(&address_b);
            let m = &s["mappings"][0];
            let dbs = m["databases"].as_array().cloned().unwrap_or_default();
            if m["acting_here"] == true
                && dbs.len() == 4
                && dbs.iter().all(|d| d["phase"] == "cutover_ready")
            {
                Ok(())
            } else {
                Err(s.to_string())
            }
        },
    )
    .await;

    // 4. B stops; the command line may now act.
    let rounds = load.stop().await.unwrap();
    assert!(rounds > 10);
    terminate(&b);
    assert!(b.wait().unwrap().success());
    let out = command(&["resync", "k"], &config);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("no schema drift"),
        "{}",
        printed(&out)
    );
    // Writes stopped: the data is proven equal before the replication is taken apart.
    let out = command(&["verify", "k", "--exact"], &config);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    assert!(
        report.contains("\nverify (exact) of mapping k: every table equal: 4 database(s)"),
        "{report}"
    );
    let out = command(&["complete", "k"], &config);
    assert!(out.status.success(), "{}", printed(&out));
    // A row lost on the destination afterwards is found, by key, with exit code 4.
    execute(
        &destination,
        sample::SHOP,
        "DELETE FROM orders WHERE id = (SELECT min(id) FROM orders)",
    )
    .await;
    let lost = query_i64(&source, sample::SHOP, "SELECT min(id) FROM orders").await;
    let out = command(
        &[
            "verify",
            "k",
            "--exact",
            "--database",
            sample::SHOP,
            "--table",
            "public.orders",
        ],
        &config,
    );
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(4), "{}", printed(&out));
    assert!(
        report.contains(&format!("(id)=({lost}): missing on the destination")),
        "{report}"
    );
    assert_eq!(replication_slots(&source).await, 0);
}
