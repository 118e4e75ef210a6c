//! Tidy: every adapter crate exports the same public names for the same roles.
//!
//! Switching frameworks should mean changing an import, not learning a new API
//! (docs/adapters.md). This reads each adapter's `src/lib.rs` (the crate's table of contents)
//! and compares the names it makes public. The adapters are the ones `auth_server::Adapter`
//! lists, so a new adapter is checked as soon as it is served.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use auth_server::Adapter;

/// Names only one framework has, because its idiom has no counterpart elsewhere: (crate,
/// name, why). Keep this short; every entry is a difference a user must learn.
const FRAMEWORK_IDIOMS: &[(&str, &str, &str)] = &[
    (
        "auth-warp",
        "auth_user",
        "warp has no extractor trait: the signed-in user comes from a filter function",
    ),
    (
        "auth-warp",
        "require_role",
        "warp's role guard is a filter function, as its `auth_user` is",
    ),
    (
        "auth-axum",
        "RequireRole",
        "an extractor type; warp's counterpart is the `require_role` filter",
    ),
    (
        "auth-actix",
        "RequireRole",
        "an extractor type; warp's counterpart is the `require_role` filter",
    ),
];

#[test]
fn adapters_export_the_same_public_names() {
    let mut exports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for adapter in Adapter::all() {
        let krate = format!("auth-{}", adapter.name());
        let lib = crates_dir().join(&krate).join("src/lib.rs");
        let text = std::fs::read_to_string(&lib).unwrap_or_else(|err| {
            panic!(
                "cannot read {}: {err}. Adapter `{}` is served by auth-server, so its crate \
                 must be crates/{krate}",
                lib.display(),
                adapter.name()
            )
        });
        exports.insert(krate, public_names(&text));
    }

    let mut problems = Vec::new();
    for (krate, name, _) in FRAMEWORK_IDIOMS {
        if !exports
            .get(*krate)
            .is_some_and(|names| names.contains(*name))
        {
            problems.push(format!(
                "FRAMEWORK_IDIOMS lists `{name}` for {krate}, which does not export it: \
                 remove the entry"
            ));
        }
    }
    let idiom = |krate: &str, name: &str| {
        FRAMEWORK_IDIOMS
            .iter()
            .any(|(k, n, _)| *k == krate && *n == name)
    };
    let every_name: BTreeSet<&String> = exports.values().flatten().collect();
    for name in every_name {
        let (with, without): (Vec<&str>, Vec<&str>) = exports
            .iter()
            .filter(|(krate, _)| !idiom(krate, name))
            .map(|(krate, names)| (krate.as_str(), names.contains(name)))
            .fold(
                (Vec::new(), Vec::new()),
                |(mut with, mut without), (krate, has)| {
                    if has { &mut with } else { &mut without }.push(krate);
                    (with, without)
                },
            );
        if !with.is_empty() && !without.is_empty() {
            problems.push(format!(
                "`{name}` is exported by {} but not by {}: give it to every adapter (same \
                 name, same role, see docs/adapters.md), drop it, or, if it is a framework \
                 idiom with no counterpart, list it in FRAMEWORK_IDIOMS with the reason",
                with.join(", "),
                without.join(", ")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "adapters differ in their public names (crates/auth-*/src/lib.rs):\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn public_names_are_read_from_every_kind_of_item() {
    let text = "mod convert;\n\
                pub use convert::mount;\n\
                pub use extract::{\n    AuthRejection, AuthUser as User,\n    auth_user,\n};\n\
                pub fn free() {}\n\
                pub(crate) fn hidden() {}\n\
                pub struct Thing;\n\
                pub enum Kind {}\n";
    let names: Vec<String> = public_names(text).into_iter().collect();
    assert_eq!(
        names,
        [
            "AuthRejection",
            "Kind",
            "Thing",
            "User",
            "auth_user",
            "free",
            "mount"
        ]
    );
}

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("auth-server lives in crates/")
        .to_path_buf()
}

/// The names `lib.rs` makes public: `pub use` (the last segment, or its `as` name, of every
/// path, braces included) and `pub` items. `pub(crate)` and friends are not public.
fn public_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let code: String = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    for statement in code.split_inclusive([';', '}']) {
        let statement = statement.trim();
        let Some(rest) = statement.strip_prefix("pub ") else {
            continue;
        };
        if let Some(tree) = rest.strip_prefix("use ") {
            collect_use(tree, &mut names);
            continue;
        }
        let mut words = rest.split_whitespace();
        while let Some(word) = words.next() {
            if [
                "fn", "struct", "enum", "trait", "type", "mod", "const", "static",
            ]
            .contains(&word)
            {
                if let Some(name) = words.next() {
                    let name: String = name
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    names.insert(name);
                }
                break;
            }
        }
    }
    names
}

/// The names a `use` tree brings in: `a::b::{c, d as e};` gives `c` and `e`.
fn collect_use(tree: &str, names: &mut BTreeSet<String>) {
    let tree = tree.trim_end_matches([';', '}']);
    let leaves = match tree.rsplit_once('{') {
        Some((_, inside)) => inside,
        None => tree,
    };
    for leaf in leaves.split(',') {
        let leaf = leaf.trim();
        if leaf.is_empty() {
            continue;
        }
        let name = match leaf.split_once(" as ") {
            Some((_, alias)) => alias.trim(),
            None => leaf.rsplit("::").next().unwrap_or(leaf),
        };
        names.insert(name.to_owned());
    }
}
