//! A support mailbox as a desk receives it (issue 22), generated the same for the same count:
//! German text bodies of a few KB (umlauts, 8-bit, quoted-printable Latin-1, now and then a
//! B-encoded subject), every tenth mail with a 100 KB PDF or DOCX attachment, three in ten
//! replies to an earlier mail of the same mailbox (its `[Ticket#…]` in the subject and its
//! Message-ID in References), one in twenty an out-of-office reply, Nutzerkonto subjects
//! (`HE_<Betreff>_NKB` / `_MUK`) among the new ones. Dated now, so that acknowledgements go out.
//!
//! Ticket numbers are predicted as poststelle hands them out in a fresh store: today's date
//! (Europe/Berlin), the instance id 10, then the count of new tickets so far. A reply whose
//! prediction is off still finds its ticket by References.

/// Every mail of the mailbox, in delivery order.
pub fn mailbox(n: usize, day: &str, date: &str) -> Vec<Vec<u8>> {
    let pdf = attachment(100_000, 3);
    let docx = attachment(100_000, 5);
    let mut rng = Rng(0x5eed_d35c);
    // (Message-ID, subject, requester, predicted number) of the mails that opened a ticket.
    let mut opened: Vec<(String, String, String, String)> = Vec::new();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let roll = rng.below(100);
        let file = (i % 10 == 9).then(|| {
            if rng.below(2) == 0 {
                ("application/pdf", "Bescheid-Scan.pdf", pdf.as_str())
            } else {
                (
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                    "Stellungnahme Fachamt.docx",
                    docx.as_str(),
                )
            }
        });
        let id = format!(
            "desk{i}.{}@gemeinde{}.example",
            rng.next() % 1_000_000,
            i % 40
        );
        let mail = if roll < 5 && !opened.is_empty() {
            let (to_id, subject, requester, _) = &opened[rng.below(opened.len())];
            out_of_office(i, &id, to_id, subject, requester, date)
        } else if roll < 35 && !opened.is_empty() {
            // Replies go mostly to recent tickets, as they do at a desk.
            let back = rng.below(opened.len().min(400));
            let (to_id, subject, requester, number) = &opened[opened.len() - 1 - back];
            let subject = format!("AW: [Ticket#{number}] {subject}");
            let len = 1_500 + rng.below(3_000);
            let body = text(&mut rng, len, i);
            compose(&Parts {
                id: &id,
                from: requester,
                subject: &subject,
                references: Some(to_id),
                date,
                body: &body,
                file,
                latin1: i % 7 == 3,
                encoded_subject: i % 5 == 1,
                extra: "",
            })
        } else {
            let subject = new_subject(&mut rng, i);
            // A desk hears from thousands of people a day, most of them once: few enough
            // repeats that the loop brake (5 automatic replies an hour) rarely holds back an
            // acknowledgement, as at a real desk.
            let requester = format!(
                "Person {} <p{}@gemeinde{}.example>",
                i % 6000,
                i % 6000,
                i % 40
            );
            let len = 2_000 + rng.below(4_000);
            let body = text(&mut rng, len, i);
            let m = compose(&Parts {
                id: &id,
                from: &requester,
                subject: &subject,
                references: None,
                date,
                body: &body,
                file,
                latin1: i % 7 == 3,
                encoded_subject: i % 5 == 1,
                extra: "",
            });
            let number = format!("{day}10{:06}", opened.len() + 1);
            opened.push((id.clone(), subject, requester, number));
            m
        };
        out.push(mail);
    }
    out
}

struct Parts<'a> {
    id: &'a str,
    from: &'a str,
    subject: &'a str,
    references: Option<&'a str>,
    date: &'a str,
    body: &'a str,
    file: Option<(&'a str, &'a str, &'a str)>,
    latin1: bool,
    encoded_subject: bool,
    extra: &'a str,
}

