//! The gateway's configuration: one TOML file read into typed values (docs/configuration.md). It
//! owns the file format, its defaults and its validation, and the
//! embedded default that lets `gsmgate daemon` run on a simulated pool with no file at all. It does
//! not open ports, resolve user names, read greetings or create directories: those belong to the
//! modules that use the values, at the time they use them, so `check-config` stays a pure check that
//! can run as `ExecStartPre` before anything is touched.
//!
//! Two layers, as in ripgrep's raw args → validated args: `raw` is a serde mirror of the file with
//! `deny_unknown_fields` on every table (a typo is an error, never a silently ignored key), and
//! `validate` turns it into the types below, applying defaults and checking ranges and
//! cross-field rules. Errors name the file, the line and the key path (`gsmgate.toml:12:
//! modem[1].per_minute: must be between 1 and 600, got 0`); lines come from `spans`, an index
//! of key paths to byte spans built from toml's spanned document, so the mirror stays free of
//! position wrappers. Every issue in a file is reported at once.
//!
//! Relative paths in a file are taken relative to the directory holding the file, so a config and
//! its greeting WAV can move together and the answer does not depend on the daemon's working
//! directory. Text given without a file ([`Config::from_str`], the embedded default) keeps relative
//! paths relative to the current working directory.

mod convert;
mod default;
mod error;
mod hooks;
mod owners;
mod raw;
mod spans;
mod store;
mod upkeep;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::hooks::{HookConfig, HooksSettings, WebhookConfig};
pub use crate::http::{HttpSettings, TlsFiles};
pub use default::EMBEDDED_DEFAULT_TOML;
pub use error::{ConfigError, Issue};
pub use store::{PasswordSource, StoreSettings};

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub daemon: DaemonConfig,
    /// The modems in file order; never empty.
    pub modems: Vec<ModemConfig>,
    pub dispatch: DispatchConfig,
    pub community: CommunityConfig,
    /// `[voice]`: the voice layer's own settings, the file's keys filled in (docs/voice.md).
    pub voice: VoiceSettings,
    pub simulator: SimulatorConfig,
    /// `[http]`: the HTTP API; `None` (no `[http]` table, or no `listen`) = no HTTP server.
    pub http: Option<HttpSettings>,
    /// `[[webhook]]`, `[[hook]]`, `[hooks]`: the hooks layer's settings (config/hooks.rs).
    pub hooks: HooksSettings,
    /// `[store]`: SQLite in the state dir, or a PostgreSQL database shared by sites.
    pub store: StoreSettings,
}

/// `[daemon]`: where state lives and who may administer it.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonConfig {
    /// Database, voicemails and other state.
    pub state_dir: PathBuf,
    /// The admin Unix socket; defaults to `<state_dir>/admin.sock`.
    pub admin_socket: PathBuf,
    /// Users (besides root, always allowed) whose peer credentials may use the admin socket.
    pub admin_allow_users: Vec<Principal>,
    /// Groups whose members may use the admin socket.
    pub admin_allow_groups: Vec<Principal>,
    /// Permission bits the daemon sets on the socket (from an octal string, default `0660`).
    pub socket_mode: u32,
    /// A tracing `EnvFilter` directive such as `info` or `gsmgate=debug,info`.
    pub log: String,
    /// What to do at start-up with sends that were in flight at a crash.
    pub in_doubt_policy: InDoubtPolicy,
    /// Where the daemon writes its scheduled backups; `None` = no scheduled backups.
    pub backup_dir: Option<PathBuf>,
    /// Hours between scheduled backups.
    pub backup_every_hours: u32,
    /// How many scheduled backups to keep; older ones are deleted.
    pub backup_keep: u32,
}

/// A user or group, by name (resolved when the daemon starts) or by numeric id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Name(String),
    Id(u32),
}

/// One `[[modem]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModemConfig {
    /// Unique, `[a-z0-9_-]`, used in logs, the admin protocol and the store.
    pub name: String,
    /// The AT command tty.
    pub port: PathBuf,
    /// The USB audio tty for PCM voice, where the model has one.
    pub audio_port: Option<PathBuf>,
    pub baud: u32,
    /// SIM PIN, sent only when the SIM asks for it.
    pub pin: Option<Pin>,
    pub profile: Profile,
    pub limits: Limits,
    /// A disabled modem stays configured but is not opened.
    pub enabled: bool,
    /// The SIM's own number in E.164, when known (`AT+CNUM` is often empty: docs/modems.md).
    pub number: Option<String>,
    /// How the greeting reaches callers (`pcm` over `audio_port`, or `file` played from the
    /// modem's flash); `None` = the family's default (docs/voice.md).
    pub voice_audio: Option<AudioMode>,
    /// Balance check and keep-alive of the SIM (docs/modems.md, "Balance", "Keep-alive").
    pub upkeep: SimUpkeep,
}

