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
#   POSTSTELLE_TEST_OAUTH_IMAP=127.0.0.1:11147, POSTSTELLE_TEST_OAUTH_SUBMISSION=127.0.0.1:12589,
#   POSTSTELLE_TEST_OAUTH_TOKEN=http://127.0.0.1:12590, POSTSTELLE_TEST_OAUTH_ISSUED and
#   POSTSTELLE_TEST_OAUTH_DOVECOT_LOG (its logins name the SASL mechanism): a third
#   Dovecot whose oauth2 passdb validates JWTs locally (XOAUTH2, OAUTHBEARER; passwords too, for
#   the tests' own side), its submission service relaying to OpenSMTPD, and the token server
#   tests/oauth/server.mjs (npm's oauth2-mock-server, installed into target/test-tools/oauth)
# Every test user's password is "secret". Mail to an address that is no user lands in
# catchall@example.test's INBOX, except at nobody.example.test: OpenSMTPD takes any address
# there and hands it to Dovecot, which knows none, so OpenSMTPD bounces it to the envelope
# sender (the bounce test, tests/integration/bounces.rs). Plus-addressed mail
# (d28+tag@example.test) is delivered to its user's INBOX.
#
# The host's own mail is never touched. OpenSMTPD's spool (/var/spool/smtpd) is compiled in:
# the test OpenSMTPD runs in a private mount namespace (unshare --mount) with a directory of
# its own mounted over that path, so it neither sees nor changes the host's queue. Where no
# mount namespace can be had (a container without CAP_SYS_ADMIN), the script refuses to start
# while an OpenSMTPD runs or the host's spool holds anything, rather than share or clear it.
# A system OpenSMTPD that is running blocks the tests either way: its control socket is
# compiled in too. POSTSTELLE_TEST_SYSTEM_SPOOL replaces /var/spool/smtpd for the test of this
# (tests/integration/tooling.rs) only.

# Runs the calling script ($1, its arguments after) again under an exclusive lock on
# /tmp/poststelle-tests.lock, so that two runs on one machine never meet on the fixed ports: a
# second run says that it waits, and waits. Returns at once inside the locked run. flock -o
# keeps the lock in flock's own process, not in servers that a killed run may leave behind.
servers_lock() { # script args...
    if [ "${POSTSTELLE_TESTS_LOCKED:-}" = 1 ]; then return 0; fi
    export POSTSTELLE_TESTS_LOCKED=1
    local lock=/tmp/poststelle-tests.lock
    if ! flock -n "$lock" true; then
        echo "another test run on this machine holds $lock (the servers' ports): waiting for it to end" >&2
    fi
    exec flock -o "$lock" bash "$@"
}

# Installs Debian's packages $@ without letting them start as system services (the tests run
# their own processes): a /usr/sbin/policy-rc.d that refuses every start, for the install only,
# when the host has none.
servers_apt_install() {
    local rc=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# written by poststelle tests/servers.sh for one install\nexit 101\n' \
            > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        SERVERS_POLICY_RC_CREATED=1
    fi
    { apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; } ||
        rc=$?
    servers_policy_rc_remove
    return "$rc"
}

# Removes the policy-rc.d that servers_apt_install wrote (never one the host had already).
servers_policy_rc_remove() {
    if [ -n "${SERVERS_POLICY_RC_CREATED:-}" ]; then
        rm -f /usr/sbin/policy-rc.d
        SERVERS_POLICY_RC_CREATED=
    fi
}

