//! Configuration: command-line flags, then `RAPPORT_*` environment variables, then an
//! optional TOML file (`--config`), then defaults. Each flag `--x-y` has the variable
//! `RAPPORT_X_Y` and the file key `x_y`. A bad value stops start-up with one line naming it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Parser, Subcommand};
use rapport_auth::SigningKey;
use rapport_domain::webhook::target::TargetPolicy;
use rapport_http::CorsOrigins;
use rapport_http::client_ip::TrustedProxies;
use rapport_http::passwords::PasswordWorkSettings;
use rapport_storage::DatabaseUrl;

#[derive(Debug, Parser)]
#[command(
    name = "rapport",
    version,
    about = "Rapport: an API-first CRM backend",
    long_about = "Rapport: an API-first CRM backend.\n\nWith no command it serves the API \
                  (the same as `rapport serve`).",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: SettingsArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default): applies migrations, then listens
    Serve,
    /// Apply the database migrations and exit
    Migrate,
    /// Print the OpenAPI document (what GET /openapi.json serves) and exit
    Openapi,
    /// Operator tasks that work whatever RAPPORT_SIGNUP says
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Upload a CSV through the API as an import job and follow it to the end
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// What the rows are: company, contact, product or order
    pub object: String,
    /// The CSV file (UTF-8, with a header line)
    pub file: PathBuf,
    /// The API's base URL
    #[arg(long, env = "RAPPORT_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An API key (rpk_…) that may write the object
    #[arg(long, env = "RAPPORT_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// Column mapping: a JSON object {"CSV column": "field"}, or the path of a file holding one
    #[arg(long)]
    pub mapping: Option<String>,
    /// How rows find existing records: external_id, email, domain, sku, number or id
    /// [default: none, every row creates a record]
    #[arg(long)]
    pub id_property: Option<String>,
    /// No progress bar (for logs and scripts)
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an organization and its owner; prints their ids as JSON
    CreateOrg {
        /// The organization's name
        #[arg(long)]
        name: String,
        /// The owner's email, to sign in with
        #[arg(long)]
        owner_email: String,
        /// The owner's name [default: the email's local part]
        #[arg(long)]
        owner_name: Option<String>,
        /// Read the owner's password from the first line of standard input
        #[arg(long)]
        owner_password_stdin: bool,
    },
}

