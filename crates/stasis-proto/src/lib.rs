//! envd's wire types and the Connect protocol v1 codec.
//!
//! Everything here is plain data: the `process` and `filesystem` message types serialize to
//! the proto3-JSON form that E2B's SDKs (connect-web with `useBinaryFormat: false`, and Python
//! connectrpc with a JSON codec) send and parse — camelCase keys out, camelCase or snake_case in,
//! `bytes` as base64, 64-bit integers as strings, enums by name, oneofs as their member key.
//! [`connect`] holds the envelope framing and the error type shared by server and clients.

pub mod connect;
pub mod filesystem;
pub mod json;
pub mod process;

/// The envd protocol level Stasis implements, reported to SDKs as `envdVersion`.
///
/// Each SDK feature gate up to this version is implemented: stdin (0.3.0), no forced user
/// (0.4.0), CloseStdin (0.5.2), octet-stream uploads (0.5.7), file metadata (0.6.2), `entry`
/// in watch events (0.6.3) and the network-mount watch guard (0.6.4).
pub const ENVD_VERSION: &str = "0.6.4";

/// The TCP port envd listens on inside every sandbox.
pub const ENVD_PORT: u16 = 49983;

/// Fully-qualified Connect service names, as they appear in request paths.
pub const PROCESS_SERVICE: &str = "process.Process";
/// See [`PROCESS_SERVICE`].
pub const FILESYSTEM_SERVICE: &str = "filesystem.Filesystem";
