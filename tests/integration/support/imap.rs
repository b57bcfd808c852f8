//! IMAP from the test's side: log in as a test user, empty its mailbox, append and read mail.
//! Shared by the integration tests and the daemon benchmark (which includes this file), so it
//! depends on nothing but async-imap and Tokio.
use futures::TryStreamExt;
use tokio::net::TcpStream;

pub type Imap = async_imap::Session<TcpStream>;

pub async fn login(addr: &str, user: &str) -> Imap {
    let tcp = TcpStream::connect(addr).await.expect("IMAP connect");
    tcp.set_nodelay(true).expect("nodelay");
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.expect("greeting");
    client
        .login(format!("{user}@example.test"), "secret")
        .await
        .map_err(|(e, _)| e)
        .expect("IMAP login")
}

/// Empties a test user's mailbox: INBOX expunged, every other folder deleted, so that a test
/// starts from nothing even after an earlier run.
pub async fn reset(addr: &str, user: &str) {
    let mut s = login(addr, user).await;
    let names: Vec<String> = s
        .list(Some(""), Some("*"))
        .await
        .expect("list")
        .try_collect::<Vec<_>>()
        .await
        .expect("list results")
        .iter()
        .map(|n| n.name().to_string())
        .collect();
    for name in names.iter().filter(|n| n.as_str() != "INBOX") {
        s.delete(name).await.expect("delete folder");
    }
    let inbox = s.select("INBOX").await.expect("select");
    if inbox.exists > 0 {
        s.store("1:*", "+FLAGS.SILENT (\\Deleted)")
            .await
            .expect("store")
            .try_collect::<Vec<_>>()
            .await
            .expect("store results");
        s.expunge()
            .await
            .expect("expunge")
            .try_collect::<Vec<_>>()
            .await
            .expect("expunge results");
    }
    s.logout().await.expect("logout");
}

pub async fn append_all(addr: &str, user: &str, folder: &str, mails: &[Vec<u8>]) {
    let mut s = login(addr, user).await;
    if folder != "INBOX" {
        let _ = s.create(folder).await;
    }
    for m in mails {
        s.append(folder, None, None, m).await.expect("append");
    }
    s.logout().await.expect("logout");
}

/// Every message in a folder (empty when the folder does not exist).
pub async fn messages(addr: &str, user: &str, folder: &str) -> Vec<Vec<u8>> {
    let mut s = login(addr, user).await;
    let mut out = Vec::new();
    if let Ok(mb) = s.examine(folder).await
        && mb.exists > 0
    {
        let fetches: Vec<_> = s
            .fetch("1:*", "BODY.PEEK[]")
            .await
            .expect("fetch")
            .try_collect()
            .await
            .expect("fetch results");
        out = fetches
            .iter()
            .filter_map(|f| f.body().map(<[u8]>::to_vec))
            .collect();
    }
    s.logout().await.expect("logout");
    out
}

pub async fn count(addr: &str, user: &str, folder: &str) -> u32 {
    let mut s = login(addr, user).await;
    let n = s.examine(folder).await.map(|m| m.exists).unwrap_or(0);
    s.logout().await.expect("logout");
    n
}
