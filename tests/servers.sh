#!/usr/bin/env bash
# Starts a real Dovecot (IMAP 127.0.0.1:11143, IMAPS :11993, LMTP) and a real OpenSMTPD
# (SMTP 127.0.0.1:12525, delivering to Dovecot over LMTP) for the tests, as processes of their
# own under a temporary directory, installing Debian's packages if need be. Sourced by
# tests/run.sh, which stops them at exit with servers_stop. Exports:
#   POSTSTELLE_TEST_SMTP=127.0.0.1:12525   POSTSTELLE_TEST_IMAP=127.0.0.1:11143
#   POSTSTELLE_TEST_IMAPS=127.0.0.1:11993  POSTSTELLE_TEST_CA=<test CA certificate>
#   POSTSTELLE_TEST_DOVECOT_CONF=<its config, for doveadm>
#   POSTSTELLE_TEST_IMAP_FAULTS=127.0.0.1:11144 and POSTSTELLE_TEST_DOVECOT_FAULTS_CONF: a second
#   Dovecot (same users) that the fault tests restart
# Every test user's password is "secret". Mail to an address that is no user lands in
# catchall@example.test's INBOX.

servers_install() {
    if command -v dovecot >/dev/null 2>&1 && command -v smtpd >/dev/null 2>&1; then
        return
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "Dovecot and OpenSMTPD are missing and this is not root: install dovecot-imapd dovecot-lmtpd opensmtpd" >&2
        exit 1
    fi
    echo "installing Dovecot and OpenSMTPD from Debian's packages" >&2
    # Nothing may start as a system service: the tests run their own processes.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        dovecot-imapd dovecot-lmtpd opensmtpd openssl >/dev/null
}

wait_port() { # host port what
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "$3 did not start on $1:$2" >&2
    return 1
}

# Test users: the delivery tests use support, staff, erika, max; each daemon test has d01…d40
# to itself, so that tests running in parallel never see each other's mail.
SERVERS_USERS="support staff erika max catchall $(seq -f 'd%02g' 1 40 | tr '\n' ' ')"

# Writes a Dovecot configuration for a server under $1 with IMAP on port $2 and IMAPS on $3.
# Certificates and the passwd file are shared with the first server ($SERVERS_BASE).
dovecot_conf() {
    local b=$1
    mkdir -p "$b/mail" "$b/run" "$b/state"
    chown 5000:5000 "$b/mail"
    cat > "$b/dovecot.conf" <<CONF
base_dir = $b/run/dovecot
state_dir = $b/state
log_path = $b/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
disable_plaintext_auth = no
auth_mechanisms = plain login
ssl = yes
ssl_cert = <$SERVERS_BASE/cert.pem
ssl_key = <$SERVERS_BASE/key.pem
passdb {
  driver = passwd-file
  args = $SERVERS_BASE/passwd
}
userdb {
  driver = passwd-file
  args = $SERVERS_BASE/passwd
  default_fields = home=$b/mail/%d/%n
}
mail_location = maildir:~/Maildir
mail_uid = 5000
mail_gid = 5000
first_valid_uid = 1000
namespace inbox {
  inbox = yes
  separator = /
  mailbox Processed {
    auto = create
  }
  mailbox Quarantine {
    auto = create
  }
}
protocol imap {
  # The scale-out tests hold several sessions per user.
  mail_max_userip_connections = 100
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $2
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $3
    ssl = yes
  }
}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
}
CONF
}

servers_start() {
    servers_install
    SERVERS_BASE=$(mktemp -d /tmp/poststelle-servers.XXXXXX)
    local b=$SERVERS_BASE
    mkdir -p "$b/mail" "$b/run" "$b/state"
    chown 5000:5000 "$b/mail"
    chmod 755 "$b"

    # A test CA and a certificate for 127.0.0.1 / localhost.
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=poststelle test CA" \
        -keyout "$b/ca.key" -out "$b/ca.pem" >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$b/key.pem" -out "$b/cert.csr" >/dev/null 2>&1
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$b/san.ext"
    openssl x509 -req -in "$b/cert.csr" -CA "$b/ca.pem" -CAkey "$b/ca.key" -CAcreateserial \
        -days 2 -extfile "$b/san.ext" -out "$b/cert.pem" >/dev/null 2>&1

    : > "$b/passwd"
    for u in $SERVERS_USERS; do
        echo "$u@example.test:{PLAIN}secret:::::" >> "$b/passwd"
    done

    dovecot_conf "$b" 11143 11993

    {
        for u in $SERVERS_USERS; do echo "$u@example.test dovecot"; done
        echo "@ catchall@example.test"
    } > "$b/vusers"
    cat > "$b/smtpd.conf" <<CONF
table vusers file:$b/vusers
listen on 127.0.0.1 port 12525
action "dovecot" lmtp "$b/run/dovecot/lmtp" rcpt-to virtual <vusers>
match from any for any action "dovecot"
CONF
    chmod 600 "$b/smtpd.conf"

    dovecot -F -c "$b/dovecot.conf" >"$b/dovecot.out" 2>&1 &
    SERVERS_DOVECOT_PID=$!
    # OpenSMTPD keeps its queue in a compiled-in place: clear mail a crashed run left there.
    rm -rf /var/spool/smtpd/queue/* /var/spool/smtpd/incoming/* 2>/dev/null || true
    smtpd -d -f "$b/smtpd.conf" >"$b/smtpd.out" 2>&1 &
    SERVERS_SMTPD_PID=$!

    # A second Dovecot that the fault tests stop and start again, so that no other test
    # loses its server.
    dovecot_conf "$b/faults" 11144 11994
    dovecot -c "$b/faults/dovecot.conf"

    wait_port 127.0.0.1 11143 Dovecot
    wait_port 127.0.0.1 11144 "Dovecot (faults)"
    wait_port 127.0.0.1 12525 OpenSMTPD
    for _ in $(seq 1 50); do [ -S "$b/run/dovecot/lmtp" ] && break; sleep 0.1; done

    export POSTSTELLE_TEST_SMTP=127.0.0.1:12525
    export POSTSTELLE_TEST_IMAP=127.0.0.1:11143
    export POSTSTELLE_TEST_IMAPS=127.0.0.1:11993
    export POSTSTELLE_TEST_CA=$b/ca.pem
    export POSTSTELLE_TEST_DOVECOT_CONF=$b/dovecot.conf
    export POSTSTELLE_TEST_IMAP_FAULTS=127.0.0.1:11144
    export POSTSTELLE_TEST_DOVECOT_FAULTS_CONF=$b/faults/dovecot.conf
    echo "Dovecot and OpenSMTPD for the tests: $b" >&2
}

servers_stop() {
    [ -n "${SERVERS_SMTPD_PID:-}" ] && kill "$SERVERS_SMTPD_PID" 2>/dev/null
    [ -n "${SERVERS_DOVECOT_PID:-}" ] && kill "$SERVERS_DOVECOT_PID" 2>/dev/null
    [ -n "${SERVERS_BASE:-}" ] && doveadm -c "$SERVERS_BASE/faults/dovecot.conf" stop 2>/dev/null
    wait 2>/dev/null
    [ -n "${SERVERS_BASE:-}" ] && rm -rf "$SERVERS_BASE"
    return 0
}
