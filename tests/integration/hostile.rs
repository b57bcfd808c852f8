//! Mail as an attacker or a broken server writes it. Each generated case runs at 10× the size
//! that once stalled filing, and its time grows at most linearly: the test compares two sizes
//! (a ratio, not a wall time). Text from a mail never starts a line of its own in our mail,
//! and an address with NUL gets no automatic reply.
use std::time::Duration;

use poststelle::classify::{Action, classify_raw};
use poststelle::source::{MailFile, read_mail_file};
use poststelle::ticket::ingest::{Ingestor, Outcome, SourceKey};

use crate::support::config::DEFAULT;
use crate::support::daemon::{Daemon, env, sqlite_of, unique, until};
use crate::support::db::{TestDb, both, scalar};
use crate::support::imap::{append_all, count, reset};
use crate::support::mail::requests;

/// The fastest of three runs of `f` on `input`.
fn fastest(input: &[u8], f: impl Fn(&[u8])) -> Duration {
    (0..5)
        .map(|_| {
            let t = thread_cpu();
            f(input);
            thread_cpu().saturating_sub(t)
        })
        .min()
        .unwrap_or_default()
}

/// The CPU time this thread has used: unlike the wall clock it does not grow while other
/// processes (a parallel build, the other tests) have the cores, so the ratio below measures
/// the work and not the machine's load.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to write.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Classifying `make(4n)` takes at most about four times as long as `make(n)` (linear, with
/// room for noise: quadratic would be sixteen).
fn assert_linear(what: &str, make: impl Fn(usize) -> Vec<u8>, n: usize) {
    let (small, large) = (make(n), make(4 * n));
    let classify = |raw: &[u8]| {
        let (_, d) = classify_raw(&DEFAULT, raw);
        std::hint::black_box(d);
    };
    // Warm up the rule automata, so the first measurement does not pay for them.
    classify(&small);
    let (a, b) = (fastest(&small, classify), fastest(&large, classify));
    let ratio = b.as_secs_f64() / a.as_secs_f64().max(1e-6);
    assert!(
        ratio < 9.0,
        "{what}: {} bytes took {a:?}, {} bytes {b:?} (ratio {ratio:.1}, linear is 4)",
        small.len(),
        large.len()
    );
}

/// multipart/mixed with `n` parts, each declaring multipart/alternative with a boundary that
/// never comes (quadratic in mail-parser: 10,000 parts took 4.8 s).
fn unclosed_multiparts(n: usize) -> Vec<u8> {
    let mut m = b"From: a@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
        .to_vec();
    for _ in 0..n {
        m.extend_from_slice(
            b"--outer\r\nContent-Type: multipart/alternative; boundary=\"B\"\r\n\r\nx\r\n",
        );
    }
    m
}

/// `n` Cc addresses in one field (2 MB for 100,000 took 48 s to file).
fn many_cc(n: usize) -> Vec<u8> {
    let mut m =
        b"From: a@example.org\r\nSubject: cc\r\nMessage-ID: <cc@example.org>\r\nCc: ".to_vec();
    for i in 0..n {
        if i > 0 {
            m.extend_from_slice(b",\r\n ");
        }
        m.extend_from_slice(format!("u{i}@example.org").as_bytes());
    }
    m.extend_from_slice(b"\r\n\r\nHallo\r\n");
    m
}

/// An attachment name in `n` RFC 2231 continuations (200,000 took 11.5 s).
fn continuations(n: usize) -> Vec<u8> {
    let mut m = b"From: a@example.org\r\nSubject: 2231\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
        Content-Type: application/octet-stream;\r\n"
        .to_vec();
    for i in 0..n {
        m.extend_from_slice(format!(" name*{i}*=utf-8''x;\r\n").as_bytes());
    }
    m.extend_from_slice(b"\r\nAAAA\r\n--b--\r\n");
    m
}

