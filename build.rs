//! Embeds the shipped defaults (poststelle.toml, contacts/, rules/, templates/) into the binary, so that a fresh
//! build works with no files installed; a file on disk always wins over the embedded copy.
use std::{env, fs, io, path::Path};

const DIRS: &[&str] = &["poststelle.toml", "contacts", "rules", "templates"];

fn main() -> io::Result<()> {
    let root = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let mut files = Vec::new();
    // sqlx::migrate! embeds the migrations when the crate compiles, but does not notice a new
    // file: rebuild when the folders change.
    println!("cargo:rerun-if-changed=migrations");
    for dir in DIRS {
        println!("cargo:rerun-if-changed={dir}");
        collect(Path::new(&root), Path::new(dir), &mut files)?;
    }
    files.sort();
    let mut out = String::from("pub static EMBEDDED: &[(&str, &str)] = &[\n");
    for rel in &files {
        out.push_str(&format!(
            "    ({rel:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/\", {rel:?}))),\n"
        ));
    }
    out.push_str("];\n");
    let dest = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded.rs");
    fs::write(dest, out)
}

fn collect(root: &Path, rel: &Path, out: &mut Vec<String>) -> io::Result<()> {
    let full = root.join(rel);
    if full.is_file() {
        out.push(rel.to_string_lossy().replace('\\', "/"));
        return Ok(());
    }
    let Ok(entries) = fs::read_dir(full) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        let path = rel.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            collect(root, &path, out)?;
        } else if let Some(s) = path.to_str() {
            out.push(s.replace('\\', "/"));
        }
    }
    Ok(())
}
