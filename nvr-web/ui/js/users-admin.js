// Users page (admin): list users; add one (username, role, password twice); change a role,
// disable/enable, reset a password (PATCH /api/users/{id}); delete (not yourself).

import { api, session } from "/js/api.js";
import { el, iconButton, field, dialog, confirmDialog, toast, timeEl, parseTime } from "/js/util.js";

const ROLES = [
  ["guard", "Guard: live and playback"],
  ["evidence", "Evidence: + export and holds"],
  ["admin", "Admin: + cameras, users, status"],
];

function roleSelect(value, id) {
  return el("select", { id, "aria-label": "Role" },
    ...ROLES.map(([r, label]) => el("option", { value: r, selected: r === value, title: label }, r)));
}

export function mount(root) {
  const tbody = el("tbody");
  const note = el("p.muted");
  const uname = el("input#new-username", { required: true, maxLength: 64, autocomplete: "off", spellcheck: false });
  const role = roleSelect("guard", "new-role");
  const p1 = el("input#new-password", { type: "password", required: true, minLength: 8, autocomplete: "new-password" });
  const p2 = el("input#new-password2", { type: "password", required: true, minLength: 8, autocomplete: "new-password" });
  const err = el("p.error", { role: "alert" });
  const form = el("form.card.inline-form#add-user", null, el("h2", null, "Add a user"),
    el("div.row4", null, field("Username", uname), field("Role", role), field("Password", p1), field("Password again", p2)),
    el("p.muted.small", null, ROLES.map(([, l]) => l).join(" · ")),
    err, el("button.btn.primary", { type: "submit" }, "Add user"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.textContent = "";
    if (p1.value !== p2.value) { err.textContent = "The two passwords differ."; return; }
    try {
      await api("POST", "/api/users", { username: uname.value.trim(), password: p1.value, role: role.value });
      toast(`User ${uname.value.trim()} added.`, "ok");
      form.reset();
      refresh();
    } catch (e) { err.textContent = e.message; }
  });
  root.append(el("div.page-head", null, el("h1", null, "Users")),
    el("div.table-wrap", null, el("table.list#users-table", null,
      el("thead", null, el("tr", null, ...["Username", "Role", "State", "Created", ""].map((h) => el("th", { scope: "col" }, h)))),
      tbody)), note, form);

  let alive = true;
  async function refresh() {
    try {
      const users = await api("GET", "/api/users");
      if (!alive) return;
      note.textContent = "";
      tbody.replaceChildren(...users.map(row));
    } catch (e) {
      note.textContent = e.status === 404 ? "This recorder cannot manage users from the web yet (no /api/users)." : `Cannot list users: ${e.message}`;
    }
  }

  function row(u) {
    const me = session.user && u.username === session.user.username;
    const sel = roleSelect(u.role, `role-${u.id}`);
    sel.disabled = me;
    if (me) sel.title = "You cannot change your own role.";
    sel.addEventListener("change", async () => {
      try { await api("PATCH", `/api/users/${u.id}`, { role: sel.value }); toast(`${u.username} is now ${sel.value}.`, "ok"); }
      catch (e) { toast(`Cannot change the role: ${e.message}`, "bad"); sel.value = u.role; }
      refresh();
    });
    return el("tr", { "data-user-id": String(u.id) },
      el("td", null, el("strong", null, u.username), me ? el("span.muted", null, " (you)") : null),
      el("td", null, sel),
      el("td", null, u.disabled ? el("span.sev.disabled", null, "Disabled") : el("span.sev.recording", null, "Active")),
      el("td", null, timeEl(parseTime(u.created))),
      el("td.actions", null,
        iconButton("key", "Reset password", () => resetPassword(u)),
        me ? null : iconButton(u.disabled ? "play" : "pause", u.disabled ? "Enable" : "Disable", () => setDisabled(u, !u.disabled)),
        me ? null : iconButton("delete", "Delete", () => remove(u), { cls: "danger" })));
  }

  async function setDisabled(u, disabled) {
    try { await api("PATCH", `/api/users/${u.id}`, { disabled }); toast(`${u.username} ${disabled ? "disabled" : "enabled"}.`, "ok"); }
    catch (e) { toast(e.message, "bad"); }
    refresh();
  }

  async function resetPassword(u) {
    const a = el("input", { type: "password", required: true, minLength: 8, autocomplete: "new-password" });
    const b = el("input", { type: "password", required: true, minLength: 8, autocomplete: "new-password" });
    const e2 = el("p.error", { role: "alert" });
    await dialog(`New password for ${u.username}`, [field("New password", a), field("Again", b), e2], [
      { label: "Cancel", value: null }, { label: "Set password", value: "ok", cls: "primary" }], {
      onSubmit: async () => {
        if (a.value !== b.value) { e2.textContent = "The two passwords differ."; return false; }
        try { await api("PATCH", `/api/users/${u.id}`, { password: a.value }); toast("Password set.", "ok"); return true; }
        catch (e) { e2.textContent = e.message; return false; }
      },
    });
  }

  async function remove(u) {
    if (!await confirmDialog(`Delete ${u.username}?`, "The user can no longer log in; their sessions end.", "Delete user")) return;
    try { await api("DELETE", `/api/users/${u.id}`); toast(`${u.username} deleted.`, "ok"); }
    catch (e) { toast(e.message, "bad"); }
    refresh();
  }

  refresh();
  return { unmount() { alive = false; } };
}
