//! Release hygiene, checked on the files of the repository (no network, no server): the
//! licence files, the published crates' metadata, an API reference that needs nothing outside
//! the repository, and the example systemd unit.
//!
//! The manifests are read line by line rather than with a TOML parser: the lines checked
//! here (`key = "value"`, `key = ["a", "b"]`, `key.workspace = true`) are written one per
//! line in this workspace, and a parser would add a dependency to the lockfile.

use std::fs;
use std::path::{Path, PathBuf};

/// The crates published to crates.io, by directory; `xtask` is the one that never is.
const PUBLISHED: [&str; 7] = [
    "crates/auth-core",
    "crates/auth-diesel",
    "crates/auth-axum",
    "crates/auth-actix",
    "crates/auth-warp",
    "crates/auth-server",
    "tests",
];

const LICENSES: [&str; 2] = ["LICENSE-MIT", "LICENSE-APACHE"];

const COPYRIGHT: &str = "Copyright (c) 2026 The auth-toolkit contributors";

/// The keys every published crate must have, given in its manifest or inherited from
/// `[workspace.package]`.
const REQUIRED_KEYS: [&str; 7] = [
    "description",
    "license",
    "repository",
    "rust-version",
    "keywords",
    "categories",
    "readme",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

/// The `key = value` lines of one `[section]` of a manifest, in order (comments and blank
/// lines left out, the value as written).
fn section(manifest: &str, name: &str) -> Vec<(String, String)> {
    let header = format!("[{name}]");
    let mut inside = false;
    let mut entries = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == header;
            continue;
        }
        if !inside || line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            entries.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    entries
}

/// The value of `key` in `entries`: `Some(value)` when given, `Some("workspace")` when
/// inherited with `key.workspace = true`.
fn value(entries: &[(String, String)], key: &str) -> Option<String> {
    let inherited = format!("{key}.workspace");
    entries.iter().find_map(|(k, v)| {
        if *k == key {
            Some(v.clone())
        } else if *k == inherited && v == "true" {
            Some("workspace".to_owned())
        } else {
            None
        }
    })
}