fn compose(p: &Parts) -> Vec<u8> {
    let subject = if p.encoded_subject {
        format!("=?UTF-8?B?{}?=", base64(p.subject.as_bytes()))
    } else {
        p.subject.to_string()
    };
    let mut head = format!(
        "Return-Path: <{addr}>\r\nReceived: from mx.gemeinde.example (mx.gemeinde.example [192.0.2.25])\r\n\
         \tby mail.kommunal-it.example with ESMTPS id 4Xk2; {date}\r\n\
         From: {from}\r\nTo: Servicedesk <support@example.test>\r\nSubject: {subject}\r\n\
         Message-ID: <{id}>\r\nDate: {date}\r\nMIME-Version: 1.0\r\n\
         X-Mailer: Microsoft Outlook 16.0\r\nContent-Language: de-DE\r\n{extra}",
        addr = address(p.from),
        date = p.date,
        from = p.from,
        id = p.id,
        extra = p.extra,
    );
    if let Some(r) = p.references {
        head.push_str(&format!("In-Reply-To: <{r}>\r\nReferences: <{r}>\r\n"));
    }
    let (ctype, cte, body) = if p.latin1 {
        (
            "text/plain; charset=iso-8859-1",
            "quoted-printable",
            quoted_printable_latin1(p.body),
        )
    } else {
        ("text/plain; charset=utf-8", "8bit", p.body.to_string())
    };
    let text = match p.file {
        None => {
            format!("{head}Content-Type: {ctype}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n{body}")
        }
        Some((mime, name, data)) => format!(
            "{head}Content-Type: multipart/mixed; boundary=\"=_b{n}\"\r\n\r\n\
             This is a multi-part message in MIME format.\r\n\r\n--=_b{n}\r\n\
             Content-Type: {ctype}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n{body}\r\n\
             --=_b{n}\r\nContent-Type: {mime}; name=\"{name}\"\r\n\
             Content-Disposition: attachment; filename=\"{name}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{data}\r\n--=_b{n}--\r\n",
            n = p.id.len()
        ),
    };
    text.into_bytes()
}

fn out_of_office(
    i: usize,
    id: &str,
    to_id: &str,
    subject: &str,
    requester: &str,
    date: &str,
) -> Vec<u8> {
    let body = "Vielen Dank für Ihre Nachricht. Ich bin bis einschließlich Freitag nicht im \
                Büro und habe keinen Zugriff auf meine E-Mails.\r\nIn dringenden Fällen wenden \
                Sie sich bitte an das Bürgerbüro (Telefon 06131 16-0).\r\n\r\nMit freundlichen \
                Grüßen\r\n";
    let subject = format!("Automatische Antwort: {subject}");
    compose(&Parts {
        id,
        from: requester,
        subject: &subject,
        references: Some(to_id),
        date,
        body,
        file: None,
        latin1: false,
        encoded_subject: i.is_multiple_of(2),
        extra: "Auto-Submitted: auto-replied\r\nX-Auto-Response-Suppress: All\r\n",
    })
}

fn new_subject(rng: &mut Rng, i: usize) -> String {
    const TOPICS: [&str; 14] = [
        "Drucker im Bürgerbüro druckt nicht",
        "Passwort für das Fachverfahren abgelaufen",
        "VPN-Verbindung bricht ab",
        "Zulassungsstelle: Kasse startet nicht",
        "Scanner im Standesamt meldet Fehler",
        "Anmeldung am Arbeitsplatz nicht möglich",
        "Netzwerkstörung im Rathaus Außenstelle",
        "Neuer Zugang für Mitarbeiterin im Ordnungsamt",
        "Termin für Schulung Meldewesen",
        "Fehlermeldung beim Öffnen der E-Akte",
        "Zertifikat für Signaturkarte läuft ab",
        "Outlook-Postfach voll",
        "Telefonanlage: Weiterleitung einrichten",
        "Rückfrage zur Wartung am Mittwoch",
    ];
    const NKB: [&str; 5] = [
        "Wohngeld",
        "Gewerbeanzeige",
        "Elterngeld",
        "BAföG",
        "Waffenrechtliche Erlaubnis",
    ];
    if i % 6 == 2 {
        let scheme = if rng.below(2) == 0 { "NKB" } else { "MUK" };
        format!("HE_{}_{scheme}", NKB[rng.below(NKB.len())])
    } else {
        format!("{} ({})", TOPICS[rng.below(TOPICS.len())], 1000 + i % 8_000)
    }
}

