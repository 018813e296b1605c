//! The page shell: head, header with navigation, and the `#live` region the script refreshes.

use leptos::prelude::*;

#[component]
pub fn Shell(title: String, refresh: Option<u64>, children: Children) -> impl IntoView {
    let refresh_attr = refresh.map(|s| s.to_string());
    view! {
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <title>{format!("{title} · postgres-migrator")}</title>
                <link rel="stylesheet" href="/assets/style.css"/>
                {refresh_attr.clone().map(|s| view! { <noscript><meta http-equiv="refresh" content=s/></noscript> })}
                <script src="/assets/refresh.js" defer></script>
            </head>
            <body>
                <header class="top">
                    <a class="brand" href="/">"postgres-migrator"</a>
                    <nav>
                        <a href="/">"Mappings"</a>
                        <a href="/config">"Configuration"</a>
                        <a href="/api/status">"API"</a>
                        <a href="/metrics">"Metrics"</a>
                    </nav>
                </header>
                <main id="live" data-refresh=refresh_attr>{children()}</main>
                <footer>
                    <span id="refresh-note">
                        {match refresh {
                            Some(s) => format!("Refreshes every {s} s."),
                            None => String::new(),
                        }}
                    </span>
                </footer>
            </body>
        </html>
    }
}
