//! HTTP-level tests of the control plane, on fakes: one binary, one server per test.

mod auth;
mod common;
mod input;
mod proxy;
mod routes;
mod states;
mod timeouts;
mod upstream;
