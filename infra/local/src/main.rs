//! `guesthub`: the local runner and admin CLI. Wiring only; the work is in
//! the library and the function crates.

use std::net::SocketAddr;
use std::path::PathBuf;

use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use guesthub::{admin, app};
use platform::config::{DEFAULT_MAX_BODY_BYTES, StoreKind};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(
    name = "guesthub",
    version,
    about = "GuestHub local runner and admin CLI",
    after_help = "Example:\n  guesthub --output json property list"
)]
struct Cli {
    /// Output format. `json`: one JSON document on stdout, and an error as
    /// {"error": {"code", "message"}} on stderr with a non-zero exit.
    /// Under `serve`, `json` prints the listening line as one JSON object.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
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
    /// Seconds between scheduled Cloudbeds syncs under `serve` (0 = off;
    /// nothing runs while no property is connected).
    #[arg(
        long,
        global = true,
        default_value_t = 900,
        env = "GUESTHUB_CRM_SYNC_INTERVAL"
    )]
    crm_sync_interval: u64,
    /// Days a raw club file stays in `drop/processed/` and `drop/failed/`
    /// after its import; older ones are deleted by the drop watcher.
    #[arg(
        long,
        global = true,
        default_value_t = 30,
        env = "GUESTHUB_DROP_RETENTION_DAYS"
    )]
    drop_retention_days: u64,
    /// Seconds between scheduled loyalty exports under `serve` (0 = off).
    #[arg(
        long,
        global = true,
        default_value_t = 900,
        env = "GUESTHUB_LOYALTY_EXPORT_INTERVAL"
    )]
    loyalty_export_interval: u64,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum StoreArg {
    Sqlite,
    Dynamodb,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every function on one socket (the default command). With
    /// `--output json` the listening line is printed as one JSON object
    /// ({"listening", "data_dir"}) and nothing more on stdout.
    #[command(after_help = "Example:\n  guesthub serve --addr 127.0.0.1:8080")]
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
    },
    /// Manage properties.
    #[command(after_help = "Example:\n  guesthub property list")]
    Property {
        #[command(subcommand)]
        command: PropertyCommand,
    },
    /// Manage partners and their API keys.
    #[command(after_help = "Example:\n  guesthub partner list")]
    Partner {
        #[command(subcommand)]
        command: PartnerCommand,
    },
    /// Manage the store's tables.
    #[command(after_help = "Example:\n  guesthub tables create")]
    Tables {
        #[command(subcommand)]
        command: TablesCommand,
    },
    /// Cloudbeds CRM connection and sync.
    #[command(after_help = "Example:\n  guesthub crm sync")]
    Crm {
        #[command(subcommand)]
        command: CrmCommand,
    },
    /// NetCarrots loyalty connection and export.
    #[command(after_help = "Example:\n  guesthub loyalty export")]
    Loyalty {
        #[command(subcommand)]
        command: LoyaltyCommand,
    },
    /// Erase a person (by email) in one property, as
    /// `POST /v1/properties/{p}/erasures` does.
    #[command(after_help = "Example:\n  guesthub guest erase hotel-wien --email ana@example.com")]
    Guest {
        #[command(subcommand)]
        command: GuestCommand,
    },
    /// Events (what webhook subscribers and the event bus receive).
    #[command(after_help = "Example:\n  guesthub events tail --property castle-winery")]
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// The club: status (mode, roster, held imports) and the roster's
    /// suppression list (erased people).
    #[command(
        after_help = "Example:\n  guesthub club status hotel-wien\n  guesthub club unsuppress hotel-wien --email ana@example.com"
    )]
    Club {
        #[command(subcommand)]
        command: ClubCommand,
    },
    /// Import one AMS club file into a property's roster (as a drop would).
    #[command(after_help = "Example:\n  guesthub import members.csv --property hotel-wien")]
    Import {
        file: PathBuf,
        #[arg(long)]
        property: String,
    },
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Example:\n  guesthub completions bash > /etc/bash_completion.d/guesthub"
    )]
    Completions { shell: clap_complete::Shell },
    /// Print the OpenAPI document.
    #[command(after_help = "Example:\n  guesthub openapi > openapi.json")]
    Openapi,
    /// Seed demo properties, partners, products, vouchers, a club file,
    /// guests and a loyalty export; print curl commands for each job.
    /// Safe to run again.
    #[command(after_help = "Example:\n  guesthub demo --addr 127.0.0.1:8080")]
    Demo {
        /// Where the printed commands expect the hub.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
    },
}

