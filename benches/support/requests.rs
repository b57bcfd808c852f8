//! Ordinary requests for the benches: German support words, the same on every run.

/// The words of the benches' subjects and bodies.
pub const WORDS: [&str; 15] = [
    "Drucker",
    "Passwort",
    "VPN",
    "Bürgerbüro",
    "Fachverfahren",
    "Zulassung",
    "Anmeldung",
    "Netzwerk",
    "Scanner",
    "Termin",
    "Rechnung",
    "Zugang",
    "Konto",
    "Kasse",
    "Störung",
];

/// `n` ordinary requests: 4 KB of German words each, the same on every run.
pub fn requests(n: usize) -> Vec<Vec<u8>> {
    let words = WORDS;
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    (0..n)
        .map(|i| {
            let subject: Vec<&str> = (0..4).map(|_| words[next() % words.len()]).collect();
            let mut body = String::from("Guten Tag,\r\n");
            while body.len() < 3600 {
                body.push_str(words[next() % words.len()]);
                body.push(if next() % 12 == 0 { '\n' } else { ' ' });
            }
            format!(
                "From: Person {i} <p{i}@gemeinde{}.example>\r\nTo: servicedesk@kommunal-it.example\r\n\
                 Subject: {}\r\nMessage-ID: <bench{i}@gemeinde.example>\r\n\
                 MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\nMit freundlichen Grüßen\r\n",
                i % 40,
                subject.join(" ")
            )
            .into_bytes()
        })
        .collect()
}
