//! OAuth 2.0 logins against real servers on loopback (tests/servers.sh): a Dovecot whose oauth2
//! passdb validates the token server's JWTs locally, its submission service relaying to
//! OpenSMTPD, and the token server tests/oauth/server.mjs (npm's oauth2-mock-server). Client
//! "app.<user>" has the secret "cs.app.<user>"; "short.<…>" gets tokens that live 6 s.
use std::path::{Path, PathBuf};
use std::time::Duration;

use poststelle::config::ClientCertificate;

use crate::support::bin::poststelle;
use crate::support::config::{TempConfig, config_text};
use crate::support::daemon::{Daemon, env, free_port, http_get, port_of, unique, until};
use crate::support::imap::{append_all, count, messages, reset};
use crate::support::mail::mail;

fn provider(name: &str, client: &str, secret_file: &str, extra: &str) -> String {
    format!(
        "[[oauth]]\nname = \"{name}\"\ntoken_endpoint = \"{}/token\"\n\
         device_endpoint = \"{}/device\"\nclient_id = \"{client}\"\n\
         client_secret_file = \"{secret_file}\"\nscope = \"mail\"\n{extra}\n",
        env("POSTSTELLE_TEST_OAUTH_TOKEN"),
        env("POSTSTELLE_TEST_OAUTH_TOKEN"),
    )
}

fn oauth_mailbox(name: &str, user: &str, provider: &str, sasl: &str) -> String {
    format!(
        "[[mailbox]]\nname = \"{name}\"\nkind = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\n\
         tls = \"none\"\nusername = \"{user}@example.test\"\nauth = \"oauth2\"\n\
         oauth = \"{provider}\"\nsasl = \"{sasl}\"\n",
        port_of(&env("POSTSTELLE_TEST_OAUTH_IMAP"))
    )
}

fn request(requester: &str, subject: &str, id: &str) -> Vec<u8> {
    let date = jiff::Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S +0000");
    mail(
        &[
            &format!("From: {requester}"),
            &format!("Subject: {subject}"),
            &format!("Message-ID: <{id}>"),
            &format!("Date: {date}"),
        ],
        "Guten Tag,\r\nder Drucker im Bürgerbüro druckt nicht.\r\n",
    )
}

/// Every token the token server issued so far.
fn issued_tokens() -> Vec<String> {
    std::fs::read_to_string(env("POSTSTELLE_TEST_OAUTH_ISSUED"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, t)| t.to_string()))
        .collect()
}

/// `text` holds none of the secrets and tokens, nor their base64 within SASL messages.
fn assert_no_secret(what: &str, text: &str, secrets: &[String]) {
    for s in secrets.iter().chain(issued_tokens().iter()) {
        assert!(!text.contains(s.as_str()), "{what} shows a secret or token");
        // A JWT's signature alone would give it away too.
        if let Some(sig) = s.rsplit('.').next().filter(|p| p.len() > 20) {
            assert!(!text.contains(sig), "{what} shows a token's signature");
        }
    }
}

