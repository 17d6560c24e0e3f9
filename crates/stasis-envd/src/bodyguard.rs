//! `Connection: close` on answers given before the request body was read to its end.
//!
//! Errors are often answered before the body is read (bad token, unknown pid in `StreamInput`,
//! a message over the size limit); hyper then closes the connection. Without the header, a
//! client would put that connection back in its pool and lose its next request on it ("connection
//! closed before message completed").

use axum::body::{Body, HttpBody as _};
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub async fn layer(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let done = Arc::new(AtomicBool::new(body.is_end_stream()));
    let flag = done.clone();
    let tracked = futures_util::stream::unfold((body.into_data_stream(), flag), |(mut s, flag)| async move {
        match s.next().await {
            Some(item) => Some((item, (s, flag))),
            None => {
                flag.store(true, Ordering::SeqCst);
                None
            }
        }
    });
    let mut resp = next.run(Request::from_parts(parts, Body::from_stream(tracked))).await;
    if !done.load(Ordering::SeqCst) {
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