servers_install() {
    if command -v dovecot >/dev/null 2>&1 && command -v smtpd >/dev/null 2>&1 &&
        [ -x /usr/lib/dovecot/submission ]; then
        return
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "Dovecot and OpenSMTPD are missing and this is not root: install dovecot-imapd dovecot-lmtpd dovecot-submissiond opensmtpd" >&2
        exit 1
    fi
    echo "installing Dovecot and OpenSMTPD from Debian's packages" >&2
    servers_apt_install dovecot-imapd dovecot-lmtpd dovecot-submissiond opensmtpd openssl
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

# The PIDs of running OpenSMTPD processes (any, the host's or a leftover of the tests).
servers_smtpd_pids() {
    local p pids=""
    for p in /proc/[0-9]*; do
        if [ "$(cat "$p/comm" 2>/dev/null)" = smtpd ]; then pids="$pids ${p#/proc/}"; fi
    done
    echo "${pids# }"
}

# Refuses (status 1, with the reason) while any OpenSMTPD runs: it owns the compiled-in
# control socket, and in the fallback below the spool as well.
servers_smtpd_none_running() {
    local pids
    pids=$(servers_smtpd_pids)
    [ -z "$pids" ] && return 0
    local first=${pids%% *}
    echo "tests/servers.sh: refusing to start the test OpenSMTPD: an OpenSMTPD is already running" >&2
    echo "  (pid $pids; $(tr '\0' ' ' <"/proc/$first/cmdline" 2>/dev/null))." >&2
    echo "  OpenSMTPD's control socket is compiled in, so only one runs per machine. If it is the" >&2
    echo "  host's mail server, run the tests on another machine; if it is a test server a killed" >&2
    echo "  run left behind (smtpd -d -f /tmp/poststelle-servers.*), stop it: kill $first" >&2
    return 1
}

# Decides where the test OpenSMTPD keeps its spool, which must not be the host's, and sets
# SERVERS_SPOOL_WRAP: the command prefix that starts a program with that spool, as in
#   "${SERVERS_SPOOL_WRAP[@]}" smtpd -d -f smtpd.conf &
# Normally a private mount namespace in which the empty directory $1/spool is mounted over
# the system spool; the prefix ends in an exec, so $! is the program's own PID. Without mount
# namespaces the system spool itself, but only when no OpenSMTPD runs and it holds no file;
# else status 1, with the reason, and nothing changed.
servers_spool_prepare() { # base directory
    local system=${POSTSTELLE_TEST_SYSTEM_SPOOL:-/var/spool/smtpd}
    local own=$1/spool
    SERVERS_SPOOL_WRAP=()
    # Owned by root with mode 0711: what smtpd demands of its spool.
    mkdir -p "$own"
    chmod 711 "$own"
    # A mount needs its mount point; smtpd would create this empty directory itself anyway.
    if [ ! -d "$system" ]; then mkdir -p "$system" && chmod 711 "$system"; fi
    # The trial mount lives and dies with the namespace of this one command.
    if unshare --mount --propagation private -- mount --bind "$own" "$system" 2>/dev/null; then
        # shellcheck disable=SC2016 # expanded by the inner sh
        SERVERS_SPOOL_WRAP=(unshare --mount --propagation private --
            sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh "$own" "$system")
        return 0
    fi
    echo "tests/servers.sh: no private mount namespace here (unshare --mount needs root with" >&2
    echo "  CAP_SYS_ADMIN), so the test OpenSMTPD would use the host's spool $system" >&2
    servers_smtpd_none_running || return 1
    local found
    found=$(find "$system" -mindepth 1 ! -type d -printf '    %p\n' 2>/dev/null | head -n 3 || true)
    if [ -n "$found" ]; then
        echo "tests/servers.sh: refusing to start the test OpenSMTPD: $system holds mail that is" >&2
        echo "  not the tests' to deliver or delete, e.g." >&2
        echo "$found" >&2
        echo "  Deliver or move it with the host's OpenSMTPD; if it is only a test run's leftover," >&2
        echo "  remove it yourself (find $system -mindepth 2 -delete), then run the tests again." >&2
        return 1
    fi
    echo "  which is empty and no OpenSMTPD runs: using it" >&2
}

# Postfix's smtp-sink: a server that offers PIPELINING, which OpenSMTPD 6.8 does not, for the
# test of the pipelined SMTP exchange; it writes each mail it takes to a file. Postfix conflicts
# with OpenSMTPD as a package, so its package is only unpacked (into target/test-tools/postfix,
# once), never installed, and smtp-sink runs as a process of this script.
servers_sink_start() { # base directory
    local pf=$PWD/target/test-tools/postfix
    if [ ! -x "$pf/usr/sbin/smtp-sink" ]; then
        local dl
        dl=$(mktemp -d)
        if ! (cd "$dl" && apt-get download postfix >/dev/null 2>&1); then
            echo "tests/servers.sh: apt-get download postfix failed; the pipelining test needs its" >&2
            echo "  smtp-sink (unpacked into $pf, not installed)" >&2
            rm -rf "$dl"
            return 1
        fi
        mkdir -p "$pf"
        dpkg -x "$dl"/postfix_*.deb "$pf"
        rm -rf "$dl"
    fi
    mkdir -p "$1/sink"
    chmod 777 "$1/sink"
    local as=()
    [ "$(id -u)" -eq 0 ] && as=(-u nobody)
    LD_LIBRARY_PATH="$pf/usr/lib/postfix" "$pf/usr/sbin/smtp-sink" "${as[@]}" \
        -d "$1/sink/%H%M%S." 127.0.0.1:12627 64 >"$1/sink.out" 2>&1 &
    SERVERS_SINK_PID=$!
    wait_port 127.0.0.1 12627 "Postfix's smtp-sink (its output: $1/sink.out)" || return 1
    export POSTSTELLE_TEST_SINK=127.0.0.1:12627
    export POSTSTELLE_TEST_SINK_DIR=$1/sink
}

# The pinned token server: oauth2-mock-server 8.1.0 runs on Node 20.19 and later.
OAUTH_MOCK_VERSION=8.1.0

# A Dovecot for OAuth logins under $1 (IMAP on $2, submission on $3 relaying to OpenSMTPD) and
# the token server on $4, whose signing key it finds in its key dict.
servers_oauth_start() { # base imap-port submission-port token-port
    local b=$1 tools=$PWD/target/test-tools/oauth
    if ! command -v npm >/dev/null; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "npm is missing and this is not root: apt-get install nodejs npm (the OAuth tests' token server)" >&2
            return 1
        fi
        echo "installing Debian's nodejs and npm, for the OAuth tests' token server" >&2
        servers_apt_install nodejs npm
    fi
    if [ "$(node -p "require('$tools/node_modules/oauth2-mock-server/package.json').version" 2>/dev/null)" \
        != "$OAUTH_MOCK_VERSION" ]; then
        mkdir -p "$tools"
        echo "installing oauth2-mock-server $OAUTH_MOCK_VERSION from npm into $tools" >&2
        npm install --prefix "$tools" --no-audit --no-fund --silent \
            "oauth2-mock-server@$OAUTH_MOCK_VERSION" >/dev/null || return 1
    fi
    dovecot_conf "$b" "$2" $(( $2 + 850 ))
    mkdir -p "$b/keys"
    : > "$b/issued"
    OAUTH_TOOLS=$tools node tests/oauth/server.mjs "$4" "$b/keys" "$b/issued" >"$b/token-server.out" 2>&1 &
    SERVERS_OAUTH_PID=$!
    wait_port 127.0.0.1 "$4" "the token server (its output: $b/token-server.out)" || return 1
    chmod -R a+rX "$b/keys"
    cat > "$b/dovecot-oauth2.conf.ext" <<CONF
introspection_mode = local
local_validation_key_dict = fs:posix:prefix=$b/keys/
username_attribute = email
CONF
    # Tokens for XOAUTH2 and OAUTHBEARER; passwords (PLAIN, LOGIN) for the tests' own side.
    sed -i -e "s/^protocols = imap lmtp/protocols = imap submission/" \
        -e "s/^auth_mechanisms = plain login/auth_mechanisms = plain login xoauth2 oauthbearer/" \
        -e "s|^passdb {|passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = $b/dovecot-oauth2.conf.ext\n}\npassdb {\n  mechanisms = plain login|" \
        "$b/dovecot.conf"
    cat >> "$b/dovecot.conf" <<CONF
hostname = oauth.example.test
submission_relay_host = 127.0.0.1
submission_relay_port = 12525
submission_relay_trusted = yes
# The tests refuse logins on purpose (a token offered for another user); without this, anvil
# would slow every login from 127.0.0.1 after them, other tests' too (up to 15 s each).
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service submission-login {
  inet_listener submission {
    address = 127.0.0.1
    port = $3
  }
}
CONF
    dovecot -c "$b/dovecot.conf"
    wait_port 127.0.0.1 "$2" "Dovecot (OAuth; its log: $b/dovecot.log)" || return 1
    wait_port 127.0.0.1 "$3" "Dovecot submission (OAuth; its log: $b/dovecot.log)" || return 1
    export POSTSTELLE_TEST_OAUTH_IMAP=127.0.0.1:$2
    export POSTSTELLE_TEST_OAUTH_SUBMISSION=127.0.0.1:$3
    export POSTSTELLE_TEST_OAUTH_TOKEN=http://127.0.0.1:$4
    export POSTSTELLE_TEST_OAUTH_ISSUED=$b/issued
    export POSTSTELLE_TEST_OAUTH_DOVECOT_LOG=$b/dovecot.log
}

servers_start() {
    servers_install
    servers_smtpd_none_running || exit 1
    SERVERS_BASE=$(mktemp -d /tmp/poststelle-servers.XXXXXX)
    local b=$SERVERS_BASE
    mkdir -p "$b/mail" "$b/run" "$b/state"
    chown 5000:5000 "$b/mail"
    chmod 755 "$b"
    servers_spool_prepare "$b" || exit 1

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
    # nobody.example.test is a remote domain whose server knows no one: mail for it is
    # accepted, relayed to the second listener (tagged NOBODY, standing for that server),
    # refused there at RCPT with 550, and OpenSMTPD bounces it to the envelope sender, as a
    # real unknown address does. (An LMTP refusal would not do: OpenSMTPD 6.8 retries every
    # LMTP error as temporary.)
    cat > "$b/smtpd.conf" <<CONF
table vusers file:$b/vusers
listen on 127.0.0.1 port 12525
listen on 127.0.0.1 port 12526 tag NOBODY
action "dovecot" lmtp "$b/run/dovecot/lmtp" rcpt-to virtual <vusers>
action "nobody" relay host smtp://127.0.0.1:12526
match from any tag NOBODY for domain "nobody.example.test" reject
match from any for domain "nobody.example.test" action "nobody"
match from any for any action "dovecot"
CONF
    chmod 600 "$b/smtpd.conf"

    dovecot -F -c "$b/dovecot.conf" >"$b/dovecot.out" 2>&1 &
    SERVERS_DOVECOT_PID=$!
    # With a spool of its own (servers_spool_prepare); the PID is smtpd's, for servers_stop.
    "${SERVERS_SPOOL_WRAP[@]}" smtpd -d -f "$b/smtpd.conf" >"$b/smtpd.out" 2>&1 &
    SERVERS_SMTPD_PID=$!

    # A second Dovecot that the fault tests stop and start again, so that no other test
    # loses its server.
    dovecot_conf "$b/faults" 11144 11994
    dovecot -c "$b/faults/dovecot.conf"

    wait_port 127.0.0.1 11143 Dovecot
    wait_port 127.0.0.1 11144 "Dovecot (faults)"
    wait_port 127.0.0.1 12525 "OpenSMTPD (its output: $b/smtpd.out)"
    for _ in $(seq 1 50); do [ -S "$b/run/dovecot/lmtp" ] && break; sleep 0.1; done
    servers_sink_start "$b" || exit 1
    servers_oauth_start "$b/oauth" 11147 12589 12590 || exit 1

    export POSTSTELLE_TEST_SMTP=127.0.0.1:12525
    export POSTSTELLE_TEST_IMAP=127.0.0.1:11143
    export POSTSTELLE_TEST_IMAPS=127.0.0.1:11993
    export POSTSTELLE_TEST_CA=$b/ca.pem
    export POSTSTELLE_TEST_DOVECOT_CONF=$b/dovecot.conf
    export POSTSTELLE_TEST_IMAP_FAULTS=127.0.0.1:11144
    export POSTSTELLE_TEST_DOVECOT_FAULTS_CONF=$b/faults/dovecot.conf
    echo "Dovecot, OpenSMTPD and smtp-sink for the tests: $b" >&2
}

servers_stop() {
    [ -n "${SERVERS_SMTPD_PID:-}" ] && kill "$SERVERS_SMTPD_PID" 2>/dev/null
    [ -n "${SERVERS_SINK_PID:-}" ] && kill "$SERVERS_SINK_PID" 2>/dev/null
    [ -n "${SERVERS_DOVECOT_PID:-}" ] && kill "$SERVERS_DOVECOT_PID" 2>/dev/null
    [ -n "${SERVERS_OAUTH_PID:-}" ] && kill "$SERVERS_OAUTH_PID" 2>/dev/null
    [ -n "${SERVERS_BASE:-}" ] && doveadm -c "$SERVERS_BASE/faults/dovecot.conf" stop 2>/dev/null
    [ -n "${SERVERS_BASE:-}" ] && doveadm -c "$SERVERS_BASE/oauth/dovecot.conf" stop 2>/dev/null
    wait 2>/dev/null
    # The private spool goes with the rest: its mount died with smtpd's namespace.
    [ -n "${SERVERS_BASE:-}" ] && rm -rf "$SERVERS_BASE"
    servers_policy_rc_remove
    return 0
}
