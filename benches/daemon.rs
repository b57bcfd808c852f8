//! The daemon on a desk's real work (issue 22), against a real Dovecot, beside what else can
//! be done with the same mailbox in the same run: Dovecot's raw fetch of every body, and
//! imapfilter sorting it on the server with three rules (it never downloads a body).
//!
//! Run: `bash tests/bench-daemon.sh` (starts Dovecot and OpenSMTPD as the tests do, unpacks
//! Postfix's smtp-sink as a local relay, installs imapfilter where missing, then
//! `cargo bench --bench daemon`). Without `--bench` (as `cargo test --all-targets` runs it) it
//! files 200 mails once, as a smoke test that prints no rates; without the test servers it
//! says so and does nothing.
//!
//! 1. The mailbox (benches/support/desk_mail.rs): 10,000 German support mails of about 18 KB
//!    on average, every tenth with a 100 KB PDF or DOCX, three in ten replies by
//!    `[Ticket#…]` and References, one in twenty an out-of-office reply, Nutzerkonto
//!    subjects, dated now. Written straight into the test user's Maildir, as a delivery agent
//!    would.
//! 2. In each of three rounds, one after the other on the same mailbox delivered anew: the
//!    raw fetch (`UID FETCH 1:* BODY.PEEK[]`), imapfilter, and `poststelle run` with the
//!    shipped configuration (acknowledgements and staff copies on) — once writing its mail to
//!    files, once sending it to the local relay when one is given — timed until the INBOX is
//!    empty and until the outbox is drained, with peak RSS and CPU. As the README's command
//!    runs it: no environment tuning. Medians of the rounds.
//!
//! `POSTSTELLE_BENCH_PERF=DIR` records the first round's file-transport run with
//! `perf record` into DIR (tests/bench-daemon.sh folds it into phases).
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::TryStreamExt;

// The test suite's IMAP helpers; the benchmark uses some of them.
#[path = "support/desk_mail.rs"]
mod desk_mail;
#[allow(dead_code)]
#[path = "../tests/integration/support/imap.rs"]
mod imap;
#[path = "support/mode.rs"]
mod mode;

const USER: &str = "d40";

fn main() {
    let measuring = mode::measuring();
    // The mailbox as .eml files, for profiling a part of the work on its own (`poststelle
    // ingest`, then `poststelle outbox send`): no servers needed.
    if let Ok(dir) = std::env::var("POSTSTELLE_BENCH_DUMP") {
        dump(Path::new(&dir), 10_000);
        return;
    }
    let (Ok(imap), Ok(conf)) = (
        std::env::var("POSTSTELLE_TEST_IMAP"),
        std::env::var("POSTSTELLE_TEST_DOVECOT_CONF"),
    ) else {
        eprintln!(
            "daemon bench: no test servers ($POSTSTELLE_TEST_IMAP); run tests/bench-daemon.sh"
        );
        return;
    };
    let n = if measuring { 10_000 } else { 200 };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(bench(&imap, Path::new(&conf), n, measuring));
    if !measuring {
        println!(
            "daemon bench smoke test: {n} mails fetched, sorted and filed end to end \
             (rates only from bash tests/bench-daemon.sh)"
        );
    }
}

fn dump(dir: &Path, n: usize) {
    let now = jiff::Zoned::now().in_tz("Europe/Berlin").expect("zone");
    let day = now.strftime("%Y%m%d").to_string();
    let date = now.strftime("%a, %d %b %Y %H:%M:%S %z").to_string();
    std::fs::create_dir_all(dir).expect("dump dir");
    for (i, mail) in desk_mail::mailbox(n, &day, &date).iter().enumerate() {
        std::fs::write(dir.join(format!("{i:05}.eml")), mail).expect("dump a mail");
    }
    println!("daemon bench: {n} mails written to {}", dir.display());
}

/// Prints a line of figures when measuring; one pass of a debug build has none worth reading.
macro_rules! figures {
    ($measuring:expr, $($line:tt)+) => {
        if $measuring {
            println!($($line)+);
        }
    };
}

/// Where poststelle's outgoing mail goes in a run.
#[derive(Clone, Copy, PartialEq)]
enum Out<'a> {
    Files,
    Relay(&'a str),
}

/// One run of `poststelle run`.
struct Run {
    inbox_empty: f64,
    drained: f64,
    rss_kb: u64,
    cpu: f64,
    sent: i64,
    /// Mails still to be sent when the INBOX was empty: how far the sender fell behind filing.
    behind: i64,
    /// The run's data directory, removed when the bench ends: removing its 16,000 sent mails
    /// at once would slow the next round's file transport (ext4 without a journal, as here,
    /// passes over inodes freed in the last minutes when it allocates new ones).
    _dir: tempfile::TempDir,
}

