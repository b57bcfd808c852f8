#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/seeds/<target>/ (run from anywhere; idempotent).

Hand-made hostile mail from issue #23 plus ten files copied from tests/corpus. The same mail
seeds go to parse, prescan and classify; single_line and escaped get text of their own.
Issue #20 adds: subjects (subject, nutzerkonto), the shipped rule files, rules of README.md and
tests (rules), poststelle.toml with README.md's sections (config), the contact list as TOML and
as spreadsheet CSV (contacts), distribution lists as spreadsheets export them (lists), and the
samples and tests/corpus mails singly and in conversations (ingest).
Every seed stays under 64 KiB.
"""
import pathlib
import re

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
SEEDS = FUZZ / "seeds"
MAIL_TARGETS = ["parse", "prescan", "classify"]

HEAD = (
    b"From: Erika Mustermann <erika@example.org>\r\n"
    b"To: IT-Support <support@example.net>\r\n"
    b"Message-ID: <seed-{n}@example.org>\r\n"
    b"Date: Tue, 7 Apr 2026 10:00:01 +0200\r\n"
)


def head(n, extra=b""):
    return HEAD.replace(b"{n}", str(n).encode()) + extra


def unclosed_multipart(parts):
    """Nested multiparts whose closing boundaries never come: each part scans the rest."""
    out = head("bomb", b"Subject: bomb\r\nMIME-Version: 1.0\r\n")
    for i in range(parts):
        out += b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
    return out + b"Content-Type: text/plain\r\n\r\nend\r\n"


def sibling_unclosed_multipart(parts, field=b"Content-Type:"):
    """Sibling parts, each a multipart with a boundary that is announced but never used."""
    out = head("siblings", b"Subject: siblings\r\nMIME-Version: 1.0\r\n"
                b'Content-Type: multipart/mixed; boundary="top"\r\n\r\n')
    for i in range(parts):
        out += b'--top\r\n' + field + b' multipart/alternative; boundary="never%d"\r\n\r\nx\r\n' % i
    return out + b"--top--\r\n"


def many_cc(n):
    cc = b",\r\n ".join(b'"Person %d" <p%d@example.org>' % (i, i) for i in range(n))
    return head("cc", b"Subject: many Cc\r\nCc: " + cc + b"\r\n\r\nHallo\r\n")


def rfc2231(n):
    """A filename in n RFC 2231 continuations (percent-encoded UTF-8, ISO-8859-1 start)."""
    params = b"".join(b";\r\n filename*%d*=%%C3%%BC%d" % (i, i % 10) for i in range(1, n))
    return head("2231", b"Subject: RFC 2231\r\nMIME-Version: 1.0\r\n"
                b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n'
                b"--x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAnbei.\r\n"
                b"--x\r\nContent-Type: application/pdf;\r\n name*=iso-8859-1''Gr%FC%DFe.pdf\r\n"
                b"Content-Disposition: attachment;\r\n filename*0*=utf-8''Antrag" + params +
                b"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--x--\r\n")


def repeated_date(n):
    dates = b"".join(b"Date: Tue, %d Apr 2026 10:00:01 +0200\r\n" % (1 + i % 28) for i in range(n))
    return (b"From: a@example.org\r\nTo: support@example.net\r\nSubject: dates\r\n" + dates
            + b"\r\nbody\r\n")


SEEDS_MAIL = {
    "unclosed-multipart-300.eml": unclosed_multipart(300),
    "unclosed-multipart-60.eml": unclosed_multipart(60),
    "sibling-unclosed-multipart-200.eml": sibling_unclosed_multipart(200),
    # "Content-Type :" is read by mail-parser but not counted by the pre-scan (see README).
    "sibling-unclosed-multipart-blank-colon-100.eml": sibling_unclosed_multipart(100, b"Content-Type :"),
    "many-cc-300.eml": many_cc(300),
    "rfc2231-continuations-40.eml": rfc2231(40),
    "rfc2231-continuations-2000.eml": rfc2231(2000),
    "repeated-date-50.eml": repeated_date(50),
    "date-swallows-next-field.eml": (
        b"Date: Tue, 7 Apr 2026 10:00:\r\nFrom: a@example.org\r\nTo: support@example.net\r\n"
        b"Subject: kaputtes Datum\r\n\r\nbody\r\n"),
    "many-header-fields-2100.eml": head("fields", b"Subject: fields\r\n")
    + b"".join(b"X-F%d: v\r\n" % i for i in range(2100)) + b"\r\nbody\r\n",
    "display-name-encoded-crlf.eml": (
        b"From: =?utf-8?q?Eve=0D=0ABcc=3A_x=40y=2Ez?= <eve@example.org>\r\n"
        b"To: support@example.net\r\n"
        b"Subject: =?utf-8?q?Drucker=0D=0ABcc=3A_x=40y=2Ez=E2=80=A8kaputt?=\r\n"
        b"Message-ID: <eve@example.org>\r\nDate: Tue, 7 Apr 2026 10:00:01 +0200\r\n\r\n"
        b"Hallo\r\n"),
    "nul-in-address.eml": (
        b"From: Mallory <mall\x00ory@example.org>\r\n"
        b"Reply-To: <x\x00@example.org>\r\nTo: support@example.net\r\n"
        b"Subject: NUL\x00im Betreff\r\nDate: Tue, 7 Apr 2026 10:00:01 +0200\r\n\r\nbody\x00\r\n"),
    "german-umlauts-qp.eml": (
        b"From: =?iso-8859-1?q?J=FCrgen_M=FCller?= <juergen.mueller@stadt.example>\r\n"
        b"To: IT-Support <support@example.net>\r\n"
        b"Subject: =?utf-8?q?Dr=C3=BCcker_im_B=C3=BCro_geht_nicht_=E2=80=93_bitte_pr=C3=BCfen?=\r\n"
        b"Message-ID: <a1b2@stadt.example>\r\nDate: Mon, 6 Apr 2026 08:15:00 +0200\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"Sehr geehrte Damen und Herren,\r\n\r\nder Drucker im Raum 2.14 (Au=DFenstelle S=FCd) "
        b"druckt seit heute fr=FCh nur noch leere Seiten.\r\n\r\nMit freundlichen Gr=FC=DFen\r\n"
        b"J=FCrgen M=FCller\r\n"),
    "german-umlauts-8bit.eml": (
        "From: Jürgen Müller <juergen.mueller@stadt.example>\r\n"
        "To: IT-Support <support@example.net>\r\nSubject: Passwort für Fachverfahren gesperrt\r\n"
        "Message-ID: <a1b3@stadt.example>\r\nDate: Mon, 6 Apr 2026 08:15:00 +0200\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        "Guten Morgen,\r\nmein Zugang ist gesperrt. Können Sie ihn bitte entsperren?\r\n"
        "Grüße\r\nJürgen Müller\r\n").encode(),
    "cr-only-line-ends.eml": head("cr", b"Subject: CR only\r\n\r\nbody\r\n").replace(b"\r\n", b"\r"),
    "header-only-no-body.eml": head("hdr", b"Subject: header only"),
}

# Ten varied files from tests/corpus (all under 64 KiB).
CORPUS = [
    "bounces/bounceparser/iis-multiple-bounce.msg",
    "bounces/sisimai-mac-cr-only/lhost-postfix-01.eml",
    "bounces/sisimai-dos-crlf/arf-01.eml",
    "autoreplies/sisimai-rfc3834/rfc3834-02.eml",
    "autoreplies/bounceparser/boxbe-cr2.msg",
    "mime-torture/flanker/missing-boundaries.eml",
    "mime-torture/flanker/mailformed-headers.eml",
    "mime-torture/mail-gem/error_emails/multiple_content_types.eml",
    "mime-torture/stalwart-malformed/019.eml",
    "helpdesk-real/talon-replies/thunderbird.eml",
]

SEEDS_TEXT = {
    "plain": "Erika Mustermann",
    "umlauts": "Jürgen Müller – Drucker im Büro",
    "crlf-bcc": "Eve\r\nBcc: x@y.z",
    "separators": "a\u2028b\u2029c\u0085d",
    "controls": "\x00\x1b[2J\x07\x7f\u009b31m x \t\t y \n",
    "blanks": "   lead and trail   \r\n",
    "unicode-spaces": "\u3000\u00a0name\u2003\u200b\ufeff\u202e",
    "empty": "",
}

SEEDS_ESCAPED = {
    "ansi.bin": b"Subject: Gr\xc3\xbc\xc3\x9fe\r\n\x1b[2J\x00x\xff\n",
    "cr-alone.bin": b"a\rb\r\r\nc\x85\xc2\x85\xc2\x9b31m",
    "bidi.bin": "From: \u202etxt.exe\u202c <a@b>\n".encode(),
    "invalid-utf8.bin": b"\xc3\r\n\xe2\x80\x0d\x0a\xf0\x9f\x98",
}


def write(target, name, data):
    assert len(data) < 64_000, (target, name, len(data))
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


for t in MAIL_TARGETS:
    for name, data in SEEDS_MAIL.items():
        write(t, name, data)
    for rel in CORPUS:
        src = ROOT / "tests" / "corpus" / rel
        write(t, "corpus-" + rel.replace("/", "_"), src.read_bytes())
for name, text in SEEDS_TEXT.items():
    write("single_line", name + ".txt", text.encode())
for name, data in SEEDS_ESCAPED.items():
    write("escaped", name, data)


# ---------------------------------------------------------------------------------------------
# Issue #20: subject and Nutzerkonto normalisation, rule and config loaders, contact lists,
# distribution lists, filing.

SAMPLES = sorted((ROOT / "samples").glob("*.eml"))


def header_values(raw, name):
    """The raw (undecoded, unfolded) values of a header field."""
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    head = re.sub(rb"\n[ \t]+", b" ", head)
    return [line.split(b":", 1)[1].strip() for line in head.split(b"\n")
            if line.lower().startswith(name.lower() + b":")]


SUBJECTS = [
    "AW: WG: Re: Drucker defekt",
    "RE[2]: aw (3): Fwd:  Drucker   defekt ",
    "Antw: TR: SV: VS: RIF: Fw: x",
    "AW：全角",
    "Re(2): x",
    "Reisekosten: Antrag",
    "Termin: AW: später",
    "AW: [Ticket#2026112310000012] WG: Drucker",
    "Re: [TICKET# 2026112310000012 ] x",
    "[[Ticket#1]Ticket#2] verschachtelt",
    "[Ticket#\u0663\u0664] Ziffern anderer Schrift",
    "AW: HE_Antrag auf Wohngeld_NKB",
    "WG: he_Steuer_ID_Frage_muk  ",
    "Re:\u2028Zeilen\u2029trenner\u0085",
    "\u00a0\u3000Re\u2003:\u200b x",
    "",
]
for path in SAMPLES + [ROOT / "tests" / "corpus" / rel for rel in CORPUS]:
    for v in header_values(path.read_bytes(), b"Subject"):
        SUBJECTS.append(v.decode("utf-8", "replace"))

NUTZERKONTO = [
    "HE_Antrag auf Wohngeld_NKB",
    "he_Steuer_ID_Frage_muk  ",
    "BY_ x _NKB",
    "HE_Gewerbeanmeldung für Café in Kassel_MUK",
    "HE_Führerschein-Umtausch_NKB",
    "HE_KFZ_Zulassung_NKB",
    "HE__NKB",
    "XX_Wohngeld_NKB",
    "HE_Wohngeld_NKB extra",
    "Waffenbesitzkarte Elternzeit Mietzuschuss",
    "İstanbul ǅ ß Straße ﬁ",
]
contacts_toml = (ROOT / "contacts" / "hessen.toml").read_text()
NUTZERKONTO += re.findall(r'^name = "(.*)"', contacts_toml, re.M)

for i, text in enumerate(SUBJECTS):
    write("subject", "subject-%02d.txt" % i, text.encode())
for i, text in enumerate(NUTZERKONTO):
    write("nutzerkonto", "nk-%02d.txt" % i, text.encode())


# Rules: each shipped file whole and rule by rule, README.md's examples, hand-made edge cases.
def rule_chunks(text):
    parts = re.split(r"(?m)^(?=\[\[rule\]\])", text)
    return [p for p in parts if p.startswith("[[rule]]")]


readme = (ROOT / "README.md").read_text()
TOML_BLOCKS = [re.sub(r"(?m)^  ", "", b) for b in re.findall(r"```toml\n(.*?)```", readme, re.S)]
for path in sorted((ROOT / "rules").glob("*.toml")):
    text = path.read_text()
    write("rules", "shipped-" + path.name, text.encode())
    for i, chunk in enumerate(rule_chunks(text)):
        write("rules", "shipped-%s-%02d.toml" % (path.stem, i), chunk.encode())
for i, block in enumerate(b for b in TOML_BLOCKS if "[[rule]]" in b):
    write("rules", "readme-%02d.toml" % i, block.encode())
RULES = {
    "word-boundaries.toml": r"""[[rule]]