/// Client credentials: a mailbox files mail over IMAP (XOAUTH2), a second one
/// (OAUTHBEARER) with tokens that expire during IDLE logs in anew and keeps filing, the
/// acknowledgements go out through the submission service with XOAUTH2, a mailbox whose
/// client secret is wrong is held with a clear error and retried with backoff while the
/// others work, `check --connect` says which login works, and nothing the daemon writes
/// (log at debug, metrics, check output) shows a secret or token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_file_send_renew_and_refuse() {
    let imap = env("POSTSTELLE_TEST_OAUTH_IMAP");
    let main_imap = env("POSTSTELLE_TEST_IMAP");
    let tag = unique();
    for u in ["d01", "d02", "d03"] {
        reset(&imap, u).await;
    }
    let good = "cs.app.d01@example.test".to_string();
    let short = "cs.short.app.d02@example.test".to_string();
    let wrong = format!("wrong-secret-{tag}");
    let metrics = format!("127.0.0.1:{}", free_port());
    let mailboxes = [
        oauth_mailbox("xo", "d01", "entra", "xoauth2"),
        oauth_mailbox("bearer", "d02", "shortlived", "oauthbearer"),
        oauth_mailbox("revoked", "d03", "revoked", "xoauth2"),
    ]
    .concat();
    let extra = format!(
        "{}{}{}\n[outbox.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         username = \"d01@example.test\"\nauth = \"oauth2\"\noauth = \"entra\"\n",
        provider("entra", "app.d01@example.test", "entra.secret", ""),
        provider(
            "shortlived",
            "short.app.d02@example.test",
            "short.secret",
            ""
        ),
        provider("revoked", "app.d03@example.test", "revoked.secret", ""),
        port_of(&env("POSTSTELLE_TEST_OAUTH_SUBMISSION")),
    );
    let text = config_text(&mailboxes, &extra)
        .replace("transport = \"file\"", "transport = \"smtp\"")
        .replace(
            "[daemon]",
            &format!("[daemon]\nmetrics_listen = \"{metrics}\""),
        );
    let text = if text.contains("metrics_listen") {
        text
    } else {
        format!("{text}\n[daemon]\nmetrics_listen = \"{metrics}\"\n")
    };
    let cfg = TempConfig::new(&text, &[]);
    cfg.write("entra.secret", good.as_bytes());
    cfg.write("short.secret", short.as_bytes());
    cfg.write("revoked.secret", wrong.as_bytes());
    let secrets = vec![good.clone(), short.clone(), wrong.clone()];

    let requester = format!("oauth-{tag}@elsewhere.test");
    let first = |u: &str, i: u32| {
        request(
            &requester,
            &format!("Drucker {u} {i} ({tag})"),
            &format!("{tag}.{u}.{i}@example.test"),
        )
    };
    append_all(&imap, "d01", "INBOX", &[first("d01", 1)]).await;
    append_all(&imap, "d02", "INBOX", &[first("d02", 1)]).await;
    append_all(&imap, "d03", "INBOX", &[first("d03", 1)]).await;
    let mut daemon = Daemon::start_with(&cfg, "run", &[("RUST_LOG", "debug")]);

    until(
        Duration::from_secs(30),
        "d01's and d02's mail filed over OAuth",
        || async {
            count(&imap, "d01", "Verarbeitet").await == 1
                && count(&imap, "d02", "Verarbeitet").await == 1
        },
    )
    .await;
    // The short-lived token runs out while the mailbox idles: it logs in again, with a new one.
    until(
        Duration::from_secs(30),
        "a new login before the token expired",
        || async { daemon.log().contains("OAuth token due for renewal") },
    )
    .await;
    append_all(&imap, "d02", "INBOX", &[first("d02", 2)]).await;
    until(
        Duration::from_secs(30),
        "d02's second mail filed after the renewal",
        || async { count(&imap, "d02", "Verarbeitet").await == 2 },
    )
    .await;
    assert_eq!(count(&imap, "d02", "INBOX").await, 0);

    // The revoked secret: a clear error naming the provider, the mailbox held and retried.
    let failures = |log: &str| -> Vec<String> {
        log.lines()
            .filter(|l| {
                l.contains("mailbox session failed") && l.contains("OAuth provider \"revoked\"")
            })
            .map(str::to_string)
            .collect()
    };
    until(
        Duration::from_secs(30),
        "two failed attempts of the revoked mailbox",
        || async { failures(&daemon.log()).len() >= 2 },
    )
    .await;
    let lines = failures(&daemon.log());
    for line in &lines {
        assert!(
            line.contains("mailbox=revoked"),
            "names the mailbox: {line}"
        );
        assert!(line.contains("invalid_client"), "{line}");
        assert!(line.contains("fix: check client_id"), "{line}");
    }
    // Held and retried with the mailbox backoff: 1 s, then 2 s.
    assert!(lines[0].contains("retry_in_s=1"), "{}", lines[0]);
    assert!(lines[1].contains("retry_in_s=2"), "{}", lines[1]);
    assert_eq!(
        count(&imap, "d03", "INBOX").await,
        1,
        "the held mailbox's mail stays"
    );

    // Acknowledgements sent through Dovecot's submission with XOAUTH2, relayed by OpenSMTPD.
    until(
        Duration::from_secs(30),
        "the acknowledgements delivered",
        || async {
            messages(&main_imap, "catchall", "INBOX")
                .await
                .iter()
                .filter(|m| {
                    String::from_utf8_lossy(m).contains(&format!("Delivered-To: {requester}"))
                })
                .count()
                >= 3
        },
    )
    .await;

    let (status, body) = http_get(&metrics, "/metrics").await;
    assert_eq!(status, 200);
    // check --connect logs in to each mailbox and the relay and says what to fix.
    let checked = poststelle()
        .arg("--config")
        .arg(cfg.path())
        .args(["check", "--connect"])
        .output()
        .expect("check --connect");
    let check = String::from_utf8_lossy(&checked.stdout).to_string();
    assert!(
        !checked.status.success(),
        "a mailbox cannot log in: {check}"
    );
    assert!(
        check.contains("ok: mailbox xo: logged in to 127.0.0.1")
            && check.contains("XOAUTH2 with a token of [[oauth]] \"entra\""),
        "{check}"
    );
    assert!(
        check.contains("ok: mailbox bearer:") && check.contains("OAUTHBEARER"),
        "{check}"
    );
    assert!(
        check.contains("error: mailbox revoked: OAuth provider \"revoked\"")
            && check.contains("invalid_client"),
        "{check}"
    );
    assert!(
        check.contains("ok: outbox.smtp: connected to 127.0.0.1")
            && check.contains("logged in as d01@example.test, XOAUTH2"),
        "{check}"
    );
    daemon.stop_ok();
    let log = daemon.log();
    assert!(issued_tokens().len() >= 3, "tokens were issued");
    assert_no_secret("the daemon's log", &log, &secrets);
    assert_no_secret("/metrics", &body, &secrets);
    assert_no_secret("check", &check, &secrets);
}

