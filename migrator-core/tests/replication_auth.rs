//! The replication client's SCRAM login against a server that is not what it claims: one that
//! accepts the login without proving it knows the password (AuthenticationOk with no SCRAM
//! final message), and one that proves it wrongly. Both are what a man in the middle who does
//! not know the password would answer; the client must refuse both. A real server is not able
//! to misbehave this way, so the server here is a few lines of the protocol on a TCP socket.

use migrator_core::config::{ConnectionSettings, SslMode};
use migrator_core::walsender::ReplicationConnection;
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the impostor answers after the client's SCRAM final message.
enum Ending {
    /// AuthenticationOk straight away: no server signature at all.
    SkipProof,
    /// A server signature that does not match the password.
    WrongProof,
}

async fn read_message(socket: &mut TcpStream, tagged: bool) -> Vec<u8> {
    if tagged {
        socket.read_u8().await.unwrap();
    }
    let len = socket.read_u32().await.unwrap() as usize;
    let mut body = vec![0; len - 4];
    socket.read_exact(&mut body).await.unwrap();
    body
}

fn authentication(code: u32, data: &[u8]) -> Vec<u8> {
    let mut message = vec![b'R'];
    message.extend(((8 + data.len()) as u32).to_be_bytes());
    message.extend(code.to_be_bytes());
    message.extend(data);
    message
}

async fn impostor(listener: TcpListener, ending: Ending) {
    let (mut socket, _) = listener.accept().await.unwrap();
    read_message(&mut socket, false).await; // startup
    socket
        .write_all(&authentication(10, b"SCRAM-SHA-256\0\0"))
        .await
        .unwrap();
    let initial = read_message(&mut socket, true).await;
    let text = String::from_utf8_lossy(&initial).into_owned();
    // Everything after ",r=": the client's nonce may itself hold "r=" (any printable but ',').
    let nonce = text
        .split_once(",r=")
        .unwrap()
        .1
        .trim_end_matches('\0')
        .to_owned();
    let first = format!("r={nonce}impostor,s=c2FsdHNhbHQ=,i=4096");
    socket
        .write_all(&authentication(11, first.as_bytes()))
        .await
        .unwrap();
    read_message(&mut socket, true).await; // the client's proof
    if let Ending::WrongProof = ending {
        socket
            .write_all(&authentication(
                12,
                b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ))
            .await
            .unwrap();
    }
    socket.write_all(&authentication(0, b"")).await.unwrap();
    socket.write_all(b"Z\0\0\0\x05I").await.unwrap();
    // Keep the socket open until the client has decided.
    let _ = socket.read_u8().await;
}

async fn login_against(ending: Ending) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(impostor(listener, ending));
    let conn = ConnectionSettings {
        host: Some("127.0.0.1".into()),
        port: Some(port),
        password: Some(SecretString::from("the-real-password")),
        sslmode: Some(SslMode::Disable),
        ..ConnectionSettings::default()
    }
    .resolve("test")
    .unwrap();
    let result = ReplicationConnection::connect(&conn, "postgres").await;
    server.abort();
    match result {
        Ok(_) => "logged in".to_owned(),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn a_server_that_skips_the_scram_proof_is_refused() {
    let outcome = login_against(Ending::SkipProof).await;
    assert!(
        outcome.contains("without proving it knows the password"),
        "{outcome}"
    );
}

#[tokio::test]
async fn a_server_with_a_wrong_scram_proof_is_refused() {
    let outcome = login_against(Ending::WrongProof).await;
    assert!(outcome.contains("SCRAM signature is wrong"), "{outcome}");
}
