//! A client certificate in place of a client secret (`certificate_file`, and `private_key_file`
//! when the key is a file of its own): read, checked against its key and its dates, and
//! kept as what the client assertion needs (RFC 7523; Microsoft Entra's "certificate
//! credentials"). The private key stays in a [`Redacted`] and is parsed again for each
//! signature, once per token, so no other type ever holds it.
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use ring::signature::RsaKeyPair;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use x509_cert::der::Decode;

use super::Redacted;

/// The certificate of an `[[oauth]]` provider: what the token server is told (thumbprints)
/// and the key that signs. `Debug` shows the files and the thumbprint, never the key.
#[derive(Clone)]
pub struct ClientCertificate {
    pub certificate_file: PathBuf,
    /// The file the key was read from: `certificate_file` when both are in one.
    pub private_key_file: PathBuf,
    /// SHA-1 of the DER certificate in upper-case hex: the "Thumbprint" Entra's portal shows
    /// under Certificates & secrets, so that an administrator finds the one meant.
    pub thumbprint: String,
    /// JWS `x5t`: base64url of the SHA-1 thumbprint.
    pub x5t: String,
    /// JWS `x5t#S256`: base64url of the SHA-256 thumbprint.
    pub x5t_s256: String,
    /// The certificate's notAfter.
    pub not_after: jiff::Timestamp,
    /// The PEM text the key was read from. [`ClientCertificate::key_pair`] is the way to it.
    key_pem: Redacted,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("certificate_file", &self.certificate_file)
            .field("private_key_file", &self.private_key_file)
            .field("thumbprint", &self.thumbprint)
            .field("not_after", &self.not_after)
            .field("key", &self.key_pem)
            .finish()
    }
}

/// Why a certificate or its key cannot be used; `in_key` when the key's file is at fault.
/// Never holds any of the key.
#[derive(Debug, PartialEq, Eq)]
pub struct CertProblem {
    pub in_key: bool,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for CertProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; fix: {}", self.message, self.fix)
    }
}

/// How an administrator makes a certificate and its key, the key readable by its owner alone.
const MAKE_ONE: &str = "(umask 077; openssl req -x509 -newkey rsa:2048 -nodes -days 730 -subj \
     /CN=poststelle -keyout app.key -out app.crt)";