/// `poststelle auth login` runs the device-code flow against the token server, stores the
/// refresh token (0600), and the daemon logs in with it, saving the rotated one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_login_then_refresh_token_logins() {
    let imap = env("POSTSTELLE_TEST_OAUTH_IMAP");
    let tag = unique();
    reset(&imap, "d04").await;
    let extra = provider(
        "delegated",
        "app.d04@example.test",
        "delegated.secret",
        "grant = \"refresh_token\"",
    );
    let cfg = TempConfig::new(
        &config_text(&oauth_mailbox("dlg", "d04", "delegated", "xoauth2"), &extra),
        &[],
    );
    cfg.write("delegated.secret", b"cs.app.d04@example.test");
    let before = cfg.dir.path().join("data/oauth/delegated.refresh-token");
    let out = poststelle()
        .arg("--config")
        .arg(cfg.path())
        .args(["auth", "login", "delegated"])
        .output()
        .expect("auth login");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("WDJB-MJHT"),
        "the user code is shown: {stdout}"
    );
    let first = std::fs::read_to_string(&before).expect("the refresh token is stored");
    assert!(issued_tokens().iter().any(|t| t == first.trim()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&before).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_no_secret("auth login", &stdout, &["cs.app.d04@example.test".into()]);

    append_all(
        &imap,
        "d04",
        "INBOX",
        &[request(
            "erika@example.test",
            &format!("Delegiert ({tag})"),
            &format!("{tag}@example.test"),
        )],
    )
    .await;
    let mut daemon = Daemon::start(&cfg, "run");
    until(
        Duration::from_secs(30),
        "filed with the refresh token's access token",
        || async { count(&imap, "d04", "Verarbeitet").await == 1 },
    )
    .await;
    daemon.stop_ok();
    let rotated = std::fs::read_to_string(&before).expect("refresh token");
    assert_ne!(
        rotated, first,
        "the rotated refresh token replaced the old one"
    );
    assert_no_secret(
        "the daemon's log",
        &daemon.log(),
        &["cs.app.d04@example.test".into()],
    );
}

