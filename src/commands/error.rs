//! The one error type of the command layer and its one mapping to the protocol's error body.
//!
//! Every transport answers a failed command with [`ErrorBody::from`]: the admin socket writes it as
//! the `error` object, the HTTP API adds a status code for its `code`. Keeping the mapping here,
//! beside the error, means a refusal reads the same on every transport.
//!
//! Database failures become `internal` with a generic message and are logged with their details:
//! paths and SQL belong in the daemon log, not in a reply that a less trusted client may read.

use crate::community::CommunityError;
use crate::protocol::{ErrorBody, ErrorCode};
use crate::store::StoreError;

/// Why a command failed. Each variant is one error code of the protocol.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A phone number that cannot be understood (`invalid_number`).
    #[error("number {input:?}: {reason}")]
    InvalidNumber { input: String, reason: String },
    /// A bad argument: segment, template, tag, time zone, time, text (`invalid_request`).
    #[error("{0}")]
    Invalid(String),
    /// A named member, broadcast, message, modem or voicemail does not exist (`not_found`).
    #[error("{0}")]
    NotFound(String),
    /// The thing exists but its state does not allow this (`conflict`).
    #[error("{0}")]
    Conflict(String),
    /// The caller may not run this command: scope too small, or a local-only command over HTTP
    /// (`permission_denied`).
    #[error("{0}")]
    Forbidden(String),
    /// The number texted STOP (`opted_out`).
    #[error("{0}")]
    OptedOut(String),
    /// The gateway cannot serve this now, e.g. voice is disabled (`unavailable`).
    #[error("{0}")]
    Unavailable(String),
    /// The database failed (`internal`; details only in the log).
    #[error("database: {0}")]
    Store(StoreError),
    /// Anything else that should not happen (`internal`).
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = CommandError> = std::result::Result<T, E>;

impl From<CommunityError> for CommandError {
    fn from(e: CommunityError) -> Self {
        match e {
            CommunityError::InvalidNumber { input, reason } => {
                CommandError::InvalidNumber { input, reason }
            }
            other => CommandError::Invalid(other.to_string()),
        }
    }
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, key } => {
                CommandError::NotFound(format!("{what} {key} not found"))
            }
            StoreError::DuplicateMember { number } => {
                CommandError::Conflict(format!("{number} is already a member"))
            }
            StoreError::Conflict(why) => CommandError::Conflict(why),
            StoreError::InvalidTransition { id, from, action } => {
                CommandError::Conflict(match from.strip_prefix("broadcast ") {
                    Some(state) => format!("broadcast {id} is {state}, cannot {action} it"),
                    None => format!("message {id} is {from}, cannot {action} it"),
                })
            }
            other => CommandError::Store(other),
        }
    }
}

impl CommandError {
    /// The protocol's error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            CommandError::InvalidNumber { .. } => ErrorCode::InvalidNumber,
            CommandError::Invalid(_) => ErrorCode::InvalidRequest,
            CommandError::NotFound(_) => ErrorCode::NotFound,
            CommandError::Conflict(_) => ErrorCode::Conflict,
            CommandError::OptedOut(_) => ErrorCode::OptedOut,
            CommandError::Forbidden(_) => ErrorCode::PermissionDenied,
            CommandError::Unavailable(_) => ErrorCode::Unavailable,
            CommandError::Store(_) | CommandError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<CommandError> for ErrorBody {
    fn from(e: CommandError) -> Self {
        match &e {
            CommandError::Store(_) => {
                tracing::error!(error = %e, "admin command failed");
                ErrorBody::new(
                    ErrorCode::Internal,
                    "the daemon could not read or write its database; see the daemon log",
                )
            }
            CommandError::Internal(_) => {
                tracing::error!(error = %e, "admin command failed");
                ErrorBody::new(
                    ErrorCode::Internal,
                    format!("the daemon could not answer: {e}"),
                )
            }
            other => ErrorBody::new(other.code(), other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_code() {
        let cases = [
            (
                CommandError::InvalidNumber {
                    input: "555".into(),
                    reason: "not a valid phone number".into(),
                },
                ErrorCode::InvalidNumber,
            ),
            (
                CommandError::Invalid("bad".into()),
                ErrorCode::InvalidRequest,
            ),
            (
                CommandError::NotFound("member +1 not found".into()),
                ErrorCode::NotFound,
            ),
            (CommandError::Conflict("done".into()), ErrorCode::Conflict),
            (CommandError::OptedOut("stop".into()), ErrorCode::OptedOut),
            (
                CommandError::Unavailable("off".into()),
                ErrorCode::Unavailable,
            ),
            (
                CommandError::Store(StoreError::InvalidArgument("x".into())),
                ErrorCode::Internal,
            ),
            (CommandError::Internal("task".into()), ErrorCode::Internal),
        ];
        for (e, want) in cases {
            let body = ErrorBody::from(e);
            assert_eq!(body.code, want);
            assert!(!body.message.is_empty());
        }
    }

    #[test]
    fn messages_name_the_input_but_not_database_details() {
        let b = ErrorBody::from(CommandError::InvalidNumber {
            input: "555".into(),
            reason: "not a valid phone number".into(),
        });
        assert!(b.message.contains("555"), "{}", b.message);
        let b = ErrorBody::from(CommandError::Store(StoreError::InvalidArgument(
            "/var/lib/secret.db".into(),
        )));
        assert!(!b.message.contains("secret"), "{}", b.message);
    }

    #[test]
    fn store_refusals_keep_their_meaning() {
        let e = CommandError::from(StoreError::NotFound {
            what: "broadcast",
            key: "9".into(),
        });
        assert_eq!(e.code(), ErrorCode::NotFound);
        assert_eq!(e.to_string(), "broadcast 9 not found");
        let e = CommandError::from(StoreError::DuplicateMember {
            number: "+15550001".into(),
        });
        assert_eq!(e.code(), ErrorCode::Conflict);
    }
}
