//! `handoff`: serve, or administer the store from the command line.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use handoff_protocol::PracticeId;
use handoff_protocol::free::BlockKind;
use handoff_protocol::v1::PracticeAction;
use handoff_server::config::Config;
use handoff_store::Store;
use handoff_store::sqlite::SqliteStore;

#[derive(Parser, Debug)]
#[command(name = "handoff", version, about = "Handoff: end-to-end encrypted e-referrals and clinical messaging")]
struct Cli {
    /// A TOML configuration file (else $HANDOFF_CONFIG, else built-in defaults).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server on the embedded store.
    Serve {
        /// Listen address [default: 127.0.0.1:8080].
        #[arg(long)]
        bind: Option<std::net::SocketAddr>,
        /// Data directory [default: ./data].
        #[arg(long)]
        data: Option<PathBuf>,
        /// The built web client to serve at `/`.
        #[arg(long)]
        static_dir: Option<PathBuf>,
        /// The URL people open, for links in email (e.g. https://handoff.example.org).
        #[arg(long)]
        public_url: Option<String>,
        /// Serve Prometheus metrics at `GET /metrics` on this address (e.g. 127.0.0.1:9100) [default: off].
        #[arg(long)]
        metrics_bind: Option<std::net::SocketAddr>,
        /// Log lines as text or as one JSON object per line [default: text].
        #[arg(long, value_enum)]
        log_format: Option<handoff_server::logging::LogFormat>,
        /// npm swagger-ui-dist's folder, to serve the API reference at /api/docs [default: off].
        #[arg(long)]
        api_docs_dir: Option<PathBuf>,
    },
    /// Platform staff tasks, run against the data directory.
    Admin {
        /// Data directory [default: ./data].
        #[arg(long, global = true)]
        data: Option<PathBuf>,
        #[command(subcommand)]
        task: AdminTask,
    },
}

