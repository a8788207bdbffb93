//! `rapport admin …`: operator tasks on the database the configuration names.

use std::io::BufRead;

use anyhow::{Context, bail};
use rapport_auth::password;
use rapport_domain::identity::{ClientInfo, IdentityRef, NewMember};
use rapport_domain::{Email, Role, Store};
use serde_json::json;

use crate::config::Config;
use crate::startup::open_store;

/// Creates an organization and its owner, whatever `RAPPORT_SIGNUP` says, and prints their
/// ids as JSON. The password comes from standard input, never from the command line.
pub async fn create_org(
    config: &Config,
    name: &str,
    owner_email: &str,
    owner_name: Option<&str>,
    password_from_stdin: bool,
) -> anyhow::Result<()> {
    if !password_from_stdin {
        bail!("pass --owner-password-stdin and write the owner's password to standard input");
    }
    let organization_name =
        rapport_http::validate::name(name).map_err(|e| anyhow::anyhow!("invalid --name: {e}"))?;
    let email =
        Email::parse(owner_email).map_err(|e| anyhow::anyhow!("invalid --owner-email: {e}"))?;
    let local_part = email
        .as_str()
        .split('@')
        .next()
        .unwrap_or("owner")
        .to_owned();
    let owner_name = rapport_http::validate::name(owner_name.unwrap_or(&local_part))
        .map_err(|e| anyhow::anyhow!("invalid --owner-name: {e}"))?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let plain = line.trim_end_matches(['\n', '\r']).to_owned();
    password::check_policy(&plain).map_err(|e| anyhow::anyhow!("invalid password: it {e}"))?;
    let store = open_store(config).await?;
    // An address with an account joins with that account (its password proves it); a new
    // one gets an account with this password.
    let identity = match store.auth().login_identity(&email).await? {
        Some(login) => {
            let hash = login.password_hash;
            let matches = tokio::task::spawn_blocking(move || password::verify(&plain, &hash))
                .await
                .context("the password check failed")?;
            if !matches {
                store.close().await;
                bail!(
                    "an account with the email {owner_email} exists and the password is not its password"
                );
            }
            IdentityRef::Existing(login.identity_id)
        }
        None => IdentityRef::New {
            password_hash: tokio::task::spawn_blocking(move || password::hash(&plain))
                .await
                .context("the password hashing task failed")??,
            email,
        },
    };
    let owner = NewMember {
        identity,
        name: owner_name,
        role: Role::Owner,
        team_id: None,
        locale: None,
        timezone: None,
    };
    let created = store
        .auth()
        .create_organization(organization_name, owner, &ClientInfo::default())
        .await;
    store.close().await;
    let (organization, user) = created.map_err(|e| match e {
        rapport_domain::StoreError::Conflict { .. } => {
            anyhow::anyhow!(
                "an account with the email {owner_email} was created meanwhile; try again"
            )
        }
        other => anyhow::anyhow!("cannot create the organization: {other}"),
    })?;
    println!(
        "{}",
        json!({
            "organization_id": organization.id,
            "organization_name": organization.name,
            "owner_id": user.id,
            "owner_email": user.email,
        })
    );
    Ok(())
}