/// Config errors of OAuth name the file, the line and the fix.
#[test]
fn oauth_config_errors_name_line_and_fix() {
    let text = config_text(
        "[[mailbox]]\nname = \"m\"\nkind = \"imap\"\nhost = \"h\"\nusername = \"u\"\nauth = \"oauth2\"\noauth = \"nosuch\"\n",
        "[[oauth]]\nname = \"m365\"\npreset = \"microsoft365\"\nclient_id = \"c\"\nclient_secret = \"x\"\n\
         [[oauth]]\nname = \"g\"\npreset = \"google\"\nclient_id = \"c\"\n",
    );
    let cfg = TempConfig::new(&text, &[]);
    let out = poststelle()
        .arg("--config")
        .arg(cfg.path())
        .arg("check")
        .output()
        .expect("check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains("oauth = \"nosuch\" names no [[oauth]] table"),
        "{stdout}"
    );
    assert!(stdout.contains("name one of: g"), "{stdout}");
    assert!(
        stdout.contains("preset \"microsoft365\" needs the tenant"),
        "{stdout}"
    );
    assert!(
        stdout.contains("poststelle.toml:"),
        "names file and line: {stdout}"
    );
}

/// A self-signed RSA certificate made now with openssl (no private key is kept in the
/// repository): `<name>.crt` and `<name>.key` (mode 0600) in `dir`.
fn make_certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", &format!("/CN=poststelle-test-{name}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("openssl (the certificate tests make their certificates with it)");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    set_mode(&key, 0o600);
    (crt, key)
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The base64 lines of a PEM private key: what must never be shown.
fn key_lines(key: &Path) -> Vec<String> {
    std::fs::read_to_string(key)
        .expect("key")
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .map(str::to_string)
        .collect()
}

/// What the administrator does in Entra: the certificate uploaded to the client's app.
async fn register_certificate(client: &str, crt: &Path) {
    let pem = std::fs::read_to_string(crt).expect("certificate");
    let (status, _) = poststelle::oauth::http::post_form(
        &format!("{}/clients/certificate", env("POSTSTELLE_TEST_OAUTH_TOKEN")),
        &[("client_id", client), ("certificate", &pem)],
    )
    .await
    .expect("registering the certificate");
    assert_eq!(status, 204);
}

fn cert_provider(name: &str, client: &str, files: &str) -> String {
    format!(
        "[[oauth]]\nname = \"{name}\"\ntoken_endpoint = \"{}/token\"\nclient_id = \"{client}\"\n\
         scope = \"mail\"\n{files}\n",
        env("POSTSTELLE_TEST_OAUTH_TOKEN"),
    )
}

/// The token server refuses what Entra refuses: an assertion used twice, one for another
/// audience, one that has expired, one signed with a certificate the app does not have.
/// (So that the daemon's logins below prove that poststelle's assertions are right.)
async fn token_server_checks_assertions(cert: &ClientCertificate, other: &ClientCertificate) {
    use poststelle::oauth::assertion::{ASSERTION_TYPE, client_assertion};
    let endpoint = format!("{}/token", env("POSTSTELLE_TEST_OAUTH_TOKEN"));
    let client = "app.d11@example.test";
    let ask = |assertion: String| {
        let endpoint = endpoint.clone();
        async move {
            let (status, body) = poststelle::oauth::http::post_form(
                &endpoint,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", client),
                    ("scope", "mail"),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", &assertion),
                ],
            )
            .await
            .expect("token request");
            (status, String::from_utf8_lossy(&body).to_string())
        }
    };
    let now = jiff::Timestamp::now();
    let good = client_assertion(cert, client, &endpoint, now)
        .expect("signed")
        .expose()
        .to_string();
    let (status, body) = ask(good.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("access_token"), "{body}");
    let (status, body) = ask(good).await;
    assert_eq!(status, 401, "a replayed assertion is refused: {body}");
    assert!(body.contains("jti replayed"), "{body}");
    let cases = [
        (
            client_assertion(cert, client, "http://127.0.0.1:1/token", now),
            "aud",
        ),
        (
            client_assertion(
                cert,
                client,
                &endpoint,
                now - jiff::SignedDuration::from_hours(1),
            ),
            "AADSTS700024",
        ),
        (
            client_assertion(cert, "app.d12@example.test", &endpoint, now),
            "AADSTS700021",
        ),
        (
            client_assertion(other, client, &endpoint, now),
            "not registered",
        ),
    ];
    for (assertion, why) in cases {
        let (status, body) = ask(assertion.expect("signed").expose().to_string()).await;
        assert_eq!(status, 401, "refused ({why}): {body}");
        assert!(
            body.contains("invalid_client") && body.contains(why),
            "{why}: {body}"
        );
    }
}

