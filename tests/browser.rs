//! The dashboard in a real browser (Debian's Chromium through chromedriver): the real binary
//! runs against real PostgreSQL 15 -> 18 clusters; the grid turns green by its own refresh, the
//! detail page marks the mapping complete through the confirmation form, and the slots are gone
//! from the source. Screenshots land in target/screenshots/ (1280x800 and a 390-wide phone).

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use migrator_core::naming::ReplicationNames;
use migrator_core::testkit::{Cluster, sample};
use tokio_postgres::NoTls;

/// A browser binary and its driver, from the environment or Debian's packages.
fn browser() -> (PathBuf, PathBuf) {
    let find = |var: &str, default: &str| {
        let path = std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(default));
        assert!(
            path.exists(),
            "{} not found (set {var} to another path): install Chromium and chromedriver with \
             `bash scripts/install-browser.sh` (Debian packages chromium and chromium-driver)",
            path.display()
        );
        path
    };
    (
        find("MIGRATOR_CHROMIUM", "/usr/bin/chromium"),
        find("MIGRATOR_CHROMEDRIVER", "/usr/bin/chromedriver"),
    )
}

/// Kills the child when dropped, so that a failing test leaves no process behind.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn eventually<T>(what: &str, deadline: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn start_migrator(config: &Path, log: &Path) -> Process {
    let log = std::fs::File::create(log).unwrap();
    Process(
        Command::new(env!("CARGO_BIN_EXE_postgres-migrator"))
            .env_remove("MIGRATOR_CONFIG")
            .env("RUST_LOG", "info")
            .args(["run", "--log-format", "pretty", "--config"])
            .arg(config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start postgres-migrator run"),
    )
}

