//! Certificates made at test time: a CA, server certificates for given host names and client
//! certificates for given roles, so that tests run PostgreSQL with `ssl = on` and exercise every
//! `sslmode` without committing a key to the repository.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use super::TestkitError;

/// A certificate and its private key, PEM encoded.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A throw-away certificate authority.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

fn failed(what: &str) -> impl Fn(rcgen::Error) -> TestkitError + '_ {
    move |e| TestkitError::Setup(format!("cannot make {what}: {e}"))
}

impl TestCa {
    /// A new CA whose certificate's common name is `name`.
    pub fn new(name: &str) -> Result<TestCa, TestkitError> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(failed("a CA"))?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().map_err(failed("a CA key"))?;
        let cert = params.self_signed(&key).map_err(failed("a CA"))?;
        Ok(TestCa {
            issuer: Issuer::new(params, key),
            pem: cert.pem(),
        })
    }

    /// The CA's certificate, PEM encoded.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A server certificate valid for `names` (host names or IP addresses).
    pub fn server(&self, names: &[&str]) -> Result<Issued, TestkitError> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params =
            CertificateParams::new(names.clone()).map_err(failed("a server certificate"))?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A client certificate whose common name is `role` (what `cert` authentication compares
    /// with the user name).
    pub fn client(&self, role: &str) -> Result<Issued, TestkitError> {
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(failed("a client certificate"))?;
        params.distinguished_name.push(DnType::CommonName, role);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    fn issue(&self, params: CertificateParams) -> Result<Issued, TestkitError> {
        let key = KeyPair::generate().map_err(failed("a key"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(failed("a certificate"))?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Writes `text` to `dir/name` with permission `mode`; returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str, mode: u32) -> Result<PathBuf, TestkitError> {
    let path = dir.join(name);
    std::fs::write(&path, text)
        .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)))
        .map_err(|e| TestkitError::Setup(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// What a cluster needs for `ssl = on`: its certificate and key, and the CA whose client
/// certificates it trusts (`ssl_ca_file`).
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub server: Issued,
    pub client_ca_pem: String,
}

/// A connector for the test's own connections: TLS when the server offers it (tokio-postgres's
/// default `prefer`), any certificate accepted; plaintext servers are reached as before.
pub fn prefer_connector() -> tokio_postgres_rustls::MakeRustlsConnect {
    let mut problems = Vec::new();
    crate::config::tls::TlsLayer::default()
        .resolve("testkit", &mut problems)
        .expect("the default TLS settings resolve")
        .connector()
}