/// A certificate instead of a client secret (Entra's client assertion, RFC 7523): a mailbox
/// files mail with a token got with the certificate (one PEM file holding certificate and
/// key), the acknowledgement goes out through Dovecot's submission with AUTH OAUTHBEARER, a
/// mailbox whose certificate is not the app's (certificate and key in two files) is held with
/// a clear error and retried while the other works, `check --connect` says so for each and
/// tells a refused OAUTHBEARER login, and no token, assertion or private key shows in the
/// log, metrics or check output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_logins_and_oauthbearer_smtp() {
    let imap = env("POSTSTELLE_TEST_OAUTH_IMAP");
    let main_imap = env("POSTSTELLE_TEST_IMAP");
    let tag = unique();
    for u in ["d11", "d12"] {
        reset(&imap, u).await;
    }
    let metrics = format!("127.0.0.1:{}", free_port());
    let mailboxes = [
        oauth_mailbox("cert", "d11", "cert", "xoauth2"),
        oauth_mailbox("wrongcert", "d12", "wrongcert", "oauthbearer"),
    ]
    .concat();
    let smtp = |user: &str| {
        format!(
            "\n[outbox.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             username = \"{user}@example.test\"\nauth = \"oauth2\"\noauth = \"cert\"\n\
             sasl = \"oauthbearer\"\n",
            port_of(&env("POSTSTELLE_TEST_OAUTH_SUBMISSION")),
        )
    };
    let providers = format!(
        "{}{}",
        cert_provider(
            "cert",
            "app.d11@example.test",
            "certificate_file = \"app.pem\""
        ),
        cert_provider(
            "wrongcert",
            "app.d12@example.test",
            "certificate_file = \"other.crt\"\nprivate_key_file = \"other.key\""
        ),
    );
    let text = |user: &str| {
        config_text(&mailboxes, &format!("{providers}{}", smtp(user)))
            .replace("transport = \"file\"", "transport = \"smtp\"")
            .replacen(
                "[daemon]",
                &format!("[daemon]\nmetrics_listen = \"{metrics}\""),
                1,
            )
    };
    let cfg = TempConfig::new(&text("d11"), &[]);
    let dir = cfg.dir.path();
    // d11's app has the certificate "app" (one file with certificate and key); d12's app has
    // "registered", but its [[oauth]] names "other".
    let (app_crt, app_key) = make_certificate(dir, "app");
    let (registered, registered_key) = make_certificate(dir, "registered");
    let (other_crt, other_key) = make_certificate(dir, "other");
    let mut pem = std::fs::read(&app_crt).expect("crt");
    pem.extend(std::fs::read(&app_key).expect("key"));
    cfg.write("app.pem", &pem);
    set_mode(&dir.join("app.pem"), 0o600);
    register_certificate("app.d11@example.test", &app_crt).await;
    register_certificate("app.d12@example.test", &registered).await;
    let secrets: Vec<String> = [&app_key, &registered_key, &other_key]
        .iter()
        .flat_map(|k| key_lines(k))
        .collect();

    let loaded = |crt: &Path, key: Option<&Path>| {
        ClientCertificate::load(crt, key, jiff::Timestamp::now()).expect("certificate")
    };
    token_server_checks_assertions(
        &loaded(&dir.join("app.pem"), None),
        &loaded(&other_crt, Some(&other_key)),
    )
    .await;

    let requester = format!("cert-{tag}@elsewhere.test");
    for u in ["d11", "d12"] {
        append_all(
            &imap,
            u,
            "INBOX",
            &[request(
                &requester,
                &format!("Zertifikat {u} ({tag})"),
                &format!("{tag}.{u}@example.test"),
            )],
        )
        .await;
    }
    let mut daemon = Daemon::start_with(&cfg, "run", &[("RUST_LOG", "debug")]);
    until(
        Duration::from_secs(30),
        "d11's mail filed with a token got by certificate",
        || async { count(&imap, "d11", "Verarbeitet").await == 1 },
    )
    .await;

    // The certificate the app does not have: the provider's refusal, the mailbox named, held
    // and retried with the mailbox backoff while d11 works.
    let thumbprint = loaded(&other_crt, Some(&other_key)).thumbprint;
    let failures = |log: &str| -> Vec<String> {
        log.lines()
            .filter(|l| {
                l.contains("mailbox session failed") && l.contains("OAuth provider \"wrongcert\"")
            })
            .map(str::to_string)
            .collect()
    };
    until(
        Duration::from_secs(30),
        "two failed attempts of the mailbox with the wrong certificate",
        || async { failures(&daemon.log()).len() >= 2 },
    )
    .await;
    let lines = failures(&daemon.log());
    for line in &lines {
        assert!(
            line.contains("mailbox=wrongcert"),
            "names the mailbox: {line}"
        );
        assert!(line.contains("invalid_client"), "{line}");
        assert!(line.contains("is not registered on application"), "{line}");
        assert!(
            line.contains(&format!("its certificate {}", other_crt.display()))
                && line.contains(&format!("thumbprint {thumbprint}"))
                && line.contains("Certificates & secrets"),
            "the fix names the certificate as Entra shows it: {line}"
        );
    }
    assert!(lines[0].contains("retry_in_s=1"), "{}", lines[0]);
    assert!(lines[1].contains("retry_in_s=2"), "{}", lines[1]);
    assert_eq!(
        count(&imap, "d12", "INBOX").await,
        1,
        "the held mailbox's mail stays"
    );

    // d11's acknowledgement, sent through the submission service with AUTH OAUTHBEARER.
    until(
        Duration::from_secs(30),
        "the acknowledgement delivered",
        || async {
            messages(&main_imap, "catchall", "INBOX")
                .await
                .iter()
                .any(|m| String::from_utf8_lossy(m).contains(&format!("Delivered-To: {requester}")))
        },
    )
    .await;
    let dovecot =
        std::fs::read_to_string(env("POSTSTELLE_TEST_OAUTH_DOVECOT_LOG")).expect("Dovecot's log");
    assert!(
        dovecot.lines().any(|l| l.contains("submission-login")
            && l.contains("user=<d11@example.test>")
            && l.contains("method=OAUTHBEARER")),
        "Dovecot's submission logged d11 in with OAUTHBEARER"
    );

    let (status, body) = http_get(&metrics, "/metrics").await;
    assert_eq!(status, 200);
    let check_of = |cfg: &TempConfig| {
        let out = poststelle()
            .arg("--config")
            .arg(cfg.path())
            .args(["check", "--connect"])
            .output()
            .expect("check --connect");
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    };
    let check = check_of(&cfg);
    assert!(
        check.contains("ok: mailbox cert: logged in to 127.0.0.1")
            && check.contains("XOAUTH2 with a token of [[oauth]] \"cert\""),
        "{check}"
    );
    assert!(
        check.contains("error: mailbox wrongcert: OAuth provider \"wrongcert\"")
            && check.contains("not registered on application"),
        "{check}"
    );
    assert!(
        check.contains("ok: outbox.smtp: connected to 127.0.0.1")
            && check.contains(
                "logged in as d11@example.test, OAUTHBEARER with a token of [[oauth]] \"cert\""
            ),
        "{check}"
    );
    // A token for d11 offered as d12's: Dovecot's JSON error challenge, ^A, then 535.
    let refused_cfg = TempConfig::new(&text("d12"), &[]);
    for f in ["app.pem", "other.crt", "other.key"] {
        std::fs::copy(dir.join(f), refused_cfg.dir.path().join(f)).expect("copy");
    }
    let refused = check_of(&refused_cfg);
    let refusal = "AUTH OAUTHBEARER as d12@example.test with a token of OAuth provider \"cert\" \
                   refused: invalid_token";
    assert!(
        refused.contains(&format!(
            "error: outbox.smtp 127.0.0.1:{}: {refusal}",
            port_of(&env("POSTSTELLE_TEST_OAUTH_SUBMISSION"))
        )) && refused.contains("535"),
        "{refused}"
    );
    // The sender the same way: the mail waits (a refused login says nothing about the mail),
    // the refusal stands beside it in `outbox list`.
    let cli = |args: &[&str]| {
        let out = poststelle()
            .arg("--config")
            .arg(refused_cfg.path())
            .args(args)
            .output()
            .expect("poststelle");
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    };
    let eml = refused_cfg.dir.path().join("request.eml");
    std::fs::write(
        &eml,
        request(
            &requester,
            &format!("Abgelehnt ({tag})"),
            &format!("{tag}.refused@example.test"),
        ),
    )
    .expect("eml");
    cli(&["ingest", eml.to_str().expect("path")]);
    let sent = cli(&["outbox", "send"]);
    assert!(
        sent.starts_with("0 sent, ") && sent.contains(" 0 permanent failure(s)"),
        "{sent}"
    );
    let waiting = cli(&["outbox", "list", "--state", "temporary_failure"]);
    assert!(waiting.contains(refusal), "{waiting}");
    let refused = format!("{refused}{sent}{waiting}");
    daemon.stop_ok();
    let log = daemon.log();
    assert!(
        issued_tokens().iter().any(|t| t.matches('.').count() == 2),
        "assertions and tokens were noted"
    );
    for (what, text) in [
        ("the daemon's log", &log),
        ("/metrics", &body),
        ("check", &check),
        ("check of the refused login", &refused),
    ] {
        assert_no_secret(what, text, &secrets);
    }
}