/// `n` Date fields (215 MB of them took 1 GB).
fn repeated_dates(n: usize) -> Vec<u8> {
    let mut m = b"From: a@example.org\r\nSubject: dates\r\n".to_vec();
    for _ in 0..n {
        m.extend_from_slice(b"Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n");
    }
    m.extend_from_slice(b"\r\nx\r\n");
    m
}

#[test]
fn unclosed_multipart_boundaries_take_linear_time() {
    assert_linear("unclosed multiparts", unclosed_multiparts, 25_000);
    let (_, d) = classify_raw(&DEFAULT, &unclosed_multiparts(100_000));
    assert_eq!(d.action, Action::Quarantine, "{}", d.reason);
    assert!(d.reason.contains("multipart"), "{}", d.reason);
}

#[test]
fn a_million_cc_addresses_take_linear_time() {
    assert_linear("Cc addresses", many_cc, 250_000);
}

#[test]
fn rfc2231_continuations_take_linear_time() {
    assert_linear("RFC 2231 continuations", continuations, 500_000);
    let (_, d) = classify_raw(&DEFAULT, &continuations(2_000_000));
    assert_eq!(d.action, Action::Quarantine, "{}", d.reason);
}

#[test]
fn repeated_header_fields_take_linear_time() {
    assert_linear("Date fields", repeated_dates, 100_000);
    let (_, d) = classify_raw(&DEFAULT, &repeated_dates(50_000));
    assert_eq!(d.action, Action::Quarantine, "{}", d.reason);
}

/// A person's mail with a few multipart levels and attachments is not "too complex".
#[test]
fn ordinary_mime_is_not_too_complex() {
    let mut m = b"From: a@example.org\r\nSubject: Anlagen\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\n\
        Content-Type: multipart/alternative; boundary=\"a\"\r\n\r\n--a\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\r\nHallo\r\n--a\r\n\
        Content-Type: text/html; charset=utf-8\r\n\r\n<p>Hallo</p>\r\n--a--\r\n"
        .to_vec();
    for i in 0..40 {
        m.extend_from_slice(
            format!(
                "--m\r\nContent-Type: application/pdf; name=\"a{i}.pdf\"\r\n\
                 Content-Disposition: attachment; filename=\"a{i}.pdf\"\r\n\r\nJVBERi0=\r\n"
            )
            .as_bytes(),
        );
    }
    m.extend_from_slice(b"--m--\r\n");
    let (msg, d) = classify_raw(&DEFAULT, &m);
    assert_ne!(d.action, Action::Quarantine, "{}", d.reason);
    assert_eq!(msg.expect("parsed").attachments.len(), 40);
}

/// A file far over the size limit is never read whole: only its header (a sparse 2 GB file
/// here, which would not fit the memory bound).
#[test]
fn an_oversized_file_is_read_only_to_its_header() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("huge.eml");
    std::fs::write(&path, b"From: a@example.org\r\nSubject: huge\r\n\r\nbody").expect("write");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_len(2 << 30).expect("sparse file");
    match read_mail_file(&path, 25 << 20).expect("read") {
        MailFile::TooLarge { header, size } => {
            assert_eq!(size, 2 << 30);
            assert_eq!(header, b"From: a@example.org\r\nSubject: huge\r\n\r\n");
        }
        MailFile::Whole(_) => panic!("a 2 GB file read whole"),
    }
    let (_, d) = classify_raw(&DEFAULT, &vec![b'x'; (25 << 20) + 1]);
    assert_eq!(
        d.action,
        Action::Quarantine,
        "classify applies the limit too"
    );
}

