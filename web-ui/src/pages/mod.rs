//! Server-rendered pages: one leptos component per page and tab, inside one shell.

pub mod assets;
pub mod backups;
pub mod complete;
pub mod config;
mod format;
pub mod grid;
pub mod mapping;
pub mod purge;
pub mod rate_limit;
pub mod resync;
pub mod retry;
mod shell;
mod status_bar;
mod tabs;
pub mod verify;

use axum::response::{Html, IntoResponse, Response};
use leptos::prelude::*;

use crate::AppError;
use shell::Shell;

/// A whole HTML document: the shell around `body`. `refresh`: seconds between re-fetches, for
/// pages that show live state.
fn document(title: String, refresh: Option<u64>, body: impl IntoView + 'static) -> Html<String> {
    let html = view! { <Shell title refresh>{body}</Shell> }.to_html();
    Html(format!("<!DOCTYPE html>{html}"))
}

/// A handler error shown as a page (the API's [`AppError`]s are JSON).
pub struct PageError(pub AppError);

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        PageError(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (code, message) = self.0.status_and_message();
        let title = code.canonical_reason().unwrap_or("Error").to_owned();
        let body = view! {
            <section class="message problem">
                <h1>{title.clone()}</h1>
                <p>{message}</p>
                <p><a href="/">"Back to all mappings"</a></p>
            </section>
        };
        (code, document(title, None, body)).into_response()
    }
}

/// Anything no route matches.
pub async fn not_found() -> PageError {
    PageError(AppError::NotFound(
        "there is no such page; the dashboard is at /".into(),
    ))
}

/// The latest snapshot and the mapping `name` in it, or a 404 page.
fn find_mapping(
    state: &crate::AppState,
    name: &str,
) -> Result<
    (
        std::sync::Arc<migrator_core::status::Snapshot>,
        migrator_core::status::MappingStatus,
    ),
    PageError,
> {
    let snapshot = state.status.borrow().clone();
    let mapping = snapshot
        .mapping(name)
        .cloned()
        .ok_or_else(|| unknown_mapping(name))?;
    Ok((snapshot, mapping))
}

/// 404 for a mapping that is not configured.
fn unknown_mapping(name: &str) -> PageError {
    PageError(AppError::NotFound(format!(
        "there is no mapping named {name:?}; the configured ones are listed on the front page"
    )))
}