#[derive(Subcommand)]
enum GuestCommand {
    /// Erase everything of the property that names this person; prints the
    /// receipt. Running it again finishes an interrupted erasure.
    #[command(
        after_help = "Example:\n  guesthub --output json guest erase hotel-wien --email ana@example.com"
    )]
    Erase {
        property: String,
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum ClubCommand {
    /// The club's mode, active roster, last import and held imports (with
    /// their reasons).
    #[command(after_help = "Example:\n  guesthub --output json club status hotel-wien")]
    Status { property: String },
    /// Let later club files list this (erased) email again.
    #[command(
        after_help = "Example:\n  guesthub club unsuppress hotel-wien --email ana@example.com"
    )]
    Unsuppress {
        property: String,
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Print events as JSON lines as they are written (live and test),
    /// until Ctrl-C.
    #[command(
        after_help = "Example:\n  guesthub events tail --property castle-winery --type voucher.redeemed"
    )]
    Tail {
        /// Only this property's events (and its test namespace's).
        #[arg(long)]
        property: Option<String>,
        /// Only events of this type (e.g. `roster.import_held`).
        #[arg(long = "type")]
        kind: Option<String>,
        /// Print the events kept (30 days) first.
        #[arg(long)]
        from_start: bool,
    },
}

#[derive(Subcommand)]
// Parsed once per process: a boxed field would only make it harder to read.
#[allow(clippy::large_enum_variant)]
enum CrmCommand {
    /// Connect a property to Cloudbeds. Prints the webhook path (with its
    /// secret token) once.
    #[command(
        after_help = "Example:\n  guesthub crm connect hotel-wien --cloudbeds-property-id 123 --api-key-env CLOUDBEDS_KEY"
    )]
    Connect {
        property: String,
        #[arg(long)]
        cloudbeds_property_id: String,
        /// Name of the environment variable holding the API key (never the key).
        #[arg(long)]
        api_key_env: String,
        /// In AWS: SSM parameter (SecureString) holding the key.
        #[arg(long)]
        ssm_parameter: Option<String>,
        #[arg(long)]
        base_url: Option<String>,
        /// preference=Field name:shortcode (repeatable); default room,
        /// smoking, dietary, wine.
        #[arg(long = "map")]
        mappings: Vec<String>,
        /// How screening statuses go back to Cloudbeds: `note` (a guest note
        /// per status) or `fields` (the custom fields "GuestHub screening
        /// status" and "GuestHub screening result").
        #[arg(long, value_parser = ["note", "fields"], default_value = "note")]
        screening_writeback: String,
        /// The same as `--screening-writeback fields` (kept for scripts).
        #[arg(long, hide = true)]
        screening_custom_field: bool,
        /// Screen with this HTTP background-check service (signed JSON;
        /// answers at once or by callback) instead of the watchlist.
        #[arg(long, requires = "screening_secret_env")]
        screening_url: Option<String>,
        /// Name of the environment variable holding the service's signing
        /// secret (never the secret).
        #[arg(long, requires = "screening_url")]
        screening_secret_env: Option<String>,
        /// In AWS: SSM parameter (SecureString) holding that secret.
        #[arg(long, requires = "screening_url")]
        screening_secret_ssm_parameter: Option<String>,
    },
    /// Run the sync now for one property or every connected one. A property
    /// another run holds is skipped (who holds it, until when; exit 1)
    /// unless --wait.
    #[command(after_help = "Example:\n  guesthub --output json crm sync hotel-wien")]
    Sync {
        property: Option<String>,
        /// Wait for another run holding a property to end, then sync it.
        #[arg(long)]
        wait: bool,
    },
    /// The property's sync runs, newest first: start, end, trigger, counts,
    /// errors and conflicts resolved (field names only).
    #[command(after_help = "Example:\n  guesthub crm runs hotel-wien --limit 5")]
    Runs {
        property: String,
        /// How many runs (1-100, default 20).
        #[arg(long)]
        limit: Option<u32>,
    },
}