async fn start_browser(chromium: &Path, chromedriver: &Path) -> (Process, Client) {
    let port = free_port();
    let driver = Process(
        Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    eventually("chromedriver to listen", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .await;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-extensions", "--no-first-run",
                "--hide-scrollbars", "--window-size=1280,800",
            ],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a chromedriver session");
    (driver, client)
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    std::fs::write(screenshots().join(name), png).unwrap();
}

/// Sets the viewport (not the window) to `width` x `height` CSS pixels.
async fn viewport(client: &Client, width: u32, height: u32) {
    client.set_window_size(width, height).await.unwrap();
    let inner = client
        .execute("return [window.innerWidth, window.innerHeight];", vec![])
        .await
        .unwrap();
    let (iw, ih) = (
        inner[0].as_u64().unwrap() as u32,
        inner[1].as_u64().unwrap() as u32,
    );
    client
        .set_window_size(2 * width - iw, 2 * height - ih)
        .await
        .unwrap();
}

/// Whether the page fits the viewport's width (no sideways scrolling of the whole page).
async fn fits_width(client: &Client) -> bool {
    client
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await
        .unwrap()
        .as_bool()
        .unwrap()
}

async fn slots_on(source: &Cluster) -> i64 {
    let (client, conn) = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} user=postgres password={} dbname=postgres",
            source.port(),
            source.password()
        ),
        NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    client
        .query_one(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pgmig\\_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_watches_the_light_turn_green_and_marks_the_mapping_complete() {
    let (chromium, chromedriver) = browser();
    let (source, destination) = Cluster::start_pair().unwrap();
    sample::load(&source, 5_000).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("migrator.toml");
    let log = dir.path().join("run.log");
    write!(
        std::fs::File::create(&config).unwrap(),
        "[server]\nlisten = \"127.0.0.1:0\"\nrefresh_interval = \"1s\"\n\
         [migration]\npoll_interval = \"500ms\"\nstable_for = \"2s\"\n\
         [mappings.prod.source]\nhost = \"127.0.0.1\"\nport = {}\npassword = \"{}\"\n\
         [mappings.prod.destination]\nhost = \"127.0.0.1\"\nport = {}\npassword = \"{}\"\n",
        source.port(),
        source.password(),
        destination.port(),
        destination.password()
    )
    .unwrap();
    let _migrator = start_migrator(&config, &log);
    let address = eventually(
        "the HTTP address in the log",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(&log)
                .ok()?
                .lines()
                .find_map(|l| l.split("HTTP server listening address=").nth(1))
                .map(|a| a.trim().to_owned())
        },
    )
    .await;
    let base = format!("http://{address}");

    let (_driver, client) = start_browser(&chromium, &chromedriver).await;
    viewport(&client, 1280, 800).await;
    client.goto(&format!("{base}/")).await.unwrap();
    client
        .find(Locator::Css("article[data-mapping='prod']"))
        .await
        .expect("the grid shows the mapping");
    // No reload from here: the page's script swaps in fresh content until the light is green.
    client
        .wait()
        .at_most(Duration::from_secs(180))
        .for_element(Locator::Css("article[data-mapping='prod'] .light.ready"))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the light did not turn green: {e}\nlog:\n{}",
                std::fs::read_to_string(&log).unwrap()
            )
        });
    let grid = client.source().await.unwrap();
    assert!(grid.contains("CUTOVER READY"));
    assert!(
        grid.contains("<b>1</b> cutover ready"),
        "the status bar counts it"
    );
    assert!(fits_width(&client).await, "the grid fits 1280 px");
    screenshot(&client, "grid-1280x800.png").await;

    client
        .find(Locator::Css("article[data-mapping='prod'] a.details"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css(".detail-head .light.big.ready"))
        .await
        .unwrap();
    assert!(fits_width(&client).await, "the detail page fits 1280 px");
    screenshot(&client, "detail-1280x800.png").await;
    for tab in ["tables", "roles", "slot", "metrics", "instructions"] {
        client
            .goto(&format!("{base}/mappings/prod?tab={tab}"))
            .await
            .unwrap();
        let content = client
            .find(Locator::Css(&format!("#tab-{tab}")))
            .await
            .unwrap();
        if tab == "roles" {
            let text = content.text().await.unwrap();
            for expected in ["shop_app", "analyst", "reporting", "copied (SCRAM)"] {
                assert!(
                    text.contains(expected),
                    "roles tab: no {expected:?} in {text}"
                );
            }
        }
        screenshot(&client, &format!("detail-{tab}-1280x800.png")).await;
    }

    // Verify: the button starts it, the Verify tab shows it finish equal (no writes run here).
    client.goto(&format!("{base}/mappings/prod")).await.unwrap();
    client
        .find(Locator::Css("form.verify-command button[type='submit']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The form's answer first: leaving before it would abandon the POST.
    let started = client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("section.message"))
        .await
        .expect("the verify form answers");
    let text = started.text().await.unwrap();
    assert!(text.contains("Verifying prod (online)"), "{text}");
    client
        .goto(&format!("{base}/mappings/prod?tab=verify"))
        .await
        .unwrap();
    let light = client
        .wait()
        .at_most(Duration::from_secs(120))
        .for_element(Locator::Css("#tab-verify .verify-summary .light.ready"))
        .await
        .expect("the verification ends equal");
    assert_eq!(light.text().await.unwrap().trim(), "EQUAL");
    let text = client
        .find(Locator::Css("#tab-verify"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("every table equal"), "{text}");
    assert!(fits_width(&client).await, "the verify tab fits 1280 px");
    screenshot(&client, "detail-verify-1280x800.png").await;

    viewport(&client, 390, 844).await;
    client.goto(&format!("{base}/")).await.unwrap();
    assert!(fits_width(&client).await, "the grid fits a 390 px phone");
    screenshot(&client, "grid-390.png").await;
    client.goto(&format!("{base}/mappings/prod")).await.unwrap();
    assert!(
        fits_width(&client).await,
        "the detail page fits a 390 px phone"
    );
    screenshot(&client, "detail-390.png").await;
    viewport(&client, 1280, 800).await;

    // Mark complete: the button asks for confirmation, which names what will be dropped.
    assert!(slots_on(&source).await > 0);
    client
        .find(Locator::Css("form.complete button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let confirm = client
        .wait()
        .for_element(Locator::Css("section.confirm"))
        .await
        .unwrap();
    let text = confirm.text().await.unwrap();
    assert!(text.contains("Mark prod complete?"), "{text}");
    assert!(
        text.contains(&ReplicationNames::new("prod", sample::SHOP).slot),
        "{text}"
    );
    screenshot(&client, "confirm-1280x800.png").await;
    confirm
        .find(Locator::Css("button.danger"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let done = client
        .wait()
        .at_most(Duration::from_secs(120))
        .for_element(Locator::Css("section.message.completed"))
        .await
        .unwrap();
    let text = done.text().await.unwrap();
    assert!(text.contains("prod is complete"), "{text}");
    screenshot(&client, "completed-1280x800.png").await;
    assert_eq!(
        slots_on(&source).await,
        0,
        "every slot is gone from the source"
    );

    client.goto(&format!("{base}/")).await.unwrap();
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(
            "article[data-mapping='prod'] .light.completed",
        ))
        .await
        .expect("the grid shows the mapping completed");
    screenshot(&client, "grid-completed-1280x800.png").await;
    client.close().await.unwrap();
}