#[derive(Subcommand, Debug)]
enum AdminTask {
    /// Mark a specialist practice verified so it can receive referrals.
    VerifyPractice { id: PracticeId },
    /// Withdraw a practice's verification.
    UnverifyPractice { id: PracticeId },
    /// Pause a practice's referral intake.
    PausePractice { id: PracticeId },
    /// Resume a practice's referral intake.
    UnpausePractice { id: PracticeId },
    /// Give an account platform-staff rights (metadata only, never content).
    GrantStaff { email: String },
    /// Take platform-staff rights away.
    RevokeStaff { email: String },
    /// List every practice with its status.
    ListPractices,
    /// Block senders of free referrals (by email or client address), lift blocks, list them.
    FreeBlock {
        #[command(subcommand)]
        action: FreeBlockAction,
    },
    /// Write a consistent copy of the store to DEST while the server keeps serving; prints its checksum.
    Backup {
        /// The file to write (never overwritten), or a directory to write `handoff-<UTC time>.db` into.
        dest: PathBuf,
    },
    /// Re-walk every audit chain; report the first broken link (exit 1) or each chain's count and head.
    VerifyAudit,
    /// Put a backup back as the data directory's store (the server must be stopped).
    Restore {
        /// The backup file.
        src: PathBuf,
        /// Replace the store the data directory holds (it is kept beside it as `handoff.db.replaced-<time>`).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
enum FreeBlockAction {
    /// Block an email address or a client address from sending free referrals.
    Add {
        #[command(flatten)]
        target: BlockTarget,
        /// Why, for the staff who read the list later.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Lift a block.
    Lift {
        #[command(flatten)]
        target: BlockTarget,
    },
    /// List every block, newest first.
    List,
}

/// Exactly one of `--email` and `--address`.
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
struct BlockTarget {
    /// An email address (compared case-insensitively).
    #[arg(long)]
    email: Option<String>,
    /// A client address: an IPv4 address, or any address of an IPv6 /64.
    #[arg(long)]
    address: Option<String>,
}

impl BlockTarget {
    fn kind_value(self) -> (BlockKind, String) {
        match (self.email, self.address) {
            (Some(e), _) => (BlockKind::Email, e),
            (None, Some(a)) => (BlockKind::Address, a),
            (None, None) => (BlockKind::Email, String::new()),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = Config::load(cli.config).context("loading configuration")?;
    if let Command::Serve { log_format: Some(f), .. } = &cli.command {
        config.log_format = *f;
    }
    handoff_server::logging::init(config.log_format);
    match cli.command {
        Command::Serve { bind, data, static_dir, public_url, metrics_bind, log_format: _, api_docs_dir } => {
            if metrics_bind.is_some() {
                config.metrics_bind = metrics_bind;
            }
            if let Some(b) = bind {
                config.bind = b;
            }
            if let Some(d) = data {
                config.data = d;
            }
            if static_dir.is_some() {
                config.static_dir = static_dir;
            }
            if public_url.is_some() {
                config.public_url = public_url;
            }
            if api_docs_dir.is_some() {
                config.api_docs_dir = api_docs_dir;
            }
            serve(config)
        }
        Command::Admin { data, task } => {
            if let Some(d) = data {
                config.data = d;
            }
            admin(config, task)
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    let data = config.data.clone();
    // Held for the process's life: `handoff admin restore` refuses while it is held.
    let _lock = handoff_store::sqlite::DataDirLock::acquire(&data).context("locking the data directory")?;
    actix_web::rt::System::new().block_on(async move {
        let public = config.public_url();
        let bound = handoff_server::app::bind(config).await.context("starting the server")?;
        tracing::info!(addr = %bound.addr, data = %data.display(), "Handoff is serving");
        if let Some(m) = bound.metrics_addr {
            tracing::info!(addr = %m, "metrics at http://{m}/metrics");
        }
        eprintln!("Handoff is ready: open {public}/  (data in {})", data.display());
        bound.serve().await.context("server")
    })
}

fn admin(config: Config, task: AdminTask) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        // Opened only by the tasks that need it: backups and restores work on the file and must
        // neither create nor migrate a store.
        let open = || -> anyhow::Result<Arc<dyn Store>> { Ok(Arc::new(SqliteStore::open(&config.data).context("opening the store")?)) };
        let action = |id: PracticeId, a: PracticeAction| (id, a);
        let (id, act) = match task {
            AdminTask::VerifyPractice { id } => action(id, PracticeAction::Verify),
            AdminTask::UnverifyPractice { id } => action(id, PracticeAction::Unverify),
            AdminTask::PausePractice { id } => action(id, PracticeAction::Pause),
            AdminTask::UnpausePractice { id } => action(id, PracticeAction::Unpause),
            AdminTask::Backup { dest } => {
                let b = handoff_store::sqlite::backup(&config.data, &dest).context("backing up the store")?;
                print_backup("backup", &b);
                return Ok(());
            }
            AdminTask::Restore { src, force } => {
                let r = handoff_store::sqlite::restore(&src, &config.data, force).context("restoring the store")?;
                print_backup("restored", &r);
                eprintln!("start the server on {} to serve it (an older schema is migrated then)", config.data.display());
                return Ok(());
            }
            AdminTask::VerifyAudit => {
                let report = handoff_store::verify_audit(&*open()?).await.context("reading the audit log")?;
                print!("{}", handoff_server::audit::report_text(&report));
                if let Some(broken) = report.broken {
                    anyhow::bail!("the audit log is broken: {broken}");
                }
                return Ok(());
            }
            AdminTask::GrantStaff { email } => {
                open()?.set_staff(&email.trim().to_lowercase(), true).await.context("no account with that email")?;
                eprintln!("{email} is now platform staff");
                return Ok(());
            }
            AdminTask::RevokeStaff { email } => {
                open()?.set_staff(&email.trim().to_lowercase(), false).await.context("no account with that email")?;
                eprintln!("{email} is no longer platform staff");
                return Ok(());
            }
            AdminTask::FreeBlock { action } => return free_block(&*open()?, action).await,
            AdminTask::ListPractices => {
                for (p, members) in open()?.all_practices().await? {
                    println!(
                        "{}\t{:?}\t{}\t{}\t{}\tmembers={members}\t{}",
                        p.id,
                        p.kind,
                        if p.verified { "verified" } else { "unverified" },
                        if p.paused { "paused" } else { "open" },
                        p.specialty.unwrap_or_else(|| "-".into()),
                        p.name
                    );
                }
                return Ok(());
            }
        };
        let store = open()?;
        let p = handoff_server::admin::set_flag(&*store, id, act).await.context("no practice with that id")?;
        // A staff action from the command line: the platform chain, with no actor or address.
        let event = handoff_server::audit::Event::new(handoff_server::admin::staff_action(act), None, None).target(id);
        handoff_server::audit::record_in(&*store, None, event)
            .await
            .map_err(|e| anyhow::anyhow!(e.message))
            .context("recording the staff action")?;
        eprintln!("{} ({id}): {act:?} done", p.name);
        Ok(())
    })
}

/// One line per fact, for people and for scripts (`grep sha256`).
fn print_backup(what: &str, b: &handoff_store::sqlite::BackupInfo) {
    println!("{what}\t{}", b.path.display());
    println!("bytes\t{}", b.bytes);
    println!("schema_version\t{}", b.schema_version);
    println!("sha256\t{}", b.sha256);
}

async fn free_block(store: &dyn Store, action: FreeBlockAction) -> anyhow::Result<()> {
    use handoff_server::admin::{free_block, free_lift};
    match action {
        FreeBlockAction::Add { target, reason } => {
            let (kind, value) = target.kind_value();
            let b = free_block(store, kind, &value, &reason, handoff_server::state::now()).await.context("blocking")?;
            eprintln!("blocked {:?} {}", b.kind, b.value);
        }
        FreeBlockAction::Lift { target } => {
            let (kind, value) = target.kind_value();
            free_lift(store, kind, &value).await.context("lifting the block")?;
            eprintln!("lifted the block of {kind:?} {value}");
        }
        FreeBlockAction::List => {
            for b in store.blocks().await? {
                println!("{:?}\t{}\t{}\t{}", b.kind, b.value, b.created_at, b.reason);
            }
        }
    }
    Ok(())
}
