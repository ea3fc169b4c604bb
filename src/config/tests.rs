//! Unit tests of the configuration: defaults, validation rules, error locations, and the honesty
//! checks that keep the example file and the embedded default in step with the code.

use super::raw::*;
use super::*;

const MINIMAL: &str = "[daemon]\nstate_dir = \"/var/lib/gsmgate\"\n\n[[modem]]\nname = \"m0\"\nport = \"/dev/ttyUSB0\"\n";

fn issues(text: &str) -> Vec<Issue> {
    match Config::from_str(text, "gsmgate.toml") {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(e) => e.issues().to_vec(),
    }
}

fn one_issue(text: &str) -> String {
    let issues = issues(text);
    assert_eq!(issues.len(), 1, "{issues:?}");
    issues[0].to_string()
}

#[test]
fn minimal_file_gets_every_default() {
    let c = Config::from_str(MINIMAL, "t").unwrap();
    assert_eq!(
        c.daemon.admin_socket,
        PathBuf::from("/var/lib/gsmgate/admin.sock")
    );
    assert_eq!(c.daemon.socket_mode, 0o660);
    assert_eq!(c.daemon.log, "info");
    assert_eq!(c.daemon.in_doubt_policy, InDoubtPolicy::ResendReplies);
    let m = &c.modems[0];
    assert_eq!(
        (m.baud, m.profile, m.enabled),
        (115_200, Profile::Generic, true)
    );
    assert_eq!(m.limits, Limits::DEFAULT);
    assert_eq!(c.dispatch, DispatchConfig::default());
    assert_eq!(c.community, CommunityConfig::default());
    assert_eq!(c.voice, super::default::default_voice());
    assert!(!c.simulator.enabled);
    assert_eq!(c.simulator.dir, PathBuf::from("/var/lib/gsmgate/sim"));
}

#[test]
fn story_texts_are_the_defaults_word_for_word() {
    let c = CommunityConfig::default();
    assert_eq!(
        c.welcome,
        "OK, I've got your number saved. Good to be connected. More from me soon"
    );
    assert_eq!(
        c.compliance,
        "Msg frequency will vary. Msg&Data rates may apply. Reply HELP for help, STOP to cancel at any time."
    );
    assert_eq!(
        super::default::default_voice().reply_text.as_deref(),
        Some("Send me a text and I'll send you messages from time to time")
    );
    assert_eq!(
        c.keywords.stop,
        [
            "STOP",
            "STOPALL",
            "UNSUBSCRIBE",
            "CANCEL",
            "END",
            "QUIT",
            "REVOKE",
            "OPT OUT"
        ]
    );
    assert_eq!(c.keywords.start, ["START", "YES", "UNSTOP"]);
    assert_eq!(c.keywords.help, ["HELP", "INFO"]);
}

#[test]
fn unknown_top_level_key_names_key_and_line() {
    let text = format!("{MINIMAL}\n[bogus]\nx = 1\n");
    let msg = one_issue(&text);
    assert!(
        msg.starts_with("gsmgate.toml:8: bogus: unknown field `bogus`"),
        "{msg}"
    );
}

#[test]
fn unknown_key_in_a_modem_names_key_and_line() {
    let text = format!("{MINIMAL}per_minut = 5\n");
    let msg = one_issue(&text);
    assert!(
        msg.starts_with("gsmgate.toml:7: modem[0].per_minut: unknown field `per_minut`"),
        "{msg}"
    );
}

#[test]
fn wrong_type_names_key_and_line() {
    let text = format!("{MINIMAL}baud = \"fast\"\n");
    let msg = one_issue(&text);
    assert!(
        msg.starts_with("gsmgate.toml:7: modem[0].baud: invalid type: string"),
        "{msg}"
    );
}

#[test]
fn unknown_profile_lists_the_allowed_ones() {
    let msg = one_issue(&format!("{MINIMAL}profile = \"nokia\"\n"));
    assert!(
        msg.starts_with("gsmgate.toml:7: modem[0].profile: unknown variant `nokia`"),
        "{msg}"
    );
    assert!(msg.contains("sim800"), "{msg}");
}

#[test]
fn missing_required_key_points_at_its_table() {
    let msg = one_issue("[daemon]\nlog = \"info\"\n");
    assert!(
        msg.starts_with("gsmgate.toml:1: daemon: missing field `state_dir`"),
        "{msg}"
    );
}

