//! `crates/stasis-sdk/examples/pause_resume.rs` — E2B's pause/resume guide in Rust — run as
//! written against a real server, configured the way its users configure it: through the
//! `E2B_*` environment variables.

mod common;

#[allow(dead_code)]
#[path = "../../stasis-sdk/examples/pause_resume.rs"]
mod pause_resume;

#[tokio::test(flavor = "multi_thread")]
async fn the_pause_resume_guide_runs_against_a_real_server() {
    let server = common::server("example");
    // The only test in this binary: nothing else reads the environment meanwhile.
    std::env::set_var("E2B_API_KEY", common::KEY);
    std::env::set_var("E2B_API_URL", &server.url);
    std::env::set_var("E2B_SANDBOX_URL", &server.url);
    std::env::remove_var("E2B_DOMAIN");
    pause_resume::run().await.expect("the guide's steps");
}
