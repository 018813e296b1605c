use super::*;

#[test]
fn verification_follows_libpq() {
    assert_eq!(verification(SslMode::Prefer, true), Verify::Nothing);
    assert_eq!(verification(SslMode::Require, false), Verify::Nothing);
    assert_eq!(verification(SslMode::Require, true), Verify::Ca);
    assert_eq!(verification(SslMode::VerifyCa, true), Verify::Ca);
    assert_eq!(verification(SslMode::VerifyFull, true), Verify::Full);
}

#[test]
fn url_parameters_are_decoded_and_bad_values_named() {
    let mut layer = TlsLayer::default();
    let mut problems = Vec::new();
    assert!(layer.take_url_parameter("sslmode", "verify-full", "k", &mut problems));
    assert!(layer.take_url_parameter("sslrootcert", "%2Fetc%2Fca%20b.pem", "k", &mut problems));
    assert!(layer.take_url_parameter("channel_binding", "require", "k", &mut problems));
    assert!(!layer.take_url_parameter("application_name", "x", "k", &mut problems));
    assert!(layer.take_url_parameter("sslmode", "verify_full", "k", &mut problems));
    assert_eq!(layer.sslmode, Some(SslMode::VerifyFull));
    assert_eq!(layer.sslrootcert, Some(PathBuf::from("/etc/ca b.pem")));
    assert_eq!(layer.channel_binding, Some(ChannelBinding::Require));
    assert_eq!(problems.len(), 1);
    assert!(problems[0].message.contains("verify-ca"), "{problems:?}");
}

#[test]
fn unsafe_or_incomplete_combinations_are_refused_with_the_fix() {
    let cases = [
        (
            TlsLayer {
                sslmode: Some(SslMode::VerifyFull),
                ..TlsLayer::default()
            },
            "set sslrootcert",
        ),
        (
            TlsLayer {
                sslmode: Some(SslMode::Require),
                sslrootcert: Some("system".into()),
                ..TlsLayer::default()
            },
            "only safe with sslmode \"verify-full\"",
        ),
        (
            TlsLayer {
                sslmode: Some(SslMode::Disable),
                channel_binding: Some(ChannelBinding::Require),
                ..TlsLayer::default()
            },
            "needs TLS",
        ),
        (
            TlsLayer {
                sslcert: Some("/nonexistent/client.crt".into()),
                ..TlsLayer::default()
            },
            "go together",
        ),
        (
            TlsLayer {
                sslmode: Some(SslMode::VerifyCa),
                sslrootcert: Some("/nonexistent/ca.pem".into()),
                ..TlsLayer::default()
            },
            "cannot read /nonexistent/ca.pem",
        ),
    ];
    for (layer, expected) in cases {
        let mut problems = Vec::new();
        assert!(layer.resolve("src", &mut problems).is_none(), "{layer:?}");
        assert!(
            problems.iter().any(|p| p.message.contains(expected)),
            "{layer:?}: {problems:?}"
        );
    }
}

#[test]
fn prefer_without_files_builds() {
    let mut problems = Vec::new();
    let tls = TlsLayer::default().resolve("src", &mut problems).unwrap();
    assert_eq!(tls.mode, SslMode::Prefer);
    assert_eq!(tls.verify, Verify::Nothing);
    assert!(problems.is_empty());
}
