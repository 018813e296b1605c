//! Reading the layers (embedded defaults, file, environment) into [`Settings`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, Deserializer};

use super::{ConfigError, Problem, Settings, redact, schema_check, validate};

/// Every default, commented: the first layer of every configuration.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// Where the configuration file is looked for when neither `--config` nor `MIGRATOR_CONFIG` names
/// one.
pub const DEFAULT_CONFIG_PATH: &str = "config/default.toml";

/// Where the layers come from.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// The file named by `--config`/`MIGRATOR_CONFIG`; it must exist. `None`: use
    /// [`DEFAULT_CONFIG_PATH`] if it exists.
    pub file: Option<PathBuf>,
    /// The environment to read `MIGRATOR__...` variables from; `None` = the process environment.
    /// Tests pass their own map so that they do not race on the process environment.
    pub env: Option<HashMap<String, String>>,
}

/// Loads, checks and validates the configuration, reporting every problem at once.
pub fn load(source: &ConfigSource) -> Result<Settings, ConfigError> {
    let mut builder = Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
    match &source.file {
        Some(path) => builder = builder.add_source(file_layer(path)?),
        None => {
            let path = Path::new(DEFAULT_CONFIG_PATH);
            if path.is_file() {
                builder = builder.add_source(file_layer(path)?);
            }
        }
    }
    // No `try_parsing`: it would turn a password such as "0123" into a number and split values
    // on commas. Numbers and booleans are parsed from strings when the typed settings are built.
    let env = Environment::with_prefix("MIGRATOR")
        .prefix_separator("__")
        .separator("__")
        .source(source.env.clone());
    let merged = builder
        .add_source(env)
        .build()
        .map_err(|e| ConfigError::Syntax(redact::without_values(&e.to_string())))?;

    let raw: serde_json::Value = merged
        .clone()
        .try_deserialize()
        .map_err(|e| ConfigError::Syntax(redact::without_values(&e.to_string())))?;
    let found = schema_check::check(&raw);
    let settings = if found.is_empty() {
        merged.try_deserialize::<Settings>().map_err(|e| {
            ConfigError::Invalid(vec![Problem::new(
                "configuration",
                format!(
                    "{}: fix the value's type",
                    redact::without_values(&e.to_string())
                ),
            )])
        })?
    } else {
        // Leave out what the schema check rejected and keep going, so that semantic problems
        // are reported together with the unknown keys and bad values.
        let mut pruned = raw;
        for (path, _) in &found {
            schema_check::remove(&mut pruned, path);
        }
        let problems: Vec<Problem> = found.into_iter().map(|(_, p)| p).collect();
        let typed = Config::try_from(&pruned).and_then(Config::try_deserialize::<Settings>);
        let mut problems = problems;
        if let Ok(settings) = typed {
            problems.extend(validate::validate(&settings));
        }
        return Err(ConfigError::Invalid(problems));
    };
    let problems = validate::validate(&settings);
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

fn file_layer(path: &Path) -> Result<File<config::FileSourceString, FileFormat>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    toml::from_str::<toml::Table>(&text).map_err(|e| {
        ConfigError::Syntax(format!(
            "{}: {}",
            path.display(),
            redact::toml_error(&text, &e)
        ))
    })?;
    Ok(File::from_str(&text, FileFormat::Toml))
}

/// Accepts a list of strings or one `;`-separated string (as an environment variable gives), for
/// entries that may hold commas (a routine's signature).
pub(crate) fn semicolon_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    list_or_separated(d, ';')
}

/// Accepts a list of strings or one comma-separated string (as an environment variable gives).
pub(crate) fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    list_or_separated(d, ',')
}

fn list_or_separated<'de, D: Deserializer<'de>>(
    d: D,
    separator: char,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        List(Vec<String>),
        One(String),
    }
    Ok(match Form::deserialize(d)? {
        Form::List(list) => list,
        Form::One(text) => text
            .split(separator)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}
