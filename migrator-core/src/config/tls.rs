//! TLS to PostgreSQL with libpq's `sslmode` semantics, on rustls (no OpenSSL).
//!
//! | sslmode       | TLS                          | server certificate checked                         |
//! |---------------|------------------------------|----------------------------------------------------|
//! | `disable`     | never                        | -                                                  |
//! | `prefer`      | when the server offers it    | no                                                 |
//! | `require`     | always                       | no; against `sslrootcert` when one is given (libpq) |
//! | `verify-ca`   | always                       | signed by a CA of `sslrootcert`                    |
//! | `verify-full` | always                       | as `verify-ca`, and issued for the host connected to |
//!
//! `sslrootcert` is a PEM file or `system` (the operating system's roots; as in libpq 16+, only
//! with `verify-full`). `sslcert` + `sslkey` present a client certificate. Every file is read
//! when the configuration is resolved, so a missing or unreadable file is a configuration error
//! at start, never a failure hours into a migration.
//!
//! The settings come from fields or from the url's query (`?sslmode=verify-full&sslrootcert=...`);
//! a field wins over the url. [`TlsLayer`] is one such layer; [`TlsLayer::resolve`] builds the
//! [`Tls`] every connection of the instance uses.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Problem;

/// libpq's `channel_binding`: whether SCRAM authentication binds itself to the TLS channel, so
/// that a man in the middle holding a certificate the tool accepts still cannot log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelBinding {
    /// Never bind.
    Disable,
    /// Bind when TLS and the server's SCRAM offer it.
    #[default]
    Prefer,
    /// Refuse to log in without channel binding (needs TLS and SCRAM-SHA-256 passwords).
    Require,
}

impl ChannelBinding {
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelBinding::Disable => "disable",
            ChannelBinding::Prefer => "prefer",
            ChannelBinding::Require => "require",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "disable" => Some(ChannelBinding::Disable),
            "prefer" => Some(ChannelBinding::Prefer),
            "require" => Some(ChannelBinding::Require),
            _ => None,
        }
    }
}

/// libpq's sslmode values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Use TLS when the server offers it.
    Prefer,
    /// Always use TLS, without checking the certificate.
    Require,
    /// Always use TLS and check the certificate against `sslrootcert`.
    VerifyCa,
    /// As `verify-ca`, and check that the host name matches the certificate.
    VerifyFull,
}

impl SslMode {
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl SslMode {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "disable" => Some(SslMode::Disable),
            "allow" | "prefer" => Some(SslMode::Prefer),
            "require" => Some(SslMode::Require),
            "verify-ca" => Some(SslMode::VerifyCa),
            "verify-full" => Some(SslMode::VerifyFull),
            _ => None,
        }
    }
}

/// The TLS settings of one layer (the fields, or the url's query); unset means "not said here".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsLayer {
    pub sslmode: Option<SslMode>,
    pub sslrootcert: Option<PathBuf>,
    pub sslcert: Option<PathBuf>,
    pub sslkey: Option<PathBuf>,
    pub channel_binding: Option<ChannelBinding>,
}

/// How the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Any certificate (the channel is encrypted, the server not authenticated).
    Nothing,
    /// Signed by a trusted CA; any host name.
    Ca,
    /// Signed by a trusted CA and issued for the host connected to.
    Full,
}

/// What `sslmode` and `sslrootcert` make of the certificate check, as libpq decides it.
pub fn verification(mode: SslMode, has_rootcert: bool) -> Verify {
    match mode {
        SslMode::Disable | SslMode::Prefer => Verify::Nothing,
        SslMode::Require if has_rootcert => Verify::Ca,
        SslMode::Require => Verify::Nothing,
        SslMode::VerifyCa => Verify::Ca,
        SslMode::VerifyFull => Verify::Full,
    }
}

/// The resolved TLS of one instance: what every connection to it uses.
#[derive(Clone)]
pub struct Tls {
    pub mode: SslMode,
    pub verify: Verify,
    pub channel_binding: ChannelBinding,
    /// Whether a client certificate is presented.
    pub client_certificate: bool,
    config: Arc<ClientConfig>,
    /// The connector over the same configuration, built once: connecting clones an `Arc`.
    connector: tokio_postgres_rustls::MakeRustlsConnect,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("mode", &self.mode)
            .field("verify", &self.verify)
            .field("channel_binding", &self.channel_binding)
            .field("client_certificate", &self.client_certificate)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// The rustls client configuration (shared by every connection of the instance).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.config)
    }

    /// The connector tokio-postgres and deadpool-postgres connect with.
    pub fn connector(&self) -> tokio_postgres_rustls::MakeRustlsConnect {
        self.connector.clone()
    }

    /// The tokio-postgres spelling of the mode (it knows disable/prefer/require; the
    /// certificate checks of verify-* are in the rustls configuration).
    pub fn tokio_postgres_mode(&self) -> tokio_postgres::config::SslMode {
        match self.mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        }
    }

    /// The tokio-postgres spelling of `channel_binding`.
    pub fn tokio_postgres_channel_binding(&self) -> tokio_postgres::config::ChannelBinding {
        match self.channel_binding {
            ChannelBinding::Disable => tokio_postgres::config::ChannelBinding::Disable,
            ChannelBinding::Prefer => tokio_postgres::config::ChannelBinding::Prefer,
            ChannelBinding::Require => tokio_postgres::config::ChannelBinding::Require,
        }
    }
}

