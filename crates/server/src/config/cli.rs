//! The command line: commands and the flags of each; every setting flag also has its
//! `RAPPORT_*` variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// The CSV file, with a header line
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
    /// The file's encoding when it has no byte-order mark: utf-8, gbk, gb18030 (Excel's CSV
    /// on Chinese Windows) or utf-16 [default: utf-8]
    #[arg(long)]
    pub encoding: Option<String>,
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