both!(a_display_name_with_line_breaks_writes_no_line_of_its_own);
async fn a_display_name_with_line_breaks_writes_no_line_of_its_own(db: &TestDb) {
    let attacks = [
        // CR LF in an encoded word of the display name, and in the subject.
        "From: =?utf-8?q?Eve=0D=0ABcc=3A_victim=40example=2Eorg?= <eve@example.org>\r\n\
         Subject: =?utf-8?q?Drucker=0D=0ABcc=3A_victim=40example=2Eorg?=\r\n",
        // A bare LF and a Unicode line separator in a quoted name.
        "From: \"Eve\u{2028}Bcc: victim@example.org\" <eve@example.org>\r\nSubject: Drucker\r\n",
    ];
    let ing = Ingestor::new(&db.store, &DEFAULT);
    for (i, head) in attacks.iter().enumerate() {
        let raw = format!(
            "{head}Message-ID: <eve{i}@example.org>\r\nTo: support@kommunal-it.example\r\n\r\nHallo\r\n"
        );
        let o = ing
            .ingest(raw.as_bytes(), SourceKey::file(&format!("eve{i}")))
            .await
            .expect("ingest");
        assert!(matches!(o, Outcome::NewTicket { .. }), "{o:?}");
    }
    let mails: Vec<(String, String)> =
        sqlx::query_as("SELECT subject, body_text FROM outbox ORDER BY id")
            .fetch_all(db.store.pool())
            .await
            .expect("outbox");
    assert!(mails.len() >= 4, "acknowledgements and copies: {mails:?}");
    for (subject, body) in &mails {
        assert!(!subject.contains(['\r', '\n', '\u{2028}']), "{subject:?}");
        for line in body.lines() {
            assert!(
                !line.trim_start().starts_with("Bcc:"),
                "attacker text on a line of its own: {body}"
            );
        }
    }
    assert!(
        mails
            .iter()
            .any(|(_, b)| b.contains("Eve Bcc: victim@example.org")),
        "the name is kept, on one line"
    );
}

both!(an_address_with_nul_gets_no_automatic_reply);
async fn an_address_with_nul_gets_no_automatic_reply(db: &TestDb) {
    let raw = b"From: Alice <al\x00ice@example.org>\r\nSubject: Drucker\r\n\
        Message-ID: <nul@example.org>\r\nTo: support@kommunal-it.example\r\n\r\nHallo\r\n";
    let o = Ingestor::new(&db.store, &DEFAULT)
        .ingest(raw, SourceKey::file("nul"))
        .await
        .expect("ingest");
    assert!(matches!(o, Outcome::NewTicket { .. }), "{o:?}");
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM outbox WHERE kind IN ('acknowledgement', 'auto_reply')"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM audit WHERE event = 'auto_reply_skipped' \
             AND detail LIKE '%not a valid address%'"
        )
        .await,
        1
    );
}

/// One hostile mail among ordinary ones over IMAP: it goes to quarantine, the others are
/// filed as if it were not there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_files_ordinary_mail_beside_a_hostile_one() {
    let imap = env("POSTSTELLE_TEST_IMAP");
    let (user, tag) = ("d34", unique());
    reset(&imap, user).await;
    let cfg = crate::support::config::one_mailbox("h", &imap, user, "batch_size = 5");
    let mut mails = requests(6, "d35", &tag);
    mails.insert(3, unclosed_multiparts(100_000));
    append_all(&imap, user, "INBOX", &mails).await;
    let mut daemon = Daemon::start(&cfg, "run");
    until(Duration::from_secs(30), "all moved", || async {
        count(&imap, user, "INBOX").await == 0
            && count(&imap, user, "Verarbeitet").await == 6
            && count(&imap, user, "Quarantaene").await == 1
    })
    .await;
    let store = sqlite_of(&cfg).await;
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM tickets").await, 6);
    assert_eq!(
        scalar(
            &store,
            "SELECT COUNT(*) FROM raw_messages WHERE outcome = 'quarantined'"
        )
        .await,
        1
    );
    daemon.stop_ok();
    store.close().await;
}

