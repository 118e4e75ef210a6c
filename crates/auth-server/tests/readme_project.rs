//! What a team does on day one, done by a test: a new cargo project outside the workspace,
//! its `Cargo.toml` from the README's dependency lines (the git sources swapped for paths to
//! this checkout) and its `main.rs` the README's axum program, built with `cargo build`. It
//! must compile on the first try.
//!
//! The project reuses the workspace's lockfile (so no index download is needed: `--offline`)
//! and a target directory under the workspace's, so a second run only rebuilds the project.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/auth-server is two levels down")
        .to_path_buf()
}

/// The fenced block of `language` that follows the first line containing `marker`.
fn block_after<'a>(readme: &'a str, marker: &str, language: &str) -> &'a str {
    let from = readme.find(marker).expect("the README has the marker");
    let fence = format!("```{language}\n");
    let start = from + readme[from..].find(&fence).expect("a block follows") + fence.len();
    let end = start + readme[start..].find("\n```").expect("the block ends");
    &readme[start..=end]
}

#[test]
fn a_new_project_following_the_readme_compiles() {
    let root = workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let toml = block_after(&readme, "## Mount it in your app", "toml");
    let program = block_after(&readme, "**axum**", "rust,no_run");
    let git = r#"{ git = "https://github.com/auth-toolkit/auth-toolkit" }"#;
    assert!(toml.contains(git), "the README's dependency lines:\n{toml}");
    let crates = root.join("crates");
    let mut manifest = String::from(
        "[package]\nname = \"readme-app\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
         [workspace]\n\n",
    );
    for line in toml.lines() {
        let line = match line.split_once(" = ") {
            Some((name, rest)) if rest.starts_with(git) => format!(
                "{name} = {{ path = {:?} }}",
                crates.join(name.trim()).display().to_string()
            ),
            _ => line.to_owned(),
        };
        manifest.push_str(&line);
        manifest.push('\n');
    }
    let project = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(project.path().join("src")).expect("src");
    std::fs::write(project.path().join("Cargo.toml"), &manifest).expect("Cargo.toml");
    std::fs::write(project.path().join("src/main.rs"), program).expect("main.rs");
    std::fs::copy(root.join("Cargo.lock"), project.path().join("Cargo.lock")).expect("lock");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--offline", "--quiet"])
        .current_dir(project.path())
        .env("CARGO_TARGET_DIR", root.join("target/readme-project"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "the README's project does not build:\n--- Cargo.toml\n{manifest}\n--- main.rs\n\
         {program}\n--- cargo\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
