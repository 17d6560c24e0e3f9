//! The OpenAPI document, generated from the handlers' annotations and types.

use crate::routes;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Stasis", description = "E2B-compatible sandbox API: create, pause, resume, list, kill."),
    paths(
        routes::create::create, routes::create::create_legacy, routes::list::list_v2, routes::list::list_running, routes::get::get, routes::kill::kill,
        routes::pause::pause, routes::resume::resume, routes::connect::connect, routes::timeout::set_timeout,
        routes::network::update_network,
        routes::metrics::metrics, routes::usage::usage, routes::health::health, routes::timeout::refresh,
        routes::health::prometheus
    ),
    components(schemas(
        stasis_types::wire::NewSandbox, stasis_types::wire::Sandbox, stasis_types::wire::SandboxDetail,
        stasis_types::wire::ListedSandbox, stasis_types::wire::ConnectSandbox, stasis_types::wire::ResumedSandbox,
        stasis_types::wire::PauseRequest, stasis_types::wire::TimeoutRequest, stasis_types::wire::SandboxMetric,
        stasis_types::wire::UsageReport, stasis_types::wire::ErrorBody, routes::network::NetworkUpdate
    )),
    modifiers(&ApiKeyAuth, &LegacyRoutes)
)]
pub struct ApiDoc;

/// The legacy routes served by the same handlers as their current twins (a handler has one
/// annotation): documented as copies, marked deprecated.
struct LegacyRoutes;

impl utoipa::Modify for LegacyRoutes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (current, legacy) in [("/v2/sandboxes/{id}/connect", "/sandboxes/{id}/connect")] {
            let Some(mut op) = openapi.paths.paths.get(current).and_then(|p| p.post.clone()) else { continue };
            op.operation_id = op.operation_id.map(|id| format!("{id}_legacy"));
            op.deprecated = Some(utoipa::openapi::Deprecated::True);
            openapi.paths.paths.entry(legacy.to_owned()).or_default().post = Some(op);
        }
    }
}

struct ApiKeyAuth;

impl utoipa::Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        openapi.components.get_or_insert_with(Default::default).add_security_scheme("ApiKeyAuth", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-KEY"))));
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new("ApiKeyAuth", Vec::<String>::new())]);
    }
}

pub async fn serve() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
