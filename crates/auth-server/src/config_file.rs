//! The configuration file (`--config auth.toml`, or `AUTH_CONFIG`): TOML whose keys are the
//! flags' long names (`database-url = "postgres://…"`, `require-verified-email = true`,
//! `profiles = ["native", "envelope"]`), one file for every command.
//!
//! One precedence for every setting: a flag beats the environment, which beats the file,
//! which beats the default. That is done by clap itself: [`layer`] looks at a first parse,
//! and for each key of the file whose setting came from neither the command line nor the
//! environment, adds the flag to the command line; the final parse then sees it like any
//! flag, with clap's own checks (types, ranges, conflicts) and its own error messages.
//!
//! A key no command knows is an error naming it (a typo must not silently do nothing); a
//! key only another command takes (`jwt-secret` for `user create`) is left for that command.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};

/// The id of the `--config` argument.
pub const CONFIG_ARG: &str = "config";

/// A command line with the file's settings added, and which settings came from the file.
#[derive(Debug, Clone, Default)]
pub struct Layered {
    /// The arguments to parse: the given ones, then one flag per setting the file supplies.
    pub argv: Vec<OsString>,
    /// The long names of the settings the file supplied (for `config show`).
    pub from_file: BTreeSet<String>,
    /// The file read, if any.
    pub path: Option<PathBuf>,
}

/// Adds to `argv` the settings of the configuration file named in `first` (the result of
/// parsing `argv` with `command`), for every setting neither a flag nor the environment
/// gave. Without `--config` the command line is unchanged.
pub fn layer(
    command: &Command,
    first: &ArgMatches,
    argv: Vec<OsString>,
) -> anyhow::Result<Layered> {
    let Some(path) = first.get_one::<PathBuf>(CONFIG_ARG).cloned() else {
        return Ok(Layered {
            argv,
            ..Layered::default()
        });
    };
    let table = read(&path)?;
    // Built, so that each subcommand lists the global arguments of the levels above it.
    let mut command = command.clone();
    command.build();
    let known = every_long_name(&command);
    let (leaf, matches) = leaf(&command, first);
    let mut layered = Layered {
        argv,
        from_file: BTreeSet::new(),
        path: Some(path.clone()),
    };
    for (key, value) in &table {
        if key == CONFIG_ARG {
            bail!("{}: `config` cannot name another file", path.display());
        }
        if !known.contains(key.as_str()) {
            bail!(
                "{}: unknown setting `{key}` (the keys are the flags' long names, as in \
                 `database-url`; see `auth-server serve --help`)",
                path.display()
            );
        }
        let Some(arg) = leaf.get_arguments().find(|a| a.get_long() == Some(key)) else {
            // A setting of another command.
            continue;
        };
        let id = arg.get_id().as_str();
        if matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let flags = flags_for(key, arg, value).with_context(|| format!("{}", path.display()))?;
        layered.argv.extend(flags);
        layered.from_file.insert(key.clone());
    }
    Ok(layered)
}

/// The file as a TOML table, or why not (with the line of a syntax error).
fn read(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    text.parse::<toml::Table>()
        .map_err(|err| anyhow::anyhow!("{}: not valid TOML: {err}", path.display()))
}

/// The long names of every argument of `command` and its subcommands.
fn every_long_name(command: &Command) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = command
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    for sub in command.get_subcommands() {
        names.extend(every_long_name(sub));
    }
    names
}

/// The subcommand `matches` ran (e.g. `user create`), with its matches; global arguments of
/// the levels above are propagated into it by clap.
pub fn leaf<'a>(command: &'a Command, matches: &'a ArgMatches) -> (&'a Command, &'a ArgMatches) {
    let (mut command, mut matches) = (command, matches);
    while let Some((name, sub_matches)) = matches.subcommand() {
        match command.find_subcommand(name) {
            Some(sub) => (command, matches) = (sub, sub_matches),
            None => break,
        }
    }
    (command, matches)
}

/// The flags that say what `value` says for `arg` (`--key=value`, once per list item for a
/// repeatable flag, else the items joined by the flag's delimiter or a comma; a switch when
/// true).
fn flags_for(key: &str, arg: &clap::Arg, value: &toml::Value) -> anyhow::Result<Vec<OsString>> {
    let flag = |text: &str| OsString::from(format!("--{key}={text}"));
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        return match value {
            toml::Value::Boolean(true) => Ok(vec![OsString::from(format!("--{key}"))]),
            toml::Value::Boolean(false) => Ok(Vec::new()),
            _ => bail!("`{key}` is a switch: true or false"),
        };
    }
    match value {
        toml::Value::Array(items) => {
            let items = items
                .iter()
                .map(|item| scalar(key, item))
                .collect::<anyhow::Result<Vec<String>>>()?;
            if matches!(arg.get_action(), ArgAction::Append) {
                Ok(items.iter().map(|item| flag(item)).collect())
            } else {
                // The comma-separated settings (`profiles`, `trusted-proxies`, ...) take one
                // text; any other setting's own parser refuses a joined list.
                let delimiter = arg.get_value_delimiter().unwrap_or(',');
                Ok(vec![flag(&items.join(&delimiter.to_string()))])
            }
        }
        other => Ok(vec![flag(&scalar(key, other)?)]),
    }
}

