//! From the validated file to each layer's own settings: the one place that knows both the
//! configuration's shape and what every layer needs of it, so no layer below the daemon's wiring
//! imports `config` (docs/architecture.md, "Settings").

use super::{Config, ModemConfig, SimulatorConfig};
use crate::commands;
use crate::dispatch::RunnerConfig;
use crate::modem::{self, Profile};
use crate::sim::{self, SimConfig};

impl Config {
    /// What the command layer needs: the modems without their PINs, the community texts, the
    /// dispatch rules its ETA and expiry use, and whether voice is on.
    pub fn command_settings(&self) -> commands::Settings {
        commands::Settings {
            modems: self
                .modems
                .iter()
                .map(|m| commands::ModemSettings {
                    name: m.name.clone(),
                    profile: m.profile,
                    port: m.port.clone(),
                    limits: m.limits,
                    enabled: m.enabled,
                    number: m.number.clone(),
                })
                .collect(),
            community: self.community.clone(),
            dispatch: self.dispatch.clone(),
            voice_enabled: self.voice.enabled,
            webhooks: self
                .hooks
                .webhooks
                .iter()
                .map(|w| commands::WebhookSettings {
                    name: w.name.clone(),
                    url: w.url.clone(),
                    events: w.events.clone(),
                })
                .collect(),
            site: match &self.store {
                super::StoreSettings::Postgres { site, .. } => Some(site.clone()),
                super::StoreSettings::Sqlite => None,
            },
        }
    }

    /// The dispatch runner's settings: `[dispatch]` and `[daemon] in_doubt_policy`.
    pub fn runner_config(&self) -> RunnerConfig {
        RunnerConfig::new(&self.dispatch, self.daemon.in_doubt_policy)
    }
}

impl ModemConfig {
    /// The modem actor's configuration for this `[[modem]]`.
    pub fn actor_config(&self, timeouts: modem::Timeouts) -> modem::ModemConfig {
        let mut mc = modem::ModemConfig::new(&self.name, &self.port);
        mc.baud = self.baud;
        mc.pin = self.pin.as_ref().map(|p| p.expose().to_string());
        mc.profile = self.profile;
        mc.timeouts = timeouts;
        mc
    }
}

impl SimulatorConfig {
    /// The simulator `[simulator]` describes: `modems` modems (at most 64), profile `i` from
    /// `profiles`, ports in `dir`, the control socket on (the demo drives it with `gsmgate
    /// sim`-style commands).
    pub fn sim_config(&self) -> SimConfig {
        let n = usize::try_from(self.modems).unwrap_or(usize::MAX).min(64);
        let mut sc = SimConfig::new(&self.dir, n, sim::Profile::Generic);
        for (i, spec) in sc.modems.iter_mut().enumerate() {
            spec.profile = sim_profile(self.profile_of(i));
        }
        sc
    }
}

/// The simulator keeps its own profile type (it models firmware, not the driver's quirk set);
/// the names match one to one.
fn sim_profile(p: Profile) -> sim::Profile {
    match p {
        Profile::Generic => sim::Profile::Generic,
        Profile::Huawei => sim::Profile::Huawei,
        Profile::Simcom => sim::Profile::Simcom,
        Profile::Quectel => sim::Profile::Quectel,
        Profile::Sim800 => sim::Profile::Sim800,
        Profile::Wavecom => sim::Profile::Wavecom,
        Profile::Zte => sim::Profile::Zte,
    }
}