impl TlsLayer {
    /// Takes one `name=value` of a url's query if it is a TLS setting (value percent-decoded);
    /// returns false for any other name. A bad value is reported under `key`.
    pub fn take_url_parameter(
        &mut self,
        name: &str,
        value: &str,
        key: &str,
        problems: &mut Vec<Problem>,
    ) -> bool {
        let decoded = || {
            url::form_urlencoded::parse(format!("v={value}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        match name {
            "sslmode" => match SslMode::parse(&decoded()) {
                Some(mode) => self.sslmode = Some(mode),
                None => problems.push(Problem::new(
                    key,
                    format!("the url's sslmode={value} is not one of disable, prefer, require, verify-ca, verify-full"),
                )),
            },
            "channel_binding" => match ChannelBinding::parse(&decoded()) {
                Some(mode) => self.channel_binding = Some(mode),
                None => problems.push(Problem::new(
                    key,
                    format!("the url's channel_binding={value} is not one of disable, prefer, require"),
                )),
            },
            "sslrootcert" => self.sslrootcert = Some(PathBuf::from(decoded())),
            "sslcert" => self.sslcert = Some(PathBuf::from(decoded())),
            "sslkey" => self.sslkey = Some(PathBuf::from(decoded())),
            _ => return false,
        }
        true
    }

    /// This layer, with what it leaves unset taken from `other`.
    pub fn or(self, other: TlsLayer) -> TlsLayer {
        TlsLayer {
            sslmode: self.sslmode.or(other.sslmode),
            sslrootcert: self.sslrootcert.or(other.sslrootcert),
            sslcert: self.sslcert.or(other.sslcert),
            sslkey: self.sslkey.or(other.sslkey),
            channel_binding: self.channel_binding.or(other.channel_binding),
        }
    }

    /// Reads the files and builds the TLS every connection of the instance uses. Problems are
    /// reported under `key` (e.g. `mappings.prod.source`).
    pub fn resolve(&self, key: &str, problems: &mut Vec<Problem>) -> Option<Tls> {
        let mode = self.sslmode.unwrap_or(SslMode::Prefer);
        let channel_binding = self.channel_binding.unwrap_or_default();
        let before = problems.len();
        self.check_combinations(mode, channel_binding, key, problems);
        let verify = verification(mode, self.sslrootcert.is_some());
        let roots = self.roots(verify, key, problems);
        let client = match (&self.sslcert, &self.sslkey) {
            (Some(cert), Some(keyfile)) => client_identity(cert, keyfile, key, problems),
            _ => None,
        };
        if problems.len() > before {
            return None;
        }
        let client_certificate = client.is_some();
        let config = client_config(roots, verify, client, key, problems)?;
        Some(Tls {
            mode,
            verify,
            channel_binding,
            client_certificate,
            connector: tokio_postgres_rustls::MakeRustlsConnect::new(config.clone()),
            config: Arc::new(config),
        })
    }

    /// Whether `sslrootcert` is `system`: the operating system's roots.
    fn trusts_system(&self) -> bool {
        self.sslrootcert
            .as_deref()
            .is_some_and(|p| p == Path::new("system"))
    }

    /// Refuses the settings that are unsafe or incomplete together, each with its fix.
    fn check_combinations(
        &self,
        mode: SslMode,
        channel_binding: ChannelBinding,
        key: &str,
        problems: &mut Vec<Problem>,
    ) {
        if self.trusts_system() && mode != SslMode::VerifyFull {
            problems.push(Problem::new(
                format!("{key}.sslrootcert"),
                format!(
                    "sslrootcert \"system\" trusts every public CA, so it is only safe with sslmode \"verify-full\" (as in libpq); set sslmode = \"verify-full\", or give the CA file of your server instead of \"system\" (sslmode is \"{}\")",
                    mode.as_str()
                ),
            ));
        }
        if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) && self.sslrootcert.is_none() {
            problems.push(Problem::new(
                format!("{key}.sslrootcert"),
                format!(
                    "sslmode \"{}\" checks the server's certificate against a CA: set sslrootcert to the CA's PEM file (your provider publishes it) or to \"system\" for the operating system's roots",
                    mode.as_str()
                ),
            ));
        }
        if mode == SslMode::Disable && channel_binding == ChannelBinding::Require {
            problems.push(Problem::new(
                format!("{key}.channel_binding"),
                "channel_binding \"require\" needs TLS, and sslmode is \"disable\": use sslmode \"require\" or stronger",
            ));
        }
        if self.sslcert.is_some() != self.sslkey.is_some() {
            problems.push(Problem::new(
                key,
                "sslcert and sslkey go together: set both or neither",
            ));
        }
    }

    /// The CA certificates the server's certificate is checked against, when `verify` checks
    /// it: the file of `sslrootcert`, or the system's roots.
    fn roots(
        &self,
        verify: Verify,
        key: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<Arc<RootCertStore>> {
        match (&self.sslrootcert, verify) {
            (Some(_), Verify::Nothing) | (None, _) => None,
            (Some(_), _) if self.trusts_system() => {
                system_roots(&format!("{key}.sslrootcert"), problems)
            }
            (Some(path), _) => file_roots(path, &format!("{key}.sslrootcert"), problems),
        }
    }
}

/// The rustls configuration: the server certificate check `verify` asks for over `roots`, the
/// client certificate `client` if any, and PostgreSQL's ALPN.
fn client_config(
    roots: Option<Arc<RootCertStore>>,
    verify: Verify,
    client: Option<Identity>,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Option<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = server_verifier(roots, verify, &provider, key, problems)?;
    let builder =
        match ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
            Ok(b) => b.dangerous().with_custom_certificate_verifier(verifier),
            Err(e) => {
                problems.push(Problem::new(key, format!("TLS cannot be set up: {e}")));
                return None;
            }
        };
    let mut config = match client {
        Some((chain, private_key)) => match builder.with_client_auth_cert(chain, private_key) {
            Ok(c) => c,
            Err(e) => {
                problems.push(Problem::new(
                    format!("{key}.sslkey"),
                    format!("sslcert and sslkey do not make a usable client certificate ({e}): check that the key belongs to the certificate"),
                ));
                return None;
            }
        },
        None => builder.with_no_client_auth(),
    };
    // PostgreSQL 17+ checks the ALPN of direct TLS connections; older servers ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Some(config)
}

/// The check of the server's certificate: `verify-full`'s over `roots`, or [`Lenient`] (with
/// the chain check over `roots` when `verify` asks for one).
fn server_verifier(
    roots: Option<Arc<RootCertStore>>,
    verify: Verify,
    provider: &Arc<CryptoProvider>,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Option<Arc<dyn ServerCertVerifier>> {
    let chain = match roots {
        Some(roots) if verify != Verify::Nothing => {
            match WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(provider)).build() {
                Ok(v) => Some(v),
                Err(e) => {
                    problems.push(Problem::new(
                        format!("{key}.sslrootcert"),
                        format!("the CA certificates cannot be used: {e}"),
                    ));
                    return None;
                }
            }
        }
        _ => None,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match (verify, chain) {
        (Verify::Full, Some(full)) => full,
        (_, chain) => Arc::new(Lenient {
            provider: Arc::clone(provider),
            chain,
        }),
    };
    Some(verifier)
}

fn file_roots(path: &Path, key: &str, problems: &mut Vec<Problem>) -> Option<Arc<RootCertStore>> {
    let certs = match read_certificates(path) {
        Ok(certs) => certs,
        Err(reason) => {
            problems.push(Problem::new(key, reason));
            return None;
        }
    };
    let mut store = RootCertStore::empty();
    let (_, ignored) = store.add_parsable_certificates(certs);
    if store.is_empty() {
        problems.push(Problem::new(
            key,
            format!(
                "{} holds no usable CA certificate ({ignored} could not be parsed): give the PEM file of the CA that signed the server's certificate",
                path.display()
            ),
        ));
        return None;
    }
    Some(Arc::new(store))
}

fn system_roots(key: &str, problems: &mut Vec<Problem>) -> Option<Arc<RootCertStore>> {
    let found = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    store.add_parsable_certificates(found.certs);
    if store.is_empty() {
        problems.push(Problem::new(
            key,
            "sslrootcert \"system\": the operating system has no CA certificates (install the ca-certificates package, or set SSL_CERT_FILE), or give the CA's PEM file instead",
        ));
        return None;
    }
    Some(Arc::new(store))
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| {
        format!(
            "cannot read {}: {e}; mount the file there or fix the path",
            path.display()
        )
    })?;
    let certs = iter.collect::<Result<Vec<_>, _>>().map_err(|e| {
        format!(
            "{} is not a PEM certificate file ({e}); give the certificate in PEM form (-----BEGIN CERTIFICATE-----)",
            path.display()
        )
    })?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn client_identity(
    cert: &Path,
    keyfile: &Path,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Option<Identity> {
    let chain = read_certificates(cert)
        .map_err(|reason| problems.push(Problem::new(format!("{key}.sslcert"), reason)))
        .ok();
    let private_key = PrivateKeyDer::from_pem_file(keyfile)
        .map_err(|e| {
            problems.push(Problem::new(
                format!("{key}.sslkey"),
                format!(
                    "cannot read a PEM private key from {} ({e}); give the key of sslcert in PEM form (PKCS#8, PKCS#1 or SEC1)",
                    keyfile.display()
                ),
            ))
        })
        .ok();
    Some((chain?, private_key?))
}

/// Every check but `verify-full`'s: with no `chain` (`prefer`, `require` without a CA) any
/// certificate is accepted, as libpq does; with one (`verify-ca`, `require` with a CA) the
/// certificate must lead to a trusted CA, whatever host name it names. The handshake's
/// signatures are checked either way: the channel is encrypted with the certificate's key.
#[derive(Debug)]
struct Lenient {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests;