#[test]
fn syntax_error_has_a_line() {
    let issues = issues("[daemon]\nstate_dir = \n");
    assert_eq!(issues[0].line, Some(2), "{issues:?}");
}

#[test]
fn out_of_range_limit_has_the_briefs_wording() {
    let text =
        format!("{MINIMAL}\n[[modem]]\nname = \"m1\"\nport = \"/dev/ttyUSB1\"\nper_minute = 0\n");
    assert_eq!(
        one_issue(&text),
        "gsmgate.toml:11: modem[1].per_minute: must be between 1 and 600, got 0"
    );
}

#[test]
fn inconsistent_limits_are_rejected() {
    let msg = one_issue(&format!("{MINIMAL}per_minute = 50\nper_hour = 40\n"));
    assert_eq!(
        msg,
        "gsmgate.toml:7: modem[0].per_minute: per_minute (50) must not exceed per_hour (40)"
    );
    let msg = one_issue(&format!("{MINIMAL}per_hour = 500\nper_day = 400\n"));
    assert_eq!(
        msg,
        "gsmgate.toml:7: modem[0].per_hour: per_hour (500) must not exceed per_day (400)"
    );
}

#[test]
fn duplicate_names_and_ports_are_rejected() {
    let text = format!("{MINIMAL}\n[[modem]]\nname = \"m0\"\nport = \"/dev/ttyUSB0\"\n");
    let all: Vec<String> = issues(&text).iter().map(Issue::to_string).collect();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all[0].starts_with("gsmgate.toml:9: modem[1].name: duplicate modem name \"m0\""),
        "{all:?}"
    );
    assert!(
        all[1].starts_with(
            "gsmgate.toml:10: modem[1].port: /dev/ttyUSB0 is already used by modem[0].port"
        ),
        "{all:?}"
    );
}

#[test]
fn all_issues_are_reported_together() {
    let text = format!("{MINIMAL}baud = 1234\npin = \"12\"\nnumber = \"0171\"\n");
    let keys: Vec<String> = issues(&text).into_iter().map(|i| i.key).collect();
    assert_eq!(keys, ["modem[0].baud", "modem[0].pin", "modem[0].number"]);
}

#[test]
fn no_modem_and_no_simulator_is_an_error() {
    let msg = one_issue("[daemon]\nstate_dir = \"/x\"\n");
    assert!(msg.contains("modem: at least one [[modem]]"), "{msg}");
}

#[test]
fn enabled_simulator_without_modems_synthesises_them() {
    let c = Config::from_str(
        "[daemon]\nstate_dir = \"s\"\n[simulator]\nenabled = true\nmodems = 3\nprofiles = [\"generic\", \"huawei\"]\n",
        "t",
    )
    .unwrap();
    assert_eq!(c.modem_names(), ["sim0", "sim1", "sim2"]);
    assert_eq!(c.modems[1].profile, Profile::Huawei);
    assert_eq!(c.modems[2].profile, Profile::Generic);
    assert_eq!(c.modems[2].port, PathBuf::from("s/sim/modem2"));
}

#[test]
fn pin_is_redacted_in_debug() {
    let c = Config::from_str(&format!("{MINIMAL}pin = \"4711\"\n"), "t").unwrap();
    let dump = format!("{c:?}");
    assert!(!dump.contains("4711"), "{dump}");
    assert!(dump.contains("Pin(<redacted>)"));
    assert_eq!(c.modems[0].pin.as_ref().map(Pin::expose), Some("4711"));
}

#[test]
fn malformed_pin_is_not_echoed() {
    let msg = one_issue(&format!("{MINIMAL}pin = \"12x4\"\n"));
    assert!(!msg.contains("12x4"), "{msg}");
}

#[test]
fn socket_mode_is_octal() {
    assert_eq!(validate::parse_mode("0660"), Ok(0o660));
    assert_eq!(validate::parse_mode("600"), Ok(0o600));
    assert!(validate::parse_mode("0890").is_err());
    assert!(validate::parse_mode("4755").is_err());
    assert!(validate::parse_mode("").is_err());
    let msg = one_issue(&MINIMAL.replace(
        "state_dir = \"/var/lib/gsmgate\"",
        "state_dir = \"/x\"\nsocket_mode = \"rw\"",
    ));
    assert!(
        msg.starts_with("gsmgate.toml:3: daemon.socket_mode: must be an octal mode"),
        "{msg}"
    );
}

