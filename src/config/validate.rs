//! The second layer: the serde mirror checked and turned into typed values. Each check names the
//! key path it is about; `Checker` turns the path into a line through the span index, and collects
//! every issue so the user sees them all at once. Absent keys take the defaults from `default`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::default::{
    DEFAULT_BACKUP_EVERY_HOURS, DEFAULT_BACKUP_KEEP, DEFAULT_BAUD, DEFAULT_LOG,
    DEFAULT_SOCKET_MODE, daemon_with_state_dir, simulated_modem,
};
use super::error::{ConfigError, Issue};
use super::raw::{
    RawCommunity, RawConfig, RawContactCard, RawDaemon, RawDispatch, RawHttp, RawKeywords,
    RawModem, RawPrincipal, RawSimulator, RawVoice,
};
use super::spans::{SpanIndex, line_column};
use super::{
    CommunityConfig, Config, ContactCard, DaemonConfig, DispatchConfig, HttpSettings, Keywords,
    Limits, ModemConfig, OnboardingQuestion, Pin, Principal, Profile, QuietHours, RetryConfig,
    SimulatorConfig, TlsFiles, VoiceSettings,
};
use crate::community::member::{MemberField, custom_field_error};

/// Serial rates a USB modem's tty accepts (termios B-constants up to 921600).
pub(crate) const STANDARD_BAUDS: &[u32] = &[
    1200, 2400, 4800, 9600, 19_200, 38_400, 57_600, 115_200, 230_400, 460_800, 921_600,
];

/// Placeholders text templates may use.
const PLACEHOLDERS: &[&str] = &["org", "contact"];

/// Placeholders an onboarding question may use, besides the configured custom fields.
const QUESTION_PLACEHOLDERS: &[&str] = &["org", "contact", "name", "first_name", "city"];

/// Parse, deserialise and validate `text`.
pub(crate) fn load(text: &str, origin: &str, base: Option<&Path>) -> Result<Config, ConfigError> {
    let index = SpanIndex::build(text);
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let (line, column, key) = match e.span() {
                Some(span) => {
                    let (line, column) = line_column(text, span.start);
                    let key = index.path_at(span.start).unwrap_or("").to_string();
                    (Some(line), Some(column), key)
                }
                None => (None, None, String::new()),
            };
            return Err(ConfigError::Invalid {
                issues: vec![Issue {
                    origin: origin.to_string(),
                    line,
                    column,
                    key,
                    message: e.message().trim_end().to_string(),
                }],
            });
        }
    };
    let mut checker = Checker {
        text,
        origin,
        index: &index,
        base,
        issues: Vec::new(),
    };
    let config = checker.config(raw);
    if checker.issues.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid {
            issues: checker.issues,
        })
    }
}

pub(super) struct Checker<'a> {
    text: &'a str,
    origin: &'a str,
    index: &'a SpanIndex,
    base: Option<&'a Path>,
    issues: Vec<Issue>,
}

