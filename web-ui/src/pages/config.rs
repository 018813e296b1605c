//! `/config`: the effective configuration, read-only, every secret `***`.

use axum::extract::State;
use axum::response::Html;
use leptos::prelude::*;

use crate::AppState;

pub async fn page(State(state): State<AppState>) -> Html<String> {
    let toml = state.config_toml.to_string();
    let body = view! {
        <h1>"Configuration"</h1>
        <p>
            "The settings this process runs with: the embedded defaults, overlaid by the \
             configuration file, overlaid by MIGRATOR__... environment variables. Secrets show \
             as ***. Changing them needs a restart."
        </p>
        <pre class="config">{toml}</pre>
    };
    super::document("Configuration".into(), None, body)
}