/// A string, number or boolean as the flag's text.
fn scalar(key: &str, value: &toml::Value) -> anyhow::Result<String> {
    Ok(match value {
        toml::Value::String(text) => text.clone(),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(x) => x.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(_) | toml::Value::Array(_) | toml::Value::Table(_) => {
            bail!("`{key}` must be a string, a number or a boolean")
        }
    })
}

/// The settings whose value is a secret, shown as `"********"` by [`show`]. A new secret
/// setting must be added here; the test `every_hidden_env_secret_is_listed` in
/// `tests/config_file.rs` keeps the list complete.
pub const SECRET_SETTINGS: &[&str] = &[
    "audit-webhook-secret",
    "jwt-secret",
    "key-encryption-key",
    "new-key-encryption-key",
    "password",
];

fn is_secret(long: &str) -> bool {
    SECRET_SETTINGS.contains(&long)
}

/// `url` with the password of its user info masked (`postgres://app:********@db/auth`);
/// anything that is not such a URL unchanged.
fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:********@{host}{tail}"),
        None => url.to_owned(),
    }
}

/// The effective settings of `command` (the leaf of a parse) as a TOML file one could
/// load with `--config`: every visible setting, its value (secrets masked, passwords in URLs
/// masked) and, as a comment, where it came from.
pub fn show(command: &Command, matches: &ArgMatches, layered: &Layered) -> String {
    let mut out = String::new();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if arg.is_hide_set() || long == CONFIG_ARG || long == "help" || long == "version" {
            continue;
        }
        let id = arg.get_id().as_str();
        let source = if layered.from_file.contains(long) {
            let file = layered.path.as_deref().unwrap_or(Path::new("?"));
            format!("file {}", file.display())
        } else {
            match matches.value_source(id) {
                Some(ValueSource::CommandLine) => "flag".to_owned(),
                Some(ValueSource::EnvVariable) => match arg.get_env() {
                    Some(name) => format!("env {}", name.to_string_lossy()),
                    None => "env".to_owned(),
                },
                Some(ValueSource::DefaultValue) => "default".to_owned(),
                _ => "not set".to_owned(),
            }
        };
        let values: Vec<String> = matches
            .get_raw(id)
            .map(|raw| raw.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let shown = if values.is_empty() {
            None
        } else if is_secret(long) {
            Some("\"********\"".to_owned())
        } else {
            let rendered: Vec<String> = values.iter().map(|v| toml_text(v)).collect();
            Some(if rendered.len() == 1 {
                rendered[0].clone()
            } else {
                format!("[{}]", rendered.join(", "))
            })
        };
        match shown {
            Some(value) => out.push_str(&format!("{long} = {value}  # {source}\n")),
            None => out.push_str(&format!("# {long} =  # {source}\n")),
        }
    }
    out
}

/// A setting's text as a TOML value: numbers and booleans bare, anything else a string
/// (with any password in a URL masked).
fn toml_text(value: &str) -> String {
    if value == "true" || value == "false" || value.parse::<i64>().is_ok() {
        value.to_owned()
    } else {
        toml::Value::String(mask_url_password(value)).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_masked_and_nothing_else() {
        assert_eq!(
            mask_url_password("postgres://app:s3cret@db:5432/auth?sslmode=require"),
            "postgres://app:********@db:5432/auth?sslmode=require"
        );
        assert_eq!(
            mask_url_password("smtps://mailer:p@ss@smtp.example.com"),
            "smtps://mailer:********@smtp.example.com"
        );
        assert_eq!(mask_url_password("sqlite://auth.db"), "sqlite://auth.db");
        assert_eq!(
            mask_url_password("postgres://app@db/auth"),
            "postgres://app@db/auth"
        );
    }

    #[test]
    fn secrets_are_known_by_name() {
        assert!(is_secret("jwt-secret"));
        assert!(is_secret("key-encryption-key"));
        assert!(!is_secret("database-url"));
        assert!(!is_secret("key-encryption-key-file"));
    }
}