/// A SIM PIN. Its `Debug` never shows the digits, so a config dumped into a log leaks nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Pin(String);

impl Pin {
    /// The digits, for the one place that sends `AT+CPIN`.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// Which quirk set the modem layer applies (docs/modems.md). The modem layer owns the type; the
/// config file names it with [`Profile::as_str`], so the file format and the actor agree by
/// construction.
pub use crate::modem::Profile;

/// `[[modem]] voice_audio`: the voice layer owns the type, the config file names it.
pub use crate::voice::AudioMode;

/// `[voice]`: the voice layer owns its settings; the file sets the keys it exposes.
pub use crate::voice::VoiceSettings;

/// `[dispatch]` and the per-modem limits: the dispatch layer owns the types, the file fills them.
pub use crate::dispatch::settings::{
    DispatchConfig, InDoubtPolicy, Limits, QuietHours, RetryConfig,
};

/// `[[modem]] balance_*` / `keepalive_*`: the dispatch layer owns the SIM upkeep settings.
pub use crate::dispatch::upkeep::{KeepaliveAction, SimUpkeep};

/// `[community]`: the community layer owns its settings; this module fills them from the file.
pub use crate::community::settings::{
    CardMode, CommunityConfig, ContactCard, Keywords, OnboardingQuestion,
};

/// `[simulator]`: the in-process modem simulator started before the modems are opened.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatorConfig {
    pub enabled: bool,
    /// Number of simulated modems (`dir/modem0` …).
    pub modems: u32,
    /// Where the simulator creates its ports; defaults to `<state_dir>/sim`.
    pub dir: PathBuf,
    /// Profile of simulated modem `i` is `profiles[i % len]`; never empty.
    pub profiles: Vec<Profile>,
}

impl SimulatorConfig {
    /// The profile simulated modem `index` plays.
    pub fn profile_of(&self, index: usize) -> Profile {
        match self.profiles.len() {
            0 => Profile::Generic,
            len => self.profiles.get(index % len).copied().unwrap_or_default(),
        }
    }

    /// The AT port path of simulated modem `index` (`DIR/modemN`, as `gsmgate sim` creates it).
    pub fn port_of(&self, index: usize) -> PathBuf {
        self.dir.join(format!("modem{index}"))
    }
}

/// The read error of a file that is not UTF-8: the first bad byte, by line and column.
fn not_utf8(e: &std::string::FromUtf8Error) -> std::io::Error {
    let bytes = e.as_bytes();
    let at = e.utf8_error().valid_up_to();
    let before = bytes.get(..at).unwrap_or_default();
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(before.get(start..).unwrap_or_default())
        .chars()
        .count()
        + 1;
    let byte = bytes.get(at).copied().unwrap_or(0);
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("not UTF-8 text: byte 0x{byte:02X} at line {line}, column {column}"),
    )
}

impl Config {
    /// Read and validate a file; relative paths in it are relative to the file's directory.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let read = |source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let bytes = std::fs::read(path).map_err(read)?;
        // TOML is UTF-8 (toml.io, "Spec"); say where it is not, instead of the standard
        // library's "stream did not contain valid UTF-8".
        let text = String::from_utf8(bytes).map_err(|e| read(not_utf8(&e)))?;
        let base = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        validate::load(&text, &path.display().to_string(), Some(&base))
    }

    /// Validate configuration text; `origin` names it in errors. Relative paths stay relative to
    /// the current working directory.
    pub fn from_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        validate::load(text, origin, None)
    }

    /// Validate configuration text whose relative paths are relative to `base`.
    pub fn from_str_relative_to(
        text: &str,
        origin: &str,
        base: &Path,
    ) -> Result<Config, ConfigError> {
        validate::load(text, origin, Some(base))
    }

    /// The configuration `gsmgate daemon` runs without `--config`: see [`EMBEDDED_DEFAULT_TOML`].
    pub fn embedded_default() -> Config {
        default::embedded_default()
    }

    /// Names of the configured modems, in order.
    pub fn modem_names(&self) -> Vec<&str> {
        self.modems.iter().map(|m| m.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests;
