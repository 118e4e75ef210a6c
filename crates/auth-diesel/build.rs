//! Rebuilds the crate when a migration is added or changed: `embed_migrations!` reads the
//! `migrations` directory at compile time, and Cargo would not notice a new folder.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
