//! Who can reach the HTTP server: whether `server.listen` admits this machine only, and what to
//! say when commands are open to the network without an admin token.

use std::net::{IpAddr, SocketAddr};

use super::ServerSettings;

/// Whether `listen` (`address:port`, as `server.listen` is written) accepts connections from
/// this machine only: an address in 127.0.0.0/8, `::1` (also written `::ffff:127.x.y.z`), or the
/// name `localhost`. Wildcards (`0.0.0.0`, `::`) and every other address can be reached from the
/// network; so can anything that is not an address (nothing is resolved).
pub fn is_loopback_listen(listen: &str) -> bool {
    let listen = listen.trim();
    if let Ok(address) = listen.parse::<SocketAddr>() {
        return address.ip().to_canonical().is_loopback();
    }
    // No port, or a host name with or without one.
    let host = match listen.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => host,
        _ => listen,
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical().is_loopback(),
        Err(_) => host
            .strip_suffix('.')
            .unwrap_or(host)
            .eq_ignore_ascii_case("localhost"),
    }
}

impl ServerSettings {
    /// Whether anyone who can reach the port may send commands: the server listens beyond this
    /// machine and no admin token is set.
    pub fn commands_open_to_network(&self) -> bool {
        self.admin_token.is_none() && !is_loopback_listen(&self.listen)
    }

    /// What to tell the operator when [`Self::commands_open_to_network`]: the risk and the two
    /// ways out. Holds the listen address, never a secret.
    pub fn open_commands_warning(&self) -> Option<String> {
        self.commands_open_to_network().then(|| {
            format!(
                "server.listen {} can be reached from the network and no server.admin_token is \
                 set: anyone who can reach the port can mark mappings complete (dropping their \
                 replication slots), resync, retry or change rate limits. Set server.admin_token \
                 (or MIGRATOR__SERVER__ADMIN_TOKEN, e.g. from a Secret) to a long random value, \
                 or listen on 127.0.0.1 and reach the dashboard through a port-forward or SSH \
                 tunnel; server.require_admin_token = true makes this a configuration error",
                self.listen
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback_listen;

    #[test]
    fn loopback_addresses_and_localhost_are_loopback() {
        for listen in [
            "127.0.0.1:8080",
            "127.1.2.3:80",
            "127.255.255.254:1",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:8080",
            "localhost:8080",
            "LOCALHOST:8080",
            "localhost.:8080",
            "localhost",
            "127.0.0.1",
            "::1",
            "[::1]",
            " 127.0.0.1:8080 ",
        ] {
            assert!(is_loopback_listen(listen), "{listen}");
        }
    }

    #[test]
    fn wildcards_other_addresses_and_names_are_not() {
        for listen in [
            "0.0.0.0:8080",
            "[::]:8080",
            "10.0.0.5:8080",
            "192.168.1.10:8080",
            "128.0.0.1:8080",
            "[::2]:8080",
            "[::ffff:10.0.0.1]:8080",
            "example.com:8080",
            "localhost.example.com:8080",
            "mylocalhost:8080",
            "0.0.0.0",
            "",
            "not an address",
        ] {
            assert!(!is_loopback_listen(listen), "{listen}");
        }
    }
}