impl ClientCertificate {
    /// Reads the certificate from `certificate_file` and its key from `private_key_file` or,
    /// without one, from the same file; `now` decides whether it is still valid.
    pub fn load(
        certificate_file: &Path,
        private_key_file: Option<&Path>,
        now: jiff::Timestamp,
    ) -> Result<ClientCertificate, CertProblem> {
        let cert_problem = |message: String, fix: String| CertProblem {
            in_key: false,
            message,
            fix,
        };
        let cert_text = std::fs::read(certificate_file).map_err(|e| {
            cert_problem(
                format!("certificate_file {}: {e}", certificate_file.display()),
                "point certificate_file at the PEM file of the certificate uploaded to the app \
                 registration"
                    .into(),
            )
        })?;
        let Some(Ok(der)) = CertificateDer::pem_slice_iter(&cert_text).next() else {
            return Err(cert_problem(
                format!(
                    "certificate_file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    certificate_file.display()
                ),
                "convert it: a .pfx/.p12 with `openssl pkcs12 -in app.pfx -nodes -out app.pem`, \
                 a DER .cer with `openssl x509 -inform der -in app.cer -out app.crt`"
                    .into(),
            ));
        };
        let cert = x509_cert::Certificate::from_der(der.as_ref()).map_err(|e| {
            cert_problem(
                format!(
                    "certificate_file {}: the certificate cannot be read: {e}",
                    certificate_file.display()
                ),
                format!(
                    "check it with `openssl x509 -noout -text -in {}`",
                    certificate_file.display()
                ),
            )
        })?;

        let key_file = private_key_file.unwrap_or(certificate_file);
        let key_key = if private_key_file.is_some() {
            "private_key_file"
        } else {
            "certificate_file"
        };
        let key_problem = |message: String, fix: String| CertProblem {
            in_key: private_key_file.is_some(),
            message,
            fix,
        };
        let key_text = match private_key_file {
            Some(p) => std::fs::read(p).map_err(|e| {
                key_problem(
                    format!("private_key_file {}: {e}", p.display()),
                    "point private_key_file at the PEM file of the certificate's private key"
                        .into(),
                )
            })?,
            None => cert_text.clone(),
        };
        // The PEM text is kept; should it not be UTF-8 it is no PEM either.
        let key_pem = String::from_utf8(key_text).unwrap_or_default();
        // A certificate alone is public; a file that holds a key is not.
        if private_key_file.is_some() || key_pem.contains("PRIVATE KEY-----") {
            private_enough(key_file).map_err(|(message, fix)| key_problem(message, fix))?;
        }
        let pair = parse_key(&key_pem).map_err(|what| {
            let fix = if what.contains("encrypted") {
                "write it unencrypted to a file only poststelle may read: `(umask 077; openssl \
                 pkey -in app.key -out app-plain.key)`"
                    .to_string()
            } else if what.contains("no PEM private key") && private_key_file.is_none() {
                "add private_key_file = \"…\" naming the key's PEM file, or append the key to \
                 this file"
                    .to_string()
            } else if what.contains("no PEM private key") {
                "point private_key_file at the PEM file of the certificate's private key"
                    .to_string()
            } else {
                format!("make an RSA certificate of 2048 bits or more: {MAKE_ONE}")
            };
            key_problem(format!("{key_key} {}: {what}", key_file.display()), fix)
        })?;
        let spki = cert.tbs_certificate().subject_public_key_info();
        if spki.subject_public_key.raw_bytes() != pair.public().as_ref() {
            return Err(key_problem(
                format!(
                    "the private key in {} does not belong to the certificate in {}",
                    key_file.display(),
                    certificate_file.display()
                ),
                format!(
                    "give the key the certificate was made with: the outputs of `openssl x509 \
                     -noout -pubkey -in {}` and `openssl pkey -pubout -in {}` must be equal",
                    certificate_file.display(),
                    key_file.display()
                ),
            ));
        }

        let validity = cert.tbs_certificate().validity();
        let at = |t: x509_cert::time::Time| {
            jiff::Timestamp::from_second(
                i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX),
            )
            .unwrap_or(jiff::Timestamp::MAX)
        };
        let (not_before, not_after) = (at(validity.not_before), at(validity.not_after));
        let renew = format!(
            "make a new certificate ({MAKE_ONE}), upload app.crt to the app registration \
             (Entra: Certificates & secrets → Certificates → Upload certificate) and point \
             certificate_file at it"
        );
        if not_after <= now {
            return Err(cert_problem(
                format!(
                    "the certificate in {} expired at {not_after}",
                    certificate_file.display()
                ),
                renew,
            ));
        }
        if not_before > now {
            return Err(cert_problem(
                format!(
                    "the certificate in {} is valid only from {not_before}",
                    certificate_file.display()
                ),
                "check the clock of this machine, or use a certificate valid now".into(),
            ));
        }

        let sha1 = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der.as_ref());
        let sha256 = digest::digest(&digest::SHA256, der.as_ref());
        Ok(ClientCertificate {
            certificate_file: certificate_file.to_path_buf(),
            private_key_file: key_file.to_path_buf(),
            thumbprint: sha1.as_ref().iter().map(|b| format!("{b:02X}")).collect(),
            x5t: URL_SAFE_NO_PAD.encode(sha1.as_ref()),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha256.as_ref()),
            not_after,
            key_pem: Redacted::new(key_pem),
        })
    }

    /// The key that signs the client assertion.
    pub fn key_pair(&self) -> Result<RsaKeyPair, String> {
        parse_key(self.key_pem.expose())
    }
}

/// The RSA key in `pem` (PKCS#8 or PKCS#1). The error says what is wrong, never what is in it.
fn parse_key(pem: &str) -> Result<RsaKeyPair, String> {
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || pem.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err("the private key is encrypted".into());
    }
    match PrivateKeyDer::from_pem_slice(pem.as_bytes()) {
        Ok(PrivateKeyDer::Pkcs8(k)) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        Ok(PrivateKeyDer::Pkcs1(k)) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        Ok(_) => return Err("the private key is no RSA key (client assertions are signed with RSA, PS256)".into()),
        Err(_) => return Err("holds no PEM private key (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----)".into()),
    }
    .map_err(|e| format!("the private key is no usable RSA key ({e})"))
}

/// A file with a private key must not be readable by every user of the machine.
#[cfg(unix)]
fn private_enough(path: &Path) -> Result<(), (String, String)> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        // Not there: reading it says so.
        return Ok(());
    };
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o004 == 0 {
        return Ok(());
    }
    Err((
        format!(
            "{} holds the private key and is readable by every user of this machine (mode {mode:04o})",
            path.display()
        ),
        format!(
            "chmod 600 {} (or 640 with a group of poststelle's user), or give it to the \
             service with systemd's LoadCredential= (see systemd/poststelle.service)",
            path.display()
        ),
    ))
}

#[cfg(not(unix))]
fn private_enough(_path: &Path) -> Result<(), (String, String)> {
    Ok(())
}
