//! Architecture invariants of auth-core, checked as plain tests (in the style of
//! rust-analyzer's `tidy.rs`): each failure says what to change.
//!
//! - auth-core names no HTTP framework and no database crate;
//! - its modules follow the layering table of docs/architecture.md (a module uses only
//!   modules of lower layers, so there is no import cycle), and every module is in the table;
//! - no source file is longer than 500 lines;
//! - no profile reaches the unchecked administration capability.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Crates of HTTP frameworks and databases; auth-core must name none of them.
const FORBIDDEN_CRATES: &[&str] = &[
    "axum",
    "actix",
    "actix-web",
    "actix_web",
    "warp",
    "hyper",
    "tower",
    "tower-http",
    "rocket",
    "poem",
    "diesel",
    "r2d2",
    "sqlx",
    "rusqlite",
    "libsqlite3-sys",
    "pq-sys",
    "postgres",
    "tokio-postgres",
];

/// Longest source file allowed in auth-core.
const MAX_LINES: usize = 500;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn src_dir() -> PathBuf {
    crate_dir().join("src")
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("read source directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The top-level module a source file belongs to (`service/accounts.rs` → `service`).
fn top_module(file: &Path) -> String {
    let relative = file.strip_prefix(src_dir()).expect("file under src");
    let first = relative
        .components()
        .next()
        .expect("non-empty path")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// The source without `#[cfg(test)]` modules and without comments, so that tests (which may
/// use `testing`) and prose do not count as dependencies.
fn production_code(source: &str) -> String {
    let mut out = String::new();
    let mut skipping_depth: Option<usize> = None;
    let mut depth = 0usize;
    let mut pending_cfg_test = false;
    for line in source.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        if skipping_depth.is_none() && trimmed.starts_with("#[cfg(test)]") {
            pending_cfg_test = true;
            continue;
        }
        let opens = line.matches('{').count();
        let closes = line.matches('}').count();
        if pending_cfg_test && skipping_depth.is_none() {
            pending_cfg_test = false;
            if trimmed.starts_with("mod ") && trimmed.ends_with(';') {
                continue;
            }
            skipping_depth = Some(depth);
        }
        depth = depth + opens - closes.min(depth + opens);
        match skipping_depth {
            Some(start) if depth <= start && closes > 0 => skipping_depth = None,
            Some(_) => {}
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The crate-local modules a source refers to with `crate::name`.
fn crate_references(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `auth_crate::`
        }
        let rest = &code[at + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // `crate::name!` is an exported macro (they all live at the crate root), not a module.
        let is_macro = rest[name.len()..].starts_with('!');
        if !name.is_empty() && !is_macro && !found.contains(&name) {
            found.push(name);
        }
    }
    found
}

/// The layering table of docs/architecture.md: module → layer.
fn layers() -> BTreeMap<String, u32> {
    let doc = crate_dir().join("../../docs/architecture.md");
    let text = fs::read_to_string(&doc).expect("docs/architecture.md");
    let start = text
        .find("<!-- module-layers -->")
        .expect("docs/architecture.md must hold the module table after `<!-- module-layers -->`");
    let mut layers = BTreeMap::new();
    for line in text[start..].lines().skip(1) {
        let line = line.trim();
        if line.is_empty() {
            if layers.is_empty() {
                continue;
            }
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let Some(layer) = cells.first().and_then(|c| c.parse::<u32>().ok()) else {
            continue; // header or separator row
        };
        for module in cells.get(1).copied().unwrap_or("").split(',') {
            let module = module.trim().trim_matches('`');
            if !module.is_empty() {
                layers.insert(module.to_owned(), layer);
            }
        }
    }
    assert!(
        !layers.is_empty(),
        "the module table in docs/architecture.md is empty"
    );
    layers
}

#[test]
fn auth_core_names_no_framework_or_database_crate() {
    let manifest = fs::read_to_string(crate_dir().join("Cargo.toml")).expect("Cargo.toml");
    let mut problems = Vec::new();
    for line in manifest.lines() {
        let key = line.split(['=', '.']).next().unwrap_or("").trim();
        if FORBIDDEN_CRATES.contains(&key) {
            problems.push(format!("Cargo.toml depends on `{key}`"));
        }
    }
    for file in rust_files(&src_dir()) {
        let source = fs::read_to_string(&file).expect("source file");
        for krate in FORBIDDEN_CRATES {
            let name = krate.replace('-', "_");
            if source.contains(&format!("use {name}::")) || source.contains(&format!(" {name}::")) {
                problems.push(format!("{} names `{name}`", file.display()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "auth-core must know no HTTP framework and no database crate (move the code to an \
         adapter or to auth-diesel):\n{}",
        problems.join("\n")
    );
}

#[test]
fn modules_follow_the_layering_table() {
    let layers = layers();
    let mut problems = Vec::new();
    for file in rust_files(&src_dir()) {
        if file.ends_with("lib.rs") {
            continue;
        }
        let module = top_module(&file);
        let Some(&layer) = layers.get(&module) else {
            problems.push(format!(
                "module `{module}` ({}) is not in the layering table of docs/architecture.md: \
                 add it with the layer it belongs to",
                file.display()
            ));
            continue;
        };
        let source = fs::read_to_string(&file).expect("source file");
        // A `tests.rs` file is a test module in its own file: it may use `testing`.
        let test_file = file.ends_with("tests.rs");
        for used in crate_references(&production_code(&source)) {
            if used == module || (test_file && used == "testing") {
                continue;
            }
            match layers.get(&used) {
                None => problems.push(format!(
                    "{} uses `crate::{used}`, which is not in the layering table",
                    file.display()
                )),
                Some(&used_layer) if used_layer >= layer => problems.push(format!(
                    "{} (`{module}`, layer {layer}) uses `crate::{used}` (layer {used_layer}): a \
                     module may only use lower layers; move the shared item down or the user up",
                    file.display()
                )),
                Some(_) => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn source_files_stay_short() {
    let long: Vec<String> = rust_files(&src_dir())
        .into_iter()
        .filter_map(|file| {
            let lines = fs::read_to_string(&file)
                .expect("source file")
                .lines()
                .count();
            (lines > MAX_LINES).then(|| format!("{}: {lines} lines", file.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these files along their concerns (at most {MAX_LINES} lines each):\n{}",
        long.join("\n")
    );
}

#[test]
fn no_profile_reaches_the_unchecked_admin_capability() {
    let offenders: Vec<String> = rust_files(&src_dir().join("profile"))
        .into_iter()
        .filter(|file| {
            fs::read_to_string(file)
                .expect("source file")
                .contains("operator()")
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "profiles serve requests: use `auth.admin(&principal)?` (the role check), never \
         `operator()`:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_check() {
    // Guards against a tidy test that passes because its parser sees nothing.
    let code = production_code(
        "use crate::store::X;\n// crate::app in a comment\n#[cfg(test)]\nmod tests {\n    use crate::testing::Y;\n}\nfn f() { crate::clock::secs(d); crate::a_macro!(); }\n",
    );
    assert_eq!(crate_references(&code), vec!["store", "clock"]);
    assert!(layers().contains_key("service"));
}
