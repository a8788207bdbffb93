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
        error
            .to_string()
            .starts_with("invalid --webhook-allowed-hosts \"10.0.0.0/40\": \"10.0.0.0/40\" is not"),
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