/// Files of a test configuration: name, copied from, mode.
type Files<'a> = &'a [(&'a str, &'a Path, u32)];

/// `certificate_file` and `private_key_file`: every mistake named with file, line and fix,
/// before any provider is asked.
#[test]
fn certificate_config_errors_name_line_and_fix() {
    let dir = tempfile::tempdir().expect("dir");
    let (crt, key) = make_certificate(dir.path(), "a");
    let (_, b_key) = make_certificate(dir.path(), "b");
    let text_of = |oauth: &str| {
        config_text(
            "",
            &format!(
                "[[oauth]]\nname = \"m\"\ntoken_endpoint = \"https://login.example/token\"\n\
                 client_id = \"c\"\n{oauth}"
            ),
        )
    };
    let check = |oauth: &str, files: Files| {
        let cfg = TempConfig::new(&text_of(oauth), &[]);
        for (name, from, mode) in files {
            std::fs::copy(from, cfg.dir.path().join(name)).expect("copy");
            set_mode(&cfg.dir.path().join(name), *mode);
        }
        let out = poststelle()
            .arg("--config")
            .arg(cfg.path())
            .arg("check")
            .output()
            .expect("check");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    // Fine: two files, and one file with both.
    let (ok, out) = check(
        "certificate_file = \"a.crt\"\nprivate_key_file = \"a.key\"\n",
        &[("a.crt", &crt, 0o644), ("a.key", &key, 0o600)],
    );
    assert!(ok, "{out}");
    let both = dir.path().join("both.pem");
    let mut pem = std::fs::read(&crt).expect("crt");
    pem.extend(std::fs::read(&key).expect("key"));
    std::fs::write(&both, pem).expect("write");
    let (ok, out) = check(
        "certificate_file = \"both.pem\"\n",
        &[("both.pem", &both, 0o640)],
    );
    assert!(ok, "{out}");

    let cases: [(&str, Files, &[&str]); 6] = [
        (
            "client_secret_file = \"s\"\ncertificate_file = \"a.crt\"\nprivate_key_file = \"a.key\"\n",
            &[("a.crt", &crt, 0o644), ("a.key", &key, 0o600)],
            &[
                "has both certificate_file and client_secret_file",
                "poststelle.toml:",
                "remove client_secret_file",
            ],
        ),
        (
            "certificate_file = \"a.crt\"\nprivate_key_file = \"a.key\"\n",
            &[("a.crt", &crt, 0o644), ("a.key", &key, 0o644)],
            &[
                "a.key holds the private key and is readable by every user",
                "(mode 0644)",
                "chmod 600",
            ],
        ),
        (
            "certificate_file = \"both.pem\"\n",
            &[("both.pem", &both, 0o644)],
            &[
                "both.pem holds the private key and is readable by every user",
                "chmod 600",
            ],
        ),
        (
            "certificate_file = \"a.crt\"\nprivate_key_file = \"b.key\"\n",
            &[("a.crt", &crt, 0o644), ("b.key", &b_key, 0o600)],
            &[
                "the private key in",
                "does not belong to the certificate",
                "openssl pkey -pubout",
            ],
        ),
        (
            "certificate_file = \"a.crt\"\n",
            &[("a.crt", &crt, 0o644)],
            &["holds no PEM private key", "add private_key_file"],
        ),
        (
            "private_key_file = \"a.key\"\nclient_secret = \"x\"\n",
            &[("a.key", &key, 0o600)],
            &[
                "private_key_file without certificate_file",
                "add certificate_file",
            ],
        ),
    ];
    let key_text = key_lines(&key);
    for (oauth, files, wanted) in cases {
        let (ok, out) = check(oauth, files);
        assert!(!ok, "{oauth}: {out}");
        for w in wanted {
            assert!(out.contains(w), "{oauth}: wanted {w:?} in {out}");
        }
        assert!(
            key_text.iter().all(|l| !out.contains(l.as_str())),
            "no key in check's output"
        );
    }
    // The key file's line is named when the key is at fault.
    let (_, out) = check(
        "certificate_file = \"a.crt\"\nprivate_key_file = \"b.key\"\n",
        &[("a.crt", &crt, 0o644), ("b.key", &b_key, 0o600)],
    );
    let line_of = |needle: &str| {
        out.lines()
            .find(|l| l.contains(needle))
            .and_then(|l| l.split("poststelle.toml:").nth(1))
            .and_then(|r| r.split(':').next())
            .and_then(|n| n.parse::<usize>().ok())
    };
    let key_line = line_of("does not belong");
    let text = text_of("certificate_file = \"a.crt\"\nprivate_key_file = \"b.key\"\n");
    let expected = text
        .lines()
        .position(|l| l.starts_with("private_key_file"))
        .map(|i| i + 1);
    assert_eq!(key_line, expected, "{out}");

    // Dates: an expired certificate, and one not valid yet.
    let now = jiff::Timestamp::now();
    let e = ClientCertificate::load(&crt, Some(&key), now + jiff::SignedDuration::from_hours(72))
        .expect_err("expired");
    assert!(e.message.contains("expired at"), "{e}");
    assert!(e.fix.contains("Upload certificate"), "{e}");
    let e = ClientCertificate::load(&crt, Some(&key), now - jiff::SignedDuration::from_hours(1))
        .expect_err("not yet");
    assert!(e.message.contains("is valid only from"), "{e}");
    // The certificate's Debug shows the thumbprint, not the key.
    let c = ClientCertificate::load(&crt, Some(&key), now).expect("loads");
    let shown = format!("{c:?}");
    assert!(
        shown.contains(&c.thumbprint) && shown.contains("[redacted]"),
        "{shown}"
    );
    assert!(
        key_text.iter().all(|l| !shown.contains(l.as_str())),
        "{shown}"
    );
}