#[test]
fn backup_keys_default_off_and_are_checked() {
    let c = Config::from_str(MINIMAL, "t").unwrap();
    assert_eq!(c.daemon.backup_dir, None);
    assert_eq!(c.daemon.backup_every_hours, 24);
    assert_eq!(c.daemon.backup_keep, 7);
    let with = |extra: &str| {
        MINIMAL.replace(
            "state_dir = \"/var/lib/gsmgate\"",
            &format!("state_dir = \"/var/lib/gsmgate\"\n{extra}"),
        )
    };
    let c = Config::from_str(
        &with("backup_dir = \"/media/usb/b\"\nbackup_every_hours = 6\nbackup_keep = 28"),
        "t",
    )
    .unwrap();
    assert_eq!(c.daemon.backup_dir, Some(PathBuf::from("/media/usb/b")));
    assert_eq!(c.daemon.backup_every_hours, 6);
    assert_eq!(c.daemon.backup_keep, 28);
    let msg = one_issue(&with("backup_keep = 0"));
    assert!(
        msg.starts_with("gsmgate.toml:3: daemon.backup_keep: must be between 1 and 1000"),
        "{msg}"
    );
    let msg = one_issue(&with("backup_every_hours = 0"));
    assert!(msg.contains("daemon.backup_every_hours"), "{msg}");
    let msg = one_issue(&with("backup_dir = \"/var/lib/gsmgate\""));
    assert!(
        msg.contains("daemon.backup_dir: must not be the state directory"),
        "{msg}"
    );
}

#[test]
fn clocks_parse_and_quiet_hours_wrap_midnight() {
    assert_eq!(validate::parse_clock("21:00"), Some((21, 0)));
    assert_eq!(validate::parse_clock("8:05"), Some((8, 5)));
    for bad in ["24:00", "12:60", "12", "12:5", "ab:cd", "+1:00", ""] {
        assert_eq!(validate::parse_clock(bad), None, "{bad}");
    }
    let q = QuietHours::DEFAULT;
    assert!(q.contains(21, 0) && q.contains(23, 59) && q.contains(0, 0) && q.contains(7, 59));
    assert!(!q.contains(8, 0) && !q.contains(20, 59) && !q.contains(12, 0));
    let day = QuietHours {
        start: (12, 0),
        end: (13, 0),
    };
    assert!(day.contains(12, 30) && !day.contains(13, 0) && !day.contains(11, 59));
}

#[test]
fn quiet_hours_can_be_disabled_and_bad_times_are_named() {
    let c = Config::from_str(
        &format!("{MINIMAL}[dispatch.quiet_hours]\nenabled = false\n"),
        "t",
    )
    .unwrap();
    assert_eq!(c.dispatch.quiet_hours, None);
    let msg = one_issue(&format!(
        "{MINIMAL}[dispatch.quiet_hours]\nstart = \"25:00\"\n"
    ));
    assert!(
        msg.starts_with("gsmgate.toml:8: dispatch.quiet_hours.start: must be a time HH:MM"),
        "{msg}"
    );
}

#[test]
fn time_zone_is_checked() {
    assert!(validate::check_time_zone("Europe/Berlin").is_ok());
    assert!(validate::check_time_zone("UTC").is_ok());
    assert!(validate::check_time_zone("../etc/passwd").is_err());
    assert!(validate::check_time_zone("").is_err());
    if !jiff::tz::db().is_definitively_empty() {
        assert!(validate::check_time_zone("Mars/Olympus_Mons").is_err());
    }
}

#[test]
fn keywords_are_normalised_and_must_not_overlap() {
    let c = Config::from_str(
        &format!("{MINIMAL}[community.keywords]\nstop = [\"stop\", \" opt   out \"]\n"),
        "t",
    )
    .unwrap();
    assert_eq!(c.community.keywords.stop, ["STOP", "OPT OUT"]);
    let msg = one_issue(&format!(
        "{MINIMAL}[community.keywords]\nstart = [\"START\", \"stop\"]\n"
    ));
    assert!(
        msg.contains(
            "community.keywords.start[1]: \"STOP\" is already listed at community.keywords.stop[0]"
        ),
        "{msg}"
    );
    let msg = one_issue(&format!(
        "{MINIMAL}[community.keywords]\nstop = [\"HALT\"]\n"
    ));
    assert!(
        msg.contains("community.keywords.stop: must contain STOP"),
        "{msg}"
    );
}

