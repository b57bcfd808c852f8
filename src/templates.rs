//! Mail templates (minijinja): `templates/<lang>/<name>.txt` holds a `subject` and a `body`
//! block; an optional `<name>.html` next to it gives the HTML alternative. German is the
//! default language, English the variant.
use std::collections::BTreeSet;

use minijinja::Environment;

use crate::config::{Diagnostics, Files};

/// The loaded and syntax-checked templates.
#[derive(Debug)]
pub struct Templates {
    /// The directory they came from, for messages.
    pub dir: String,
    env: Environment<'static>,
    /// (language, name) of every `.txt` template.
    available: BTreeSet<(String, String)>,
}

impl Templates {
    pub fn load(files: &Files, dir: &str, diags: &mut Diagnostics) -> Templates {
        let mut env = Environment::new();
        // HTML templates escape every value; text templates must not.
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let mut available = BTreeSet::new();
        for path in files.list_recursive(dir, &[".txt", ".html"]) {
            let rel = path
                .strip_prefix(dir.trim_end_matches('/'))
                .unwrap_or(&path)
                .trim_start_matches('/')
                .to_string();
            let Some((lang, file)) = rel.split_once('/') else {
                continue;
            };
            let src = match files.read(&path) {
                Ok(s) => s,
                Err(d) => {
                    diags.0.push(d);
                    continue;
                }
            };
            if file.ends_with(".txt") {
                let has_block = |b: &str| {
                    regex::Regex::new(&format!(r"\{{%-?\s*block\s+{b}\s*-?%\}}"))
                        .map(|r| r.is_match(&src.text))
                        .unwrap_or(false)
                };
                for block in ["subject", "body"] {
                    if !has_block(block) {
                        diags.push(
                            &src,
                            None,
                            format!("the template has no `{block}` block"),
                            format!("wrap the {block} in {{% block {block} %}}…{{% endblock %}}"),
                        );
                    }
                }
                available.insert((lang.to_string(), file.trim_end_matches(".txt").to_string()));
            }
            if let Err(e) = env.add_template_owned(rel.clone(), src.text.clone()) {
                diags.0.push(crate::config::Diagnostic {
                    file: src.name.clone(),
                    line: e.line(),
                    message: format!("template syntax error: {}", e.detail().unwrap_or("")),
                    fix: "correct the template (syntax: https://docs.rs/minijinja/latest/minijinja/syntax/)"
                        .into(),
                });
            }
        }
        Templates {
            dir: dir.to_string(),
            env,
            available,
        }
    }

    pub fn has(&self, name: &str, lang: &str) -> bool {
        self.available
            .contains(&(lang.to_string(), name.to_string()))
    }

    /// Every template name, whatever its languages.
    pub fn names(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self.available.iter().map(|(_, n)| n.as_str()).collect();
        set.into_iter().map(str::to_string).collect()
    }

    pub fn count(&self) -> usize {
        self.available.len()
    }

    pub fn env(&self) -> &Environment<'static> {
        &self.env
    }
}
