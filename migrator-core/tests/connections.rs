//! Every kind of connection the tool opens (`pg::connect`, `pg::pool`, the replication client)
//! carries the configured TCP keepalives and `TCP_USER_TIMEOUT`: read back from the sockets
//! themselves, found through the client port the server reports.

use std::os::fd::{BorrowedFd, RawFd};
use std::time::Duration;

use migrator_core::config::ConnectionSettings;
use migrator_core::pg;
use migrator_core::testkit::{Cluster, ClusterOptions};
use migrator_core::walsender::ReplicationConnection;
use secrecy::SecretString;

/// TCP options of one socket of this process.
#[derive(Debug, PartialEq, Eq)]
struct TcpOptions {
    keepalive: bool,
    idle: Duration,
    interval: Duration,
    count: u32,
    user_timeout: Option<Duration>,
}

/// The options of this process's TCP socket bound to local `port`.
fn socket_options(port: u16) -> TcpOptions {
    let inode = socket_inode(port).unwrap_or_else(|| panic!("no TCP socket on local port {port}"));
    let wanted = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if std::fs::read_link(entry.path()).is_ok_and(|link| link.to_str() == Some(&wanted)) {
            let fd: RawFd = entry.file_name().to_str().unwrap().parse().unwrap();
            // SAFETY: the descriptor is the socket of a connection the calling test holds open
            // until this function has returned; it is only read from.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            let socket = socket2::SockRef::from(&fd);
            return TcpOptions {
                keepalive: socket.keepalive().unwrap(),
                idle: socket.tcp_keepalive_time().unwrap(),
                interval: socket.tcp_keepalive_interval().unwrap(),
                count: socket.tcp_keepalive_retries().unwrap(),
                user_timeout: socket.tcp_user_timeout().unwrap(),
            };
        }
    }
    panic!("socket {inode} on local port {port} is not one of this process's descriptors");
}

/// The inode of the established TCP socket bound to local `port`, from /proc/net/tcp (hex
/// ports). Sockets in TIME_WAIT from earlier connections can hold the same ephemeral port: they
/// have inode 0 and another state, and are skipped.
fn socket_inode(port: u16) -> Option<String> {
    let suffix = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .map(|line| {
                    line.split_whitespace()
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        })
        .find(|fields| {
            fields.get(1).is_some_and(|local| local.ends_with(&suffix))
                && fields.get(3).is_some_and(|state| state == "01")
                && fields.get(9).is_some_and(|inode| inode != "0")
        })
        .and_then(|fields| fields.get(9).cloned())
}

async fn client_port(client: &tokio_postgres::Client) -> u16 {
    let port: i32 = client
        .query_one("SELECT inet_client_port()", &[])
        .await
        .unwrap()
        .get(0);
    port as u16
}

fn url_settings(cluster: &Cluster, query: &str) -> ConnectionSettings {
    ConnectionSettings {
        url: Some(SecretString::from(format!(
            "postgres://postgres:{}@127.0.0.1:{}/postgres?{query}",
            cluster.password(),
            cluster.port()
        ))),
        ..ConnectionSettings::default()
    }
}

#[tokio::test]
async fn connect_and_pools_give_up_on_a_dead_server_within_a_minute_by_default() {
    let cluster = Cluster::start(&ClusterOptions::source()).unwrap();
    let conn = cluster.connection_settings().resolve("test").unwrap();
    let defaults = TcpOptions {
        keepalive: true,
        idle: Duration::from_secs(30),
        interval: Duration::from_secs(10),
        count: 3,
        user_timeout: Some(Duration::from_secs(60)),
    };

    let client = pg::connect(&conn, "postgres").await.unwrap();
    assert_eq!(socket_options(client_port(&client).await), defaults);

    let pool = pg::pool(&conn, "postgres", 1).unwrap();
    let pooled = pool.get().await.unwrap();
    assert_eq!(socket_options(client_port(&pooled).await), defaults);
}

#[tokio::test]
async fn url_parameters_in_libpq_units_reach_every_kind_of_connection() {
    let cluster = Cluster::start(&ClusterOptions::source()).unwrap();
    let conn = url_settings(
        &cluster,
        "keepalives_idle=45&keepalives_interval=7&keepalives_count=5&tcp_user_timeout=2500",
    )
    .resolve("test")
    .unwrap();
    let configured = TcpOptions {
        keepalive: true,
        idle: Duration::from_secs(45),
        interval: Duration::from_secs(7),
        count: 5,
        user_timeout: Some(Duration::from_millis(2500)),
    };

    let client = pg::connect(&conn, "postgres").await.unwrap();
    assert_eq!(socket_options(client_port(&client).await), configured);

    // The replication client opens its own socket; the server knows its port.
    let walsender = ReplicationConnection::connect(&conn, "postgres")
        .await
        .unwrap();
    let port: i32 = client
        .query_one(
            "SELECT client_port FROM pg_stat_activity WHERE backend_type = 'walsender'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(socket_options(port as u16), configured);
    walsender.close().await;
}

#[tokio::test]
async fn fields_win_over_the_url_and_keepalives_can_be_turned_off() {
    let cluster = Cluster::start(&ClusterOptions::source()).unwrap();
    let mut settings = url_settings(&cluster, "keepalives_idle=45&tcp_user_timeout=2500");
    settings.keepalives = Some(false);
    settings.tcp_user_timeout = Some(Duration::from_secs(20));
    let conn = settings.resolve("test").unwrap();
    let client = pg::connect(&conn, "postgres").await.unwrap();
    let found = socket_options(client_port(&client).await);
    assert!(!found.keepalive, "{found:?}");
    assert_eq!(found.user_timeout, Some(Duration::from_secs(20)));
}
