//! The admin interface: newline-delimited JSON over a Unix stream socket, with the server run by
//! the daemon and the client used by the `gsmgate` CLI verbs (docs/admin-protocol.md).
//!
//! `protocol` holds every wire type and is the only file both sides share; `server` binds the
//! socket and runs connections against a [`server::Handler`] the daemon implements (this module
//! does not know what `send` does); `peer` decides who may connect from SO_PEERCRED and
//! `admission` how many connections each may hold; `client` is the CLI side; `lines` is the
//! bounded newline framing used by both. The wire format is documented for users in
//! docs/admin-protocol.md. This module sits above `store`/`dispatch` in
//! the layering but uses none of them: the daemon wiring connects the two through the handler.

pub mod admission;
pub mod client;
pub mod lines;
pub mod peer;
pub mod server;

/// The wire types, owned by the top-level `protocol` module; named here too because the admin
/// socket is their first transport.
pub use crate::protocol;

pub use client::{Client, ClientError, EventStream, resolve_socket_path};
pub use peer::{AccessPolicy, Peer, Trusted};
pub use protocol::{ErrorBody, ErrorCode, Event, EventKind, Reply, Request, RequestId, Response};
pub use server::{AdminError, Handler, ServeOptions, bind, remove_socket, serve, serve_with};