impl Checker<'_> {
    pub(super) fn fail(&mut self, path: &str, message: impl Into<String>) {
        let (line, column) = match self.index.find(path) {
            Some(place) => {
                let (l, c) = line_column(self.text, place.key.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        self.issues.push(Issue {
            origin: self.origin.to_string(),
            line,
            column,
            key: path.to_string(),
            message: message.into(),
        });
    }

    /// `value` (or `default`) checked to lie in `min..=max`.
    pub(super) fn ranged<T>(
        &mut self,
        path: &str,
        value: Option<T>,
        default: T,
        min: T,
        max: T,
    ) -> T
    where
        T: PartialOrd + Copy + std::fmt::Display,
    {
        let v = value.unwrap_or(default);
        if v < min || v > max {
            self.fail(path, format!("must be between {min} and {max}, got {v}"));
            return default;
        }
        v
    }

    /// An optional value that, when given, must lie in `min..=max`.
    fn ranged_opt(&mut self, path: &str, value: Option<u32>, min: u32, max: u32) -> Option<u32> {
        let v = value?;
        if v < min || v > max {
            self.fail(path, format!("must be between {min} and {max}, got {v}"));
            return None;
        }
        Some(v)
    }

    pub(super) fn path(&mut self, key: &str, value: &str) -> PathBuf {
        if value.is_empty() {
            self.fail(key, "must not be empty");
        }
        if value.contains('\0') {
            self.fail(key, "must not contain a NUL byte");
        }
        let path = PathBuf::from(value);
        match self.base {
            Some(base) if path.is_relative() => base.join(path),
            _ => path,
        }
    }

    fn nonempty_text(&mut self, key: &str, value: Option<String>, default: &str) -> String {
        let value = value.unwrap_or_else(|| default.to_string());
        if value.trim().is_empty() {
            self.fail(key, "must not be empty");
        }
        value
    }

    fn template(&mut self, key: &str, value: &str) {
        if let Err(message) = check_template(value) {
            self.fail(key, message);
        }
    }

    pub(super) fn e164(&mut self, key: &str, value: &str) {
        if !is_e164(value) {
            self.fail(
                key,
                format!("must be an E.164 number like +15551234567, got {value:?}"),
            );
        }
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let daemon = self.daemon(raw.daemon);
        let simulator = self.simulator(raw.simulator.unwrap_or_default(), &daemon.state_dir);
        let mut modems: Vec<ModemConfig> = raw
            .modem
            .into_iter()
            .enumerate()
            .map(|(i, m)| self.modem(i, m))
            .collect();
        if modems.is_empty() {
            if simulator.enabled {
                let count = usize::try_from(simulator.modems).unwrap_or(0);
                modems = (0..count).map(|i| simulated_modem(&simulator, i)).collect();
            } else {
                self.fail(
                    "modem",
                    "at least one [[modem]] table is required (or an enabled [simulator])",
                );
            }
        }
        self.unique_modems(&modems);
        let dispatch = self.dispatch(raw.dispatch.unwrap_or_default());
        let community = self.community(raw.community.unwrap_or_default());
        let voice = self.voice(raw.voice.unwrap_or_default());
        let http = raw.http.and_then(|h| self.http(h));
        let hooks = self.hooks(raw.webhook, raw.hook, raw.hooks.unwrap_or_default());
        let store = self.store(raw.store.unwrap_or_default());
        Config {
            daemon,
            modems,
            dispatch,
            community,
            voice,
            simulator,
            http,
            hooks,
            store,
        }
    }

    /// `[http]`: no `listen` = no server. A non-loopback address must have TLS or say
    /// `allow_plaintext = true`: tokens and members' texts must not cross a network in clear by
    /// accident.
    fn http(&mut self, raw: RawHttp) -> Option<HttpSettings> {
        let listen = raw.listen.as_deref()?;
        let addr: std::net::SocketAddr = match listen.parse() {
            Ok(a) => a,
            Err(_) => {
                self.fail(
                    "http.listen",
                    format!("must be an address and port like \"127.0.0.1:8640\", got {listen:?}"),
                );
                return None;
            }
        };
        let mut s = HttpSettings::new(addr);
        s.tls = match (raw.tls_cert.as_deref(), raw.tls_key.as_deref()) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: self.path("http.tls_cert", cert),
                key: self.path("http.tls_key", key),
            }),
            (None, None) => None,
            (Some(_), None) => {
                self.fail("http.tls_cert", "needs http.tls_key as well");
                None
            }
            (None, Some(_)) => {
                self.fail("http.tls_key", "needs http.tls_cert as well");
                None
            }
        };
        s.allow_plaintext = raw.allow_plaintext.unwrap_or(false);
        if !addr.ip().is_loopback() && s.tls.is_none() && !s.allow_plaintext {
            self.fail(
                "http.listen",
                format!(
                    "{addr} is reachable from the network: set tls_cert and tls_key, or \
                     allow_plaintext = true when a TLS proxy on this host fronts it"
                ),
            );
        }
        let body = self.ranged(
            "http.max_body_bytes",
            raw.max_body_bytes,
            u32::try_from(crate::http::DEFAULT_MAX_BODY_BYTES).unwrap_or(u32::MAX),
            1024,
            64 * 1024 * 1024,
        );
        s.max_body_bytes = usize::try_from(body).unwrap_or(crate::http::DEFAULT_MAX_BODY_BYTES);
        s.rate_per_minute = self.ranged(
            "http.rate_per_minute",
            raw.rate_per_minute,
            crate::http::DEFAULT_RATE_PER_MINUTE,
            1,
            1_000_000,
        );
        s.request_timeout_secs = u64::from(self.ranged(
            "http.request_timeout_secs",
            raw.request_timeout_secs,
            30,
            1,
            3600,
        ));
        Some(s)
    }

    fn daemon(&mut self, raw: RawDaemon) -> DaemonConfig {
        let state_dir = self.path("daemon.state_dir", &raw.state_dir);
        let mut daemon = daemon_with_state_dir(state_dir);
        if let Some(socket) = raw.admin_socket {
            daemon.admin_socket = self.path("daemon.admin_socket", &socket);
        }
        daemon.admin_allow_users =
            self.principals("daemon.admin_allow_users", raw.admin_allow_users);
        daemon.admin_allow_groups =
            self.principals("daemon.admin_allow_groups", raw.admin_allow_groups);
        daemon.socket_mode = match raw.socket_mode {
            None => DEFAULT_SOCKET_MODE,
            Some(text) => match parse_mode(&text) {
                Ok(mode) => mode,
                Err(message) => {
                    self.fail("daemon.socket_mode", message);
                    DEFAULT_SOCKET_MODE
                }
            },
        };
        let log = raw.log.unwrap_or_else(|| DEFAULT_LOG.to_string());
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log) {
            self.fail("daemon.log", format!("not a valid log filter: {e}"));
        }
        daemon.log = log;
        daemon.in_doubt_policy = raw.in_doubt_policy.unwrap_or_default();
        daemon.backup_dir = raw.backup_dir.map(|d| self.path("daemon.backup_dir", &d));
        // At most a year apart, at most 1000 kept: beyond either, the setting is surely a typo.
        daemon.backup_every_hours = self.ranged(
            "daemon.backup_every_hours",
            raw.backup_every_hours,
            DEFAULT_BACKUP_EVERY_HOURS,
            1,
            24 * 366,
        );
        daemon.backup_keep = self.ranged(
            "daemon.backup_keep",
            raw.backup_keep,
            DEFAULT_BACKUP_KEEP,
            1,
            1000,
        );
        // A backup beside the database dies with it; and the database's own directory would
        // also mix the backups with the files a restore renames.
        if daemon.backup_dir.as_ref() == Some(&daemon.state_dir) {
            self.fail(
                "daemon.backup_dir",
                "must not be the state directory itself (use a subdirectory, or better another disk)",
            );
        }
        daemon
    }

    fn principals(&mut self, key: &str, raw: Option<Vec<RawPrincipal>>) -> Vec<Principal> {
        let mut out = Vec::new();
        for (i, p) in raw.unwrap_or_default().into_iter().enumerate() {
            match p {
                RawPrincipal::Id(id) => out.push(Principal::Id(id)),
                RawPrincipal::Name(name) => {
                    if let Err(message) = check_account_name(&name) {
                        self.fail(&format!("{key}[{i}]"), message);
                    }
                    out.push(Principal::Name(name));
                }
            }
        }
        out
    }

    fn modem(&mut self, i: usize, raw: RawModem) -> ModemConfig {
        let key = |field: &str| format!("modem[{i}].{field}");
        if !is_modem_name(&raw.name) {
            self.fail(
                &key("name"),
                format!(
                    "must be 1 to 32 characters of a-z, 0-9, '_' or '-', got {:?}",
                    raw.name
                ),
            );
        }
        let port = self.path(&key("port"), &raw.port);
        let audio_port = raw
            .audio_port
            .as_ref()
            .map(|p| self.path(&key("audio_port"), p));
        let upkeep = super::upkeep::check(self, i, &raw);
        let baud = raw.baud.unwrap_or(DEFAULT_BAUD);
        if !STANDARD_BAUDS.contains(&baud) {
            self.fail(
                &key("baud"),
                format!(
                    "must be a standard rate ({}), got {baud}",
                    STANDARD_BAUDS
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        let pin = raw.pin.map(|pin| {
            if !(4..=8).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
                // The value itself is not echoed: it is a secret even when malformed.
                self.fail(&key("pin"), "must be 4 to 8 digits");
            }
            Pin(pin)
        });
        let d = Limits::DEFAULT;
        let limits = Limits {
            per_minute: self.ranged(&key("per_minute"), raw.per_minute, d.per_minute, 1, 600),
            per_hour: self.ranged(&key("per_hour"), raw.per_hour, d.per_hour, 1, 36_000),
            per_day: self.ranged(&key("per_day"), raw.per_day, d.per_day, 1, 864_000),
        };
        if limits.per_minute > limits.per_hour {
            self.fail(
                &key("per_minute"),
                format!(
                    "per_minute ({}) must not exceed per_hour ({})",
                    limits.per_minute, limits.per_hour
                ),
            );
        }
        if limits.per_hour > limits.per_day {
            self.fail(
                &key("per_hour"),
                format!(
                    "per_hour ({}) must not exceed per_day ({})",
                    limits.per_hour, limits.per_day
                ),
            );
        }
        if let Some(number) = &raw.number {
            self.e164(&key("number"), number);
        }
        let profile = raw.profile.unwrap_or_default();
        if let Some(mode) = raw.voice_audio
            && !crate::voice::AudioMode::supported(profile).contains(&mode)
        {
            self.fail(
                &key("voice_audio"),
                format!(
                    "profile {} has no {:?} voice path (supported: {})",
                    profile.as_str(),
                    mode.as_str(),
                    match crate::voice::AudioMode::supported(profile) {
                        [] => "none".to_owned(),
                        m => m.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", "),
                    }
                ),
            );
        }
        ModemConfig {
            name: raw.name,
            port,
            audio_port,
            baud,
            pin,
            profile,
            limits,
            enabled: raw.enabled.unwrap_or(true),
            number: raw.number,
            voice_audio: raw.voice_audio,
            upkeep,
        }
    }

    fn unique_modems(&mut self, modems: &[ModemConfig]) {
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        let mut ports: BTreeMap<&Path, String> = BTreeMap::new();
        for (i, m) in modems.iter().enumerate() {
            if let Some(first) = names.insert(&m.name, i) {
                self.fail(
                    &format!("modem[{i}].name"),
                    format!("duplicate modem name {:?} (also modem[{first}])", m.name),
                );
            }
            let mut claims = vec![(m.port.as_path(), format!("modem[{i}].port"))];
            if let Some(audio) = &m.audio_port {
                claims.push((audio.as_path(), format!("modem[{i}].audio_port")));
            }
            for (path, key) in claims {
                if let Some(first) = ports.insert(path, key.clone()) {
                    self.fail(
                        &key,
                        format!("{} is already used by {first}", path.display()),
                    );
                }
            }
        }
    }

    fn dispatch(&mut self, raw: RawDispatch) -> DispatchConfig {
        let d = DispatchConfig::default();
        let quiet_hours = match raw.quiet_hours {
            None => d.quiet_hours,
            Some(q) => {
                let start = self.clock("dispatch.quiet_hours.start", q.start, (21, 0));
                let end = self.clock("dispatch.quiet_hours.end", q.end, (8, 0));
                if start == end {
                    self.fail(
                        "dispatch.quiet_hours.end",
                        "must differ from start (use enabled = false to turn quiet hours off)",
                    );
                }
                q.enabled
                    .unwrap_or(true)
                    .then_some(QuietHours { start, end })
            }
        };
        let default_time_zone = raw.default_time_zone.unwrap_or(d.default_time_zone);
        if let Err(message) = check_time_zone(&default_time_zone) {
            self.fail("dispatch.default_time_zone", message);
        }
        let retry = raw.retry.unwrap_or_default();
        let rd = RetryConfig::default();
        DispatchConfig {
            per_recipient_per_day: self.ranged_opt(
                "dispatch.per_recipient_per_day",
                raw.per_recipient_per_day,
                1,
                10_000,
            ),
            pool_per_minute: self.ranged_opt(
                "dispatch.pool_per_minute",
                raw.pool_per_minute,
                1,
                10_000,
            ),
            jitter_ms: self.ranged("dispatch.jitter_ms", raw.jitter_ms, d.jitter_ms, 0, 600_000),
            quiet_hours,
            default_time_zone,
            failover_after_minutes: self.ranged_opt(
                "dispatch.failover_after_minutes",
                raw.failover_after_minutes,
                1,
                10_080,
            ),
            move_home_on_failover: raw.move_home_on_failover.unwrap_or(d.move_home_on_failover),
            geomatch: raw.geomatch.unwrap_or(d.geomatch),
            retry: RetryConfig {
                max_attempts: self.ranged(
                    "dispatch.retry.max_attempts",
                    retry.max_attempts,
                    rd.max_attempts,
                    1,
                    100,
                ),
                base_delay_secs: self.ranged(
                    "dispatch.retry.base_delay_secs",
                    retry.base_delay_secs,
                    rd.base_delay_secs,
                    1,
                    86_400,
                ),
            },
            ttl_hours: self.ranged("dispatch.ttl_hours", raw.ttl_hours, d.ttl_hours, 1, 8760),
        }
    }

    fn clock(&mut self, key: &str, value: Option<String>, default: (u8, u8)) -> (u8, u8) {
        match value {
            None => default,
            Some(text) => parse_clock(&text).unwrap_or_else(|| {
                self.fail(
                    key,
                    format!("must be a time HH:MM (00:00 to 23:59), got {text:?}"),
                );
                default
            }),
        }
    }

    fn community(&mut self, raw: RawCommunity) -> CommunityConfig {
        let d = CommunityConfig::default();
        let org_name = self.nonempty_text("community.org_name", raw.org_name, &d.org_name);
        let contact = raw.contact.filter(|c| !c.trim().is_empty());
        let welcome = self.nonempty_text("community.welcome", raw.welcome, &d.welcome);
        let compliance = self.nonempty_text("community.compliance", raw.compliance, &d.compliance);
        let help_text = self.nonempty_text("community.help_text", raw.help_text, &d.help_text);
        let stop_confirmation = self.nonempty_text(
            "community.stop_confirmation",
            raw.stop_confirmation,
            &d.stop_confirmation,
        );
        let start_confirmation = self.nonempty_text(
            "community.start_confirmation",
            raw.start_confirmation,
            &d.start_confirmation,
        );
        let double_opt_in_prompt = self.nonempty_text(
            "community.double_opt_in_prompt",
            raw.double_opt_in_prompt,
            &d.double_opt_in_prompt,
        );
        for (key, text) in [
            ("community.welcome", &welcome),
            ("community.compliance", &compliance),
            ("community.help_text", &help_text),
            ("community.stop_confirmation", &stop_confirmation),
            ("community.start_confirmation", &start_confirmation),
            ("community.double_opt_in_prompt", &double_opt_in_prompt),
        ] {
            self.template(key, text);
            if contact.is_none() && text.contains("{contact}") {
                self.fail(key, "uses {contact} but community.contact is not set");
            }
        }
        let mut onboarding = Vec::new();
        let mut fields = BTreeSet::new();
        for (i, q) in raw.onboarding.unwrap_or_default().into_iter().enumerate() {
            let custom_error = match MemberField::from_field_name(&q.field) {
                MemberField::Custom(name) => custom_field_error(&name),
                _ => None,
            };
            if !is_field_name(&q.field) {
                self.fail(
                    &format!("community.onboarding[{i}].field"),
                    format!(
                        "must be 1 to 32 characters of a-z, 0-9 or '_', got {:?}",
                        q.field
                    ),
                );
            } else if let Some(message) = custom_error {
                self.fail(&format!("community.onboarding[{i}].field"), message);
            } else if !fields.insert(q.field.clone()) {
                self.fail(
                    &format!("community.onboarding[{i}].field"),
                    format!("duplicate field {:?}", q.field),
                );
            }
            if q.question.trim().is_empty() {
                self.fail(
                    &format!("community.onboarding[{i}].question"),
                    "must not be empty",
                );
            }
            onboarding.push(OnboardingQuestion {
                field: q.field,
                question: q.question,
            });
        }
        // Questions are rendered for the member: they may also use the member placeholders and
        // every configured custom field (`{shirt_size}`), the same names a broadcast may use.
        let custom: Vec<String> = fields
            .iter()
            .filter(|f| matches!(MemberField::from_field_name(f), MemberField::Custom(_)))
            .cloned()
            .collect();
        let mut allowed: Vec<&str> = QUESTION_PLACEHOLDERS.to_vec();
        allowed.extend(custom.iter().map(String::as_str));
        for (i, q) in onboarding.iter().enumerate() {
            if let Err(e) = crate::community::templates::check(&q.question, &allowed) {
                self.fail(
                    &format!("community.onboarding[{i}].question"),
                    e.to_string().trim_start_matches("template: ").to_string(),
                );
            }
        }
        let keywords = self.keywords(raw.keywords.unwrap_or_default());
        let contact_card = raw.contact_card.map(|c| self.contact_card(c, &org_name));
        let owners = super::owners::owner_settings(
            self,
            raw.owners,
            raw.forward_to_owners,
            raw.owner_pin,
            raw.owner_refusals_per_hour,
        );
        CommunityConfig {
            org_name,
            contact,
            welcome,
            compliance,
            help_text,
            stop_confirmation,
            start_confirmation,
            double_opt_in: raw.double_opt_in.unwrap_or(d.double_opt_in),
            double_opt_in_prompt,
            onboarding,
            keywords,
            contact_card,
            owners,
        }
    }

    fn keywords(&mut self, raw: RawKeywords) -> Keywords {
        let d = Keywords::default();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut list = |checker: &mut Self,
                        name: &str,
                        given: Option<Vec<String>>,
                        default: Vec<String>,
                        required: Option<&str>| {
            let key = format!("community.keywords.{name}");
            let words: Vec<String> = match given {
                None => default,
                Some(words) => words.iter().map(|w| normalise_keyword(w)).collect(),
            };
            for (i, w) in words.iter().enumerate() {
                let item = format!("{key}[{i}]");
                if w.is_empty() {
                    checker.fail(&item, "must not be empty");
                } else if let Some(other) = seen.insert(w.clone(), item.clone()) {
                    checker.fail(&item, format!("{w:?} is already listed at {other}"));
                }
            }
            if let Some(required) = required
                && !words.iter().any(|w| w == required)
            {
                checker.fail(
                    &key,
                    format!("must contain {required} (members are told to text it)"),
                );
            }
            words
        };
        let stop = list(self, "stop", raw.stop, d.stop, Some("STOP"));
        let start = list(self, "start", raw.start, d.start, Some("START"));
        let help = list(self, "help", raw.help, d.help, Some("HELP"));
        let join = list(self, "join", raw.join, d.join, None);
        Keywords {
            stop,
            start,
            help,
            join,
        }
    }

    fn contact_card(&mut self, raw: RawContactCard, org_name: &str) -> ContactCard {
        let name = raw.name.unwrap_or_else(|| org_name.to_string());
        if name.trim().is_empty() {
            self.fail("community.contact_card.name", "must not be empty");
        }
        let numbers = raw.numbers.unwrap_or_default();
        for (i, n) in numbers.iter().enumerate() {
            self.e164(&format!("community.contact_card.numbers[{i}]"), n);
        }
        for (key, url) in [
            ("community.contact_card.url", &raw.url),
            ("community.contact_card.photo_url", &raw.photo_url),
            ("community.contact_card.vcf_url", &raw.vcf_url),
        ] {
            if let Some(url) = url
                && !(url.starts_with("https://") || url.starts_with("http://"))
            {
                self.fail(key, format!("must be an http(s) URL, got {url:?}"));
            }
        }
        let mode = raw.mode.unwrap_or_default();
        match mode {
            super::CardMode::Link if raw.vcf_url.is_none() => {
                self.fail("community.contact_card.mode", "mode \"link\" needs vcf_url")
            }
            super::CardMode::VcardSms | super::CardMode::Text
                if numbers.is_empty() && raw.url.is_none() =>
            {
                self.fail(
                    "community.contact_card.numbers",
                    "a card needs at least one number or a url",
                )
            }
            _ => {}
        }
        ContactCard {
            name,
            numbers,
            url: raw.url,
            photo_url: raw.photo_url,
            mode,
            vcf_url: raw.vcf_url,
        }
    }

    fn voice(&mut self, raw: RawVoice) -> VoiceSettings {
        let d = super::default::default_voice();
        let greeting = raw.greeting.map(|g| self.path("voice.greeting", &g));
        let max_seconds = self.ranged("voice.max_seconds", raw.max_seconds, d.max_seconds, 1, 600);
        let silence_seconds = self.ranged(
            "voice.silence_seconds",
            raw.silence_seconds,
            d.silence_seconds,
            1,
            60,
        );
        if silence_seconds > max_seconds {
            self.fail(
                "voice.silence_seconds",
                format!("must not exceed max_seconds ({max_seconds}), got {silence_seconds}"),
            );
        }
        let reply_text = match raw.reply_text {
            None => d.reply_text,
            Some(text) if text.trim().is_empty() => None,
            Some(text) => {
                self.template("voice.reply_text", &text);
                Some(text)
            }
        };
        let allow = raw.allow.unwrap_or_default();
        let block = raw.block.unwrap_or_default();
        for (i, n) in allow.iter().enumerate() {
            self.e164(&format!("voice.allow[{i}]"), n);
        }
        for (i, n) in block.iter().enumerate() {
            self.e164(&format!("voice.block[{i}]"), n);
            if allow.contains(n) {
                self.fail(
                    &format!("voice.block[{i}]"),
                    format!("{n} is also in allow"),
                );
            }
        }
        VoiceSettings {
            enabled: raw.enabled.unwrap_or(d.enabled),
            answer_after_rings: self.ranged(
                "voice.answer_after_rings",
                raw.answer_after_rings,
                d.answer_after_rings,
                1,
                20,
            ),
            greeting,
            builtin_greeting: raw.builtin_greeting.unwrap_or(d.builtin_greeting),
            voicemail: raw.voicemail.unwrap_or(d.voicemail),
            max_seconds,
            silence_seconds,
            reply_text,
            allow,
            block,
            ..d
        }
    }

    fn simulator(&mut self, raw: RawSimulator, state_dir: &Path) -> SimulatorConfig {
        let dir = match raw.dir {
            Some(dir) => self.path("simulator.dir", &dir),
            None => state_dir.join("sim"),
        };
        let profiles = raw.profiles.unwrap_or_else(|| vec![Profile::Generic]);
        if profiles.is_empty() {
            self.fail("simulator.profiles", "must list at least one profile");
        }
        SimulatorConfig {
            enabled: raw.enabled.unwrap_or(false),
            modems: self.ranged("simulator.modems", raw.modems, 2, 1, 64),
            dir,
            profiles,
        }
    }
}

