//! A replication-protocol connection to one source database (`replication=database`), for the
//! one thing tokio-postgres cannot do: `CREATE_REPLICATION_SLOT ... (SNAPSHOT 'export')`, which
//! creates the logical slot and exports a snapshot of exactly the slot's starting point.
//!
//! Why by hand: tokio-postgres 0.7 has no way to send the `replication` startup parameter, and
//! the crates that speak the replication protocol bring a TLS stack and a WAL-streaming client
//! this tool never uses (the destination's subscription streams the WAL). What is needed here is
//! the startup packet, authentication and one simple query; the message encoding, parsing and
//! SCRAM come from `postgres-protocol`, the crate tokio-postgres itself is built on.
//!
//! The exported snapshot lives as long as the connection stays idle after the command, so the
//! caller keeps the [`ReplicationConnection`] until every copy worker has imported it, then drops
//! it (which ends the walsender).

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::backend::{AuthenticationSaslBody, ErrorResponseBody, Message};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_postgres::config::Host;

use crate::config::{ChannelBinding, ResolvedConnection, SslMode, Tls, connection_target};
use crate::ddl::quote::ident;
use crate::pg::{self, PgError};

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open walsender connection.
pub struct ReplicationConnection {
    io: Box<dyn Io>,
    buf: BytesMut,
    target: String,
}

/// What `CREATE_REPLICATION_SLOT` answered.
#[derive(Debug, Clone)]
pub struct ExportedSlot {
    /// The WAL position from which the slot streams changes: everything before it is in the
    /// snapshot, everything after it comes through the slot.
    pub consistent_point: String,
    /// The snapshot to `SET TRANSACTION SNAPSHOT` to.
    pub snapshot: String,
}

impl ReplicationConnection {
    /// Opens a logical replication connection to database `dbname` of `conn`'s instance, as the
    /// tool's own user (which needs REPLICATION or superuser). A TCP socket gets the instance's
    /// keepalives and `TCP_USER_TIMEOUT`, as every connection of [`crate::pg`] does.
    pub async fn connect(conn: &ResolvedConnection, dbname: &str) -> Result<Self, PgError> {
        let pg = conn.for_database(dbname);
        let target = connection_target(&pg);
        let fail = |message: String, transient: bool| PgError::Connect {
            target: target.clone(),
            message,
            hint: "",
            transient,
        };
        let port = pg.get_ports().first().copied().unwrap_or(5432);
        let timeout = pg
            .get_connect_timeout()
            .copied()
            .unwrap_or(std::time::Duration::from_secs(30));
        let opened = tokio::time::timeout(timeout, async {
            match pg.get_hosts().first() {
                // As in libpq, TLS is not used on Unix sockets.
                Some(Host::Unix(dir)) => {
                    let io: Box<dyn Io> = Box::new(
                        tokio::net::UnixStream::connect(dir.join(format!(".s.PGSQL.{port}")))
                            .await
                            .map_err(|e| fail(format!("{e} (is the server running?)"), true))?,
                    );
                    Ok((io, None))
                }
                host => {
                    let host = match host {
                        Some(Host::Tcp(host)) => host.as_str(),
                        _ => "localhost",
                    };
                    let tcp = tcp_connect(host, port, &pg)
                        .await
                        .map_err(|e| fail(format!("{e} (is the server running?)"), true))?;
                    negotiate_tls(tcp, host, &conn.tls, &target).await
                }
            }
        })
        .await
        .map_err(|_| fail(format!("no answer within {timeout:?}"), true))??;
        let (opened, server_end_point) = opened;
        let mut this = ReplicationConnection {
            io: opened,
            buf: BytesMut::with_capacity(8192),
            target: target.clone(),
        };
        let binding = Binding {
            mode: conn.tls.channel_binding,
            server_end_point,
        };
        let user = pg.get_user().unwrap_or("postgres").to_owned();
        let mut out = BytesMut::new();
        let application = pg
            .get_application_name()
            .unwrap_or("postgres-migrator")
            .to_owned();
        frontend::startup_message(
            [
                ("user", user.as_str()),
                ("database", dbname),
                ("replication", "database"),
                ("application_name", application.as_str()),
                ("client_encoding", "UTF8"),
            ],
            &mut out,
        )
        .map_err(|e| fail(e.to_string(), false))?;
        this.send(&mut out).await?;
        this.authenticate(&user, pg.get_password(), &binding)
            .await?;
        Ok(this)
    }