/// A mail on which mail-parser 0.11.9 panics in debug builds (found by `fuzz/`, target
/// `parse`; minimised): the panic becomes a quarantine, not a failed batch that
/// would be fetched and fail again at every attempt.
#[test]
fn a_panic_in_the_mail_parser_is_a_quarantine() {
    let raw =
        std::fs::read(crate::support::repo().join("tests/fixtures/parse-empty-nested-rfc822.eml"))
            .expect("fixture");
    let parsed = poststelle::InboundMessage::parse(&raw);
    if cfg!(debug_assertions) {
        // Release builds skip the parser's assertion and read what they can.
        assert_eq!(
            parsed.err(),
            Some(poststelle::message::ParseError::ParserFailed)
        );
    }
    let (_, d) = classify_raw(&DEFAULT, &raw);
    if cfg!(debug_assertions) {
        assert_eq!(d.action, Action::Quarantine, "{}", d.reason);
    }
}

/// Field names spelled as mail-parser still reads them (blanks before the colon or inside the
/// name, a blank-led first line) are counted like `Content-Type:`: they must not pass the
/// pre-scan into the quadratic path (found by reading mail-parser against the pre-scan).
#[test]
fn odd_spellings_of_content_type_do_not_pass_the_prescan() {
    let raw =
        std::fs::read(crate::support::repo().join("tests/fixtures/prescan-blank-before-colon.eml"))
            .expect("fixture");
    assert!(poststelle::message::Limits::DEFAULT.check(&raw).is_err());
    for spelling in [
        "Content-Type :",
        "Content- Type:",
        " Content-Type:",
        "CONTENT-TYPE\t:",
    ] {
        let make = |n: usize| {
            let mut m = b"From: a@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\n\
                Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
                .to_vec();
            for _ in 0..n {
                m.extend_from_slice(b"--outer\r\n");
                m.extend_from_slice(spelling.as_bytes());
                m.extend_from_slice(b" multipart/alternative; boundary=\"B\"\r\n\r\nx\r\n");
            }
            m
        };
        let (_, d) = classify_raw(&DEFAULT, &make(1_000));
        assert_eq!(d.action, Action::Quarantine, "{spelling:?}: {}", d.reason);
        assert_linear(spelling, make, 5_000);
    }
}

/// An ordinary mail of `size` bytes of German text: the largest a desk takes in.
fn plain_text(size: usize) -> Vec<u8> {
    let mut m = "From: a@example.org\r\nSubject: Protokoll\r\nMIME-Version: 1.0\r\n\
        Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        .as_bytes()
        .to_vec();
    while m.len() < size {
        m.extend_from_slice("Über die Störung der Fachanwendung wurde berichtet.\r\n".as_bytes());
    }
    m
}

/// The peak resident memory (KiB) of `poststelle ARGS`, which must exit 0, from the kernel's
/// account of the finished child (`wait4`'s `ru_maxrss`): the one measure that sees every
/// allocation, mail-parser's and SQLite's included. Linux carries the high-water mark of the
/// spawning process over into its child, so the child is spawned by a fresh, small process —
/// this test binary running [`rss_probe`] alone — not by this large one.
fn peak_rss_kib(args: &[&std::ffi::OsStr]) -> u64 {
    let joined = args
        .iter()
        .map(|a| a.to_str().expect("UTF-8 argument"))
        .collect::<Vec<_>>()
        .join("\u{1f}");
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "hostile::rss_probe",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PROBE, joined)
        .output()
        .expect("probe");
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        // The harness writes the test's name on the same line.
        .find_map(|l| l.split_once("peak_rss_kib=").map(|(_, n)| n))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "the probe reported no figure: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

const PROBE: &str = "POSTSTELLE_TEST_RSS_PROBE";

/// Not a test of its own: what [`peak_rss_kib`] runs in a fresh process. Without its variable
/// it does nothing.
#[test]
fn rss_probe() {
    let Ok(args) = std::env::var(PROBE) else {
        return;
    };
    #[allow(clippy::zombie_processes)] // reaped by wait4 below, which also gives the figure
    let child = crate::support::bin::poststelle()
        .args(args.split('\u{1f}'))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    let mut status = 0;
    // SAFETY: `rusage` is plain data the kernel fills in; `pid` is our own unwaited child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4");
    // Reaped by wait4 above; dropping the handle does not wait again.
    drop(child);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "poststelle {args:?} failed (status {status})"
    );
    println!("peak_rss_kib={}", usage.ru_maxrss);
}

