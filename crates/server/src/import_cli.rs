//! `rapport import contact FILE.csv --url … --api-key …`: uploads the file through the API (the
//! same checks and events as any import), then follows the job with a progress bar.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::config::ImportArgs;

/// A `multipart/form-data` body and its content type.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = format!("rapport-{}", uuid::Uuid::now_v7().simple());
    let mut body = Vec::new();
    for (name, file_name, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let disposition = match file_name {
            Some(file) => format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{}\"\r\nContent-Type: text/csv\r\n\r\n",
                file.replace('"', "")
            ),
            None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"),
        };
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The mapping as JSON text: given inline, or read from a file.
fn mapping_text(mapping: &str) -> anyhow::Result<String> {
    let text = if mapping.trim_start().starts_with('{') {
        mapping.to_owned()
    } else {
        std::fs::read_to_string(mapping)
            .with_context(|| format!("cannot read the mapping file {mapping}"))?
    };
    serde_json::from_str::<serde_json::Map<String, Value>>(&text)
        .context("the mapping must be a JSON object: {\"CSV column\": \"field\"}")?;
    Ok(text)
}

/// A problem document as one or more lines.
fn describe_problem(status: u16, body: &str) -> String {
    let Ok(problem) = serde_json::from_str::<Value>(body) else {
        return format!("HTTP {status}: {body}");
    };
    let mut text = format!(
        "{} ({}): {}",
        problem["title"].as_str().unwrap_or("error"),
        problem["code"].as_str().unwrap_or("?"),
        problem["detail"].as_str().unwrap_or("")
    );
    for error in problem["errors"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "\n  {}: {}",
            error["field"].as_str().unwrap_or(""),
            error["message"].as_str().unwrap_or("")
        ));
    }
    text
}

fn bar(job: &Value) -> String {
    let total = job["total"].as_i64().unwrap_or(0).max(0);
    let processed = job["processed"].as_i64().unwrap_or(0).max(0);
    let width = 30;
    let filled = if total == 0 {
        width
    } else {
        (processed * width / total) as usize as i64
    };
    let filled = usize::try_from(filled.clamp(0, width)).unwrap_or(0);
    let percent = if total == 0 {
        100
    } else {
        processed * 100 / total
    };
    format!(
        "[{}{}] {percent:>3}%  {processed}/{total} rows  {} created  {} updated  {} unchanged  {} failed",
        "#".repeat(filled),
        "-".repeat(30 - filled),
        job["created"].as_i64().unwrap_or(0),
        job["updated"].as_i64().unwrap_or(0),
        job["unchanged"].as_i64().unwrap_or(0),
        job["failed"].as_i64().unwrap_or(0),
    )
}

pub async fn run(args: &ImportArgs) -> anyhow::Result<()> {
    crate::webhooks::install_tls_provider();
    let content = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let file_name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "import.csv".into());
    let mapping = args.mapping.as_deref().map(mapping_text).transpose()?;
    let mut parts: Vec<(&str, Option<&str>, &[u8])> =
        vec![("object", None, args.object.as_bytes())];
    if let Some(encoding) = &args.encoding {
        parts.push(("encoding", None, encoding.as_bytes()));
    }
    if let Some(property) = &args.id_property {
        parts.push(("id_property", None, property.as_bytes()));
    }
    if let Some(mapping) = &mapping {
        parts.push(("mapping", None, mapping.as_bytes()));
    }
    parts.push(("file", Some(&file_name), &content));
    let (content_type, body) = multipart(&parts);

    let base = args.url.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    // One key for every try: a retried upload never queues the file twice.
    let key = uuid::Uuid::now_v7().to_string();
    let mut tries = 0;
    let response = loop {
        tries += 1;
        let sent = client
            .post(format!("{base}/v1/imports"))
            .bearer_auth(&args.api_key)
            .header("content-type", &content_type)
            .header("idempotency-key", &key)
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().as_u16() == 409 && tries < 10 => {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok(response) => break response,
            Err(error) if tries < 3 => {
                eprintln!("rapport: upload failed ({error}); retrying");
                tokio::time::sleep(Duration::from_secs(tries)).await;
            }
            Err(error) => return Err(error).context(format!("cannot reach {base}")),
        }
    };
    let status = response.status().as_u16();
    let text = response.text().await?;
    if status != 202 {
        bail!("{}", describe_problem(status, &text));
    }
    let mut job: Value = serde_json::from_str(&text)?;
    let id = job["id"]
        .as_str()
        .context("the answer names no job")?
        .to_owned();
    if !args.quiet {
        eprintln!("import {id}: {} rows of {file_name}", job["total"]);
    }
    loop {
        if !args.quiet {
            eprint!("\r{}", bar(&job));
            let _ = std::io::stderr().flush();
        }
        match job["status"].as_str() {
            Some("completed") | Some("failed") => break,
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        let response = client
            .get(format!("{base}/v1/imports/{id}"))
            .bearer_auth(&args.api_key)
            .send()
            .await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        if status != 200 {
            bail!("{}", describe_problem(status, &text));
        }
        job = serde_json::from_str(&text)?;
    }
    if !args.quiet {
        eprintln!();
    }
    println!(
        "{} {}: {} rows, {} created, {} updated, {} unchanged, {} failed",
        job["status"].as_str().unwrap_or("?"),
        id,
        job["total"],
        job["created"],
        job["updated"],
        job["unchanged"],
        job["failed"]
    );
    if job["failed"].as_i64().unwrap_or(0) > 0 {
        let errors: Value = client
            .get(format!("{base}/v1/imports/{id}/errors?limit=20"))
            .bearer_auth(&args.api_key)
            .send()
            .await?
            .json()
            .await?;
        for error in errors["data"].as_array().into_iter().flatten() {
            println!(
                "  row {} (line {}) {}: {} ({})",
                error["row"],
                error["line"],
                error["field"].as_str().unwrap_or("-"),
                error["message"].as_str().unwrap_or(""),
                error["code"].as_str().unwrap_or("")
            );
        }
        if errors["next_cursor"].is_string() {
            println!("  … more at {base}/v1/imports/{id}/errors");
        }
    }
    if job["status"] == "failed" {
        bail!(
            "the import failed: {}",
            job["error"].as_str().unwrap_or("no reason given")
        );
    }
    Ok(())
}