async fn bench(imap: &str, conf: &Path, n: usize, measuring: bool) {
    let maildir = conf
        .parent()
        .expect("server dir")
        .join(format!("mail/example.test/{USER}/Maildir"));
    let now = jiff::Zoned::now().in_tz("Europe/Berlin").expect("zone");
    let day = now.strftime("%Y%m%d").to_string();
    let date = now.strftime("%a, %d %b %Y %H:%M:%S %z").to_string();
    let mails = desk_mail::mailbox(n, &day, &date);
    let bytes: usize = mails.iter().map(Vec::len).sum();
    let count = |needle: &[u8]| {
        mails
            .iter()
            .filter(|m| m.windows(needle.len()).any(|w| w == needle))
            .count()
    };
    figures!(
        measuring,
        "daemon bench: {n} mails, {:.1} MB, {:.1} KB on average; {} with a 100 KB attachment, {} replies by [Ticket#…], {} out-of-office replies",
        bytes as f64 / 1e6,
        bytes as f64 / n as f64 / 1e3,
        count(b"Content-Disposition: attachment"),
        count(b"Subject: AW: [Ticket#") + count(b"Subject: =?UTF-8?B?QVc6IFtUaWNrZXQj"),
        count(b"Auto-Submitted: auto-replied"),
    );
    let relay = std::env::var("POSTSTELLE_BENCH_RELAY").ok();
    // imapfilter is a peer to compare with: only worth its time when measuring.
    let imapfilter = measuring && Command::new("imapfilter").arg("-V").output().is_ok();
    if !imapfilter {
        figures!(
            measuring,
            "  (imapfilter is not installed: tests/bench-daemon.sh installs it)"
        );
    }
    let perf = std::env::var("POSTSTELLE_BENCH_PERF")
        .ok()
        .map(PathBuf::from);
    let rounds = if measuring { 3 } else { 1 };
    let (mut raw, mut sorted, mut files, mut relayed) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        imap::reset(imap, USER).await;
        deliver(imap, &maildir, &mails).await;
        raw.push(raw_fetch(imap, n).await.0);
        if imapfilter {
            imap::reset(imap, USER).await;
            deliver(imap, &maildir, &mails).await;
            if let Some(secs) = imapfilter_sort(imap, n).await {
                sorted.push(secs);
            }
        }
        imap::reset(imap, USER).await;
        deliver(imap, &maildir, &mails).await;
        let perf = perf.as_deref().filter(|_| round == 0);
        files.push(run(imap, n, Out::Files, perf).await);
        if let Some(relay) = &relay {
            imap::reset(imap, USER).await;
            deliver(imap, &maildir, &mails).await;
            relayed.push(run(imap, n, Out::Relay(relay), None).await);
        }
    }
    let raw_rate = n as f64 / median(&raw);
    figures!(
        measuring,
        "  medians of {rounds} rounds                         msgs/s   share of raw fetch"
    );
    figures!(
        measuring,
        "  raw IMAP fetch of all bodies            {raw_rate:>8.0}   100 %"
    );
    if !sorted.is_empty() {
        let r = n as f64 / median(&sorted);
        figures!(
            measuring,
            "  imapfilter (3 rules, server-side)       {r:>8.0}   {:>5.1} %",
            100.0 * r / raw_rate
        );
    }
    let filter_rate = (!sorted.is_empty()).then(|| n as f64 / median(&sorted));
    for (what, runs) in [("files", &files), ("relay (smtp-sink)", &relayed)] {
        if runs.is_empty() {
            continue;
        }
        let inbox = n as f64 / median(&runs.iter().map(|r| r.inbox_empty).collect::<Vec<_>>());
        let drained = n as f64 / median(&runs.iter().map(|r| r.drained).collect::<Vec<_>>());
        let rss = runs.iter().map(|r| r.rss_kb).max().unwrap_or(0);
        let cpu = median(&runs.iter().map(|r| r.cpu).collect::<Vec<_>>());
        let sent = runs.iter().map(|r| r.sent).max().unwrap_or(0);
        let vs = |rate: f64| {
            filter_rate.map_or(String::new(), |f| format!(", {:.2}× imapfilter", rate / f))
        };
        figures!(
            measuring,
            "  poststelle run, mail to {what:<17} INBOX empty {inbox:>7.0} msgs/s ({:.1} % of raw{}); outbox drained {drained:>7.0} msgs/s{}",
            100.0 * inbox / raw_rate,
            vs(inbox),
            vs(drained)
        );
        figures!(
            measuring,
            "      {sent} mails sent; CPU {cpu:.2} s ({:.0} µs per message); peak RSS {:.1} MB (largest of the rounds)",
            cpu * 1e6 / n as f64,
            rss as f64 / 1024.0
        );
        for (i, r) in runs.iter().enumerate() {
            figures!(
                measuring,
                "      round {}: INBOX empty after {:.2} s ({} of {} mails still to send), outbox drained after {:.2} s, CPU {:.2} s, peak RSS {:.1} MB",
                i + 1,
                r.inbox_empty,
                r.behind,
                r.sent,
                r.drained,
                r.cpu,
                r.rss_kb as f64 / 1024.0
            );
        }
    }
    figures!(
        measuring,
        "  goals: poststelle run (outbox drained) ≥ 4× imapfilter; peak RSS < 100 MB"
    );
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Writes the mails into the user's Maildir/new, owned by Dovecot's mail user.
/// Writes the mails into the Maildir as a delivery agent would, and waits until Dovecot
/// shows them all: mail written in the second of the previous round's expunge can stay
/// unseen by a session until the directory's time changes (seen: 1 of 10,000).
async fn deliver(imap: &str, maildir: &Path, mails: &[Vec<u8>]) {
    let new = maildir.join("new");
    std::fs::create_dir_all(&new).expect("Maildir/new");
    for (i, m) in mails.iter().enumerate() {
        let path = new.join(format!("{}.desk{i}.poststelle", 1_700_000_000 + i));
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(m))
            .expect("write mail");
    }
    let chowned = Command::new("chown")
        .args(["-R", "5000:5000"])
        .arg(maildir.parent().expect("home"))
        .status()
        .expect("chown");
    assert!(chowned.success());
    for _ in 0..100 {
        if imap::count(imap, USER, "INBOX").await as usize == mails.len() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let later = std::time::SystemTime::now() + Duration::from_secs(1);
        let dir = std::fs::File::open(&new).expect("Maildir/new");
        dir.set_modified(later).expect("touch Maildir/new");
    }
    panic!("Dovecot does not show the {} delivered mails", mails.len());
}