/// The settings. Each is a flag, an environment variable and a key of the TOML file.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// TOML file with any of the settings below (keys in snake_case, e.g. `bind = "0.0.0.0:8080"`)
    #[arg(long, env = "RAPPORT_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://FILE or postgres://USER@HOST/DB [default: sqlite://rapport.db]
    #[arg(
        long,
        env = "RAPPORT_DATABASE_URL",
        global = true,
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "RAPPORT_BIND", global = true, value_name = "ADDR")]
    pub bind: Option<String>,
    /// HS256 key for access tokens, at least 32 bytes; generated and kept in the database when unset
    #[arg(
        long,
        env = "RAPPORT_JWT_SECRET",
        global = true,
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub jwt_secret: Option<String>,
    /// Who may create organizations through the API: open or closed [default: open]
    #[arg(long, env = "RAPPORT_SIGNUP", global = true, value_name = "POLICY")]
    pub signup: Option<String>,
    /// Days the change feed keeps events [default: 30]
    #[arg(
        long,
        env = "RAPPORT_CHANGE_RETENTION_DAYS",
        global = true,
        value_name = "DAYS"
    )]
    pub change_retention_days: Option<String>,
    /// Requests per minute per user, all their keys and sessions together [default: 6000]
    #[arg(
        long,
        env = "RAPPORT_RATE_LIMIT_PER_MINUTE",
        global = true,
        value_name = "N"
    )]
    pub rate_limit_per_minute: Option<String>,
    /// Requests per minute per organization, all its users together [default: ten times
    /// the per-user limit]
    #[arg(
        long,
        env = "RAPPORT_ORG_RATE_LIMIT_PER_MINUTE",
        global = true,
        value_name = "N"
    )]
    pub org_rate_limit_per_minute: Option<String>,
    /// Requests per minute per client address without a valid credential: sign-up, sign-in,
    /// refresh, invitations and wrong credentials [default: 60]
    #[arg(
        long,
        env = "RAPPORT_AUTH_RATE_LIMIT_PER_MINUTE",
        global = true,
        value_name = "N"
    )]
    pub auth_rate_limit_per_minute: Option<String>,
    /// Proxies (addresses and CIDRs, comma-separated) whose X-Forwarded-For names the client
    /// [default: none, the peer address is the client]
    #[arg(
        long,
        env = "RAPPORT_TRUSTED_PROXIES",
        global = true,
        value_name = "LIST"
    )]
    pub trusted_proxies: Option<String>,
    /// Live API keys a user may hold [default: 50]
    #[arg(
        long,
        env = "RAPPORT_API_KEYS_PER_USER",
        global = true,
        value_name = "N"
    )]
    pub api_keys_per_user: Option<String>,
    /// Largest request body in bytes [default: 1048576]
    #[arg(long, env = "RAPPORT_BODY_LIMIT", global = true, value_name = "BYTES")]
    pub body_limit: Option<String>,
    /// Largest CSV upload (POST /v1/imports) in bytes [default: 104857600]
    #[arg(
        long,
        env = "RAPPORT_UPLOAD_LIMIT",
        global = true,
        value_name = "BYTES"
    )]
    pub upload_limit: Option<String>,
    /// Seconds a request body may send nothing before the request is answered 408 [default: 60]
    #[arg(
        long,
        env = "RAPPORT_BODY_TIMEOUT",
        global = true,
        value_name = "SECONDS"
    )]
    pub body_timeout: Option<String>,
    /// Browser origins allowed by CORS, comma-separated, or * [default: none]
    #[arg(
        long,
        env = "RAPPORT_CORS_ORIGINS",
        global = true,
        value_name = "ORIGINS"
    )]
    pub cors_origins: Option<String>,
    /// Log format: pretty or json [default: pretty]
    #[arg(long, env = "RAPPORT_LOG_FORMAT", global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Log level or filter, e.g. info or rapport=debug,sqlx=warn [default: info]
    #[arg(long, env = "RAPPORT_LOG_LEVEL", global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// HTTP worker threads [default: the number of CPUs]
    #[arg(long, env = "RAPPORT_WORKERS", global = true, value_name = "N")]
    pub workers: Option<String>,
    /// Seconds an access token is valid [default: 900]
    #[arg(
        long,
        env = "RAPPORT_ACCESS_TOKEN_TTL",
        global = true,
        value_name = "SECONDS"
    )]
    pub access_token_ttl: Option<String>,
    /// Milliseconds a resolved credential is kept; 0 asks the database on every request
    /// [default: 1000]
    #[arg(
        long,
        env = "RAPPORT_CREDENTIAL_CACHE_MS",
        global = true,
        value_name = "MS"
    )]
    pub credential_cache_ms: Option<String>,
    /// Let webhooks reach loopback, private, link-local and reserved addresses: true or false
    /// [default: false, public addresses only]
    #[arg(
        long,
        env = "RAPPORT_WEBHOOK_ALLOW_PRIVATE",
        global = true,
        value_name = "BOOL"
    )]
    pub webhook_allow_private: Option<String>,
    /// Host names, addresses and CIDRs that webhooks may reach although they are private,
    /// comma-separated, e.g. hooks.corp.example,10.8.0.0/16 [default: none]
    #[arg(
        long,
        env = "RAPPORT_WEBHOOK_ALLOWED_HOSTS",
        global = true,
        value_name = "LIST"
    )]
    pub webhook_allowed_hosts: Option<String>,
}

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
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;

    fn resolve(argv: &[&str]) -> Result<Config, ConfigError> {
        let matches = Cli::command().try_get_matches_from(argv).unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        Config::resolve(&cli.settings, &matches)
    }

    #[test]
    fn zero_configuration_serves_sqlite_on_localhost() {
        let config = resolve(&["rapport"]).unwrap();
        assert_eq!(config.database_url.expose(), "sqlite://rapport.db");
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.body_limit, 1024 * 1024);
        assert_eq!(config.signup, SignupPolicy::Open);
        assert_eq!(config.rate_limit_per_minute, 6000);
        assert_eq!(config.change_retention_days, 30);
    }

    #[test]
    fn flags_work_before_and_after_the_command() {
        let config = resolve(&["rapport", "--bind", "0.0.0.0:9000", "serve"]).unwrap();
        assert_eq!(config.bind.to_string(), "0.0.0.0:9000");
        let config = resolve(&["rapport", "serve", "--body-limit", "2048"]).unwrap();
        assert_eq!(config.body_limit, 2048);
    }

    #[test]
    fn a_bad_flag_value_names_the_flag() {
        let error = resolve(&["rapport", "--bind", "nowhere"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid --bind \"nowhere\": is not an address such as 127.0.0.1:8080 or 0.0.0.0:8080"
        );
        let error = resolve(&["rapport", "--log-format", "xml"]).unwrap_err();
        assert!(error.to_string().starts_with("invalid --log-format"));
    }

    #[test]
    fn a_short_secret_is_refused_without_echoing_it() {
        let error = resolve(&["rapport", "--jwt-secret", "hunter2"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid --jwt-secret: must be at least 32 bytes (it is 7)"
        );
    }

    #[test]
    fn the_file_fills_what_flags_leave_open_and_flags_win() {
        let dir = std::env::temp_dir().join(format!("rapport-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rapport.toml");
        std::fs::write(
            &path,
            "bind = \"0.0.0.0:7000\"\nbody_limit = 4096\ncors_origins = [\"https://a.example\", \"http://localhost:3000\"]\n",
        )
        .unwrap();
        let file = path.to_str().unwrap();
        let config = resolve(&["rapport", "--config", file, "--body-limit", "8192"]).unwrap();
        assert_eq!(config.bind.to_string(), "0.0.0.0:7000");
        assert_eq!(config.body_limit, 8192);
        assert_eq!(
            config.cors_origins,
            CorsOrigins::List(vec![
                "https://a.example".into(),
                "http://localhost:3000".into()
            ])
        );

        std::fs::write(&path, "bnid = \"0.0.0.0:7000\"\n").unwrap();
        let error = resolve(&["rapport", "--config", file]).unwrap_err();
        assert!(
            error.to_string().contains("unknown key \"bnid\""),
            "{error}"
        );

        std::fs::write(&path, "workers = 0\n").unwrap();
        let error = resolve(&["rapport", "--config", file]).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("invalid workers in {file} \"0\": must be a whole number from 1 to 1024")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn webhooks_reach_public_addresses_unless_the_operator_allows_more() {
        let loopback: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let internal: std::net::IpAddr = "10.8.1.2".parse().unwrap();
        let default = resolve(&["rapport"]).unwrap();
        assert_eq!(default.webhook_targets, TargetPolicy::public_only());
        assert!(!default.webhook_targets.permits(None, loopback));

        let open = resolve(&["rapport", "--webhook-allow-private", "true"]).unwrap();
        assert!(open.webhook_targets.allows_private());
        assert!(open.webhook_targets.permits(None, loopback));

        let listed = resolve(&[
            "rapport",
            "--webhook-allowed-hosts",
            "hooks.corp.example, 10.8.0.0/16",
        ])
        .unwrap();
        assert!(!listed.webhook_targets.allows_private());
        assert!(listed.webhook_targets.permits(None, internal));
        assert!(!listed.webhook_targets.permits(None, loopback));
        assert!(
            listed
                .webhook_targets
                .permits(Some("hooks.corp.example"), loopback)
        );

        let error = resolve(&["rapport", "--webhook-allow-private", "maybe"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid --webhook-allow-private \"maybe\": must be true or false"
        );
        let error = resolve(&["rapport", "--webhook-allowed-hosts", "10.0.0.0/40"]).unwrap_err();
        assert!(
            error.to_string().starts_with(
                "invalid --webhook-allowed-hosts \"10.0.0.0/40\": \"10.0.0.0/40\" is not"
            ),
            "{error}"
        );
    }

    #[test]
    fn a_boolean_in_the_file_is_read_as_one() {
        let dir = std::env::temp_dir().join(format!("rapport-config-bool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rapport.toml");
        std::fs::write(
            &path,
            "webhook_allow_private = true\nwebhook_allowed_hosts = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        let config = resolve(&["rapport", "--config", path.to_str().unwrap()]).unwrap();
        assert!(config.webhook_targets.allows_private());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn limits_per_organization_address_and_keys_have_defaults_and_bounds() {
        let default = resolve(&["rapport"]).unwrap();
        assert_eq!(default.org_rate_limit_per_minute, None);
        assert_eq!(default.auth_rate_limit_per_minute, 60);
        assert_eq!(default.api_keys_per_user, 50);
        assert!(default.trusted_proxies.is_empty());

        let set = resolve(&[
            "rapport",
            "--org-rate-limit-per-minute",
            "90000",
            "--auth-rate-limit-per-minute",
            "5",
            "--api-keys-per-user",
            "3",
            "--trusted-proxies",
            "10.0.0.0/8, ::1",
        ])
        .unwrap();
        assert_eq!(set.org_rate_limit_per_minute, Some(90000));
        assert_eq!(set.auth_rate_limit_per_minute, 5);
        assert_eq!(set.api_keys_per_user, 3);
        assert!(!set.trusted_proxies.is_empty());

        let error = resolve(&["rapport", "--trusted-proxies", "10.0.0.0/8,lb"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid --trusted-proxies \"10.0.0.0/8,lb\": \"lb\" is not an address or CIDR block"
        );
        let error = resolve(&["rapport", "--api-keys-per-user", "0"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid --api-keys-per-user \"0\": must be a whole number from 1 to 100000"
        );
    }

    #[test]
    fn the_body_timeout_is_whole_seconds_from_one_to_an_hour() {
        assert_eq!(
            resolve(&["rapport"]).unwrap().body_timeout,
            std::time::Duration::from_secs(60)
        );
        let config = resolve(&["rapport", "--body-timeout", "5"]).unwrap();
        assert_eq!(config.body_timeout, std::time::Duration::from_secs(5));
        for bad in ["0", "3601", "1.5", "1m"] {
            let error = resolve(&["rapport", "--body-timeout", bad]).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("invalid --body-timeout \"{bad}\": must be a whole number from 1 to 3600")
            );
        }
    }

    #[test]
    fn cors_origins_must_be_origins() {
        assert_eq!(cors_origins("*"), Ok(CorsOrigins::Any));
        assert_eq!(cors_origins(""), Ok(CorsOrigins::None));
        assert!(cors_origins("app.example.com").is_err());
        assert!(cors_origins("https://app.example.com/path").is_err());
    }
}