/// The items of a one-line array of strings, `["a", "b"]`.
fn string_array(value: &str) -> Vec<String> {
    let inner = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or_else(|| panic!("not a one-line array: {value}"));
    inner
        .split(',')
        .map(|item| item.trim().trim_matches('"').to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

fn unquote(value: &str) -> String {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or_else(|| panic!("not a one-line string: {value}"))
        .to_owned()
}

#[test]
fn licence_files_are_at_the_root_and_in_every_published_crate() {
    let root = root();
    for name in LICENSES {
        let text = read(&root.join(name));
        assert!(
            text.contains(COPYRIGHT),
            "{name} at the root must carry the line {COPYRIGHT:?}"
        );
        for dir in PUBLISHED {
            let copy = root.join(dir).join(name);
            assert_eq!(
                read(&copy),
                text,
                "{} must be a copy of the root's {name} (cargo package takes only files inside \
                 the crate): cp {name} {dir}/",
                copy.display()
            );
        }
    }
}

#[test]
fn the_workspace_gives_what_every_crate_inherits() {
    let manifest = read(&root().join("Cargo.toml"));
    let package = section(&manifest, "workspace.package");
    assert_eq!(
        value(&package, "license").as_deref(),
        Some("\"MIT OR Apache-2.0\"")
    );
    assert_eq!(
        value(&package, "repository").as_deref(),
        Some("\"https://github.com/auth-toolkit/auth-toolkit\"")
    );
    let rust_version = value(&package, "rust-version").expect("workspace rust-version");
    assert!(
        unquote(&rust_version).starts_with("1."),
        "rust-version {rust_version}"
    );
    assert_eq!(
        value(&package, "publish"),
        None,
        "publish = false belongs on xtask only, not on the whole workspace"
    );
    // `cargo package` needs a version on every path dependency between published crates.
    let dependencies = section(&manifest, "workspace.dependencies");
    for dir in PUBLISHED {
        let name = crate_name(dir);
        let line = value(&dependencies, &name)
            .unwrap_or_else(|| panic!("{name} missing from [workspace.dependencies]"));
        assert!(
            line.contains(&format!("path = \"{dir}\"")) && line.contains("version = \"0.1.0\""),
            "[workspace.dependencies] {name} = {line}: needs both path and version"
        );
    }
    let xtask = section(&read(&root().join("xtask/Cargo.toml")), "package");
    assert_eq!(
        value(&xtask, "publish").as_deref(),
        Some("false"),
        "xtask is never published"
    );
}

fn crate_name(dir: &str) -> String {
    let manifest = read(&root().join(dir).join("Cargo.toml"));
    unquote(&value(&section(&manifest, "package"), "name").expect("package name"))
}

#[test]
fn every_published_crate_has_the_metadata_crates_io_shows() {
    let root = root();
    for dir in PUBLISHED {
        let manifest = read(&root.join(dir).join("Cargo.toml"));
        let package = section(&manifest, "package");
        for key in REQUIRED_KEYS {
            assert!(
                value(&package, key).is_some(),
                "{dir}/Cargo.toml: [package] has no {key}"
            );
        }
        assert_eq!(
            value(&package, "publish"),
            None,
            "{dir}/Cargo.toml: a published crate has no publish key"
        );
        let description = unquote(&value(&package, "description").unwrap_or_default());
        assert!(!description.trim().is_empty(), "{dir}: empty description");
        let keywords = string_array(&value(&package, "keywords").unwrap_or_default());
        assert!(
            (1..=5).contains(&keywords.len()),
            "{dir}: crates.io takes 1 to 5 keywords, not {keywords:?}"
        );
        for keyword in &keywords {
            assert!(
                keyword.len() <= 20
                    && keyword.starts_with(|c: char| c.is_ascii_lowercase())
                    && keyword.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || "-_+".contains(c)
                    }),
                "{dir}: keyword {keyword:?} must be lowercase ASCII, at most 20 characters"
            );
        }
        let categories = string_array(&value(&package, "categories").unwrap_or_default());
        assert!(
            (1..=5).contains(&categories.len()),
            "{dir}: crates.io takes 1 to 5 categories, not {categories:?}"
        );
        let readme = unquote(&value(&package, "readme").unwrap_or_default());
        let readme_path = root.join(dir).join(&readme);
        assert!(
            readme_path.is_file() && !readme.starts_with(".."),
            "{dir}: readme {readme:?} must be a file inside the crate directory"
        );
    }
}

#[test]
fn the_docs_reference_nothing_outside_the_repository() {
    let root = root();
    let mut files = vec![root.join("README.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        let entries = fs::read_dir(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for file in files {
        let text = read(&file);
        for (number, line) in text.lines().enumerate() {
            assert!(
                !line.contains("contract.md"),
                "{}:{}: refers to contract.md, which is not in the repository; docs/api.md is \
                 the reference",
                file.display(),
                number + 1
            );
        }
    }
}

#[test]
fn the_systemd_unit_serves_and_the_deployment_guide_is_linked() {
    let root = root();
    let unit = read(&root.join("deploy/auth-server.service"));
    let exec: Vec<&str> = unit
        .lines()
        .filter_map(|line| line.trim().strip_prefix("ExecStart="))
        .collect();
    assert_eq!(exec.len(), 1, "one ExecStart= line, not {exec:?}");
    assert!(
        exec[0].split_whitespace().any(|word| word == "serve"),
        "ExecStart={} must run `auth-server serve`",
        exec[0]
    );
    for setting in [
        "StateDirectory=auth-server",
        "WorkingDirectory=/var/lib/auth-server",
        "EnvironmentFile=",
    ] {
        assert!(
            unit.lines().any(|line| line.trim().starts_with(setting)),
            "the unit lacks {setting}"
        );
    }
    assert!(root.join("docs/deployment.md").is_file());
    let readme = read(&root.join("README.md"));
    let docs_row = readme
        .lines()
        .find(|line| line.starts_with("| `docs/` |"))
        .expect("the README's Layout table has a docs/ row");
    assert!(
        docs_row.contains("(docs/deployment.md)"),
        "the README's docs/ row links docs/deployment.md"
    );
}