    /// Answers the server's authentication requests until it is ready for queries, with the
    /// method it asks for; refuses a login that `binding` or SCRAM's proof does not allow.
    async fn authenticate(
        &mut self,
        user: &str,
        password: Option<&[u8]>,
        binding: &Binding,
    ) -> Result<(), PgError> {
        let mut login = Login::default();
        loop {
            match self.receive().await? {
                Message::AuthenticationOk => self.check_login(&login, binding)?,
                Message::AuthenticationCleartextPassword => {
                    self.send_cleartext(password, binding).await?;
                }
                Message::AuthenticationMd5Password(body) => {
                    self.send_md5(user, password, body.salt(), binding).await?;
                }
                Message::AuthenticationSasl(body) => {
                    self.start_scram(&body, password, binding, &mut login)
                        .await?;
                }
                Message::AuthenticationSaslContinue(body) => {
                    self.continue_scram(&mut login, body.data()).await?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    self.finish_scram(&mut login, body.data())?;
                }
                Message::ParameterStatus(_) | Message::BackendKeyData(_) => {}
                Message::ReadyForQuery(_) => return Ok(()),
                Message::ErrorResponse(body) => return Err(self.refused(&body)),
                _ => return Err(self.protocol("an unsupported authentication request")),
            }
        }
    }

    /// AuthenticationOk: accepted only when a SCRAM exchange ended with the server's verified
    /// signature, and when channel binding is required, only after a bound SCRAM exchange.
    fn check_login(&self, login: &Login, binding: &Binding) -> Result<(), PgError> {
        // A server that skips SCRAM's final message has not proven it knows the
        // password: whoever answers may be an impostor.
        if login.scram.is_some() && !login.scram_verified {
            return Err(self.protocol(
                "the server ended SCRAM authentication without proving it knows the password (no server signature)",
            ));
        }
        if binding.mode == ChannelBinding::Require && !login.bound {
            return Err(self.unbound());
        }
        Ok(())
    }

    /// Cleartext password authentication (refused when channel binding is required).
    async fn send_cleartext(
        &mut self,
        password: Option<&[u8]>,
        binding: &Binding,
    ) -> Result<(), PgError> {
        if binding.mode == ChannelBinding::Require {
            return Err(self.unbound());
        }
        let password = password.ok_or_else(|| self.needs_password())?;
        self.send_password(password).await
    }

    /// MD5 password authentication with the server's `salt` (refused when channel binding is
    /// required).
    async fn send_md5(
        &mut self,
        user: &str,
        password: Option<&[u8]>,
        salt: [u8; 4],
        binding: &Binding,
    ) -> Result<(), PgError> {
        if binding.mode == ChannelBinding::Require {
            return Err(self.unbound());
        }
        let password = password.ok_or_else(|| self.needs_password())?;
        let answer = md5_hash(user.as_bytes(), password, salt).into_bytes();
        self.send_password(&answer).await
    }

    /// Sends a PasswordMessage holding `answer`.
    async fn send_password(&mut self, answer: &[u8]) -> Result<(), PgError> {
        let mut out = BytesMut::new();
        frontend::password_message(answer, &mut out).map_err(|e| self.io_error(e))?;
        self.send(&mut out).await
    }

    /// AuthenticationSASL: starts SCRAM-SHA-256 with the mechanism [`Self::scram_mechanism`]
    /// picks, and keeps its state in `login`.
    async fn start_scram(
        &mut self,
        body: &AuthenticationSaslBody,
        password: Option<&[u8]>,
        binding: &Binding,
        login: &mut Login,
    ) -> Result<(), PgError> {
        let password = password.ok_or_else(|| self.needs_password())?;
        let (mechanism, channel) = self.scram_mechanism(body, binding)?;
        if mechanism == sasl::SCRAM_SHA_256_PLUS {
            login.bound = true;
        }
        let state = sasl::ScramSha256::new(password, channel);
        let mut out = BytesMut::new();
        frontend::sasl_initial_response(mechanism, state.message(), &mut out)
            .map_err(|e| self.io_error(e))?;
        login.scram = Some(state);
        self.send(&mut out).await
    }

