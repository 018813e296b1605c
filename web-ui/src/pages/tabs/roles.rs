use super::DataTable;
use leptos::prelude::*;
use migrator_core::status::{MappingStatus, PasswordOutcome, RoleAction};

/// The source's roles and what became of each on the destination. The findings above the tabs
/// say what to do about conflicts and passwords.
#[component]
pub fn Roles(mapping: MappingStatus) -> impl IntoView {
    if mapping.roles.is_empty() {
        return super::empty(
            "No role read yet, or the source has none besides the system's: roles are copied before any database's schema.",
        );
    }
    let rows = mapping
        .roles
        .into_iter()
        .map(|r| {
            let (class, action) = match r.action {
                RoleAction::Create => ("", "to be created"),
                RoleAction::Copied => ("ok", "copied"),
                RoleAction::Conflict => ("problem-text", "conflict: exists on the destination"),
                RoleAction::Skipped => ("", "skipped: the destination's own is kept"),
                RoleAction::Merged => ("ok", "merged into the destination's"),
                RoleAction::Connection => ("", "the tool's destination role: untouched"),
            };
            let (password_class, password) = match r.password {
                PasswordOutcome::Copied => ("ok", "copied (SCRAM)"),
                PasswordOutcome::CopiedMd5 => ("problem-text", "copied (MD5: deprecated)"),
                PasswordOutcome::None => ("", "none on the source"),
                PasswordOutcome::Fallback => {
                    ("problem-text", "fallback password: set the real one")
                }
                PasswordOutcome::NeedsPassword => ("problem-text", "none: set one before cutover"),
                PasswordOutcome::NotApplicable => ("", "—"),
            };
            view! {
                <tr>
                    <td class="name">{r.name}</td>
                    <td>{if r.login { "yes" } else { "no" }}</td>
                    <td class=class>{action}</td>
                    <td class=password_class>{password}</td>
                    <td>{r.member_of.join(", ")}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <DataTable headers=&["Role", "Login", "On the destination", "Password", "Member of"]>{rows}</DataTable>
        <p class="message">
            "Owners, grants, column privileges, default privileges and row-level security policies \
             are copied with each database's schema."
        </p>
    }
    .into_any()
}
