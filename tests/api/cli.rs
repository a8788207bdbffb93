//! The binary itself: version, the printed document, bad configuration, zero-configuration
//! start on SQLite, migrations, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::TestApp;

const BINARY: &str = env!("CARGO_BIN_EXE_rapport");

/// The binary, with none of the tests' own `RAPPORT_*` environment.
pub fn rapport() -> Command {
    let mut command = Command::new(BINARY);
    // The tests' own environment must not leak into the binary's configuration.
    for (key, _) in std::env::vars() {
        if key.starts_with("RAPPORT_") {
            command.env_remove(key);
        }
    }
    command
}

#[test]
fn version_prints_the_package_version() {
    let output = rapport().arg("--version").output().unwrap();

    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim(),
        format!("rapport {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn openapi_prints_the_committed_document() {
    let output = rapport().arg("openapi").output().unwrap();

    assert!(output.status.success());
    assert!(
        output.stdout == include_bytes!("../../openapi/openapi.json"),
        "openapi/openapi.json is stale: run `make openapi`"
    );
}

#[test]
fn a_bad_environment_value_stops_start_up_with_one_line_naming_it() {
    let output = rapport()
        .env("RAPPORT_BIND", "not-an-address")
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("rapport: invalid RAPPORT_BIND \"not-an-address\""),
        "{stderr}"
    );
}

#[test]
fn a_secret_in_a_bad_environment_value_is_not_echoed() {
    let output = rapport()
        .env("RAPPORT_JWT_SECRET", "hunter2")
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("RAPPORT_JWT_SECRET"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn an_unknown_database_scheme_is_refused() {
    let output = rapport()
        .args(["migrate", "--database-url", "mysql://localhost/crm"])
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--database-url"), "{stderr}");
}

both_backends!(migrate_applies_the_schema_and_is_repeatable);
async fn migrate_applies_the_schema_and_is_repeatable(app: TestApp) {
    // The app migrated its fresh database at start; a second run finds nothing to do.
    let output = rapport()
        .args([
            "migrate",
            "--database-url",
            app.database_url(),
            "--log-format",
            "json",
        ])
        .output()
        .unwrap();

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let response = app.get("/health/ready").await;
    assert_eq!(
        response.json()["schema_version"],
        app.store.latest_schema_version()
    );
}

#[test]
fn with_no_configuration_it_serves_sqlite_from_the_working_directory_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("rapport-zero-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    // Only the port is chosen by the test (8080 may be taken); everything else is default.
    let mut child = rapport()
        .current_dir(&dir)
        .args(["--bind", "127.0.0.1:0", "--log-format", "json"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();

    let port = loop {
        let line = lines
            .next()
            .expect("the server logs before it exits")
            .unwrap();
        let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if event["message"] == "rapport is listening" {
            break event["port"].as_u64().unwrap();
        }
    };
    assert!(
        dir.join("rapport.db").exists(),
        "rapport.db is created in the working directory"
    );
    let ready = blocking::get(&format!("http://127.0.0.1:{port}/health/ready"));
    assert_eq!(ready["database"], "sqlite");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("rapport stopped")),
        "{rest:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

mod blocking {
    /// A GET from a plain thread, for tests that are not async.
    pub fn get(url: &str) -> serde_json::Value {
        let url = url.to_owned();
        rapport::webhooks::install_tls_provider();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async { ::reqwest::get(&url).await.unwrap().json().await.unwrap() })
        })
        .join()
        .unwrap()
    }
}

both_backends!(admin_create_org_works_with_signup_closed_and_reads_the_password_from_stdin);
async fn admin_create_org_works_with_signup_closed_and_reads_the_password_from_stdin(app: TestApp) {
    use std::io::Write;

    let mut child = rapport()
        .args([
            "admin",
            "create-org",
            "--name",
            "Acme",
            "--owner-email",
            "ops@acme.example",
        ])
        .args([
            "--owner-password-stdin",
            "--database-url",
            app.database_url(),
            "--signup",
            "closed",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", crate::helpers::PASSWORD).as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(created["organization_name"], "Acme");
    let session = app.session("ops@acme.example").await;
    assert_eq!(session.org_id, created["organization_id"].as_str().unwrap());
    let me = app.get_as("/v1/me", &session.access_token).await.json();
    assert_eq!(me["role"], "owner");
    assert_eq!(me["name"], "ops");
}

#[test]
fn admin_create_org_refuses_a_password_on_the_command_line_or_a_short_one() {
    let without_stdin = rapport()
        .args([
            "admin",
            "create-org",
            "--name",
            "Acme",
            "--owner-email",
            "ops@acme.example",
        ])
        .output()
        .unwrap();
    assert!(!without_stdin.status.success());
    assert!(String::from_utf8_lossy(&without_stdin.stderr).contains("--owner-password-stdin"));

    let dir = std::env::temp_dir().join(format!("rapport-admin-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = rapport()
        .current_dir(&dir)
        .args([
            "admin",
            "create-org",
            "--name",
            "Acme",
            "--owner-email",
            "ops@acme.example",
            "--owner-password-stdin",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"short\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 10 characters"));
    let _ = std::fs::remove_dir_all(&dir);
}

both_backends!(the_import_command_uploads_a_csv_and_follows_the_job_to_the_end);
async fn the_import_command_uploads_a_csv_and_follows_the_job_to_the_end(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let (_, key) = app.api_key(&owner, &["*"]).await;
    let dir =
        std::env::temp_dir().join(format!("rapport-import-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("联系人.csv");
    std::fs::write(
        &file,
        "E-mail,Name\nwang@c.example,王安\nnot-an-email,X\nli@c.example,Li\n",
    )
    .unwrap();
    let run = |key: String| {
        let url = app.address.clone();
        let file = file.clone();
        tokio::task::spawn_blocking(move || {
            rapport()
                .args(["import", "contact"])
                .arg(&file)
                .args(["--url", &url, "--api-key", &key, "--id-property", "email"])
                .args(["--mapping", r#"{"E-mail": "email", "Name": "first_name"}"#])
                .output()
                .unwrap()
        })
    };

    let output = run(key.clone()).await.unwrap();
    let refused = run("rpk_not-a-key".to_owned()).await.unwrap();
    let contacts = app
        .get_as("/v1/contacts?include=total", &owner.access_token)
        .await
        .json();
    let _ = std::fs::remove_dir_all(&dir);

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("completed "), "{stdout}");
    assert!(
        stdout.contains("3 rows, 2 created, 0 updated, 0 unchanged, 1 failed"),
        "{stdout}"
    );
    assert!(stdout.contains("row 2 (line 3) email"), "{stdout}");
    assert!(
        stderr.contains("100%") && stderr.contains("[####"),
        "a progress bar: {stderr}"
    );
    assert_eq!(contacts["total"], 2);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unauthenticated"));
}
