//! The one error type of the `pdu` module. Decoding errors carry the octet offset (counted from
//! the first octet of the whole PDU, SMSC prefix included) and the name of the 23.040 field that
//! failed, because the person reading the error usually holds the hex dump in the other hand.
//! Encoding errors name the value that cannot be represented.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PduError {
    /// A character that is not a hex digit (position counted in characters of the trimmed input).
    #[error("invalid hex digit at character {position}")]
    BadHex { position: usize },
    /// Hex input with an odd number of digits cannot be octets.
    #[error("odd number of hex digits ({digits})")]
    OddHex { digits: usize },
    /// The PDU ended inside `field`, which starts at octet `offset`.
    #[error("truncated {field} at octet {offset}")]
    Truncated { field: &'static str, offset: usize },
    /// `field` at octet `offset` holds a value 23.040 does not allow (or we do not support).
    #[error("invalid {field} at octet {offset}: {detail}")]
    Invalid {
        field: &'static str,
        offset: usize,
        detail: String,
    },
    /// An address string that cannot be put into an SMS address field.
    #[error("invalid address {input:?}: {detail}")]
    BadAddress { input: String, detail: &'static str },
    /// A value that cannot be encoded (user data too long, character outside the alphabet...).
    #[error("cannot encode {field}: {detail}")]
    Unencodable { field: &'static str, detail: String },
    /// The text needs more than 255 parts, the most a concatenation header can count.
    #[error("text needs {parts} parts; a concatenated SMS has at most 255")]
    TooManyParts { parts: usize },
}