/// Every case at ten times the size that once took several times its size in memory: a
/// message within the size limit costs at most a small multiple of its size above what a
/// tiny mail costs (`classify` and `ingest` with its store), and one over the limit — a sparse
/// file of gigabytes here — costs next to nothing, as only its header is read.
#[test]
fn memory_stays_within_a_small_multiple_of_the_message() {
    let dir = tempfile::tempdir().expect("tmp");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    };
    let sparse = |name: &str, head: &[u8], size: u64| {
        let path = write(name, head);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_len(size).expect("sparse file");
        path
    };
    let tiny = write(
        "tiny.eml",
        b"From: a@example.org\r\nSubject: x\r\n\r\nHallo\r\n",
    );
    let within = [
        write("multiparts.eml", &unclosed_multiparts(100_000)),
        write("cc.eml", &many_cc(1_000_000)),
        write("continuations.eml", &continuations(900_000)),
        write("dates.eml", &repeated_dates(500_000)),
        write("plain.eml", &plain_text(20 << 20)),
    ];
    let over = [
        sparse(
            "huge.eml",
            b"From: a@example.org\r\nSubject: huge\r\n\r\n",
            3 << 30,
        ),
        sparse("dates-2g.eml", &repeated_dates(20_000), 2 << 30),
    ];
    let classify = |path: &std::path::Path| peak_rss_kib(&["classify".as_ref(), path.as_ref()]);
    let ingest = |path: &std::path::Path| {
        let data = tempfile::tempdir().expect("tmp");
        peak_rss_kib(&[
            "--data-dir".as_ref(),
            data.path().as_ref(),
            "ingest".as_ref(),
            path.as_ref(),
        ])
    };
    for (what, run) in [
        ("classify", &classify as &dyn Fn(&_) -> u64),
        ("ingest", &ingest),
    ] {
        let base = run(&tiny);
        for path in &within {
            let size_kib = std::fs::metadata(path).expect("size").len() / 1024;
            let peak = run(path);
            eprintln!(
                "{what} {}: {peak} KiB at peak, base {base} KiB",
                path.display()
            );
            assert!(
                peak <= base + 12 * size_kib,
                "{what} {}: {peak} KiB at peak for {size_kib} KiB (tiny mail: {base} KiB)",
                path.display()
            );
        }
        for path in &over {
            let peak = run(path);
            assert!(
                peak <= base + 16 * 1024,
                "{what} {}: {peak} KiB at peak, only the header should be read (tiny: {base} KiB)",
                path.display()
            );
        }
    }
}

