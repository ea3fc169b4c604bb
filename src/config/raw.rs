//! The serde mirror of the file format: one struct per table, every struct
//! `#[serde(deny_unknown_fields)]`, every optional key an `Option` so that defaults live in one
//! place (the validation layer) and not scattered over serde attributes. Nothing here is checked
//! beyond its TOML type; `validate` turns these into the typed configuration. Closed sets of words
//! (profile, policy, card mode) are serde enums so a misspelling is reported with the allowed
//! values by the deserialiser itself.

use serde::{Deserialize, Serialize};

use super::{CardMode, InDoubtPolicy, Profile};

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub daemon: RawDaemon,
    #[serde(default)]
    pub modem: Vec<RawModem>,
    pub dispatch: Option<RawDispatch>,
    pub community: Option<RawCommunity>,
    pub voice: Option<RawVoice>,
    pub simulator: Option<RawSimulator>,
    pub http: Option<RawHttp>,
    #[serde(default)]
    pub webhook: Vec<super::hooks::RawWebhook>,
    #[serde(default)]
    pub hook: Vec<super::hooks::RawHook>,
    pub hooks: Option<super::hooks::RawHooks>,
    pub store: Option<super::store::RawStore>,
}

/// A user or group given by name or by numeric id.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub(crate) enum RawPrincipal {
    Id(u32),
    Name(String),
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDaemon {
    pub state_dir: String,
    pub admin_socket: Option<String>,
    pub admin_allow_users: Option<Vec<RawPrincipal>>,
    pub admin_allow_groups: Option<Vec<RawPrincipal>>,
    pub socket_mode: Option<String>,
    pub log: Option<String>,
    pub in_doubt_policy: Option<InDoubtPolicy>,
    pub backup_dir: Option<String>,
    pub backup_every_hours: Option<u32>,
    pub backup_keep: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModem {
    pub name: String,
    pub port: String,
    pub audio_port: Option<String>,
    pub baud: Option<u32>,
    pub pin: Option<String>,
    pub profile: Option<Profile>,
    pub per_minute: Option<u32>,
    pub per_hour: Option<u32>,
    pub per_day: Option<u32>,
    pub enabled: Option<bool>,
    pub number: Option<String>,
    pub voice_audio: Option<crate::voice::AudioMode>,
    pub balance_ussd: Option<String>,
    pub balance_every_hours: Option<u32>,
    pub low_balance: Option<f64>,
    pub keepalive_days: Option<u32>,
    pub keepalive_ussd: Option<String>,
    pub keepalive_sms: Option<RawKeepaliveSms>,
}

/// `[[modem]] keepalive_sms = { to = "+1…", text = "…" }`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKeepaliveSms {
    pub to: String,
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDispatch {
    pub per_recipient_per_day: Option<u32>,
    pub pool_per_minute: Option<u32>,
    pub jitter_ms: Option<u64>,
    pub quiet_hours: Option<RawQuietHours>,
    pub default_time_zone: Option<String>,
    pub failover_after_minutes: Option<u32>,
    pub move_home_on_failover: Option<bool>,
    pub geomatch: Option<bool>,
    pub retry: Option<RawRetry>,
    pub ttl_hours: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQuietHours {
    pub enabled: Option<bool>,
    pub start: Option<String>,
    pub end: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetry {
    pub max_attempts: Option<u32>,
    pub base_delay_secs: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCommunity {
    pub org_name: Option<String>,
    pub contact: Option<String>,
    pub welcome: Option<String>,
    pub compliance: Option<String>,
    pub help_text: Option<String>,
    pub stop_confirmation: Option<String>,
    pub start_confirmation: Option<String>,
    pub double_opt_in: Option<bool>,
    pub double_opt_in_prompt: Option<String>,
    pub onboarding: Option<Vec<RawQuestion>>,
    pub keywords: Option<RawKeywords>,
    pub contact_card: Option<RawContactCard>,
    pub owners: Option<Vec<String>>,
    pub forward_to_owners: Option<bool>,
    pub owner_pin: Option<String>,
    pub owner_refusals_per_hour: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQuestion {
    pub field: String,
    pub question: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKeywords {
    pub stop: Option<Vec<String>>,
    pub start: Option<Vec<String>>,
    pub help: Option<Vec<String>>,
    pub join: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawContactCard {
    pub name: Option<String>,
    pub numbers: Option<Vec<String>>,
    pub url: Option<String>,
    pub photo_url: Option<String>,
    pub mode: Option<CardMode>,
    pub vcf_url: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVoice {
    pub enabled: Option<bool>,
    pub answer_after_rings: Option<u32>,
    pub greeting: Option<String>,
    pub builtin_greeting: Option<bool>,
    pub voicemail: Option<bool>,
    pub max_seconds: Option<u32>,
    pub silence_seconds: Option<u32>,
    pub reply_text: Option<String>,
    pub allow: Option<Vec<String>>,
    pub block: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSimulator {
    pub enabled: Option<bool>,
    pub modems: Option<u32>,
    pub dir: Option<String>,
    pub profiles: Option<Vec<Profile>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttp {
    pub listen: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub allow_plaintext: Option<bool>,
    pub max_body_bytes: Option<u32>,
    pub rate_per_minute: Option<u32>,
    pub request_timeout_secs: Option<u32>,
}