#[derive(Subcommand)]
enum LoyaltyCommand {
    /// Connect a property to NetCarrots' file server.
    #[command(
        after_help = "Example:\n  guesthub loyalty connect hotel-wien --url ftps://ftp.netcarrots.example/in --username hub --password-env NETCARROTS_PASSWORD --property-code WIEN01"
    )]
    Connect {
        property: String,
        /// ftp://, ftps:// (explicit TLS) or sftp://host[:port]/path
        #[arg(long)]
        url: String,
        #[arg(long)]
        username: String,
        /// Name of the environment variable holding the password (never
        /// the password).
        #[arg(long)]
        password_env: String,
        /// NetCarrots' code for the property (the file name prefix).
        #[arg(long)]
        property_code: String,
        /// In AWS: SSM parameter (SecureString) holding the password.
        #[arg(long)]
        ssm_parameter: Option<String>,
        /// A PEM certificate to trust for FTPS (a self-signed server).
        #[arg(long)]
        ca_cert: Option<PathBuf>,
        /// SFTP: the server's host key fingerprint (`SHA256:...`) to pin.
        #[arg(long)]
        host_key: Option<String>,
        /// Only members' stays are exported: a departure of a guest who is
        /// not enrolled is kept here, and exported if the guest enrols
        /// within this many days of it (0: never).
        #[arg(long, default_value_t = domain::loyalty::DEFAULT_RETRO_DAYS, value_parser = clap::value_parser!(u32).range(0..=3650))]
        retro_days: u32,
    },
    /// Run the export now for one property or all; prints a summary. A
    /// property another run holds is skipped (exit 1) unless --wait.
    #[command(after_help = "Example:\n  guesthub --output json loyalty export hotel-wien")]
    Export {
        property: Option<String>,
        /// Wait for another run holding a property to end, then export it.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Subcommand)]
enum PropertyCommand {
    /// Add a property.
    #[command(
        after_help = "Example:\n  guesthub property add hotel-wien --name \"Hotel Wien\" --time-zone Europe/Vienna --currency EUR"
    )]
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
        /// Start the club in trial mode: club files are imported and
        /// reported, but nobody is recognised as a member and no club
        /// discount is given until `PUT /club-settings {"mode":"live"}`.
        #[arg(long)]
        club_trial: bool,
    },
    /// Let a property accept vouchers issued by another (portal systems).
    #[command(
        after_help = "Example:\n  guesthub property accept hotel-graz --issuer hotel-wien --pickup"
    )]
    Accept {
        property: String,
        #[arg(long)]
        issuer: String,
        /// Also pick up the issuer's value and package voucher orders (sold
        /// from now on) in the property's own pickup feed.
        #[arg(long)]
        pickup: bool,
    },
    /// List properties.
    #[command(after_help = "Example:\n  guesthub --output json property list")]
    List,
    /// Change a property's settings.
    #[command(after_help = "Example:\n  guesthub property set hotel-wien --retention-days 730")]
    Set {
        property: String,
        /// Anonymise order and membership contacts this many days after
        /// their last visit or expiry, and delivered loyalty records'
        /// personal fields this many days after delivery, in the scheduled
        /// loyalty run; 0 turns it off (the default).
        #[arg(long)]
        retention_days: u32,
    },
}

#[derive(Subcommand)]
enum PartnerCommand {
    /// Add a partner; its key is printed once, alone on the last line.
    #[command(
        after_help = "Example:\n  guesthub partner add \"Voucher Shop\" --properties hotel-wien --scopes vouchers:read,vouchers:redeem\n  guesthub partner add \"Voucher Shop sandbox\" --properties hotel-wien --scopes vouchers:read,vouchers:redeem --test"
    )]
    Add {
        name: String,
        #[arg(long, value_delimiter = ',')]
        properties: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// A sandbox partner: its key (`ghk_test_…`) works on test data
        /// only, apart from everything live.
        #[arg(long)]
        test: bool,
    },
    /// List partners (never their keys).
    #[command(after_help = "Example:\n  guesthub --output json partner list")]
    List,
    /// Give a partner a new key (printed alone on the last line); the old
    /// key stops working at once.
    #[command(
        after_help = "Example:\n  guesthub partner rotate 0190c0de-0000-7000-8000-000000000000"
    )]
    Rotate { partner_id: String },
    /// Refuse a partner's key until it is enabled again.
    #[command(
        after_help = "Example:\n  guesthub partner disable 0190c0de-0000-7000-8000-000000000000"
    )]
    Disable { partner_id: String },
    /// Accept a disabled partner's key again.
    #[command(
        after_help = "Example:\n  guesthub partner enable 0190c0de-0000-7000-8000-000000000000"
    )]
    Enable { partner_id: String },
}