    /// The SASL mechanism and channel binding to log in with: SCRAM-SHA-256-PLUS bound to the
    /// TLS channel when the server offers it and `binding` allows it, else SCRAM-SHA-256
    /// unbound (refused when channel binding is required).
    fn scram_mechanism(
        &self,
        body: &AuthenticationSaslBody,
        binding: &Binding,
    ) -> Result<(&'static str, sasl::ChannelBinding), PgError> {
        let mut mechanisms = body.mechanisms();
        let (mut plain, mut plus) = (false, false);
        while let Some(m) = mechanisms.next().map_err(|e| self.io_error(e))? {
            plain |= m == sasl::SCRAM_SHA_256;
            plus |= m == sasl::SCRAM_SHA_256_PLUS;
        }
        match (&binding.server_end_point, binding.mode) {
            (Some(hash), ChannelBinding::Prefer | ChannelBinding::Require) if plus => Ok((
                sasl::SCRAM_SHA_256_PLUS,
                sasl::ChannelBinding::tls_server_end_point(hash.clone()),
            )),
            (_, ChannelBinding::Require) => Err(self.unbound()),
            (Some(_), _) if plain => Ok((sasl::SCRAM_SHA_256, sasl::ChannelBinding::unrequested())),
            _ if plain => Ok((sasl::SCRAM_SHA_256, sasl::ChannelBinding::unsupported())),
            _ => Err(self.protocol("the server offers no SASL mechanism this connection can use")),
        }
    }

    /// AuthenticationSASLContinue: answers the server's challenge.
    async fn continue_scram(&mut self, login: &mut Login, data: &[u8]) -> Result<(), PgError> {
        let state = login
            .scram
            .as_mut()
            .ok_or_else(|| self.protocol("SASL continue before SASL start"))?;
        state.update(data).map_err(|e| self.io_error(e))?;
        let mut out = BytesMut::new();
        frontend::sasl_response(state.message(), &mut out).map_err(|e| self.io_error(e))?;
        self.send(&mut out).await
    }

    /// AuthenticationSASLFinal: checks the server's signature, which proves the server knows
    /// the password.
    fn finish_scram(&self, login: &mut Login, data: &[u8]) -> Result<(), PgError> {
        let state = login
            .scram
            .as_mut()
            .ok_or_else(|| self.protocol("SASL final before SASL start"))?;
        state
            .finish(data)
            .map_err(|e| self.protocol(&format!("the server's SCRAM signature is wrong ({e})")))?;
        login.scram_verified = true;
        Ok(())
    }

    /// The server refused the login: its message, with a hint for the usual causes.
    fn refused(&self, body: &ErrorResponseBody) -> PgError {
        let (code, message) = error_fields(body.fields());
        let hint = pg::refusal_hint(&code, &message, pg::Login::Replication).unwrap_or("");
        PgError::Connect {
            target: self.target.clone(),
            message,
            hint,
            transient: code.starts_with("57P") || code.starts_with("53"),
        }
    }

    /// The server asks for a password and none is configured.
    fn needs_password(&self) -> PgError {
        PgError::Connect {
            target: self.target.clone(),
            message: "the server asks for a password and none is configured".into(),
            hint: " (set the mapping's source password or password_file)",
            transient: false,
        }
    }

    /// Channel binding is required, and the login would go (or went) without it.
    fn unbound(&self) -> PgError {
        PgError::Connect {
            target: self.target.clone(),
            message:
                "channel binding is required, but the server authenticated the login without it"
                    .into(),
            hint: " (the server must use SCRAM-SHA-256 passwords over TLS; or set channel_binding = \"prefer\")",
            transient: false,
        }
    }

    /// Creates the logical slot `slot` with the pgoutput plugin and exports its snapshot.
    pub async fn create_slot_exporting_snapshot(
        &mut self,
        slot: &str,
    ) -> Result<ExportedSlot, PgError> {
        let rows = self
            .simple_query(
                &format!(
                    "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput (SNAPSHOT 'export')",
                    ident(slot)
                ),
                "creating the replication slot with an exported snapshot",
            )
            .await?;
        // Columns: slot_name, consistent_point, snapshot_name, output_plugin.
        match rows.first().map(Vec::as_slice) {
            Some([_, Some(consistent_point), Some(snapshot), ..]) => Ok(ExportedSlot {
                consistent_point: consistent_point.clone(),
                snapshot: snapshot.clone(),
            }),
            _ => Err(self.protocol("CREATE_REPLICATION_SLOT returned no snapshot")),
        }
    }

