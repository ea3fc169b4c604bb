//! Command-line parsing of the member and broadcast verbs (`clap::Parser::try_parse_from`): the
//! shapes users type, the layout that lets `broadcast TEXT` and `broadcast pause 3` coexist, and
//! the usage errors clap must raise. What the verbs do is tested on the service functions
//! (tests/community_service.rs) and end to end by the daemon's tests.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clap::Parser;
use gsmgate::cli::broadcast::{BroadcastAction, BroadcastsAction};
use gsmgate::cli::members::MembersCommand;
use gsmgate::cli::{Cli, Command};

fn parse(args: &[&str]) -> Cli {
    let mut argv = vec!["gsmgate"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn fails(args: &[&str]) -> clap::error::ErrorKind {
    let mut argv = vec!["gsmgate"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv) {
        Ok(cli) => panic!("{args:?} parsed: {:?}", cli.command),
        Err(e) => e.kind(),
    }
}

#[test]
fn members_list_with_segment_and_limit() {
    let cli = parse(&[
        "members",
        "list",
        "--segment",
        "city=Chicago,tag=volunteer,joined>=2026-01-01",
        "--limit",
        "20",
        "--json",
    ]);
    assert!(cli.connection.json);
    let Command::Members(MembersCommand::List(l)) = cli.command else {
        panic!("not members list");
    };
    assert_eq!(
        l.segment.as_deref(),
        Some("city=Chicago,tag=volunteer,joined>=2026-01-01")
    );
    assert_eq!(l.limit, Some(20));
    assert_eq!(l.offset, None);
    assert_eq!(
        fails(&["members", "list", "--limit", "-1"]),
        clap::error::ErrorKind::UnknownArgument
    );
}

#[test]
fn members_add_takes_repeated_and_comma_separated_tags() {
    let cli = parse(&[
        "--socket",
        "/tmp/x.sock",
        "members",
        "add",
        "(312) 555-0101",
        "--name",
        "Ana Lopez",
        "--city",
        "Chicago",
        "--tag",
        "volunteer,driver",
        "--tag",
        "cook",
        "--timezone",
        "America/Chicago",
    ]);
    assert_eq!(
        cli.connection.socket.as_deref(),
        Some(std::path::Path::new("/tmp/x.sock"))
    );
    let Command::Members(MembersCommand::Add(a)) = cli.command else {
        panic!("not members add");
    };
    assert_eq!(a.number, "(312) 555-0101");
    assert_eq!(a.name.as_deref(), Some("Ana Lopez"));
    assert_eq!(a.tags, vec!["volunteer", "driver", "cook"]);
    assert_eq!(a.timezone.as_deref(), Some("America/Chicago"));
    assert_eq!(
        fails(&["members", "add"]),
        clap::error::ErrorKind::MissingRequiredArgument
    );
}

#[test]
fn members_remove_tag_import_export() {
    let Command::Members(MembersCommand::Remove(r)) =
        parse(&["members", "remove", "+13125550101"]).command
    else {
        panic!("not remove");
    };
    assert_eq!(r.number, "+13125550101");

    let Command::Members(MembersCommand::Tag(t)) = parse(&[
        "members",
        "tag",
        "+13125550101",
        "volunteer",
        "driver",
        "--remove",
    ])
    .command
    else {
        panic!("not tag");
    };
    assert_eq!(t.tags, vec!["volunteer", "driver"]);
    assert!(t.remove);
    assert_eq!(
        fails(&["members", "tag", "+13125550101"]),
        clap::error::ErrorKind::MissingRequiredArgument
    );

    let Command::Members(MembersCommand::Import(i)) =
        parse(&["members", "import", "people.csv", "--dry-run"]).command
    else {
        panic!("not import");
    };
    assert_eq!(i.file, std::path::PathBuf::from("people.csv"));
    assert!(i.dry_run);

    let Command::Members(MembersCommand::Export(e)) = parse(&["members", "export"]).command else {
        panic!("not export");
    };
    assert_eq!(e.file, None);
    let Command::Members(MembersCommand::Export(e)) =
        parse(&["members", "export", "out.csv", "--segment", "tag=press"]).command
    else {
        panic!("not export");
    };
    assert_eq!(e.file, Some(std::path::PathBuf::from("out.csv")));
    assert_eq!(e.segment.as_deref(), Some("tag=press"));
    assert_eq!(
        fails(&["members", "frobnicate"]),
        clap::error::ErrorKind::InvalidSubcommand
    );
}

#[test]
fn members_review_lists_or_takes_exactly_one_decision() {
    let review = |args: &[&str]| {
        let mut all = vec!["members", "review"];
        all.extend_from_slice(args);
        match parse(&all).command {
            Command::Members(MembersCommand::Review(r)) => r,
            other => panic!("not members review: {other:?}"),
        }
    };
    let list = review(&[]);
    assert!(list.number.is_none() && !list.opt_out && !list.keep);
    let out = review(&["+13125550101", "--opt-out"]);
    assert_eq!(out.number.as_deref(), Some("+13125550101"));
    assert!(out.opt_out && !out.keep);
    let keep = review(&["+13125550101", "--keep"]);
    assert!(keep.keep && !keep.opt_out);
    // A number without a decision, a decision without a number, or both decisions: refused.
    assert_eq!(
        fails(&["members", "review", "+13125550101"]),
        clap::error::ErrorKind::MissingRequiredArgument
    );
    assert_eq!(
        fails(&["members", "review", "--keep"]),
        clap::error::ErrorKind::MissingRequiredArgument
    );
    assert_eq!(
        fails(&["members", "review", "+13125550101", "--keep", "--opt-out"]),
        clap::error::ErrorKind::ArgumentConflict
    );
}

#[test]
fn broadcast_text_with_options() {
    let cli = parse(&[
        "broadcast",
        "--segment",
        "city=Chicago",
        "--at",
        "18:30",
        "--wait",
        "Hi {first_name}, rally at 6",
    ]);
    let Command::Broadcast(b) = cli.command else {
        panic!("not broadcast");
    };
    assert!(b.action.is_none());
    assert_eq!(b.send.text.as_deref(), Some("Hi {first_name}, rally at 6"));
    assert_eq!(b.send.segment.as_deref(), Some("city=Chicago"));
    assert_eq!(b.send.at.as_deref(), Some("18:30"));
    assert!(b.send.wait && !b.send.dry_run);

    let Command::Broadcast(b) = parse(&["broadcast", "--dry-run", "Meeting moved"]).command else {
        panic!("not broadcast");
    };
    assert!(b.send.dry_run);
    assert_eq!(
        fails(&["broadcast", "--dry-run", "--wait", "x"]),
        clap::error::ErrorKind::ArgumentConflict
    );
    assert_eq!(
        fails(&["broadcast"]),
        clap::error::ErrorKind::MissingRequiredArgument
    );
}

#[test]
fn broadcast_pause_resume_cancel_are_subcommands() {
    for (word, want) in [("pause", 3), ("resume", 4), ("cancel", 5)] {
        let cli = parse(&["broadcast", word, &want.to_string()]);
        let Command::Broadcast(b) = cli.command else {
            panic!("not broadcast");
        };
        let got = match b.action {
            Some(BroadcastAction::Pause(i)) if word == "pause" => i.id,
            Some(BroadcastAction::Resume(i)) if word == "resume" => i.id,
            Some(BroadcastAction::Cancel(i)) if word == "cancel" => i.id,
            other => panic!("{word}: {other:?}"),
        };
        assert_eq!(got, want);
    }
    // A text of several words that starts with a subcommand's name is still a text.
    let Command::Broadcast(b) = parse(&["broadcast", "cancel the picnic?"]).command else {
        panic!("not broadcast");
    };
    assert!(b.action.is_none());
    assert_eq!(b.send.text.as_deref(), Some("cancel the picnic?"));
    // The one-word text "pause" needs `--`.
    let Command::Broadcast(b) = parse(&["broadcast", "--", "pause"]).command else {
        panic!("not broadcast");
    };
    assert!(b.action.is_none(), "{:?}", b.action);
    assert_eq!(b.send.text.as_deref(), Some("pause"));
    // Options of the send do not mix with a subcommand, and an id must be a number.
    assert!(Cli::try_parse_from(["gsmgate", "broadcast", "--segment", "x", "pause", "3"]).is_err());
    assert_eq!(
        fails(&["broadcast", "pause", "three"]),
        clap::error::ErrorKind::ValueValidation
    );
}

#[test]
fn broadcasts_list_progress_in_doubt_resolve() {
    let Command::Broadcasts(b) = parse(&["broadcasts", "--limit", "5"]).command else {
        panic!("not broadcasts");
    };
    assert!(b.action.is_none());
    assert_eq!(b.limit, Some(5));

    let Command::Broadcasts(b) = parse(&["broadcasts", "progress", "7", "--wait"]).command else {
        panic!("not broadcasts");
    };
    assert!(matches!(b.action, Some(BroadcastsAction::Progress(ref p)) if p.id == 7 && p.wait));

    let Command::Broadcasts(b) = parse(&["broadcasts", "in-doubt"]).command else {
        panic!("not broadcasts");
    };
    assert!(matches!(b.action, Some(BroadcastsAction::InDoubt)));

    let Command::Broadcasts(b) = parse(&["broadcasts", "resolve", "42", "--drop"]).command else {
        panic!("not broadcasts");
    };
    assert!(
        matches!(b.action, Some(BroadcastsAction::Resolve(ref r)) if r.id == 42 && r.drop && !r.resend)
    );
    assert_eq!(
        fails(&["broadcasts", "resolve", "42"]),
        clap::error::ErrorKind::MissingRequiredArgument
    );
    assert_eq!(
        fails(&["broadcasts", "resolve", "42", "--drop", "--resend"]),
        clap::error::ErrorKind::ArgumentConflict
    );
}

#[test]
fn every_new_verb_has_help() {
    for args in [
        &["members", "--help"][..],
        &["members", "import", "--help"],
        &["broadcast", "--help"],
        &["broadcast", "pause", "--help"],
        &["broadcasts", "--help"],
        &["broadcasts", "resolve", "--help"],
    ] {
        assert_eq!(fails(args), clap::error::ErrorKind::DisplayHelp, "{args:?}");
    }
}

#[test]
fn members_get_takes_one_number() {
    let cli = parse(&["members", "get", "+13125550101"]);
    let Command::Members(MembersCommand::Get(g)) = cli.command else {
        panic!("not members get");
    };
    assert_eq!(g.number, "+13125550101");
    assert_eq!(
        fails(&["members", "get"]),
        clap::error::ErrorKind::MissingRequiredArgument
    );
}

#[test]
fn activity_takes_days_and_alerts() {
    match parse(&["activity", "--days", "7", "--alerts", "3"]).command {
        Command::Activity(a) => assert_eq!((a.days, a.alerts), (Some(7), Some(3))),
        other => panic!("{other:?}"),
    }
    match parse(&["activity"]).command {
        Command::Activity(a) => assert_eq!((a.days, a.alerts), (None, None)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        fails(&["activity", "--days", "x"]),
        clap::error::ErrorKind::ValueValidation
    );
}
