//! Who may run which command: the scope each command needs, and the commands that only a local
//! transport may run. Enforced here, in [`super::run_as`], so every transport (the admin socket,
//! the HTTP API, later the console) refuses alike and none can forget a check.
//!
//! The rules (docs/http-api.md, "Scopes"): `read` runs every command that only reads (listing the
//! inbox or a conversation marks it read, which is bookkeeping, not a change of the gateway);
//! `send` adds `send` (one text to one number); `admin` runs the rest — members, broadcasts,
//! in-doubt decisions, voicemail deletion, the greeting, USSD (a code can spend credit or change
//! a SIM's services), the webhooks' state and replays (their URLs may carry credentials). A broadcast's dry run needs `admin` as
//! well: it reveals counts per segment that a sending integration has no need for. Token
//! management is local only: a leaked HTTP token, even an admin one, cannot mint another or
//! hide itself by revoking the others.
//!
//! The Unix admin socket has already checked its peer's credentials, so its callers are
//! [`Caller::local`] with `admin` scope. An owner texting from their phone is [`Caller::owner`]
//! (transport `Sms`): `admin` scope, so local-only commands stay out of their reach.

use super::{CommandError, Result};
use crate::protocol::{Request, Scope};

/// Which transport a caller came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The Unix admin socket (peer credentials checked).
    Local,
    /// The HTTP API (a bearer token).
    Http,
    /// An SMS from a configured owner number (`[community] owners`), checked by the daemon's
    /// inbound path (number, PIN, confirmation code) before it runs a command.
    Sms,
    /// The web console (a session of a console account).
    Web,
}

/// Who runs a command: a name for the log, what they may do, how they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name, or `local` for the admin socket.
    pub name: String,
    pub scope: Scope,
    pub transport: Transport,
}

impl Caller {
    /// A user of the admin socket.
    pub fn local() -> Caller {
        Caller {
            name: "local".into(),
            scope: Scope::Admin,
            transport: Transport::Local,
        }
    }

    /// A caller of the HTTP API with token `name`.
    pub fn http(name: impl Into<String>, scope: Scope) -> Caller {
        Caller {
            name: name.into(),
            scope,
            transport: Transport::Http,
        }
    }
}

impl Caller {
    /// An owner texting from `number`: `admin` scope (they send to members and broadcast), but
    /// never a local-only command (docs/community.md, "Owners on their own phone").
    pub fn owner(number: &str) -> Caller {
        Caller {
            name: format!("owner {number}"),
            scope: Scope::Admin,
            transport: Transport::Sms,
        }
    }

    /// A web console user; `name` is the account's name, for the log and the audit trail.
    pub fn web(name: impl Into<String>, scope: Scope) -> Caller {
        Caller {
            name: name.into(),
            scope,
            transport: Transport::Web,
        }
    }
}

/// The scope a request needs.
pub fn required_scope(request: &Request) -> Scope {
    use Request as R;
    match request {
        R::Ping(_)
        | R::Version(_)
        | R::Status(_)
        | R::Modems(_)
        | R::Inbox(_)
        | R::Conversation(_)
        | R::Conversations(_)
        | R::MessageGet(_)
        | R::Watch(_)
        | R::MembersList(_)
        | R::MembersGet(_)
        | R::MembersExport(_)
        | R::MembersReview(_)
        | R::Broadcasts(_)
        | R::BroadcastProgress(_)
        | R::InDoubt(_)
        | R::Calls(_)
        | R::VoicemailList(_)
        | R::VoicemailExport(_)
        | R::GreetingGet(_)
        | R::Activity(_) => Scope::Read,
        R::Send(_) => Scope::Send,
        R::MembersAdd(_)
        | R::MembersRemove(_)
        | R::MembersTag(_)
        | R::MembersUpdate(_)
        | R::MembersImport(_)
        | R::MembersReviewResolve(_)
        | R::Broadcast(_)
        | R::BroadcastPause(_)
        | R::BroadcastResume(_)
        | R::BroadcastCancel(_)
        | R::InDoubtResolve(_)
        | R::VoicemailDelete(_)
        | R::GreetingSet(_)
        | R::Ussd(_)
        | R::Webhooks(_)
        | R::WebhookReplay(_)
        | R::TokensCreate(_)
        | R::TokensList(_)
        | R::TokensRevoke(_)
        | R::WebUsersAdd(_)
        | R::WebUsersList(_)
        | R::WebUsersPasswd(_)
        | R::WebUsersRemove(_) => Scope::Admin,
    }
}

/// True for the commands only the local admin socket may run.
pub fn local_only(request: &Request) -> bool {
    matches!(
        request,
        Request::TokensCreate(_)
            | Request::TokensList(_)
            | Request::TokensRevoke(_)
            | Request::WebUsersAdd(_)
            | Request::WebUsersList(_)
            | Request::WebUsersPasswd(_)
            | Request::WebUsersRemove(_)
    )
}

/// Refuses `request` when `caller` may not run it.
pub fn authorize(caller: &Caller, request: &Request) -> Result<()> {
    if local_only(request) && caller.transport != Transport::Local {
        return Err(CommandError::Forbidden(format!(
            "{} is only available on the local admin socket (`gsmgate tokens …` on the gateway)",
            request.name()
        )));
    }
    let needed = required_scope(request);
    if caller.scope < needed {
        return Err(CommandError::Forbidden(format!(
            "{} needs a token with scope `{needed}`; token {:?} has scope `{}`",
            request.name(),
            caller.name,
            caller.scope
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_local_only_commands_refuse_http() {
        let read = Caller::http("r", Scope::Read);
        let send = Caller::http("s", Scope::Send);
        let admin = Caller::http("a", Scope::Admin);
        for req in Request::examples() {
            let needed = required_scope(&req);
            for c in [&read, &send, &admin] {
                let ok = authorize(c, &req).is_ok();
                assert_eq!(
                    ok,
                    c.scope >= needed && !local_only(&req),
                    "{req:?} as {c:?}"
                );
            }
            assert!(authorize(&Caller::local(), &req).is_ok(), "{req:?} locally");
        }
    }

    #[test]
    fn a_read_token_cannot_send_and_a_send_token_cannot_change_members() {
        let send = Request::examples()
            .into_iter()
            .find(|r| matches!(r, Request::Send(_)))
            .unwrap();
        let add = Request::examples()
            .into_iter()
            .find(|r| matches!(r, Request::MembersAdd(_)))
            .unwrap();
        assert!(authorize(&Caller::http("r", Scope::Read), &send).is_err());
        assert!(authorize(&Caller::http("s", Scope::Send), &send).is_ok());
        assert!(authorize(&Caller::http("s", Scope::Send), &add).is_err());
        assert!(authorize(&Caller::http("a", Scope::Admin), &add).is_ok());
    }

    #[test]
    fn an_owner_by_sms_may_send_and_broadcast_but_not_manage_tokens() {
        let owner = Caller::owner("+14155550199");
        for req in Request::examples() {
            assert_eq!(
                authorize(&owner, &req).is_ok(),
                !local_only(&req),
                "{req:?}"
            );
        }
    }
}
