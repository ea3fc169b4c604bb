//! The admin error for a failed community command: maps [`ServiceError`] (from
//! `community::service`, which sits below `admin` and so cannot name admin types) to the
//! [`ErrorBody`] the daemon answers with. One table, so every command reports the same failure
//! with the same code, and the daemon's handler arms stay one line (`.map_err(ErrorBody::from)`).
//!
//! Database failures become `internal` with a generic message: the details (paths, SQL) belong
//! in the daemon log, which the daemon writes before converting.

use super::protocol::{ErrorBody, ErrorCode};
use crate::community::service::ServiceError;

/// The admin error code of a service error.
pub fn code(e: &ServiceError) -> ErrorCode {
    match e {
        ServiceError::InvalidNumber { .. } => ErrorCode::InvalidNumber,
        ServiceError::Invalid(_) => ErrorCode::InvalidRequest,
        ServiceError::NotFound { .. } => ErrorCode::NotFound,
        ServiceError::Conflict(_) => ErrorCode::Conflict,
        ServiceError::Store(_) => ErrorCode::Internal,
    }
}

/// The error body for a service error.
pub fn from_service(e: &ServiceError) -> ErrorBody {
    match e {
        ServiceError::Store(_) => ErrorBody::new(
            ErrorCode::Internal,
            "the daemon could not read or write its database; see the daemon log",
        ),
        other => ErrorBody::new(code(other), other.to_string()),
    }
}

impl From<ServiceError> for ErrorBody {
    fn from(e: ServiceError) -> Self {
        if matches!(e, ServiceError::Store(_)) {
            tracing::error!(error = %e, "community command failed");
        }
        from_service(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn every_variant_has_its_code() {
        let cases = [
            (
                ServiceError::InvalidNumber {
                    input: "555".into(),
                    reason: "not a valid phone number".into(),
                },
                ErrorCode::InvalidNumber,
            ),
            (
                ServiceError::Invalid("bad".into()),
                ErrorCode::InvalidRequest,
            ),
            (
                ServiceError::NotFound {
                    what: "member",
                    key: "+1".into(),
                },
                ErrorCode::NotFound,
            ),
            (ServiceError::Conflict("done".into()), ErrorCode::Conflict),
            (
                ServiceError::Store(StoreError::InvalidArgument("x".into())),
                ErrorCode::Internal,
            ),
        ];
        for (e, want) in cases {
            let body = ErrorBody::from(e);
            assert_eq!(body.code, want);
            assert!(!body.message.is_empty());
        }
    }

    #[test]
    fn messages_name_the_input_but_not_database_details() {
        let b = from_service(&ServiceError::InvalidNumber {
            input: "555".into(),
            reason: "not a valid phone number".into(),
        });
        assert!(b.message.contains("555"), "{}", b.message);
        let b = from_service(&ServiceError::Store(StoreError::InvalidArgument(
            "/var/lib/secret.db".into(),
        )));
        assert!(!b.message.contains("secret"), "{}", b.message);
    }
}