#[test]
fn templates_accept_only_known_placeholders() {
    assert!(validate::check_template("{org} says {{hi}}").is_ok());
    assert!(validate::check_template("{name}").is_err());
    assert!(validate::check_template("{org").is_err());
    assert!(validate::check_template("oops }").is_err());
    let msg = one_issue(&format!(
        "{MINIMAL}[community]\nhelp_text = \"Help: {{contact}}\"\n"
    ));
    assert!(
        msg.contains("community.help_text: uses {contact} but community.contact is not set"),
        "{msg}"
    );
}

#[test]
fn contact_card_link_needs_vcf_url() {
    let msg = one_issue(&format!(
        "{MINIMAL}[community.contact_card]\nmode = \"link\"\n"
    ));
    assert!(
        msg.contains("community.contact_card.mode: mode \"link\" needs vcf_url"),
        "{msg}"
    );
    let c = Config::from_str(
        &format!("{MINIMAL}[community]\norg_name = \"Ada\"\n[community.contact_card]\nnumbers = [\"+15551234567\"]\n"),
        "t",
    )
    .unwrap();
    let card = c.community.contact_card.unwrap();
    assert_eq!((card.name.as_str(), card.mode), ("Ada", CardMode::Text));
}

#[test]
fn voice_reply_text_can_be_switched_off() {
    let c = Config::from_str(&format!("{MINIMAL}[voice]\nreply_text = \"\"\n"), "t").unwrap();
    assert_eq!(c.voice.reply_text, None);
    let msg = one_issue(&format!(
        "{MINIMAL}[voice]\nmax_seconds = 10\nsilence_seconds = 20\n"
    ));
    assert!(
        msg.contains("voice.silence_seconds: must not exceed max_seconds (10), got 20"),
        "{msg}"
    );
}

#[test]
fn relative_paths_follow_the_base() {
    let c = Config::from_str_relative_to(
        MINIMAL.replace("/var/lib/gsmgate", "state").as_str(),
        "t",
        Path::new("/etc/gsmgate"),
    )
    .unwrap();
    assert_eq!(c.daemon.state_dir, PathBuf::from("/etc/gsmgate/state"));
    assert_eq!(
        c.daemon.admin_socket,
        PathBuf::from("/etc/gsmgate/state/admin.sock")
    );
    assert_eq!(c.modems[0].port, PathBuf::from("/dev/ttyUSB0"));
}

#[test]
fn principals_by_name_or_id() {
    let text = MINIMAL.replace(
        "state_dir = \"/var/lib/gsmgate\"",
        "state_dir = \"/x\"\nadmin_allow_users = [\"alice\", 1000]\nadmin_allow_groups = [\"1000\"]",
    );
    let msg = one_issue(&text);
    assert!(
        msg.starts_with(
            "gsmgate.toml:4: daemon.admin_allow_groups[0]: numeric ids are given as integers"
        ),
        "{msg}"
    );
    let c = Config::from_str(&text.replace("[\"1000\"]", "[\"gsmgate-admins\", 27]"), "t").unwrap();
    assert_eq!(
        c.daemon.admin_allow_users,
        [Principal::Name("alice".into()), Principal::Id(1000)]
    );
    assert_eq!(
        c.daemon.admin_allow_groups,
        [Principal::Name("gsmgate-admins".into()), Principal::Id(27)]
    );
}

#[test]
fn embedded_default_text_is_the_embedded_default_value() {
    let parsed = Config::from_str(EMBEDDED_DEFAULT_TOML, "embedded default").unwrap();
    assert_eq!(parsed, Config::embedded_default());
    let d = Config::embedded_default();
    assert_eq!(d.modem_names(), ["sim0", "sim1"]);
    assert_eq!(
        d.modems[1].port,
        PathBuf::from("./gsmgate-state/sim/modem1")
    );
    assert_eq!(
        d.daemon.admin_socket,
        PathBuf::from("./gsmgate-state/admin.sock")
    );
    assert_eq!(d.simulator.dir, PathBuf::from("./gsmgate-state/sim"));
    assert!(d.simulator.enabled);
}