both!(a_message_over_its_time_budget_is_quarantined_and_its_batch_goes_on);
/// The budget is the last line of defence behind the pre-scan. A message within every
/// pre-scan limit that is still slow to read (63 multipart parts whose boundary never comes,
/// each scanning the 4 MB after it) is quarantined for its time, and the messages after it in
/// its batch are filed in order: the reply still finds the request before the slow message.
async fn a_message_over_its_time_budget_is_quarantined_and_its_batch_goes_on(db: &TestDb) {
    use crate::support::config::TempConfig;
    use crate::support::mail::{mail, request};
    use poststelle::ticket::ingest::{Incoming, PreparedBatch};
    let text = TempConfig::shipped_text()
        .replace("parse_budget_seconds = 10", "parse_budget_seconds = 0.05")
        .replace(
            "rules_dir = \"rules\"",
            &format!("rules_dir = {:?}", crate::support::repo().join("rules")),
        );
    let tmp = TempConfig::new(&text, &[]);
    let config = std::sync::Arc::new(tmp.load());
    assert_eq!(
        config.settings.ingest.parse_budget,
        Duration::from_millis(50)
    );
    let mut slow = unclosed_multiparts(63);
    let line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod\r\n";
    while slow.len() < 4 << 20 {
        slow.extend_from_slice(line);
    }
    let raws = [
        request(
            "budget@gemeinde.example",
            "Drucker",
            "budget1@gemeinde.example",
        ),
        slow,
        mail(
            &[
                "From: budget@gemeinde.example",
                "Subject: AW: Drucker",
                "Message-ID: <budget2@gemeinde.example>",
                "In-Reply-To: <budget1@gemeinde.example>",
            ],
            "Noch eine Frage.\r\n",
        ),
    ];
    let items: Vec<Incoming<'_>> = raws
        .iter()
        .enumerate()
        .map(|(i, raw)| Incoming {
            raw,
            source: SourceKey::file(&format!("budget/{i}")),
        })
        .collect();
    let batch = PreparedBatch::new_parallel(&config, &items, 2);
    let outcomes = Ingestor::new(&db.store, &config)
        .ingest_prepared(batch)
        .await
        .expect("ingest");
    let Outcome::NewTicket { number, .. } = &outcomes[0] else {
        panic!("{:?}", outcomes[0]);
    };
    match &outcomes[1] {
        Outcome::Quarantined { reason } => assert!(reason.contains("time budget"), "{reason}"),
        other => panic!("the slow message: {other:?}"),
    }
    match &outcomes[2] {
        Outcome::FollowUp { number: n, .. } => assert_eq!(n, number),
        other => panic!("the reply: {other:?}"),
    }
    assert_eq!(
        scalar(
            &db.store,
            "SELECT COUNT(*) FROM raw_messages WHERE outcome = 'quarantined'"
        )
        .await,
        1
    );
}

/// The fuzzers' seeds and every input they found (fuzz/regressions) replayed on each test run,
/// with the properties the fuzz targets assert: fuzzing itself runs by hand (fuzz/README.md),
/// what it once found must stay fixed here.
#[test]
fn fuzz_seeds_and_findings_replay_cleanly() {
    let fuzz = crate::support::repo().join("fuzz");
    let files = |dir: &str| -> Vec<std::path::PathBuf> {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir)) else {
            return Vec::new();
        };
        let mut v: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        v.sort();
        v
    };
    let mut mails = files("regressions");
    for target in ["parse", "prescan", "classify"] {
        mails.extend(files(&format!("seeds/{target}")));
    }
    assert!(mails.len() > 20, "the fuzz seeds are missing");
    for path in &mails {
        let raw = std::fs::read(path).expect("seed");
        let (msg, d) = classify_raw(&DEFAULT, &raw);
        assert!(
            !d.reason.is_empty(),
            "{}: a decision without a reason",
            path.display()
        );
        if let Some(m) = msg {
            let names = m.from.iter().chain(&m.to).chain(&m.cc).chain(&m.reply_to);
            for text in names
                .flat_map(|mb| [Some(mb.address.as_str()), mb.name.as_deref()])
                .flatten()
                .chain([m.subject.as_str(), m.body.as_str()])
            {
                assert!(!text.contains('\0'), "{}: NUL in {text:?}", path.display());
            }
        }
    }
    for path in files("seeds/single_line") {
        let text = String::from_utf8_lossy(&std::fs::read(&path).expect("seed")).into_owned();
        let out = poststelle::notify::single_line(&text);
        assert!(
            !out.chars()
                .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
            "{}: {out:?}",
            path.display()
        );
        assert_eq!(
            poststelle::notify::single_line(&out),
            out,
            "{}",
            path.display()
        );
    }
    for path in files("seeds/escaped") {
        let out = poststelle::diag::for_terminal(&std::fs::read(&path).expect("seed"));
        assert!(
            out.chars().all(|c| c == '\n'
                || c == '\t'
                || !(c.is_control() || poststelle::diag::is_invisible_format(c))),
            "{}: {out:?}",
            path.display()
        );
    }
}