/// Seconds imapfilter takes to sort the INBOX on the server with three rules, the way a desk
/// would without poststelle: replies by their ticket tag, automatic replies, the rest. `None`
/// when it left mail in the INBOX.
async fn imapfilter_sort(addr: &str, n: usize) -> Option<f64> {
    let dir = tempfile::tempdir().expect("tmp");
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let config = dir.path().join("config.lua");
    std::fs::write(
        &config,
        format!(
            "options.timeout = 120\noptions.create = true\noptions.expunge = true\n\
             options.starttls = false\n\
             account = IMAP {{ server = '{host}', port = {port}, username = '{USER}@example.test', password = 'secret' }}\n\
             account:create_mailbox('Antworten')\naccount:create_mailbox('Automatisch')\n\
             account:create_mailbox('Eingang')\n\
             inbox = account['INBOX']\n\
             inbox:contain_subject('[Ticket#'):move_messages(account['Antworten'])\n\
             inbox:contain_field('Auto-Submitted', 'auto-replied'):move_messages(account['Automatisch'])\n\
             inbox:select_all():move_messages(account['Eingang'])\n"
        ),
    )
    .expect("imapfilter config");
    assert_eq!(
        imap::count(addr, USER, "INBOX").await as usize,
        n,
        "INBOX holds the delivered mails"
    );
    let started = Instant::now();
    let out = Command::new("imapfilter")
        .arg("-c")
        .arg(&config)
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("imapfilter");
    let secs = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "imapfilter failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left = imap::count(addr, USER, "INBOX").await;
    if left > 0 {
        // Its rate would count mail it never sorted.
        println!(
            "  imapfilter left {left} of {n} mails in the INBOX: this round's rate is not counted ({} {})",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    Some(secs)
}

/// Runs `poststelle run` with the shipped configuration until the INBOX is empty and then
/// until the outbox is drained.
async fn run(addr: &str, n: usize, out: Out<'_>, perf: Option<&Path>) -> Run {
    let dir = tempfile::tempdir().expect("tmp");
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shipped = std::fs::read_to_string(repo.join("poststelle.toml")).expect("shipped config");
    let start = shipped.find("[[mailbox]]").expect("mailbox");
    let end = shipped.find("[auto_reply]").expect("auto_reply");
    let port = addr.rsplit_once(':').map(|(_, p)| p).expect("port");
    let data = dir.path().join("data");
    let mut text = format!(
        "data_dir = {data:?}\n{}{}\n[[mailbox]]\nname = \"desk\"\nkind = \"imap\"\nhost = \"127.0.0.1\"\n\
         port = {port}\ntls = \"none\"\nusername = \"{USER}@example.test\"\npassword = \"secret\"\n",
        &shipped[..start],
        &shipped[end..],
    )
    .replace("rules_dir = \"rules\"", &format!("rules_dir = {:?}", repo.join("rules")))
    .replace(
        "templates_dir = \"templates\"",
        &format!("templates_dir = {:?}", repo.join("templates")),
    )
    .replace(
        "contacts = \"contacts/hessen.toml\"",
        &format!("contacts = {:?}", repo.join("contacts/hessen.toml")),
    );
    if let Out::Relay(relay) = out {
        let (host, port) = relay.rsplit_once(':').expect("relay host:port");
        text = text.replace("transport = \"file\"", "transport = \"smtp\"");
        text.push_str(&format!(
            "\n[outbox.smtp]\nhost = \"{host}\"\nport = {port}\ntls = \"none\"\n"
        ));
    }
    let cfg = dir.path().join("poststelle.toml");
    std::fs::write(&cfg, text).expect("config");
    let bin = env!("CARGO_BIN_EXE_poststelle");
    let mut cmd = match perf {
        Some(perf) => {
            std::fs::create_dir_all(perf).expect("perf dir");
            let mut c = Command::new("perf");
            c.args([
                "record",
                "-e",
                "cpu-clock",
                "-F",
                "250",
                "--call-graph",
                "dwarf,32768",
                "-o",
            ])
            .arg(perf.join("perf.data"))
            .arg("--")
            .arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let started = Instant::now();
    let mut child = cmd
        .arg("--config")
        .arg(&cfg)
        .arg("run")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("poststelle run");
    let mut watcher = imap::login(addr, USER).await;
    loop {
        let left = watcher
            .status("INBOX", "(MESSAGES)")
            .await
            .map(|m| m.exists as usize)
            .unwrap_or(n);
        if left == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "{left} of {n} still in the INBOX after 15 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let inbox_empty = started.elapsed().as_secs_f64();
    let url = poststelle::store::Store::default_url(&data);
    let store = poststelle::store::Store::open_existing(&url)
        .await
        .expect("the daemon's store");
    let mut behind = None;
    loop {
        let pending = store.outbox_pending().await.expect("outbox pending");
        behind.get_or_insert(pending);
        if pending == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "{pending} mails still in the outbox after 15 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = started.elapsed().as_secs_f64();
    let behind = behind.unwrap_or(0);
    let sent = store
        .outbox_rows(Some(poststelle::store::outbox::OutboxState::Sent), None)
        .await
        .map_or(0, |r| r.len() as i64);
    store.close().await;
    // Under perf the child is perf; the daemon is its child.
    let pid = match perf {
        Some(_) => daemon_under(child.id()).unwrap_or(child.id()),
        None => child.id(),
    };
    let rss_kb = peak_rss_kb(pid);
    let cpu = cpu_seconds(pid);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "poststelle run exited with {status}");
    watcher.logout().await.expect("logout");
    assert!(sent > 0, "the run sent nothing");
    Run {
        inbox_empty,
        drained,
        rss_kb,
        cpu,
        sent,
        behind,
        _dir: dir,
    }
}

/// The first child process of `pid` (the daemon perf started).
fn daemon_under(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Seconds for one `UID FETCH 1:* BODY.PEEK[]` of the whole INBOX, every body read, and the
/// CPU seconds Dovecot spent on it.
async fn raw_fetch(addr: &str, n: usize) -> (f64, f64) {
    let mut s = imap::login(addr, USER).await;
    let exists = s.select("INBOX").await.expect("select").exists as usize;
    assert_eq!(exists, n, "INBOX holds the delivered mails");
    let cpu = dovecot_cpu();
    let start = Instant::now();
    let mut stream = s.uid_fetch("1:*", "BODY.PEEK[]").await.expect("fetch");
    let mut got = 0usize;
    let mut bytes = 0usize;
    while let Some(f) = stream.try_next().await.expect("fetch result") {
        bytes += f.body().map_or(0, <[u8]>::len);
        got += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    drop(stream);
    let cpu = dovecot_cpu() - cpu;
    assert_eq!(got, n);
    assert!(bytes > 0);
    s.logout().await.expect("logout");
    (secs, cpu)
}

/// CPU seconds used so far by Dovecot's running IMAP processes (one per session).
fn dovecot_cpu() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "imap")
        })
        .map(cpu_seconds)
        .sum()
}

/// User plus system time of a process, from /proc (in clock ticks of 1/100 s on Linux).
fn cpu_seconds(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The command name may hold spaces; the fields after it are plain numbers.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
            Some(ticks as f64 / 100.0)
        })
        .unwrap_or(0.0)
}

fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