/// An octal permission string such as `"0660"` or `"660"`.
pub(crate) fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return Err(format!(
            "must be an octal mode such as \"0660\", got {text:?}"
        ));
    }
    let mode = u32::from_str_radix(digits, 8).map_err(|e| format!("{e}"))?;
    if mode > 0o777 {
        return Err(format!(
            "must be at most 0777 (no setuid/setgid/sticky bits), got {text:?}"
        ));
    }
    Ok(mode)
}

/// `HH:MM` (or `H:MM`), 00:00 to 23:59.
pub(crate) fn parse_clock(text: &str) -> Option<(u8, u8)> {
    let (h, m) = text.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    if !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: u8 = h.parse().ok()?;
    let m: u8 = m.parse().ok()?;
    (h < 24 && m < 60).then_some((h, m))
}

/// An IANA zone name known to the system's tz database; where the machine has no tz database
/// (some minimal containers), only the name's syntax is checked.
pub(crate) fn check_time_zone(name: &str) -> Result<(), String> {
    let syntax_ok = !name.is_empty()
        && name.len() <= 64
        && name.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_+-".contains(&b))
        });
    if !syntax_ok {
        return Err(format!(
            "must be an IANA time zone name like \"Europe/Berlin\", got {name:?}"
        ));
    }
    let db = jiff::tz::db();
    if db.is_definitively_empty() {
        return Ok(());
    }
    db.get(name)
        .map(|_| ())
        .map_err(|_| format!("unknown time zone {name:?} (not in the tz database)"))
}

