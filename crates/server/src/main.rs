use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use rapport::{AdminCommand, Application, Cli, Command, Config, admin, open_store, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let config = match Config::resolve(&cli.settings, &matches) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("rapport: {error}");
            return ExitCode::from(2);
        }
    };

    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => {
            print!(
                "{}",
                rapport_http::openapi::to_json(&rapport_http::openapi::document())
            );
            Ok(())
        }
        Command::Migrate => {
            telemetry::init(config.log_format, &config.log_level);
            migrate(&config).await
        }
        Command::Serve => {
            telemetry::init(config.log_format, &config.log_level);
            serve(config).await
        }
        Command::Admin(AdminCommand::CreateOrg {
            name,
            owner_email,
            owner_name,
            owner_password_stdin,
        }) => {
            admin::create_org(
                &config,
                &name,
                &owner_email,
                owner_name.as_deref(),
                owner_password_stdin,
            )
            .await
        }
        Command::Import(args) => rapport::import_cli::run(&args).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rapport: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    app.run_until_stopped().await?;
    Ok(())
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let version = store.latest_schema_version();
    rapport_domain::Store::close(&store).await;
    tracing::info!(schema_version = version, "migrations applied");
    Ok(())
}
