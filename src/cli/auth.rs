//! `poststelle auth login PROVIDER`: the device-code flow for a delegated provider.
use std::io::Write;
use std::process::ExitCode;

use anyhow::{Result, bail};
use poststelle::config::Grant;
use tokio::runtime::Builder;

use super::{AuthCmd, Global, load_config, runtime};

pub(super) fn auth(g: &Global, cmd: &AuthCmd) -> Result<ExitCode> {
    let AuthCmd::Login { provider } = cmd;
    let cfg = load_config(g)?;
    let Some(p) = cfg.settings.oauth.iter().find(|p| &p.name == provider) else {
        let known: Vec<&str> = cfg.settings.oauth.iter().map(|p| p.name.as_str()).collect();
        bail!(
            "{} has no [[oauth]] table named \"{provider}\"; fix: name one of: {}",
            cfg.origin,
            if known.is_empty() {
                "(none)".to_string()
            } else {
                known.join(", ")
            }
        );
    };
    if p.grant != Grant::RefreshToken {
        bail!(
            "[[oauth]] \"{provider}\" has grant = \"client_credentials\", which needs no sign-in; \
             fix: set grant = \"refresh_token\" for delegated access"
        );
    }
    runtime(Builder::new_current_thread())?.block_on(async {
        poststelle::oauth::device_login(p, |d| {
            let mut out = std::io::stdout().lock();
            let _ = match &d.message {
                Some(m) => writeln!(out, "{m}"),
                None => writeln!(
                    out,
                    "To sign in, open {} and enter the code {}",
                    d.verification_uri, d.user_code
                ),
            };
            let _ = writeln!(out, "(waiting for the sign-in …)");
            let _ = out.flush();
        })
        .await?;
        println!(
            "signed in: the refresh token of \"{provider}\" is stored in {}",
            p.refresh_token_file.display()
        );
        Ok(ExitCode::SUCCESS)
    })
}
