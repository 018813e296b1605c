use leptos::prelude::*;
use migrator_core::status::MappingStatus;

/// Roles: which connect where. Copying roles and grants is not built yet.
#[component]
pub fn Roles(mapping: MappingStatus) -> impl IntoView {
    view! {
        <dl class="facts wide">
            <div><dt>"Source connection"</dt><dd>{mapping.source}</dd></div>
            <div><dt>"Destination connection"</dt><dd>{mapping.destination}</dd></div>
        </dl>
        <p class="message">
            "This version does not copy roles, memberships or grants. Create the application roles on \
             the destination, with their passwords and grants, before you repoint clients \
             (see docs/CUTOVER.md); tables are owned by the destination connection's user."
        </p>
    }
}
