//! Default values, in one place: the defaults of every optional key, and the embedded default
//! configuration that `gsmgate daemon` runs without a file. The embedded default exists both as TOML
//! text (so `gsmgate check-config --default` and the docs can show it, and a user can start from
//! it) and as a value built here in Rust; a test checks that the text validates to exactly that value,
//! so the two cannot drift apart.
//!
//! The embedded pool is two simulated voice modems, a Huawei stick (`huawei`) and a Quectel EC25
//! (`quectel`), both streaming PCM on the simulator's audio ttys: the demo has to show the whole
//! story, and the story includes a call answered with a greeting, which `generic` modems cannot
//! do. Two families rather than one, so the demo also runs the per-family paths the tests cover.
//!
//! The embedded default turns quiet hours off: a simulated pool has no sleeping members, and the
//! README's story must run as written at any hour (with the default 21:00–08:00 window the demo
//! broadcast sat silent in the evening). A real configuration keeps the TCPA default unless it
//! says otherwise. Voice is on with the greeting that ships with gsmgate (`voice::builtin`) and a
//! voicemail after it.

use std::path::PathBuf;

use super::{
    CardMode, CommunityConfig, Config, ContactCard, DaemonConfig, DispatchConfig, InDoubtPolicy,
    Keywords, Limits, ModemConfig, Profile, QuietHours, RetryConfig, SimulatorConfig,
    VoiceSettings,
};

/// The embedded default configuration as TOML. Relative paths are relative to the working directory
/// of the daemon.
pub const EMBEDDED_DEFAULT_TOML: &str = r#"# gsmgate embedded default: what `gsmgate daemon` runs without --config.
# A simulated pool of two modems; all state in ./gsmgate-state (relative to the working directory).
# Every key not set here takes its documented default (see config/gsmgate.toml).

[daemon]
state_dir = "./gsmgate-state"
admin_socket = "./gsmgate-state/admin.sock"

[simulator]
enabled = true
modems = 2
dir = "./gsmgate-state/sim"
profiles = ["huawei", "quectel"]

# Voice-capable simulated modems: PCM on ./gsmgate-state/sim/modemN.audio, found by itself.
[[modem]]
name = "sim0"
port = "./gsmgate-state/sim/modem0"
profile = "huawei"

[[modem]]
name = "sim1"
port = "./gsmgate-state/sim/modem1"
profile = "quectel"

# A simulated pool has no sleeping members: no quiet hours, so the demo runs at any hour.
# A real gateway keeps the default 21:00-08:00 in each recipient's zone (config/gsmgate.toml).
[dispatch.quiet_hours]
enabled = false

# Calls are answered with the greeting that ships with gsmgate, then a voicemail is recorded.
[voice]
enabled = true
builtin_greeting = true
voicemail = true

# New members get the welcome, the compliance line and then this card as plain text.
[community.contact_card]
name = "gsmgate demo"
numbers = ["+15550100000"]
mode = "text"

# The HTTP API on loopback only (docs/http-api.md); every call needs a token from
# `gsmgate tokens create NAME --scope read|send|admin`.
[http]
listen = "127.0.0.1:8640"
"#;

pub(crate) const DEFAULT_SOCKET_MODE: u32 = 0o660;
/// The HTTP API's port in the embedded default and the docs' examples.
pub const DEFAULT_HTTP_PORT: u16 = 8640;
pub(crate) const DEFAULT_LOG: &str = "info";
pub(crate) const DEFAULT_BAUD: u32 = 115_200;
/// Daily: a Pi's database changes by at most a day of messages between two backups.
pub(crate) const DEFAULT_BACKUP_EVERY_HOURS: u32 = 24;
/// A week of daily backups.
pub(crate) const DEFAULT_BACKUP_KEEP: u32 = 7;

/// The welcome of the community-number story gsmgate was built for (README.md, "The story").
pub const DEFAULT_WELCOME: &str =
    "OK, I've got your number saved. Good to be connected. More from me soon";
/// The compliance line: frequency, rates and HELP/STOP, as the CTIA Messaging Principles and Best
/// Practices ask of a recurring program's messages.
pub const DEFAULT_COMPLIANCE: &str = "Msg frequency will vary. Msg&Data rates may apply. Reply HELP for help, STOP to cancel at any time.";
pub const DEFAULT_ORG_NAME: &str = "gsmgate";
pub const DEFAULT_HELP_TEXT: &str =
    "{org}: Msg frequency will vary. Msg&Data rates may apply. Reply STOP to cancel.";
pub const DEFAULT_STOP_CONFIRMATION: &str =
    "{org}: You are unsubscribed and will get no more messages. Reply START to subscribe again.";
pub const DEFAULT_START_CONFIRMATION: &str =
    "{org}: You are subscribed again. Reply HELP for help, STOP to cancel.";
pub const DEFAULT_DOUBLE_OPT_IN_PROMPT: &str =
    "{org}: Reply YES to confirm you want messages from us. Reply STOP to cancel.";
/// The recorded greeting's words from the public story, sent as a text after a call.
pub const DEFAULT_VOICE_REPLY: &str = "Send me a text and I'll send you messages from time to time";