/// Issue 18: the README's story ran on the embedded default at 07:07 UTC and the demo broadcast
/// sat silent (quiet hours), and a call was rejected (generic modems, voice off).
#[test]
fn the_embedded_default_has_no_quiet_hours_and_answers_calls_with_the_builtin_greeting() {
    let d = Config::embedded_default();
    assert_eq!(
        d.dispatch.quiet_hours, None,
        "a simulated pool never sleeps"
    );
    assert!(d.voice.enabled && d.voice.builtin_greeting && d.voice.voicemail);
    assert_eq!(d.voice.greeting, None);
    for m in &d.modems {
        assert!(
            crate::voice::AudioMode::default_for(m.profile) == Some(crate::voice::AudioMode::Pcm),
            "{} ({}) must stream PCM on the simulator's audio tty",
            m.name,
            m.profile
        );
    }
    // A real configuration keeps the TCPA window unless it says otherwise.
    let c = Config::from_str(MINIMAL, "t").unwrap();
    assert!(c.dispatch.quiet_hours.is_some());
    assert!(!c.voice.builtin_greeting);
}

const EXAMPLE: &str = include_str!("../../config/gsmgate.toml");

#[test]
fn example_file_validates() {
    let c = Config::from_str_relative_to(EXAMPLE, "config/gsmgate.toml", Path::new("/etc/gsmgate"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!c.modems.is_empty());
}

/// A mirror with every optional key present, written out field by field without `..Default`, so a
/// new field fails to compile here until it is added, and then fails `example_documents_every_key`
/// until the example documents it.
fn every_key() -> RawConfig {
    let s = || Some(String::new());
    RawConfig {
        daemon: RawDaemon {
            state_dir: String::new(),
            admin_socket: s(),
            admin_allow_users: Some(vec![RawPrincipal::Id(0)]),
            admin_allow_groups: Some(vec![RawPrincipal::Id(0)]),
            socket_mode: s(),
            log: s(),
            in_doubt_policy: Some(InDoubtPolicy::ResendAll),
            backup_dir: s(),
            backup_every_hours: Some(0),
            backup_keep: Some(0),
        },
        modem: vec![RawModem {
            name: String::new(),
            port: String::new(),
            audio_port: s(),
            baud: Some(0),
            pin: s(),
            profile: Some(Profile::Zte),
            per_minute: Some(0),
            per_hour: Some(0),
            per_day: Some(0),
            enabled: Some(true),
            number: s(),
            voice_audio: Some(crate::voice::AudioMode::File),
            balance_ussd: s(),
            balance_every_hours: Some(0),
            low_balance: Some(0.0),
            keepalive_days: Some(0),
            keepalive_ussd: s(),
            keepalive_sms: Some(RawKeepaliveSms::default()),
        }],
        dispatch: Some(RawDispatch {
            per_recipient_per_day: Some(0),
            pool_per_minute: Some(0),
            jitter_ms: Some(0),
            quiet_hours: Some(RawQuietHours {
                enabled: Some(true),
                start: s(),
                end: s(),
            }),
            default_time_zone: s(),
            failover_after_minutes: Some(0),
            move_home_on_failover: Some(true),
            geomatch: Some(true),
            retry: Some(RawRetry {
                max_attempts: Some(0),
                base_delay_secs: Some(0),
            }),
            ttl_hours: Some(0),
        }),
        community: Some(RawCommunity {
            org_name: s(),
            contact: s(),
            welcome: s(),
            compliance: s(),
            help_text: s(),
            stop_confirmation: s(),
            start_confirmation: s(),
            double_opt_in: Some(true),
            double_opt_in_prompt: s(),
            onboarding: Some(vec![RawQuestion {
                field: String::new(),
                question: String::new(),
            }]),
            keywords: Some(RawKeywords {
                stop: Some(vec![]),
                start: Some(vec![]),
                help: Some(vec![]),
                join: Some(vec![]),
            }),
            contact_card: Some(RawContactCard {
                name: s(),
                numbers: Some(vec![]),
                url: s(),
                photo_url: s(),
                mode: Some(CardMode::Link),
                vcf_url: s(),
            }),
            owners: Some(vec![]),
            forward_to_owners: Some(true),
            owner_pin: s(),
            owner_refusals_per_hour: Some(0),
        }),
        voice: Some(RawVoice {
            enabled: Some(true),
            answer_after_rings: Some(0),
            greeting: s(),
            builtin_greeting: Some(true),
            voicemail: Some(true),
            max_seconds: Some(0),
            silence_seconds: Some(0),
            reply_text: s(),
            allow: Some(vec![]),
            block: Some(vec![]),
        }),
        simulator: Some(RawSimulator {
            enabled: Some(true),
            modems: Some(0),
            dir: s(),
            profiles: Some(vec![]),
        }),
        http: Some(RawHttp {
            listen: s(),
            tls_cert: s(),
            tls_key: s(),
            allow_plaintext: Some(false),
            max_body_bytes: Some(0),
            rate_per_minute: Some(0),
            request_timeout_secs: Some(0),
        }),
        webhook: vec![super::hooks::RawWebhook {
            name: s(),
            url: String::new(),
            events: Some(vec![]),
            secret: s(),
            allow_plaintext: Some(false),
        }],
        hook: vec![super::hooks::RawHook {
            name: s(),
            command: String::new(),
            args: Some(vec![]),
            events: Some(vec![]),
            timeout_secs: Some(0),
        }],
        hooks: Some(super::hooks::RawHooks {
            max_concurrent: Some(0),
        }),
        store: Some(super::store::RawStore {
            backend: Some(super::store::RawBackend::Postgres),
            url: s(),
            password_file: s(),
            password_env: s(),
            site: s(),
        }),
    }
}

/// Dotted paths (`modem.per_minute`, `community.contact_card.mode`) of every leaf key of a value.
fn leaf_paths(prefix: &str, value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaf_paths(&path, v, out);
            }
        }
        toml::Value::Array(items)
            if items.iter().all(toml::Value::is_table) && !items.is_empty() =>
        {
            for item in items {
                leaf_paths(prefix, item, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

/// Keys the example mentions, set or commented out, as `table.key` (tables from `[x]`, `[[x]]`,
/// `# [x]` headers).
fn documented_keys(text: &str) -> std::collections::BTreeSet<String> {
    let mut table = String::new();
    let mut keys = std::collections::BTreeSet::new();
    for line in text.lines() {
        let line = line.trim_start_matches(|c: char| c == '#' || c.is_whitespace());
        if let Some(header) = line.strip_prefix('[') {
            let name = header.trim_start_matches('[');
            if let Some(end) = name.find(']') {
                let name = &name[..end];
                if name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
                {
                    table = name.to_string();
                }
            }
            continue;
        }
        if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                keys.insert(format!("{table}.{key}"));
            }
        }
    }
    keys
}

#[test]
fn example_documents_every_key() {
    let value = toml::Value::try_from(every_key()).unwrap();
    let mut paths = Vec::new();
    leaf_paths("", &value, &mut paths);
    assert!(paths.len() > 60, "{paths:?}");
    let documented = documented_keys(EXAMPLE);
    let missing: Vec<&String> = paths.iter().filter(|p| !documented.contains(*p)).collect();
    assert!(
        missing.is_empty(),
        "config/gsmgate.toml does not document: {missing:?}"
    );
}

#[test]
fn profile_names_round_trip() {
    for p in Profile::ALL {
        let text = format!("{MINIMAL}profile = \"{}\"\n", p.as_str());
        assert_eq!(Config::from_str(&text, "t").unwrap().modems[0].profile, p);
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC*") {
            let _ = Config::from_str(&text, "fuzz");
        }

        #[test]
        fn toml_shaped_text_never_panics(
            lines in proptest::collection::vec(
                prop_oneof![
                    Just("[daemon]".to_string()),
                    Just("[[modem]]".to_string()),
                    Just("[dispatch.quiet_hours]".to_string()),
                    Just("[community.keywords]".to_string()),
                    "[a-z_]{1,12} = (\"[^\"\\\\]{0,10}\"|[0-9]{1,12}|true|\\[\\])",
                ],
                0..20,
            )
        ) {
            let text = lines.join("\n");
            if let Err(e) = Config::from_str(&text, "fuzz") {
                for issue in e.issues() {
                    prop_assert!(issue.line.is_none_or(|l| l >= 1 && l <= text.lines().count().max(1) + 1));
                }
            }
        }

        #[test]
        fn byte_offsets_map_inside_the_text(text in "\\PC{0,40}", offset in 0usize..200) {
            let (line, col) = spans::line_column(&text, offset);
            prop_assert!(line >= 1 && col >= 1);
            prop_assert!(line <= text.split('\n').count());
        }
    }
}

