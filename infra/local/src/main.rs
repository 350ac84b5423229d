//! `guesthub`: the local runner and admin CLI. Wiring only; the work is in
//! the library and the function crates.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use guesthub::{admin, app};
use platform::config::{DEFAULT_MAX_BODY_BYTES, StoreKind};

#[derive(Parser)]
#[command(
    name = "guesthub",
    version,
    about = "GuestHub local runner and admin CLI"
)]
struct Cli {
    /// Where the embedded store, drop folder and outbox live.
    #[arg(
        long,
        global = true,
        default_value = ".guesthub",
        env = "GUESTHUB_DATA_DIR"
    )]
    data_dir: PathBuf,
    /// Which store to use.
    #[arg(long, global = true, value_enum, default_value_t = StoreArg::Sqlite)]
    store: StoreArg,
    /// DynamoDB endpoint (moto, DynamoDB Local); AWS when omitted.
    #[arg(long, global = true, env = "GUESTHUB_DYNAMODB_ENDPOINT")]
    dynamodb_endpoint: Option<String>,
    /// DynamoDB table prefix (the stack name in AWS).
    #[arg(
        long,
        global = true,
        default_value = "guesthub",
        env = "GUESTHUB_TABLE_PREFIX"
    )]
    table_prefix: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum StoreArg {
    Sqlite,
    Dynamodb,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every function on one socket (the default command).
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
    },
    /// Manage properties.
    Property {
        #[command(subcommand)]
        command: PropertyCommand,
    },
    /// Manage partners and their API keys.
    Partner {
        #[command(subcommand)]
        command: PartnerCommand,
    },
    /// Manage the store's tables.
    Tables {
        #[command(subcommand)]
        command: TablesCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Subcommand)]
enum PropertyCommand {
    /// Add a property.
    Add {
        id: String,
        #[arg(long)]
        name: String,
        /// IANA zone, e.g. Europe/Vienna.
        #[arg(long)]
        time_zone: String,
        /// ISO 4217 code, e.g. EUR.
        #[arg(long)]
        currency: String,
    },
    /// Let a property accept vouchers issued by another (portal systems).
    Accept {
        property: String,
        #[arg(long)]
        issuer: String,
    },
    /// List properties.
    List,
}

#[derive(Subcommand)]
enum PartnerCommand {
    /// Add a partner; its key is printed once, alone on the last line.
    Add {
        name: String,
        #[arg(long, value_delimiter = ',')]
        properties: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
    },
    /// List partners (never their keys).
    List,
}

#[derive(Subcommand)]
enum TablesCommand {
    /// Create the tables as template.yaml defines them (idempotent).
    Create,
}

impl Cli {
    fn store_kind(&self) -> StoreKind {
        match self.store {
            StoreArg::Sqlite => StoreKind::Sqlite {
                path: self.data_dir.join("guesthub.sqlite3"),
            },
            StoreArg::Dynamodb => StoreKind::Dynamodb {
                table_prefix: self.table_prefix.clone(),
                endpoint: self.dynamodb_endpoint.clone(),
            },
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::telemetry::init();
    let cli = Cli::parse();
    let command = cli
        .command
        .as_ref()
        .map_or(Cmd::Serve("127.0.0.1:8080".parse()?), Cmd::from);
    if let Cmd::Openapi = command {
        print!("{}", app::openapi_json());
        return Ok(());
    }
    let store = cli.store_kind().open().await?;
    match command {
        Cmd::Serve(addr) => serve(&cli, store, addr).await,
        Cmd::Other => run_admin(&cli, &store).await,
        Cmd::Openapi => Ok(()),
    }
}

enum Cmd {
    Serve(SocketAddr),
    Openapi,
    Other,
}

impl From<&Command> for Cmd {
    fn from(c: &Command) -> Self {
        match c {
            Command::Serve { addr } => Cmd::Serve(*addr),
            Command::Openapi => Cmd::Openapi,
            _ => Cmd::Other,
        }
    }
}

async fn run_admin(cli: &Cli, store: &platform::Store) -> anyhow::Result<()> {
    use domain::ports::{PartnerStore, PropertyStore};
    match cli.command.as_ref().context("no command")? {
        Command::Property { command } => match command {
            PropertyCommand::Add {
                id,
                name,
                time_zone,
                currency,
            } => {
                let p = admin::add_property(store, id, name, time_zone, currency).await?;
                println!(
                    "added property {} ({}, {}, {})",
                    p.id, p.name, p.time_zone, p.currency
                );
            }
            PropertyCommand::Accept { property, issuer } => {
                let p = admin::accept_issuer(store, property, issuer).await?;
                let list: Vec<_> = p.accepts_vouchers_of.iter().map(|i| i.as_str()).collect();
                println!("{} accepts vouchers of: {}", p.id, list.join(", "));
            }
            PropertyCommand::List => {
                for p in store.properties().await? {
                    println!("{}\t{}\t{}\t{}", p.id, p.time_zone, p.currency, p.name);
                }
            }
        },
        Command::Partner { command } => match command {
            PartnerCommand::Add {
                name,
                properties,
                scopes,
            } => {
                let (p, key) = admin::add_partner(store, name, properties, scopes).await?;
                let scopes: Vec<_> = p.scopes.iter().map(|s| s.as_str()).collect();
                let props: Vec<_> = p.properties.iter().map(|s| s.as_str()).collect();
                println!(
                    "added partner {} ({}) for {} with scopes {}",
                    p.name,
                    p.id,
                    props.join(","),
                    scopes.join(",")
                );
                println!("its API key follows; it is shown only now:");
                println!("{key}");
            }
            PartnerCommand::List => {
                for p in store.partners().await? {
                    let scopes: Vec<_> = p.scopes.iter().map(|s| s.as_str()).collect();
                    let props: Vec<_> = p.properties.iter().map(|s| s.as_str()).collect();
                    println!(
                        "{}\t{}\t{}\t{}",
                        p.id,
                        p.name,
                        props.join(","),
                        scopes.join(",")
                    );
                }
            }
        },
        Command::Tables {
            command: TablesCommand::Create,
        } => {
            store.items().create_tables().await?;
            match cli.store {
                StoreArg::Sqlite => println!(
                    "tables ready in {}",
                    cli.data_dir.join("guesthub.sqlite3").display()
                ),
                StoreArg::Dynamodb => println!("tables ready with prefix {}", cli.table_prefix),
            }
        }
        Command::Serve { .. } | Command::Openapi => {}
    }
    Ok(())
}

async fn serve(cli: &Cli, store: platform::Store, addr: SocketAddr) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cli.data_dir)
        .with_context(|| format!("creating {}", cli.data_dir.display()))?;
    let router = app::router(store, DEFAULT_MAX_BODY_BYTES);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(%addr, data_dir = %cli.data_dir.display(), "GuestHub is listening");
    println!(
        "GuestHub listening on http://{addr} (data in {})",
        cli.data_dir.display()
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    println!("GuestHub stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM: stop accepting, finish requests in flight, exit.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
