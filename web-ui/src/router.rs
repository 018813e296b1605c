//! The whole router: pages, API, health, metrics, assets; rate limit, same-origin checks on
//! commands, tracing, security headers.

use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::{get, post};
use axum::{Router, middleware};
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::{AppState, api, metrics, origin, pages};

/// Pages load their style and script from this server only; nothing is inline.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The whole router. The API and the command forms are rate limited per client IP, which needs
/// the peer address: serve it with `into_make_service_with_connect_info::<SocketAddr>()`.
/// Commands from other web sites are refused, and API commands must be JSON (origin.rs).
pub fn app(state: AppState) -> Router {
    let (burst, refill) = state.rate_limit;
    let governor = Arc::new(
        GovernorConfigBuilder::default()
            .period(refill)
            .burst_size(burst)
            .finish()
            .expect("server.rate_limit_burst and rate_limit_refill are validated to be non-zero"),
    );
    let listening = origin::Listening {
        loopback_only: state.loopback_only,
    };
    // Commands: the API takes JSON from the dashboard's own origin or from non-browser
    // clients, the forms come from the dashboard's own pages (see origin.rs).
    let api_commands = Router::new()
        .route("/api/mappings/{name}/complete", post(api::complete))
        .route("/api/mappings/{name}/resync", post(api::resync))
        .route("/api/mappings/{name}/retry", post(api::retry))
        .route("/api/mappings/{name}/rate-limit", post(api::rate_limit))
        .route("/api/mappings/{name}/verify", post(api::verify))
        .route(
            "/api/mappings/{name}/databases/{db}/purge",
            post(api::purge),
        )
        .route("/api/mappings/{name}/backups", post(api::backup))
        .route(
            "/api/mappings/{name}/backups/{key}/delete",
            post(api::backup_delete),
        )
        .route_layer(middleware::from_fn_with_state(
            listening,
            origin::api_command,
        ));
    let form_commands = Router::new()
        .route("/mappings/{name}/complete", post(pages::complete::submit))
        .route("/mappings/{name}/resync", post(pages::resync::submit))
        .route("/mappings/{name}/retry", post(pages::retry::submit))
        .route(
            "/mappings/{name}/rate-limit",
            post(pages::rate_limit::submit),
        )
        .route("/mappings/{name}/verify", post(pages::verify::submit))
        .route(
            "/mappings/{name}/databases/{db}/purge",
            post(pages::purge::submit),
        )
        .route("/mappings/{name}/backups", post(pages::backups::create))
        .route(
            "/mappings/{name}/backups/{key}/delete",
            post(pages::backups::delete),
        )
        .route_layer(middleware::from_fn_with_state(
            listening,
            origin::form_command,
        ));
    let limited = Router::new()
        .route("/api/status", get(api::status))
        .merge(api_commands)
        .merge(form_commands)
        .layer(GovernorLayer::new(governor));
    Router::new()
        .route("/", get(pages::grid::page))
        .route("/mappings/{name}", get(pages::mapping::page))
        .route("/mappings/{name}/complete", get(pages::complete::confirm))
        .route(
            "/mappings/{name}/databases/{db}/purge",
            get(pages::purge::confirm),
        )
        .route("/config", get(pages::config::page))
        .route("/assets/style.css", get(pages::assets::style))
        .route("/assets/refresh.js", get(pages::assets::script))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(metrics::metrics))
        .merge(limited)
        .fallback(pages::not_found)
        .with_state(state)
        .layer(security_header(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(security_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(security_header(header::X_FRAME_OPTIONS, "DENY"))
        // Not `no-referrer`: under it a browser sends `Origin: null` with the dashboard's own
        // form POSTs, which origin.rs refuses. `same-origin` still sends nothing to other sites.
        .layer(security_header(header::REFERRER_POLICY, "same-origin"))
        .layer(security_header(header::CACHE_CONTROL, "no-store"))
        .layer(TraceLayer::new_for_http())
}

fn security_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}