    /// Runs one command with the simple query protocol; returns its rows as text.
    async fn simple_query(
        &mut self,
        sql: &str,
        context: &str,
    ) -> Result<Vec<Vec<Option<String>>>, PgError> {
        let mut out = BytesMut::new();
        frontend::query(sql, &mut out).map_err(|e| self.io_error(e))?;
        self.send(&mut out).await?;
        let mut rows = Vec::new();
        let mut failed = None;
        loop {
            match self.receive().await? {
                Message::DataRow(row) => {
                    let buffer = row.buffer();
                    let mut values = Vec::new();
                    let mut ranges = row.ranges();
                    while let Some(range) = ranges.next().map_err(|e| self.io_error(e))? {
                        values
                            .push(range.map(|r| String::from_utf8_lossy(&buffer[r]).into_owned()));
                    }
                    rows.push(values);
                }
                Message::ErrorResponse(body) => {
                    let (code, message) = error_fields(body.fields());
                    failed = Some((code, message));
                }
                Message::ReadyForQuery(_) => break,
                _ => {}
            }
        }
        match failed {
            None => Ok(rows),
            Some((code, message)) => Err(PgError::Query {
                target: self.target.clone(),
                context: context.to_owned(),
                // A replication command that reached an ordinary backend: something in between
                // (a pooler told to ignore the `replication` startup parameter) dropped it.
                message: if message.contains("syntax error") && context.contains("replication") {
                    format!("{message}{}", pg::POOLER_HINT)
                } else {
                    message
                },
                transient: code.starts_with("57P") || code.starts_with("53") || code == "55006",
            }),
        }
    }

    /// Ends the session politely (the walsender also ends when the connection drops).
    pub async fn close(mut self) {
        let mut out = BytesMut::new();
        frontend::terminate(&mut out);
        let _ = self.send(&mut out).await;
    }

    async fn send(&mut self, out: &mut BytesMut) -> Result<(), PgError> {
        let result = async {
            self.io.write_all(out).await?;
            self.io.flush().await
        }
        .await;
        out.clear();
        result.map_err(|e| self.io_error(e))
    }

    async fn receive(&mut self) -> Result<Message, PgError> {
        loop {
            if let Some(message) = Message::parse(&mut self.buf).map_err(|e| self.io_error(e))? {
                return Ok(message);
            }
            let read = self
                .io
                .read_buf(&mut self.buf)
                .await
                .map_err(|e| self.io_error(e))?;
            if read == 0 {
                return Err(self.io_error(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)));
            }
        }
    }

    fn io_error(&self, e: std::io::Error) -> PgError {
        PgError::Connect {
            target: self.target.clone(),
            message: format!("replication connection lost: {e}"),
            hint: "",
            transient: true,
        }
    }

    fn protocol(&self, what: &str) -> PgError {
        PgError::Connect {
            target: self.target.clone(),
            message: format!("unexpected answer on the replication connection: {what}"),
            hint: "",
            transient: false,
        }
    }
}

/// What authentication has established so far.
#[derive(Default)]
struct Login {
    /// The SCRAM exchange, once the server asked for SASL.
    scram: Option<sasl::ScramSha256>,
    /// Whether the server's SCRAM signature has been checked.
    scram_verified: bool,
    /// Whether SCRAM was bound to the TLS channel (SCRAM-SHA-256-PLUS).
    bound: bool,
}

/// How SCRAM may bind itself to the TLS channel of this connection.
struct Binding {
    mode: ChannelBinding,
    /// `tls-server-end-point` data: the hash of the server's certificate (RFC 5929), when the
    /// connection is TLS and the certificate's signature names a hash.
    server_end_point: Option<Vec<u8>>,
}

