//! The `forgebridge` command: `serve` runs the proxy, `check` validates configuration and
//! mapping files without serving.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use forgebridge::backend::reference::ReferenceForge;
use forgebridge::backend::upstream::UpstreamForge;
use forgebridge::backend::Backend;
use forgebridge::config::{Overrides, Settings};
use forgebridge::gateway::Gateway;
use forgebridge::mapping::Dialects;

/// jemalloc: the request path allocates many small JSON values, freed on whichever worker
/// thread finishes the request. jemalloc serves them faster than glibc's malloc, and its
/// background thread hands memory freed after a burst of load back to the system within about
/// a second (glibc and mimalloc kept the peak; see bench/PROFILE.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read when it starts: purge unused pages after 1 s, from its own thread.
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

#[derive(Parser)]
#[command(
    name = "forgebridge",
    version,
    about = "A translating reverse proxy for forge Organizations APIs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Serve(ServeArgs),
    /// Validate the settings and every mapping file, then exit (non-zero on error).
    Check(CommonArgs),
    /// Print, as a Markdown table, the routes every mapping file gives each operation.
    Routes(CommonArgs),
    /// Check that a server (a forge, a forgebridge proxy, the reference forge) speaks a
    /// dialect: prints a pass/fail table per operation, exits non-zero on failure.
    Conformance(ConformanceArgs),
}

#[derive(Args)]
struct CommonArgs {
    /// A settings file (TOML) layered over the defaults.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory of mapping files (default: the ones built into the binary).
    #[arg(long)]
    mappings: Option<String>,
}

#[derive(Args)]
struct ConformanceArgs {
    /// The dialect to check: github, gitea or gitlab.
    #[arg(long)]
    dialect: String,
    /// The server's base URL (with or without the dialect's API path).
    #[arg(long)]
    target: String,
    /// A token of a user allowed to create organizations (a site administrator).
    #[arg(long, env = "FORGEBRIDGE_CONFORMANCE_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long)]
    listen: Option<String>,
    /// The URL clients reach the proxy at; used in every URL the proxy emits.
    #[arg(long)]
    public_url: Option<String>,
    /// `reference` for the embedded forge, or the upstream forge's base URL.
    #[arg(long)]
    upstream: Option<String>,
    /// The upstream's dialect: github, gitea, gitlab.
    #[arg(long)]
    upstream_dialect: Option<String>,
    /// Token of the reference forge's site administrator `admin`.
    #[arg(long)]
    reference_token: Option<String>,
    /// JSON seed file of users, tokens, organizations and memberships for the reference forge.
    #[arg(long)]
    reference_seed: Option<String>,
    /// Log format: text or json.
    #[arg(long)]
    log_format: Option<String>,
}

impl CommonArgs {
    fn overrides(&self) -> Overrides {
        let mut o = Overrides {
            config_file: self.config.clone(),
            values: Vec::new(),
        };
        if let Some(m) = &self.mappings {
            o.values.push(("mappings.dir", m.clone()));
        }
        o
    }
}

impl ServeArgs {
    fn overrides(&self) -> Overrides {
        let mut o = self.common.overrides();
        let flags = [
            ("server.listen", &self.listen),
            ("server.public_url", &self.public_url),
            ("upstream.url", &self.upstream),
            ("upstream.dialect", &self.upstream_dialect),
            ("reference.token", &self.reference_token),
            ("reference.seed", &self.reference_seed),
            ("log.format", &self.log_format),
        ];
        for (key, value) in flags {
            if let Some(v) = value {
                o.values.push((key, v.clone()));
            }
        }
        o
    }
}

fn load_dialects(settings: &Settings) -> Result<Dialects, String> {
    Dialects::load(settings.mappings_dir().as_deref()).map_err(|errors| {
        errors
            .iter()
            .map(|e| format!("error: {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn check(args: &CommonArgs) -> ExitCode {
    let settings = match Settings::load(&args.overrides()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: settings: {e}");
            return ExitCode::FAILURE;
        }
    };
    match load_dialects(&settings) {
        Ok(dialects) => {
            for d in dialects.iter() {
                println!("ok: {} ({}): {} routes", d.name, d.file, d.routes.len());
            }
            if !settings.is_reference() && dialects.get(&settings.upstream.dialect).is_none() {
                eprintln!(
                    "error: upstream.dialect: no mapping file for {:?}",
                    settings.upstream.dialect
                );
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}

fn conformance(args: &ConformanceArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let run = forgebridge::conformance::run(&args.dialect, &args.target, args.token.as_deref());
    match runtime.block_on(run) {
        Ok(outcomes) => {
            print!(
                "{}",
                forgebridge::conformance::table(&args.dialect, &args.target, &outcomes)
            );
            let failed = outcomes
                .iter()
                .any(|o| matches!(o.verdict, forgebridge::conformance::Verdict::Fail(_)));
            if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn routes(args: &CommonArgs) -> ExitCode {
    let loaded = Settings::load(&args.overrides())
        .map_err(|e| format!("error: settings: {e}"))
        .and_then(|s| load_dialects(&s));
    match loaded {
        Ok(dialects) => {
            print!("{}", dialects.routes_table());
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::load(&args.overrides())?;
    let _log = forgebridge::logging::init(&settings.log.level, &settings.log.format);
    let dialects =
        load_dialects(&settings).map_err(|m| anyhow::anyhow!("mapping files are invalid:\n{m}"))?;
    let public_url = settings.public_url();
    let backend: Arc<dyn Backend> = if settings.is_reference() {
        let forge = ReferenceForge::new(&public_url, &settings.reference.token);
        if !settings.reference.seed.is_empty() {
            forge.seed_file(std::path::Path::new(&settings.reference.seed))?;
        }
        Arc::new(forge)
    } else {
        let dialect = dialects
            .get(&settings.upstream.dialect)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "upstream.dialect: no mapping file for {:?}",
                    settings.upstream.dialect
                )
            })?
            .clone();
        let keeps_avatars = forgebridge::backend::avatars::upstream_stores_avatars(&dialect);
        let upstream: Arc<dyn Backend> = Arc::new(UpstreamForge::new(
            dialect,
            &settings.upstream.url,
            &public_url,
            settings.upstream_timeout(),
            settings.upstream.max_walk_pages,
            (!settings.upstream.variant.is_empty()).then(|| settings.upstream.variant.clone()),
            settings.upstream.forward_same_dialect,
        )?);
        if keeps_avatars {
            upstream
        } else {
            Arc::new(forgebridge::backend::avatars::AvatarKeeper::new(
                upstream,
                &public_url,
            ))
        }
    };
    let listener = std::net::TcpListener::bind(&settings.server.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.server.listen))?;
    tracing::info!(
        listen = %settings.server.listen,
        public_url = %public_url,
        backend = %backend.describe(),
        dialects = %dialects.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(","),
        "forgebridge ready"
    );
    let gateway = Arc::new(Gateway::new(
        dialects,
        backend,
        public_url,
        settings.server.body_limit_bytes,
    ));
    forgebridge::server::run(
        listener,
        gateway,
        settings.request_timeout(),
        settings.workers(),
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Check(args) => check(args),
        Command::Routes(args) => routes(args),
        Command::Conformance(args) => conformance(args),
        Command::Serve(args) => match serve(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