/// E.164: `+`, then a non-zero digit and up to 14 more (ITU-T E.164 §6: at most 15 digits).
pub(crate) fn is_e164(text: &str) -> bool {
    let Some(digits) = text.strip_prefix('+') else {
        return false;
    };
    (3..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

fn is_modem_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn is_field_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A user or group name in the portable subset systemd accepts.
fn check_account_name(name: &str) -> Result<(), String> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "numeric ids are given as integers, not strings: {name}"
        ));
    }
    let ok = (1..=32).contains(&name.len())
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("not a valid user or group name: {name:?}"))
    }
}

/// Upper-case and collapse inner whitespace, so `" opt   out "` matches `OPT OUT`.
pub(crate) fn normalise_keyword(word: &str) -> String {
    word.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// Only known `{placeholders}`; a literal brace is written `{{` or `}}`.
pub(crate) fn check_template(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(pos) = rest.find(['{', '}']) {
        let (_, tail) = rest.split_at(pos);
        if let Some(after) = tail.strip_prefix("{{").or_else(|| tail.strip_prefix("}}")) {
            rest = after;
            continue;
        }
        if tail.starts_with('}') {
            return Err("unmatched '}' (write '}}' for a literal brace)".to_string());
        }
        let inner = tail.get(1..).unwrap_or("");
        let Some(close) = inner.find('}') else {
            return Err("unclosed '{' (write '{{' for a literal brace)".to_string());
        };
        let name = inner.get(..close).unwrap_or("");
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{name}}} (known: {})",
                PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        rest = inner.get(close + 1..).unwrap_or("");
    }
    Ok(())
}
