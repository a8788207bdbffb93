//! Configuration: command-line flags, then `RAPPORT_*` environment variables, then an
//! optional TOML file (`--config`), then defaults. Each flag `--x-y` has the variable
//! `RAPPORT_X_Y` and the file key `x_y`. A bad value stops start-up with one line naming it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::ArgMatches;
use clap::parser::ValueSource;
use rapport_auth::SigningKey;
use rapport_domain::webhook::target::TargetPolicy;
use rapport_http::CorsOrigins;
use rapport_http::client_ip::TrustedProxies;
use rapport_http::passwords::PasswordWorkSettings;
use rapport_storage::DatabaseUrl;

mod cli;

pub use cli::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupPolicy {
    Open,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub bind: SocketAddr,
    /// None: use (or generate) the key stored in the database.
    pub jwt_secret: Option<SigningKey>,
    pub signup: SignupPolicy,
    pub change_retention_days: u32,
    pub rate_limit_per_minute: u32,
    /// None: ten times `rate_limit_per_minute`.
    pub org_rate_limit_per_minute: Option<u32>,
    pub auth_rate_limit_per_minute: u32,
    pub trusted_proxies: TrustedProxies,
    pub api_keys_per_user: u32,
    /// Password hashing threads and queue (not a setting: tests shrink it).
    pub password_work: PasswordWorkSettings,
    pub body_limit: usize,
    pub upload_limit: usize,
    /// How long a request body may send nothing (the time between two reads).
    pub body_timeout: std::time::Duration,
    pub cors_origins: CorsOrigins,
    pub log_format: LogFormat,
    pub log_level: String,
    pub workers: usize,
    pub access_token_ttl: i64,
    /// How long a resolved credential is kept (zero: not at all).
    pub credential_cache: std::time::Duration,
    /// Which addresses webhooks may reach (RAPPORT_WEBHOOK_ALLOW_PRIVATE and
    /// RAPPORT_WEBHOOK_ALLOWED_HOSTS).
    pub webhook_targets: TargetPolicy,
    /// The webhook worker's pace (not a setting of its own: tests shrink it).
    pub webhooks: crate::webhooks::WebhookSettings,
    /// The import worker's pace and chunk size.
    pub imports: crate::imports::ImportSettings,
}

impl Config {
    /// Defaults everywhere except the database: what the tests and embedders start from.
    pub fn with_database(database_url: DatabaseUrl) -> Self {
        Config {
            database_url,
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            jwt_secret: None,
            signup: SignupPolicy::Open,
            change_retention_days: 30,
            rate_limit_per_minute: 6000,
            org_rate_limit_per_minute: None,
            auth_rate_limit_per_minute: 60,
            trusted_proxies: TrustedProxies::default(),
            api_keys_per_user: 50,
            password_work: PasswordWorkSettings::default(),
            body_limit: 1024 * 1024,
            upload_limit: 100 * 1024 * 1024,
            body_timeout: std::time::Duration::from_secs(60),
            cors_origins: CorsOrigins::None,
            log_format: LogFormat::Pretty,
            log_level: "info".into(),
            workers: std::thread::available_parallelism().map_or(2, usize::from),
            access_token_ttl: 900,
            credential_cache: rapport_storage::DEFAULT_CREDENTIAL_CACHE,
            webhook_targets: TargetPolicy::public_only(),
            webhooks: crate::webhooks::WebhookSettings::default(),
            imports: crate::imports::ImportSettings::default(),
        }
    }
}

/// Where a value came from, for the error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env,
    File(PathBuf),
}

/// One bad setting: which, from where, and why. Secrets are never echoed.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub key: &'static str,
    pub origin: Origin,
    pub value: Option<String>,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match &self.origin {
            Origin::Flag => format!("--{}", self.key.replace('_', "-")),
            Origin::Env => format!("RAPPORT_{}", self.key.to_ascii_uppercase()),
            Origin::File(path) => format!("{} in {}", self.key, path.display()),
        };
        match &self.value {
            Some(value) => write!(f, "invalid {name} {value:?}: {}", self.reason),
            None => write!(f, "invalid {name}: {}", self.reason),
        }
    }
}

impl std::error::Error for ConfigError {}

const KEYS: [&str; 21] = [
    "database_url",
    "bind",
    "jwt_secret",
    "signup",
    "change_retention_days",
    "rate_limit_per_minute",
    "org_rate_limit_per_minute",
    "auth_rate_limit_per_minute",
    "trusted_proxies",
    "api_keys_per_user",
    "body_limit",
    "upload_limit",
    "body_timeout",
    "cors_origins",
    "log_format",
    "log_level",
    "workers",
    "access_token_ttl",
    "credential_cache_ms",
    "webhook_allow_private",
    "webhook_allowed_hosts",
];
const SECRET_KEYS: [&str; 2] = ["jwt_secret", "database_url"];

/// Raw values before validation, with where each came from.
struct Raw {
    values: BTreeMap<&'static str, (String, Origin)>,
}