/// German support prose of about `len` bytes.
fn text(rng: &mut Rng, len: usize, i: usize) -> String {
    const SENTENCES: [&str; 12] = [
        "seit heute Morgen lässt sich das Fachverfahren an zwei Arbeitsplätzen nicht mehr öffnen.",
        "Die Fehlermeldung lautet „Verbindung zum Server fehlgeschlagen“, ein Neustart hilft nicht.",
        "Betroffen sind die Kolleginnen und Kollegen im Erdgeschoss, Zimmer 0.14 bis 0.18.",
        "Bürgerinnen und Bürger warten bereits, bitte prüfen Sie das möglichst schnell.",
        "Im Anhang finden Sie einen Screenshot und den Bescheid, um den es geht.",
        "Wir haben die Netzwerkkabel geprüft und den Drucker aus- und wieder eingeschaltet.",
        "Könnten Sie uns bitte mitteilen, bis wann mit einer Lösung zu rechnen ist?",
        "Die Störung tritt nur morgens zwischen acht und zehn Uhr auf, danach läuft es wieder.",
        "Unsere Außenstelle in der Hauptstraße ist ebenfalls betroffen, dort fällt die Kasse aus.",
        "Für Rückfragen erreichen Sie mich unter der Durchwahl 214 oder per E-Mail.",
        "Vielen Dank für die schnelle Rückmeldung, leider besteht das Problem weiterhin.",
        "Gemäß Dienstanweisung müssen die Änderungen bis Monatsende übernommen werden.",
    ];
    let mut out = String::from("Sehr geehrte Damen und Herren,\r\n\r\n");
    while out.len() < len {
        out.push_str(SENTENCES[rng.below(SENTENCES.len())]);
        out.push_str(if rng.below(4) == 0 { "\r\n\r\n" } else { " " });
    }
    out.push_str(&format!(
        "\r\n\r\nMit freundlichen Grüßen\r\nim Auftrag\r\nPerson {}\r\nGemeindeverwaltung\r\n",
        i % 900
    ));
    out
}

fn address(from: &str) -> &str {
    from.rsplit_once('<')
        .and_then(|(_, a)| a.strip_suffix('>'))
        .unwrap_or(from)
}

/// `len` bytes of base64 in 76-character lines, standing in for a document.
fn attachment(len: usize, seed: u64) -> String {
    let mut rng = Rng(seed);
    let raw: Vec<u8> = (0..len * 3 / 4).map(|_| rng.next() as u8).collect();
    let b = base64(&raw);
    let mut out = String::with_capacity(b.len() + b.len() / 38);
    for line in b.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// The text in ISO-8859-1, quoted-printable, lines kept under 76 characters.
fn quoted_printable_latin1(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 11 / 10);
    let mut col = 0;
    for ch in s.chars() {
        if ch == '\r' {
            continue;
        }
        if ch == '\n' {
            out.push_str("\r\n");
            col = 0;
            continue;
        }
        let piece = match u32::from(ch) {
            c @ (0x21..=0x3c | 0x3e..=0x7e | 0x20) => (c as u8 as char).to_string(),
            c @ 0xa0..=0xff => format!("={c:02X}"),
            _ => "?".to_string(),
        };
        if col + piece.len() > 73 {
            out.push_str("=\r\n");
            col = 0;
        }
        col += piece.len();
        out.push_str(&piece);
    }
    out
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 17
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}