/// Opt-out words: the list of the FCC's 2024 consent-revocation order (FCC 24-24, 89 FR 15756)
/// plus STOPALL, which carriers' and vendors' keyword lists add (docs/community.md, "Keywords").
pub const DEFAULT_STOP_KEYWORDS: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPT OUT",
];
/// Re-subscribe words, as the CTIA handbook's and the common vendors' lists: START, YES, UNSTOP.
pub const DEFAULT_START_KEYWORDS: &[&str] = &["START", "YES", "UNSTOP"];
pub const DEFAULT_HELP_KEYWORDS: &[&str] = &["HELP", "INFO"];
pub const DEFAULT_JOIN_KEYWORDS: &[&str] = &["JOIN"];

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|w| (*w).to_string()).collect()
}

impl Default for Keywords {
    fn default() -> Self {
        Keywords {
            stop: words(DEFAULT_STOP_KEYWORDS),
            start: words(DEFAULT_START_KEYWORDS),
            help: words(DEFAULT_HELP_KEYWORDS),
            join: words(DEFAULT_JOIN_KEYWORDS),
        }
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 5,
            base_delay_secs: 60,
        }
    }
}

impl QuietHours {
    /// 21:00–08:00, the TCPA window (47 CFR §64.1200(c)(1): not before 8 a.m. or after 9 p.m. at
    /// the recipient's location).
    pub const DEFAULT: QuietHours = QuietHours {
        start: (21, 0),
        end: (8, 0),
    };
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            per_recipient_per_day: None,
            pool_per_minute: None,
            jitter_ms: 2000,
            quiet_hours: Some(QuietHours::DEFAULT),
            default_time_zone: "UTC".to_string(),
            failover_after_minutes: None,
            move_home_on_failover: false,
            geomatch: false,
            retry: RetryConfig::default(),
            ttl_hours: 48,
        }
    }
}

impl Default for CommunityConfig {
    fn default() -> Self {
        CommunityConfig {
            org_name: DEFAULT_ORG_NAME.to_string(),
            contact: None,
            welcome: DEFAULT_WELCOME.to_string(),
            compliance: DEFAULT_COMPLIANCE.to_string(),
            help_text: DEFAULT_HELP_TEXT.to_string(),
            stop_confirmation: DEFAULT_STOP_CONFIRMATION.to_string(),
            start_confirmation: DEFAULT_START_CONFIRMATION.to_string(),
            double_opt_in: false,
            double_opt_in_prompt: DEFAULT_DOUBLE_OPT_IN_PROMPT.to_string(),
            onboarding: Vec::new(),
            keywords: Keywords::default(),
            contact_card: None,
            owners: Default::default(),
        }
    }
}

/// `[voice]` when the file leaves a key out: the voice layer's defaults, plus the text sent back
/// to a caller (the layer itself has no opinion on that text).
pub(crate) fn default_voice() -> VoiceSettings {
    VoiceSettings {
        reply_text: Some(DEFAULT_VOICE_REPLY.to_string()),
        ..VoiceSettings::default()
    }
}

/// A `[daemon]` with only `state_dir` given.
pub(crate) fn daemon_with_state_dir(state_dir: PathBuf) -> DaemonConfig {
    DaemonConfig {
        admin_socket: state_dir.join("admin.sock"),
        state_dir,
        admin_allow_users: Vec::new(),
        admin_allow_groups: Vec::new(),
        socket_mode: DEFAULT_SOCKET_MODE,
        log: DEFAULT_LOG.to_string(),
        in_doubt_policy: InDoubtPolicy::default(),
        backup_dir: None,
        backup_every_hours: DEFAULT_BACKUP_EVERY_HOURS,
        backup_keep: DEFAULT_BACKUP_KEEP,
    }
}

/// A simulated modem as the simulator names it: `simN` on `DIR/modemN`.
pub(crate) fn simulated_modem(sim: &SimulatorConfig, index: usize) -> ModemConfig {
    ModemConfig {
        name: format!("sim{index}"),
        port: sim.port_of(index),
        audio_port: None,
        baud: DEFAULT_BAUD,
        pin: None,
        profile: sim.profile_of(index),
        limits: Limits::DEFAULT,
        enabled: true,
        number: None,
        voice_audio: None,
        upkeep: crate::dispatch::upkeep::SimUpkeep::default(),
    }
}

pub(crate) fn embedded_default() -> Config {
    let state_dir = PathBuf::from("./gsmgate-state");
    let simulator = SimulatorConfig {
        enabled: true,
        modems: 2,
        dir: state_dir.join("sim"),
        profiles: vec![Profile::Huawei, Profile::Quectel],
    };
    let modems = (0..2).map(|i| simulated_modem(&simulator, i)).collect();
    Config {
        daemon: daemon_with_state_dir(state_dir),
        modems,
        // No quiet hours: a simulated pool has no sleeping members (module doc).
        dispatch: DispatchConfig {
            quiet_hours: None,
            ..DispatchConfig::default()
        },
        community: CommunityConfig {
            // The story's third reply; the number is the first simulated SIM's own number.
            contact_card: Some(ContactCard {
                name: "gsmgate demo".to_string(),
                numbers: vec!["+15550100000".to_string()],
                url: None,
                photo_url: None,
                mode: CardMode::Text,
                vcf_url: None,
            }),
            ..CommunityConfig::default()
        },
        voice: VoiceSettings {
            enabled: true,
            builtin_greeting: true,
            voicemail: true,
            ..default_voice()
        },
        simulator,
        http: Some(crate::http::HttpSettings::new(std::net::SocketAddr::from(
            ([127, 0, 0, 1], DEFAULT_HTTP_PORT),
        ))),
        hooks: crate::hooks::HooksSettings::default(),
        store: super::StoreSettings::Sqlite,
    }
}
