//! OAuth 2.0 logins against real servers on loopback (tests/servers.sh): a Dovecot whose oauth2
//! passdb validates the token server's JWTs locally, its submission service relaying to
//! OpenSMTPD, and the token server tests/oauth/server.mjs (npm's oauth2-mock-server). Client
//! "app.<user>" has the secret "cs.app.<user>"; "short.<…>" gets tokens that live 6 s.
use std::time::Duration;

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