#[test]
fn custom_onboarding_fields_may_not_take_built_in_names() {
    let with = |field: &str| {
        format!("{MINIMAL}\n[[community.onboarding]]\nfield = \"{field}\"\nquestion = \"Q?\"\n")
    };
    let c = Config::from_str(&with("shirt_size"), "t").unwrap();
    assert_eq!(c.community.custom_fields(), vec!["shirt_size"]);
    // Aliases of built-in attributes are not custom fields, and are fine.
    let c = Config::from_str(&with("zip"), "t").unwrap();
    assert!(c.community.custom_fields().is_empty());
    for reserved in ["status", "tags", "home_modem", "first_name", "joined"] {
        let msg = one_issue(&with(reserved));
        assert!(
            msg.contains("community.onboarding[0].field") && msg.contains("built-in"),
            "{msg}"
        );
    }
    assert!(one_issue(&with("Shirt")).contains("a-z, 0-9"));
}

#[test]
fn geomatch_is_off_by_default_and_switchable() {
    assert!(!Config::from_str(MINIMAL, "t").unwrap().dispatch.geomatch);
    let on = format!("{MINIMAL}\n[dispatch]\ngeomatch = true\n");
    assert!(Config::from_str(&on, "t").unwrap().dispatch.geomatch);
}

#[test]
fn onboarding_questions_may_use_configured_fields_as_placeholders() {
    let q = |question: &str| {
        format!(
            "{MINIMAL}\n[[community.onboarding]]\nfield = \"shirt_size\"\nquestion = \"Size?\"\n\
             [[community.onboarding]]\nfield = \"diet\"\nquestion = \"{question}\"\n"
        )
    };
    assert!(
        Config::from_str(
            &q("Thanks {first_name}, size {shirt_size} noted. Diet?"),
            "t"
        )
        .is_ok()
    );
    let msg = one_issue(&q("Shoe {shoe_size}?"));
    assert!(
        msg.contains("community.onboarding[1].question") && msg.contains("{shoe_size}"),
        "{msg}"
    );
}