#[derive(Subcommand)]
enum TablesCommand {
    /// Create the tables as template.yaml defines them (idempotent).
    #[command(
        after_help = "Example:\n  guesthub --store dynamodb --dynamodb-endpoint http://127.0.0.1:5000 tables create"
    )]
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
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let json = cli.output == Output::Json;
    match run(&cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if json {
                print_error("command_failed", &format!("{e:#}"));
            } else {
                eprintln!("Error: {e:?}");
            }
            ExitCode::FAILURE
        }
    }
}

/// A command line clap refuses: its own message, or under `--output json`
/// the JSON error (help and version stay text).
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let informational = matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if informational || !json_requested(std::env::args()) {
        e.exit();
    }
    let text = e.render().to_string();
    let message = text
        .split("\n\nFor more information")
        .next()
        .unwrap_or_default()
        .trim()
        .trim_start_matches("error: ");
    print_error("usage", message);
    ExitCode::from(2)
}

/// Whether the raw arguments ask for JSON (when clap could not parse them).
fn json_requested(args: impl Iterator<Item = String>) -> bool {
    let args: Vec<String> = args.collect();
    args.iter().any(|a| a == "--output=json")
        || args
            .windows(2)
            .any(|w| w[0] == "--output" && w[1] == "json")
}

fn print_error(code: &str, message: &str) {
    eprintln!("{}", json!({"error": {"code": code, "message": message}}));
}

fn print_json(v: &Value) {
    println!("{v}");
}

/// A partner as JSON: never its key hash.
fn partner_json(p: &domain::Partner) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "properties": p.properties,
        "scopes": p.scopes,
        "disabled": p.disabled,
        "test": p.test,
    })
}

async fn run(cli: &Cli) -> anyhow::Result<()> {
    let json = cli.output == Output::Json;
    // The demo talks to the hub through its own routes: its step lines and
    // walkthrough are the output, not one log line per request.
    let quiet = matches!(cli.command, Some(Command::Demo { .. }));
    platform::telemetry::init_with_default(if quiet { "warn" } else { "info" });
    let command = cli
        .command
        .as_ref()
        .map_or(Cmd::Serve("127.0.0.1:8080".parse()?), Cmd::from);
    match command {
        Cmd::Openapi => {
            print!("{}", app::openapi_json());
            return Ok(());
        }
        Cmd::Completions(shell) => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "guesthub", &mut script);
            if json {
                print_json(&json!({
                    "shell": shell.to_string(),
                    "script": String::from_utf8_lossy(&script),
                }));
            } else {
                use std::io::Write;
                std::io::stdout().write_all(&script)?;
            }
            return Ok(());
        }
        _ => {}
    }
    let store = cli.store_kind().open().await?;
    match command {
        Cmd::Serve(addr) => serve(cli, store, addr).await,
        Cmd::Other => run_admin(cli, &store).await,
        Cmd::Openapi | Cmd::Completions(_) => Ok(()),
    }
}

enum Cmd {
    Serve(SocketAddr),
    Openapi,
    Completions(clap_complete::Shell),
    Other,
}

impl From<&Command> for Cmd {
    fn from(c: &Command) -> Self {
        match c {
            Command::Serve { addr } => Cmd::Serve(*addr),
            Command::Openapi => Cmd::Openapi,
            Command::Completions { shell } => Cmd::Completions(*shell),
            _ => Cmd::Other,
        }
    }
}

