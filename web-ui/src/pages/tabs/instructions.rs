use leptos::prelude::*;
use migrator_core::status::MappingStatus;

/// The generated cutover instructions.
#[component]
pub fn Instructions(mapping: MappingStatus) -> impl IntoView {
    if mapping.instructions.is_empty() {
        return super::empty(
            "Instructions appear once the instance checks have listed the databases.",
        );
    }
    view! { <pre class="instructions">{mapping.instructions}</pre> }.into_any()
}