#[test]
fn store_postgres_needs_url_and_site_and_keeps_the_password_out() {
    let base = "[daemon]\nstate_dir = \"/tmp/g\"\n[simulator]\nenabled = true\n";
    let bad =
        Config::from_str(&format!("{base}[store]\nbackend = \"postgres\"\n"), "t").unwrap_err();
    let text = bad.to_string();
    assert!(text.contains("store.url"), "{text}");
    assert!(text.contains("store.site"), "{text}");
    let leak = Config::from_str(
        &format!(
            "{base}[store]\nbackend = \"postgres\"\nsite = \"paris\"\n\
         url = \"postgres://gw:hunter2secret@db.example.org/gsm\"\n"
        ),
        "t",
    )
    .unwrap_err()
    .to_string();
    assert!(leak.contains("password"), "{leak}");
    assert!(!leak.contains("hunter2secret"), "{leak}");
    let both = Config::from_str(
        &format!(
            "{base}[store]\nbackend = \"postgres\"\nsite = \"paris\"\n\
         url = \"postgres://gw@db.example.org/gsm\"\npassword_file = \"/p\"\npassword_env = \"P\"\n"
        ),
        "t",
    )
    .unwrap_err()
    .to_string();
    assert!(both.contains("not both"), "{both}");
    let sqlite_with_url = Config::from_str(
        &format!("{base}[store]\nurl = \"postgres://gw@db.example.org/gsm\"\n"),
        "t",
    )
    .unwrap_err()
    .to_string();
    assert!(
        sqlite_with_url.contains("only with backend"),
        "{sqlite_with_url}"
    );
    let ok = Config::from_str(&format!(
        "{base}[store]\nbackend = \"postgres\"\nsite = \"lyon-2\"\n\
         url = \"postgres://gw@db.example.org:6543/gsm?sslmode=verify-full\"\npassword_env = \"GSMGATE_PG_PASSWORD\"\n"
    ), "t")
    .unwrap();
    match ok.store {
        StoreSettings::Postgres { pg, password, site } => {
            assert_eq!(
                (pg.host.as_str(), pg.port, site.as_str()),
                ("db.example.org", 6543, "lyon-2")
            );
            assert_eq!(password, PasswordSource::Env("GSMGATE_PG_PASSWORD".into()));
        }
        other => panic!("{other:?}"),
    }
}