impl Raw {
    fn take(&mut self, key: &'static str) -> Option<(String, Origin)> {
        self.values.remove(key)
    }
}

impl Config {
    /// Resolves flags (already parsed into `args`, with `matches` telling flag from
    /// environment), the file, and defaults.
    pub fn resolve(args: &SettingsArgs, matches: &ArgMatches) -> Result<Config, ConfigError> {
        let cli_values: [(&'static str, &Option<String>); 21] = [
            ("database_url", &args.database_url),
            ("bind", &args.bind),
            ("jwt_secret", &args.jwt_secret),
            ("signup", &args.signup),
            ("change_retention_days", &args.change_retention_days),
            ("rate_limit_per_minute", &args.rate_limit_per_minute),
            ("org_rate_limit_per_minute", &args.org_rate_limit_per_minute),
            (
                "auth_rate_limit_per_minute",
                &args.auth_rate_limit_per_minute,
            ),
            ("trusted_proxies", &args.trusted_proxies),
            ("api_keys_per_user", &args.api_keys_per_user),
            ("body_limit", &args.body_limit),
            ("upload_limit", &args.upload_limit),
            ("body_timeout", &args.body_timeout),
            ("cors_origins", &args.cors_origins),
            ("log_format", &args.log_format),
            ("log_level", &args.log_level),
            ("workers", &args.workers),
            ("access_token_ttl", &args.access_token_ttl),
            ("credential_cache_ms", &args.credential_cache_ms),
            ("webhook_allow_private", &args.webhook_allow_private),
            ("webhook_allowed_hosts", &args.webhook_allowed_hosts),
        ];
        let mut raw = Raw {
            values: BTreeMap::new(),
        };
        if let Some(path) = &args.config {
            for (key, value) in read_file(path)? {
                raw.values.insert(key, (value, Origin::File(path.clone())));
            }
        }
        for (key, value) in cli_values {
            if let Some(value) = value {
                let origin = match value_source(matches, key) {
                    Some(ValueSource::EnvVariable) => Origin::Env,
                    _ => Origin::Flag,
                };
                raw.values.insert(key, (value.clone(), origin));
            }
        }
        Config::from_raw(raw)
    }

    fn from_raw(mut raw: Raw) -> Result<Config, ConfigError> {
        let default_url =
            DatabaseUrl::parse("sqlite://rapport.db").map_err(|reason| ConfigError {
                key: "database_url",
                origin: Origin::Flag,
                value: None,
                reason,
            })?;
        let mut config = Config::with_database(default_url);
        if let Some(v) = raw.take("database_url") {
            config.database_url = parse(v, "database_url", DatabaseUrl::parse)?;
        }
        if let Some(v) = raw.take("bind") {
            config.bind = parse(v, "bind", |s| {
                s.parse::<SocketAddr>()
                    .map_err(|_| "is not an address such as 127.0.0.1:8080 or 0.0.0.0:8080".into())
            })?;
        }
        if let Some(v) = raw.take("jwt_secret") {
            config.jwt_secret = Some(parse(v, "jwt_secret", |s| {
                SigningKey::new(s).map_err(|e| e.to_string())
            })?);
        }
        if let Some(v) = raw.take("signup") {
            config.signup = parse(v, "signup", |s| match s {
                "open" => Ok(SignupPolicy::Open),
                "closed" => Ok(SignupPolicy::Closed),
                _ => Err("must be open or closed".into()),
            })?;
        }
        if let Some(v) = raw.take("change_retention_days") {
            config.change_retention_days =
                parse(v, "change_retention_days", |s| number(s, 1, 36_500))?;
        }
        if let Some(v) = raw.take("rate_limit_per_minute") {
            config.rate_limit_per_minute =
                parse(v, "rate_limit_per_minute", |s| number(s, 1, 10_000_000))?;
        }
        if let Some(v) = raw.take("org_rate_limit_per_minute") {
            config.org_rate_limit_per_minute = Some(parse(v, "org_rate_limit_per_minute", |s| {
                number(s, 1, 1_000_000_000)
            })?);
        }
        if let Some(v) = raw.take("auth_rate_limit_per_minute") {
            config.auth_rate_limit_per_minute = parse(v, "auth_rate_limit_per_minute", |s| {
                number(s, 1, 10_000_000)
            })?;
        }
        if let Some(v) = raw.take("trusted_proxies") {
            config.trusted_proxies = parse(v, "trusted_proxies", TrustedProxies::parse)?;
        }
        if let Some(v) = raw.take("api_keys_per_user") {
            config.api_keys_per_user = parse(v, "api_keys_per_user", |s| number(s, 1, 100_000))?;
        }
        if let Some(v) = raw.take("body_limit") {
            config.body_limit = parse(v, "body_limit", |s| {
                number(s, 1024, 1 << 30).map(|n| n as usize)
            })?;
        }
        if let Some(v) = raw.take("upload_limit") {
            config.upload_limit = parse(v, "upload_limit", |s| {
                number(s, 1024, u32::MAX).map(|n| n as usize)
            })?;
        }
        if let Some(v) = raw.take("body_timeout") {
            config.body_timeout = parse(v, "body_timeout", |s| {
                number(s, 1, 3600).map(|n| std::time::Duration::from_secs(u64::from(n)))
            })?;
        }
        if let Some(v) = raw.take("cors_origins") {
            config.cors_origins = parse(v, "cors_origins", cors_origins)?;
        }
        if let Some(v) = raw.take("log_format") {
            config.log_format = parse(v, "log_format", |s| match s {
                "pretty" => Ok(LogFormat::Pretty),
                "json" => Ok(LogFormat::Json),
                _ => Err("must be pretty or json".into()),
            })?;
        }
        if let Some(v) = raw.take("log_level") {
            config.log_level = parse(v, "log_level", |s| {
                tracing_subscriber::EnvFilter::try_new(s)
                    .map(|_| s.to_owned())
                    .map_err(|e| format!("is not a level or filter ({e})"))
            })?;
        }
        if let Some(v) = raw.take("workers") {
            config.workers = parse(v, "workers", |s| number(s, 1, 1024).map(|n| n as usize))?;
        }
        if let Some(v) = raw.take("access_token_ttl") {
            config.access_token_ttl = parse(v, "access_token_ttl", |s| {
                number(s, 60, 86_400).map(i64::from)
            })?;
        }
        if let Some(v) = raw.take("credential_cache_ms") {
            config.credential_cache = parse(v, "credential_cache_ms", |s| {
                number(s, 0, 60_000).map(|ms| std::time::Duration::from_millis(u64::from(ms)))
            })?;
        }
        let allow_private = match raw.take("webhook_allow_private") {
            Some(v) => parse(v, "webhook_allow_private", boolean)?,
            None => false,
        };
        config.webhook_targets = if allow_private {
            TargetPolicy::allow_private()
        } else {
            TargetPolicy::public_only()
        };
        if let Some(v) = raw.take("webhook_allowed_hosts") {
            let policy = config.webhook_targets.clone();
            config.webhook_targets = parse(v, "webhook_allowed_hosts", |s| policy.with_allowed(s))?;
        }
        Ok(config)
    }
}

fn value_source(matches: &ArgMatches, key: &str) -> Option<ValueSource> {
    matches.value_source(key).or_else(|| {
        matches
            .subcommand()
            .and_then(|(_, sub)| sub.value_source(key))
    })
}

fn parse<T>(
    (value, origin): (String, Origin),
    key: &'static str,
    parser: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    parser(value.trim()).map_err(|reason| ConfigError {
        key,
        value: (!SECRET_KEYS.contains(&key)).then_some(value),
        origin,
        reason,
    })
}

fn number(s: &str, min: u32, max: u32) -> Result<u32, String> {
    match s.parse::<u64>() {
        Ok(n) if (u64::from(min)..=u64::from(max)).contains(&n) => Ok(n as u32),
        _ => Err(format!("must be a whole number from {min} to {max}")),
    }
}

fn boolean(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("must be true or false".into()),
    }
}

