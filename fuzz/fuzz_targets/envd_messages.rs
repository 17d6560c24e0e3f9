//! envd's request messages (E2B's `process` and `filesystem` services) as envd reads them,
//! through `stasis_envd::rpc` with its size limit and encoding checks — a unary JSON body, or a
//! streaming body of one Connect envelope — and envd's replies as the SDK reads them.
//!
//! Input: a byte choosing the message type, a mode byte (bit 0: streaming; bit 1: a 64-byte
//! limit instead of 1 MiB; bit 2: a gzip content encoding; bit 3: wrap the rest in one envelope,
//! so mutations of the JSON keep a valid frame), then the body. Checks: no panic; a rejected
//! body is `invalid_argument`, `resource_exhausted` (over the limit) or `unimplemented`
//! (compression), never an internal error; an accepted message written back as JSON reads back
//! as the same message.
#![no_main]

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use stasis_proto::connect::{self, Code, ConnectError, EndStream, ENVELOPE_HEADER_LEN};
use stasis_proto::{filesystem as fs, process as pr};
use std::fmt::Debug;
use std::sync::OnceLock;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime"))
}

fn roundtrip<T: DeserializeOwned + Serialize + PartialEq + Debug>(msg: T) {
    let json = serde_json::to_vec(&msg).expect("a decoded message serialises");
    let again: T = connect::parse_json(&json)
        .unwrap_or_else(|e| panic!("{msg:?}, written as {}, does not read back: {e}", String::from_utf8_lossy(&json)));
    assert_eq!(again, msg, "written as {}", String::from_utf8_lossy(&json));
}

fn client_error(e: &ConnectError) -> bool {
    matches!(e.code, Code::InvalidArgument | Code::ResourceExhausted | Code::Unimplemented)
}

/// A request as envd reads it.
fn request<T: DeserializeOwned + Serialize + PartialEq + Debug>(mode: u8, body: &[u8]) {
    let limit = if mode & 2 != 0 { 64 } else { 1 << 20 };
    let mut headers = HeaderMap::new();
    if mode & 4 != 0 {
        headers.insert("content-encoding", HeaderValue::from_static("gzip"));
        headers.insert("connect-content-encoding", HeaderValue::from_static("gzip"));
    }
    let streaming = mode & 1 != 0;
    let body = if mode & 8 != 0 { connect::encode_envelope(0, body) } else { body.to_vec() };
    let len = body.len();
    let parsed: Result<T, ConnectError> = runtime().block_on(async {
        if streaming {
            stasis_envd::rpc::stream_request(&headers, Body::from(body), limit).await
        } else {
            stasis_envd::rpc::unary_request(&headers, Body::from(body), limit).await
        }
    });
    match parsed {
        Ok(msg) => {
            assert!(len <= limit + ENVELOPE_HEADER_LEN, "a {len}-byte body accepted under a limit of {limit}");
            roundtrip(msg);
        }
        Err(e) => assert!(client_error(&e), "{e:?}"),
    }
}

/// A reply as the SDK reads it.
fn reply<T: DeserializeOwned + Serialize + PartialEq + Debug>(body: &[u8]) {
    match connect::parse_json::<T>(body) {
        Ok(msg) => roundtrip(msg),
        Err(e) => assert_eq!(e.code, Code::InvalidArgument, "{e:?}"),
    }
}

fuzz_target!(|input: &[u8]| {
    let [kind, mode, body @ ..] = input else { return };
    match kind % 22 {
        0 => request::<pr::StartRequest>(*mode, body),
        1 => request::<pr::ConnectRequest>(*mode, body),
        2 => request::<pr::ListRequest>(*mode, body),
        3 => request::<pr::SendInputRequest>(*mode, body),
        4 => request::<pr::SendSignalRequest>(*mode, body),
        5 => request::<pr::CloseStdinRequest>(*mode, body),
        6 => request::<pr::UpdateRequest>(*mode, body),
        7 => request::<pr::StreamInputRequest>(*mode, body),
        8 => request::<fs::PathRequest>(*mode, body),
        9 => request::<fs::MoveRequest>(*mode, body),
        10 => request::<fs::ListDirRequest>(*mode, body),
        11 => request::<fs::WatchDirRequest>(*mode, body),
        12 => request::<fs::WatcherRequest>(*mode, body),
        13 => reply::<pr::ProcessEventResponse>(body),
        14 => reply::<pr::ListResponse>(body),
        15 => reply::<fs::EntryResponse>(body),
        16 => reply::<fs::ListDirResponse>(body),
        17 => reply::<fs::WatchDirResponse>(body),
        18 => reply::<fs::GetWatcherEventsResponse>(body),
        19 => reply::<Vec<fs::WriteInfo>>(body),
        20 => reply::<EndStream>(body),
        _ => reply::<ConnectError>(body),
    }
});
