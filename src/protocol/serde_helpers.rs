//! Small serde adapters shared by the argument types: optional flags and lists may be `null` as
//! well as absent on the wire (clients written in other languages send `null` for "not set"), and
//! `false` flags are left out when the client serializes.

use serde::{Deserialize, Deserializer};

pub(super) fn is_false(b: &bool) -> bool {
    !*b
}

/// Optional boolean members may be `null` as well as absent; both mean `false`.
pub(super) fn null_as_false<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

/// An optional list may be `null` as well as absent; both mean empty.
pub(super) fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}