async fn run_admin(cli: &Cli, store: &platform::Store) -> anyhow::Result<()> {
    use domain::ports::{PartnerStore, PropertyStore};
    let json = cli.output == Output::Json;
    match cli.command.as_ref().context("no command")? {
        Command::Property { command } => match command {
            PropertyCommand::Add {
                id,
                name,
                time_zone,
                currency,
                club_trial,
            } => {
                let p = admin::add_property(store, id, name, time_zone, currency).await?;
                if *club_trial {
                    admin::set_club_mode(store, &p.id, domain::roster::store::ClubMode::Trial)
                        .await?;
                }
                if json {
                    print_json(&json!({ "property": p, "club_trial": club_trial }));
                    return Ok(());
                }
                println!(
                    "added property {} ({}, {}, {}){}",
                    p.id,
                    p.name,
                    p.time_zone,
                    p.currency,
                    if *club_trial {
                        ", club in trial mode"
                    } else {
                        ""
                    }
                );
            }
            PropertyCommand::Accept {
                property,
                issuer,
                pickup,
            } => {
                let p = if *pickup {
                    admin::pick_up_orders_of(store, property, issuer).await?
                } else {
                    admin::accept_issuer(store, property, issuer).await?
                };
                if json {
                    print_json(&json!({ "property": p, "pickup": pickup }));
                    return Ok(());
                }
                let list: Vec<_> = p.accepts_vouchers_of.iter().map(|i| i.as_str()).collect();
                println!("{} accepts vouchers of: {}", p.id, list.join(", "));
                if *pickup {
                    println!(
                        "{} picks up the voucher orders of {issuer} in its own feed",
                        p.id
                    );
                }
            }
            PropertyCommand::Set {
                property,
                retention_days,
            } => {
                let p = admin::set_retention(store, property, *retention_days).await?;
                if json {
                    print_json(&json!({ "property": p }));
                    return Ok(());
                }
                match p.retention_days {
                    Some(d) => println!(
                        "{}: contacts anonymised {d} days after the last visit or expiry, delivered loyalty records {d} days after delivery",
                        p.id
                    ),
                    None => println!("{}: retention off", p.id),
                }
            }
            PropertyCommand::List => {
                let all = store.properties().await?;
                if json {
                    print_json(&json!({ "properties": all }));
                    return Ok(());
                }
                for p in all {
                    println!("{}\t{}\t{}\t{}", p.id, p.time_zone, p.currency, p.name);
                }
            }
        },
        Command::Partner { command } => match command {
            PartnerCommand::Add {
                name,
                properties,
                scopes,
                test,
            } => {
                let (p, key) =
                    admin::add_partner_in_mode(store, name, properties, scopes, *test).await?;
                if json {
                    print_json(&json!({ "partner": partner_json(&p), "key": key }));
                    return Ok(());
                }
                let scopes: Vec<_> = p.scopes.iter().map(|s| s.as_str()).collect();
                let props: Vec<_> = p.properties.iter().map(|s| s.as_str()).collect();
                println!(
                    "added {}partner {} ({}) for {} with scopes {}",
                    if p.test { "sandbox " } else { "" },
                    p.name,
                    p.id,
                    props.join(","),
                    scopes.join(",")
                );
                println!("its API key follows; it is shown only now:");
                println!("{key}");
            }
            PartnerCommand::Rotate { partner_id } => {
                let (p, key) = admin::rotate_partner_key(store, partner_id).await?;
                if json {
                    print_json(&json!({ "partner": partner_json(&p), "key": key }));
                    return Ok(());
                }
                println!(
                    "new key for {} ({}); the old key no longer works. It is shown only now:",
                    p.name, p.id
                );
                println!("{key}");
            }
            PartnerCommand::Disable { partner_id } => {
                let p = admin::set_partner_disabled(store, partner_id, true).await?;
                if json {
                    print_json(&json!({ "partner": partner_json(&p) }));
                    return Ok(());
                }
                println!("partner {} ({}) disabled", p.name, p.id);
            }
            PartnerCommand::Enable { partner_id } => {
                let p = admin::set_partner_disabled(store, partner_id, false).await?;
                if json {
                    print_json(&json!({ "partner": partner_json(&p) }));
                    return Ok(());
                }
                println!("partner {} ({}) enabled", p.name, p.id);
            }
            PartnerCommand::List => {
                let all = store.partners().await?;
                if json {
                    let all: Vec<_> = all.iter().map(partner_json).collect();
                    print_json(&json!({ "partners": all }));
                    return Ok(());
                }
                for p in all {
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
            if json {
                print_json(&match cli.store {
                    StoreArg::Sqlite => json!({
                        "store": "sqlite",
                        "path": cli.data_dir.join("guesthub.sqlite3"),
                    }),
                    StoreArg::Dynamodb => json!({
                        "store": "dynamodb",
                        "table_prefix": cli.table_prefix,
                    }),
                });
                return Ok(());
            }
            match cli.store {
                StoreArg::Sqlite => println!(
                    "tables ready in {}",
                    cli.data_dir.join("guesthub.sqlite3").display()
                ),
                StoreArg::Dynamodb => println!("tables ready with prefix {}", cli.table_prefix),
            }
        }
        Command::Crm { command } => match command {
            CrmCommand::Connect {
                property,
                cloudbeds_property_id,
                api_key_env,
                ssm_parameter,
                base_url,
                mappings,
                screening_writeback,
                screening_custom_field,
                screening_url,
                screening_secret_env,
                screening_secret_ssm_parameter,
            } => {
                let c = guesthub::crm::connect(
                    store,
                    property,
                    cloudbeds_property_id,
                    api_key_env,
                    ssm_parameter.as_deref(),
                    base_url.as_deref(),
                    mappings,
                    if *screening_custom_field {
                        "fields"
                    } else {
                        screening_writeback
                    },
                    screening_url
                        .as_ref()
                        .map(|url| domain::guest::ScreeningService {
                            url: url.clone(),
                            secret_env: screening_secret_env.clone().unwrap_or_default(),
                            secret_ssm_parameter: screening_secret_ssm_parameter.clone(),
                        }),
                )
                .await?;
                let conn = &c.connection;
                let path = format!("/v1/webhooks/cloudbeds/{}", c.webhook_token);
                if json {
                    let mut connection = serde_json::to_value(conn)?;
                    if let Some(o) = connection.as_object_mut() {
                        o.remove("webhook_token_hash");
                    }
                    print_json(&json!({ "connection": connection, "webhook_path": path }));
                    return Ok(());
                }
                println!(
                    "connected {} to Cloudbeds property {} at {} (key from ${})",
                    conn.property, conn.cloudbeds_property_id, conn.base_url, conn.api_key_env
                );
                for m in &conn.field_map {
                    println!(
                        "  preference {} -> custom field {:?} ({})",
                        m.preference, m.name, m.shortcode
                    );
                }
                println!(
                    "  screening: checked by {}, each status written back as {}",
                    conn.screening_service
                        .as_ref()
                        .map_or("the property's watchlist", |s| s.url.as_str()),
                    match conn.screening_write_back {
                        domain::guest::ScreeningWriteBack::Note => "a guest note",
                        domain::guest::ScreeningWriteBack::CustomField =>
                            "the custom fields \"GuestHub screening status\" and \"GuestHub screening result\"",
                    }
                );
                println!("register this webhook path with postWebhook; it is shown only now:");
                println!("{path}");
            }
            CrmCommand::Runs { property, limit } => {
                let runs = guesthub::crm::runs(store, property, *limit).await?;
                if json {
                    print_json(&json!({ "runs": runs }));
                } else if runs.is_empty() {
                    println!("no sync runs recorded for {property}");
                } else {
                    for r in &runs {
                        println!("{}", guesthub::crm::run_line(r));
                    }
                }
            }
            CrmCommand::Sync { property, wait } => {
                let all = guesthub::crm::sync(store, property.as_deref(), *wait).await?;
                let failed = all.iter().filter(|s| !s.errors.is_empty()).count();
                if json {
                    print_json(&json!({ "properties": all }));
                } else {
                    if all.is_empty() {
                        println!("no property is connected to Cloudbeds");
                    }
                    for s in &all {
                        println!("{s}");
                    }
                }
                let held: Vec<String> = all
                    .iter()
                    .filter(|s| s.skipped_busy)
                    .map(|s| held_line(&s.property, s.held_by.as_deref(), s.held_until))
                    .collect();
                job_outcome(failed, all.len(), &held, all.iter().any(|s| s.stopped))?;
            }
        },
        Command::Loyalty { command } => match command {
            LoyaltyCommand::Connect {
                property,
                url,
                username,
                password_env,
                property_code,
                ssm_parameter,
                ca_cert,
                host_key,
                retro_days,
            } => {
                let args = guesthub::loyalty::ConnectArgs {
                    property,
                    url,
                    username,
                    password_env,
                    property_code,
                    ssm_parameter: ssm_parameter.as_deref(),
                    ca_cert: ca_cert.as_deref(),
                    host_key: host_key.as_deref(),
                    retro_days: *retro_days,
                };
                let c = guesthub::loyalty::connect(store, &args).await?;
                if json {
                    print_json(&json!({ "connection": c }));
                    return Ok(());
                }
                println!(
                    "connected {} to NetCarrots at {} as {} (code {}, password from ${}, retro days {})",
                    c.property,
                    c.url,
                    c.username,
                    c.property_code.as_str(),
                    c.password_env,
                    c.retro_days
                );
            }
            LoyaltyCommand::Export { property, wait } => {
                let all =
                    guesthub::loyalty::export(store, &cli.data_dir, property.as_deref(), *wait)
                        .await?;
                let mut totals = [0usize; 4];
                for s in &all {
                    if !json {
                        println!("{}", guesthub::loyalty::summary_line(s));
                    }
                    totals[0] += usize::from(s.file.is_some());
                    totals[1] += s.enrol;
                    totals[2] += s.stay;
                    totals[3] += s.undo;
                }
                let failed = all.iter().filter(|s| !s.errors.is_empty()).count();
                if json {
                    print_json(&json!({
                        "properties": all,
                        "totals": {
                            "files": totals[0],
                            "enrol": totals[1],
                            "stay": totals[2],
                            "undo": totals[3],
                            "properties_with_errors": failed,
                        },
                    }));
                } else {
                    println!(
                        "{} files, ENROL {}, STAY {}, UNDO {}, {} properties with errors",
                        totals[0], totals[1], totals[2], totals[3], failed
                    );
                }
                let held: Vec<String> = all
                    .iter()
                    .filter(|s| s.skipped.is_some())
                    .map(|s| held_line(&s.property, s.held_by.as_deref(), s.held_until))
                    .collect();
                job_outcome(failed, all.len(), &held, all.iter().any(|s| s.stopped))?;
            }
        },
        Command::Events {
            command:
                EventsCommand::Tail {
                    property,
                    kind,
                    from_start,
                },
        } => {
            let property = match property {
                Some(p) => Some(admin::existing_property(store, p).await?),
                None => None,
            };
            let kind = kind
                .as_deref()
                .map(str::parse::<domain::events::EventType>)
                .transpose()?;
            let stop = platform::jobs::stop_on_signal();
            let mut out = std::io::stdout();
            guesthub::events::tail(store, property.as_ref(), kind, *from_start, &stop, &mut out)
                .await?;
        }
        Command::Guest {
            command: GuestCommand::Erase { property, email },
        } => {
            let e = admin::erase_person(store, property, email).await?;
            let r = e.receipt();
            if json {
                print_json(&json!({ "erasure": r }));
                return Ok(());
            }
            let c = &r.erased;
            println!("erasure {} ({:?}) of {}", r.id, r.status, r.email_hash);
            println!(
                "guest profiles {}, notes {}, vouchers {}, ledger entries {}, orders {}, memberships {}, loyalty records {}, roster entries {}",
                c.guest_profiles,
                c.notes,
                c.vouchers,
                c.ledger_entries,
                c.orders,
                c.memberships,
                c.loyalty_records,
                c.roster_entries
            );
            if !r.pending.is_empty() {
                println!("pending: {}", r.pending.join(", "));
            }
        }
        Command::Club {
            command: ClubCommand::Status { property },
        } => {
            let status = guesthub::roster::club_status(store, property).await?;
            if json {
                print_json(&json!({ "club": status }));
                return Ok(());
            }
            print!("{}", guesthub::roster::status_text(&status));
        }
        Command::Club {
            command: ClubCommand::Unsuppress { property, email },
        } => {
            let was = admin::unsuppress(store, property, email).await?;
            if json {
                print_json(&json!({ "unsuppressed": was }));
                return Ok(());
            }
            if was {
                println!("later club files of {property} may list this email again");
            } else {
                println!("this email was not suppressed in {property}");
            }
        }
        Command::Import { file, property } => {
            let report = guesthub::roster::import_file(store, property, file).await?;
            if json {
                print_json(&json!({ "report": report }));
            } else {
                print!("{}", guesthub::roster::summary(&report));
            }
        }
        Command::Demo { addr } => {
            let seeded = guesthub::demo::seed(store, &cli.data_dir).await?;
            if json {
                print_json(&json!({
                    "pms_key": seeded.pms_key,
                    "shop_key": seeded.shop_key,
                    "voucher_code": seeded.voucher_code,
                    "gift_card_code": seeded.gift_card_code,
                    "club_file": seeded.club_file,
                    "outbox": seeded.outbox,
                    "export_line": seeded.export_line,
                    "walkthrough": guesthub::demo::walkthrough(&seeded, addr, &cli.data_dir),
                }));
                return Ok(());
            }
            print!(
                "{}",
                guesthub::demo::walkthrough(&seeded, addr, &cli.data_dir)
            );
        }
        Command::Serve { .. } | Command::Openapi | Command::Completions { .. } => {}
    }
    Ok(())
}

/// "<p> is held by <who> until <when>", for a skipped run.
/// A scheduled job run from the CLI exits non-zero when a property failed,
/// was held by another run (who and until when), or was stopped early.
fn job_outcome(failed: usize, total: usize, held: &[String], stopped: bool) -> anyhow::Result<()> {
    if failed > 0 {
        anyhow::bail!("{failed} of {total} properties had errors");
    }
    if !held.is_empty() {
        anyhow::bail!(
            "skipped: {}; run again then, or with --wait",
            held.join("; ")
        );
    }
    if stopped {
        anyhow::bail!("stopped before the end; the next run goes on");
    }
    Ok(())
}

fn held_line(
    property: &str,
    by: Option<&str>,
    until: Option<chrono::DateTime<chrono::Utc>>,
) -> String {
    match (by, until) {
        (Some(by), Some(until)) => format!(
            "{property} is held by {by} until {}",
            until.format("%Y-%m-%d %H:%M:%S UTC")
        ),
        _ => format!("{property} is held by another run"),
    }
}

/// How long the served hub gives its scheduled jobs to reach a safe point
/// after SIGINT/SIGTERM.
const JOB_STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

async fn serve(cli: &Cli, store: platform::Store, addr: SocketAddr) -> anyhow::Result<()> {
    use guesthub::scheduler::{self, First};
    std::fs::create_dir_all(&cli.data_dir)
        .with_context(|| format!("creating {}", cli.data_dir.display()))?;
    // Ctrl-C or SIGTERM: stop accepting, finish requests in flight, end
    // the running jobs at their next safe point, exit.
    let stop = platform::jobs::stop_on_signal();
    let crm_store = store.clone();
    let scheduler = scheduler::spawn(
        "crm sync",
        std::time::Duration::from_secs(cli.crm_sync_interval),
        First::AtOnce,
        stop.clone(),
        move |stop| guesthub::crm::scheduled_sync(crm_store.clone(), stop),
    );
    let loyalty_store = store.clone();
    let data_dir = cli.data_dir.clone();
    let loyalty = scheduler::spawn(
        "loyalty export",
        std::time::Duration::from_secs(cli.loyalty_export_interval),
        First::AfterInterval,
        stop.clone(),
        move |stop| {
            guesthub::loyalty::scheduled_export(loyalty_store.clone(), data_dir.clone(), stop)
        },
    );
    // Events are fanned out and webhooks delivered in process.
    let dispatcher = platform::events::Dispatcher::new(store.clone(), None, "guesthub serve");
    let events = scheduler::spawn(
        "event dispatch",
        guesthub::events::DISPATCH_INTERVAL,
        First::AtOnce,
        stop.clone(),
        move |stop| guesthub::events::scheduled_dispatch(dispatcher.clone(), stop),
    );
    let drop_watcher = guesthub::roster::spawn_drop_watcher(
        store.clone(),
        &cli.data_dir,
        std::time::Duration::from_secs(cli.drop_retention_days * 86_400),
    );
    // Cloudbeds webhooks are acted on at once, in process.
    let (queue, queue_worker) = guesthub::crm::spawn_queue_worker(
        store.clone(),
        std::sync::Arc::new(crm_sync::EnvKeys),
        stop.clone(),
    );
    let router = app::router_with(store, DEFAULT_MAX_BODY_BYTES, Some(queue));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(%addr, data_dir = %cli.data_dir.display(), "GuestHub is listening");
    if cli.output == Output::Json {
        print_json(&json!({
            "listening": format!("http://{addr}"),
            "data_dir": cli.data_dir,
        }));
    } else {
        println!(
            "GuestHub listening on http://{addr} (data in {})",
            cli.data_dir.display()
        );
    }
    guesthub::server::serve(
        listener,
        router,
        guesthub::server::Limits::default(),
        stop.clone().cancelled_owned(),
    )
    .await?;
    stop.cancel();
    scheduler::drain(
        [scheduler, loyalty, events, Some(queue_worker)]
            .into_iter()
            .flatten()
            .collect(),
        JOB_STOP_GRACE,
    )
    .await;
    drop_watcher.abort();
    if cli.output == Output::Text {
        println!("GuestHub stopped");
    }
    Ok(())
}