/// Asks the server for TLS (SSLRequest) as `tls.mode` says, and does the handshake with the
/// instance's rustls configuration (the same certificate checks as every other connection).
/// Returns the stream and the channel-binding data of the server's certificate.
async fn negotiate_tls(
    mut tcp: tokio::net::TcpStream,
    host: &str,
    tls: &Tls,
    target: &str,
) -> Result<(Box<dyn Io>, Option<Vec<u8>>), PgError> {
    let fail = |message: String, hint: &'static str, transient: bool| PgError::Connect {
        target: target.to_owned(),
        message,
        hint,
        transient,
    };
    if tls.mode == SslMode::Disable {
        return Ok((Box::new(tcp), None));
    }
    let mut out = BytesMut::new();
    frontend::ssl_request(&mut out);
    let answer = async {
        tcp.write_all(&out).await?;
        tcp.read_u8().await
    }
    .await
    .map_err(|e| fail(format!("{e} (is the server running?)"), "", true))?;
    match answer {
        b'S' => {}
        b'N' if tls.mode == SslMode::Prefer => return Ok((Box::new(tcp), None)),
        b'N' => {
            return Err(fail(
                "the server does not offer TLS".into(),
                " (turn ssl on at the server, or set sslmode = \"prefer\" or \"disable\" if plaintext is acceptable on this network)",
                false,
            ));
        }
        other => {
            return Err(fail(
                format!("unexpected answer {other:#04x} to the TLS request"),
                "",
                false,
            ));
        }
    }
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| {
        fail(
            format!("{host:?} cannot be checked against a certificate ({e})"),
            "",
            false,
        )
    })?;
    let stream = tokio_rustls::TlsConnector::from(tls.client_config())
        .connect(name, tcp)
        .await
        .map_err(|e| {
            let hint = crate::pg::tls_hint(&e as &(dyn std::error::Error + 'static)).unwrap_or("");
            fail(format!("TLS handshake failed: {e}"), hint, false)
        })?;
    let end_point = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|cert| server_end_point(cert.as_ref()));
    Ok((Box::new(stream), end_point))
}

/// RFC 5929 `tls-server-end-point`: the certificate hashed with the hash of its signature
/// algorithm (SHA-1 and MD5 are upgraded to SHA-256); `None` for algorithms that name no hash.
fn server_end_point(der: &[u8]) -> Option<Vec<u8>> {
    use sha2::Digest;
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    match cert.signature_algorithm.oid.to_string().as_str() {
        // md5/sha1/sha256 with RSA, ecdsa-with-SHA256
        "1.2.840.113549.1.1.4"
        | "1.2.840.113549.1.1.5"
        | "1.2.840.113549.1.1.11"
        | "1.2.840.10045.4.3.2" => Some(sha2::Sha256::digest(der).to_vec()),
        // sha384 with RSA, ecdsa-with-SHA384
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => Some(sha2::Sha384::digest(der).to_vec()),
        // sha512 with RSA, ecdsa-with-SHA512
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => Some(sha2::Sha512::digest(der).to_vec()),
        _ => None,
    }
}

/// A TCP connection with the keepalives and `TCP_USER_TIMEOUT` of `pg`, as tokio-postgres sets
/// them on the sockets of every other connection.
async fn tcp_connect(
    host: &str,
    port: u16,
    pg: &tokio_postgres::Config,
) -> std::io::Result<tokio::net::TcpStream> {
    let stream = tokio::net::TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    let socket = socket2::SockRef::from(&stream);
    if pg.get_keepalives() {
        let mut keepalive = socket2::TcpKeepalive::new().with_time(pg.get_keepalives_idle());
        if let Some(interval) = pg.get_keepalives_interval() {
            keepalive = keepalive.with_interval(interval);
        }
        if let Some(retries) = pg.get_keepalives_retries() {
            keepalive = keepalive.with_retries(retries);
        }
        socket.set_tcp_keepalive(&keepalive)?;
    }
    if let Some(timeout) = pg.get_tcp_user_timeout() {
        socket.set_tcp_user_timeout(Some(*timeout))?;
    }
    Ok(stream)
}

/// SQLSTATE and "message (detail)" of an ErrorResponse.
fn error_fields(
    mut fields: postgres_protocol::message::backend::ErrorFields<'_>,
) -> (String, String) {
    let (mut code, mut message, mut detail) = (String::new(), String::new(), String::new());
    while let Ok(Some(field)) = fields.next() {
        let value = || String::from_utf8_lossy(field.value_bytes()).into_owned();
        match field.type_() {
            b'C' => code = value(),
            b'M' => message = value(),
            b'D' => detail = value(),
            _ => {}
        }
    }
    if !detail.is_empty() {
        message = format!("{message} ({detail})");
    }
    (code, message)
}