name = "grenzen"
when.subject = ['\bstörung\b', '\Bfehler', '(?-u:\b)ok\b', 'ä\b|\bü', '^\b$', '\b\W+\b']
when.body = '(?i)\bStraße\b'
then.severity = 2
""",
    "nested-conditions.toml": r"""[[rule]]
name = "verschachtelt"
priority = -9223372036854775808
when.any = [ { all = [ { not = { from = '@' } }, { nutzerkonto = true } ] },
             { header."X-Foo" = ['a', 'b'] }, { auto_generated = ["bounce", "auto_reply"] } ]
then.queue = "betrieb"
then.tags = ["a", "b"]
then.stop = true
""",
    "broken.toml": "[[rule]]\nname = \"x\"\nwhen.subject = '('\nthen.severity = 9\n[[rule]\n",
    "duplicate-names.toml": "[[rule]]\nname = \"a\"\nwhen.to = 'x'\n[[rule]]\nname = \"a\"\nwhen.to_domain = '['\n",
}
for name, text in RULES.items():
    write("rules", name, text.encode())

# Config: the shipped poststelle.toml alone and with each of README.md's sections, and a small
# configuration of its own.
shipped_config = (ROOT / "poststelle.toml").read_text()
write("config", "shipped.toml", shipped_config.encode())
for i, block in enumerate(b for b in TOML_BLOCKS if "[[rule]]" not in b and "[[service]]" not in b):
    write("config", "shipped-readme-%02d.toml" % i, (shipped_config + "\n" + block).encode())
write("config", "small.toml", b"""home_state = "HE"
default_queue = "support"
clearing_queue = "support"
[[queue]]
name = "support"
staff = "support@example.org"
[outbox]
from = "Service <service@example.org>"
transport = "file"
""")

# Contact lists: the first byte says CSV (1) or TOML (0).
write("contacts", "hessen.toml", b"\x00" + contacts_toml.encode())
services = re.findall(r"\[\[service\]\](.*?)(?=\[\[service\]\]|\Z)", contacts_toml, re.S)


def field(block, key):
    m = re.search(r'^%s = (.*)$' % key, block, re.M)
    if not m:
        return ""
    v = m.group(1)
    if v.startswith("["):
        return ", ".join(re.findall(r'"([^"]*)"', v))
    return v.strip('"')


rows = [[field(b, k) for k in ["name", "keywords", "ressort", "contact", "email", "phone", "efa"]]
        for b in services]


def csv_text(header, sep, rows):
    def q(v):
        return '"%s"' % v.replace('"', '""') if (sep in v or '"' in v or "," in v) else v
    return "\r\n".join(sep.join(q(v) for v in r) for r in [header] + rows) + "\r\n"


german = ["Leistung", "Stichwörter", "Ressort", "Ansprechpartner", "E-Mail", "Telefon", "EfA"]
english = ["service", "keywords", "ressort", "contact", "email", "phone", "efa"]
write("contacts", "german-semicolon-bom.csv", b"\x01" + b"\xef\xbb\xbf" + csv_text(german, ";", rows).encode())
write("contacts", "german-windows-1252.csv", b"\x01" + csv_text(german, ";", rows).encode("cp1252"))
write("contacts", "english-comma.csv", b"\x01" + csv_text(english, ",", rows).encode())
write("contacts", "regex-and-bad-rows.csv", b"\x01" + (
    "sep=;\nLeistung;Muster;Ressort;EfA;Unbekannt\nKfz;\\bkfz[- ]?zulassung\\b;betrieb;aus;x\n"
    "Leer;;;;\n;(;betrieb;vielleicht;\n\"Zeile\nmit Umbruch\";a;b;inbound;\n").encode())

# Distribution lists as spreadsheets export them.
LISTS = {
    "semicolon-bom.csv": "\ufeffE-Mail;Name;Rolle;Organisation;Sprache\r\n"
        "anna.mueller@kreis-giessen.example;Anna Müller;Kommune;Kreis Gießen;de\r\n"
        "Jörg@Gemeinde-Büdingen.example;\"Jörg \"\"JJ\"\" Weiß; Amt 3\";Auftraggeber;;en\r\n",
    "comma.csv": "email,name,role,organization,language\n"
        "x@y.example,\"Doe, Jane\",end_user,ACME,English\nX@Y.EXAMPLE,dup,staff,,de\n",
    "tab.csv": "Adresse\tVorname\tNachname\tTelefon\nmailto:<a@b.example>\tA\tB\t1\n",
    "excel-sep.csv": "sep=;\r\nVorname;Nachname;E-Mail-Adresse;Telefon\r\nAnna;Müller;anna@x.de;0611\r\n",
    "quoted-breaks.csv": "\r\nE-Mail;Name\r\n\r\na@x.de;\"zwei\r\nZeilen\"\r\n\r\n\r\nkaputt;x\r\nb@x.de;B\r\n",
    "display-name.csv": "E-Mail;Name\n\"Anna Müller <anna@x.de>\";\nb@x.de;B;extra;fields\n;leer\n",
    "no-address-column.csv": "Name;Telefon\nAnna;1\n",
    "two-address-columns.csv": "E-Mail;Mail\na@x.de;b@x.de\n",
}
for name, text in LISTS.items():
    write("lists", name, text.encode())
write("lists", "windows-1252.csv", "E-Mail;Name;Organisation\r\nj@x.de;Jürgen Weiß;Bürgeramt\r\n".encode("cp1252"))
write("lists", "utf-16le.csv", "\ufeffE-Mail\tName\r\na@x.de\tÄnne\r\n".encode("utf-16-le"))
write("lists", "utf-16be.csv", "\ufeffE-Mail\tName\r\na@x.de\tÄnne\r\n".encode("utf-16-be"))

# Filing: every sample and corpus mail alone, and conversations (a request and its reply, an
# auto-reply and a bounce after it) in one batch, split at lines "--next-mail--".
SEPARATOR = b"\n--next-mail--\n"
for path in SAMPLES:
    write("ingest", "sample-" + path.name, path.read_bytes())
for rel in CORPUS:
    write("ingest", "corpus-" + rel.replace("/", "_"), (ROOT / "tests" / "corpus" / rel).read_bytes())
sample = {p.name[:2]: p.read_bytes() for p in SAMPLES}
write("ingest", "conversation-request-reply.eml", sample["01"] + SEPARATOR + sample["03"])
write("ingest", "conversation-request-autoreply-bounce.eml",
      sample["01"] + SEPARATOR + sample["04"] + SEPARATOR + sample["05"])
write("ingest", "conversation-same-mail-twice.eml", sample["02"] + SEPARATOR + sample["02"])
write("ingest", "conversation-monitoring-nutzerkonto.eml", sample["06"] + SEPARATOR + sample["02"])
for name in ["display-name-encoded-crlf.eml", "nul-in-address.eml", "german-umlauts-qp.eml",
             "cr-only-line-ends.eml", "header-only-no-body.eml", "date-swallows-next-field.eml"]:
    write("ingest", "hostile-" + name, SEEDS_MAIL[name])
