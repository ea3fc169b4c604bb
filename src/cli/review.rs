//! `gsmgate members review [NUMBER --opt-out|--keep]`: the possible opt-outs ("Stop please")
//! waiting for a person, and the one-step decision on one number. Each form is one request on the
//! admin socket (`members_review`, `members_review_resolve` in docs/admin-protocol.md).
//!
//! Wiring only: which texts are listed and what a decision does are `commands::review`'s. Without
//! NUMBER the verb lists; with it exactly one of `--opt-out` and `--keep` is required (clap
//! enforces it), so a decision is never implied by a missing flag.

use clap::Args;

use super::output::{plural, print_table, show, table};
use super::runtime::Outcome;
use crate::admin::Client;
use crate::admin::protocol::{ReviewAction, ReviewItem, ReviewResolveArgs};

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("decision").args(["opt_out", "keep"]).requires("number")))]
pub struct ReviewCli {
    /// Decide about this number (as listed); without it, list the numbers waiting.
    #[arg(requires = "decision")]
    pub number: Option<String>,
    /// Treat the texts as a STOP: opt the number out (consent source `cli`), cancel its queued
    /// messages and send the stop confirmation.
    #[arg(long)]
    pub opt_out: bool,
    /// Not an opt-out: keep the member as they are; the texts leave the list.
    #[arg(long)]
    pub keep: bool,
}

/// Runs the verb on a connected client.
pub(super) async fn run(client: &mut Client, r: ReviewCli, json: bool) -> anyhow::Result<Outcome> {
    let Some(number) = r.number else {
        return show(json, &client.members_review().await?, |items| {
            print_review(items)
        });
    };
    let action = if r.opt_out {
        ReviewAction::OptOut
    } else {
        ReviewAction::Keep
    };
    let done = client
        .members_review_resolve(ReviewResolveArgs { number, action })
        .await?;
    show(json, &done, |d| match d.action {
        ReviewAction::OptOut => println!(
            "{} opted out ({} queued message{} cancelled{})",
            d.number,
            d.cancelled,
            plural(d.cancelled as u64),
            if d.confirmation.is_some() {
                ", stop confirmation queued"
            } else {
                ""
            }
        ),
        ReviewAction::Keep => println!(
            "{} kept; {} text{} marked reviewed",
            d.number,
            d.messages,
            plural(d.messages as u64)
        ),
    })
}

fn print_review(items: &[ReviewItem]) {
    if items.is_empty() {
        println!("no possible opt-outs waiting for review");
        return;
    }
    let mut t = table(&["number", "status", "texts", "last received", "last text"]);
    for i in items {
        t.add_row(vec![
            i.number.clone(),
            i.status.clone().unwrap_or_else(|| "not a member".into()),
            i.messages.to_string(),
            i.last_at.clone(),
            i.last_text.clone(),
        ]);
    }
    print_table(&t);
    println!("decide with: gsmgate members review NUMBER --opt-out|--keep");
}
