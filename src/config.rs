//! Settings, layered with the `config` crate: the built-in `config/default.toml`, an optional
//! file (`--config`), `FORGEBRIDGE__SECTION__KEY` environment variables, then command-line flags.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// More serving threads than this is a typo, not a machine.
const MAX_WORKERS: usize = 1024;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub upstream: UpstreamSettings,
    pub mappings: MappingSettings,
    pub reference: ReferenceSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub listen: String,
    pub public_url: String,
    pub request_timeout_secs: f64,
    pub body_limit_bytes: usize,
    pub workers: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UpstreamSettings {
    pub url: String,
    pub dialect: String,
    pub timeout_secs: f64,
    pub max_walk_pages: u64,
    pub variant: String,
    pub forward_same_dialect: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MappingSettings {
    pub dir: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReferenceSettings {
    pub token: String,
    pub seed: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: String,
    pub level: String,
}

/// Values given on the command line; each one that is set wins over every other source.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub values: Vec<(&'static str, String)>,
}

impl Settings {
    pub fn load(overrides: &Overrides) -> anyhow::Result<Settings> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(path) = &overrides.config_file {
            if !path.exists() {
                anyhow::bail!("config file {} does not exist", path.display());
            }
            builder = builder
                .add_source(config::File::from(path.clone()).format(config::FileFormat::Toml));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("FORGEBRIDGE")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        );
        for (key, value) in &overrides.values {
            builder = builder.set_override(*key, value.clone())?;
        }
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            anyhow::bail!(
                "server.listen: {:?} is not an address such as 127.0.0.1:8080",
                self.server.listen
            );
        }
        if !self.server.public_url.is_empty() {
            let u = url::Url::parse(&self.server.public_url)
                .map_err(|e| anyhow::anyhow!("server.public_url: {e}"))?;
            if !matches!(u.scheme(), "http" | "https") {
                anyhow::bail!("server.public_url must be an http or https URL");
            }
        }
        if self.server.workers > MAX_WORKERS {
            anyhow::bail!(
                "server.workers: {} serving threads is more than {MAX_WORKERS}; 0 is one per CPU",
                self.server.workers
            );
        }
        if self.server.request_timeout_secs <= 0.0 || self.upstream.timeout_secs <= 0.0 {
            anyhow::bail!("timeouts must be positive");
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            anyhow::bail!("log.format must be text or json, not {:?}", self.log.format);
        }
        if !self.is_reference() {
            url::Url::parse(&self.upstream.url).map_err(|e| {
                anyhow::anyhow!(
                    "upstream.url: {:?} is neither \"reference\" nor a URL: {e}",
                    self.upstream.url
                )
            })?;
        }
        Ok(())
    }

    pub fn is_reference(&self) -> bool {
        self.upstream.url == "reference"
    }

    /// The public URL without a trailing slash.
    pub fn public_url(&self) -> String {
        if self.server.public_url.is_empty() {
            format!("http://{}", self.server.listen)
        } else {
            self.server.public_url.trim_end_matches('/').to_string()
        }
    }

    /// Serving threads: `server.workers`, or one per CPU the process may use when it is 0.
    pub fn workers(&self) -> usize {
        match self.server.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.server.request_timeout_secs)
    }

    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.upstream.timeout_secs)
    }

    pub fn mappings_dir(&self) -> Option<PathBuf> {
        (!self.mappings.dir.is_empty()).then(|| PathBuf::from(&self.mappings.dir))
    }
}