fn cors_origins(s: &str) -> Result<CorsOrigins, String> {
    let list: Vec<&str> = s
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .collect();
    if list.is_empty() {
        return Ok(CorsOrigins::None);
    }
    if list == ["*"] {
        return Ok(CorsOrigins::Any);
    }
    for origin in &list {
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        match rest {
            Some(host) if !host.is_empty() && !host.contains('/') => {}
            _ => {
                return Err(format!(
                    "{origin} is not an origin such as https://app.example.com (or use * alone)"
                ));
            }
        }
    }
    Ok(CorsOrigins::List(
        list.into_iter().map(str::to_owned).collect(),
    ))
}

/// Reads the TOML file into strings per known key; an unknown key is an error, so that a
/// typo does not silently fall back to a default.
fn read_file(path: &Path) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let fail = |reason: String| ConfigError {
        key: "config",
        origin: Origin::Flag,
        value: Some(path.display().to_string()),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| fail(format!("is not valid TOML: {}", e.message())))?;
    let mut values = Vec::new();
    for (key, value) in table {
        let Some(known) = KEYS.iter().find(|k| **k == key) else {
            return Err(fail(format!(
                "has the unknown key {key:?} (known: {})",
                KEYS.join(", ")
            )));
        };
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => {
                let mut parts = Vec::new();
                for item in items {
                    match item {
                        toml::Value::String(s) => parts.push(s),
                        other => {
                            return Err(fail(format!(
                                "{key} must be a list of strings, found a {}",
                                other.type_str()
                            )));
                        }
                    }
                }
                parts.join(",")
            }
            other => {
                return Err(fail(format!(
                    "{key} must be a string, a number or a boolean, found a {}",
                    other.type_str()
                )));
            }
        };
        values.push((*known, text));
    }
    Ok(values)
}

#[cfg(test)]
mod tests;
