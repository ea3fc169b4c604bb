//! From the validated file to each layer's own settings: the one place that knows both the
//! configuration's shape and what every layer needs of it, so no layer below the daemon's wiring
//! imports `config` (docs/architecture.md, "Settings").

use super::Config;
use crate::commands;

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
        }
    }
}
