// The login page, and the first-run page that creates the first administrator when the
// recorder has no user yet (GET /api/setup says {"needed": true}).

import { api, ApiError } from "/js/api.js";
import { el, field, icon } from "/js/util.js";

export function mount(root, { onLoggedIn }) {
  const box = el("section.login-box", { "aria-live": "polite" });
  root.append(el("div.login-wrap", null, box));
  let alive = true;

  (async () => {
    let state = { needed: false, code_required: false };
    try {
      state = await api("GET", "/api/setup");
    } catch (e) {
      // An older recorder without /api/setup: fall back to the login form.
    }
    if (!alive) return;
    box.replaceChildren(state.needed ? setupForm(onLoggedIn, !!state.code_required) : loginForm(onLoggedIn));
    box.querySelector("input")?.focus();
  })();

  return { unmount() { alive = false; } };
}

function header(title, sub) {
  return el("div.login-head", null, icon("camera", "big"), el("h1", null, title),
    sub ? el("p.muted", null, sub) : null);
}

function loginForm(onLoggedIn) {
  const user = el("input#login-username", { name: "username", autocomplete: "username", required: true,
    autocapitalize: "none", spellcheck: false });
  const pass = el("input#login-password", { name: "password", type: "password",
    autocomplete: "current-password", required: true });
  const err = el("p.error#login-error", { role: "alert" });
  const submit = el("button.btn.primary.wide", { type: "submit" }, "Log in");
  const form = el("form#login-form", null, header("Log in", "Network video recorder"),
    field("Username", user), field("Password", pass), err, submit);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.textContent = "";
    submit.disabled = true;
    try {
      const u = await api("POST", "/api/login", { username: user.value, password: pass.value });
      onLoggedIn(u);
    } catch (e) {
      pass.value = "";
      pass.focus();
      err.textContent = loginError(e);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function loginError(e) {
  if (!(e instanceof ApiError)) return String(e.message || e);
  if (e.status === 401) return "Wrong username or password.";
  if (e.status === 429) return `${e.message} (too many attempts: wait, then try again)`;
  return e.message;
}

function setupForm(onLoggedIn, codeRequired) {
  const code = codeRequired ? el("input#setup-code", { name: "setup_code", required: true, autocomplete: "off",
    autocapitalize: "characters", spellcheck: false, placeholder: "XXXX-XXXX-XXXX" }) : null;
  const user = el("input#setup-username", { name: "username", autocomplete: "username", required: true,
    value: "admin", autocapitalize: "none", spellcheck: false });
  const p1 = el("input#setup-password", { name: "password", type: "password", autocomplete: "new-password",
    required: true, minLength: 8 });
  const p2 = el("input#setup-password2", { name: "password2", type: "password", autocomplete: "new-password",
    required: true, minLength: 8 });
  const err = el("p.error#setup-error", { role: "alert" });
  const submit = el("button.btn.primary.wide", { type: "submit" }, "Create administrator");
  const form = el("form#setup-form", null,
    header("Welcome", "This recorder has no user yet. Create the first administrator."),
    code ? field("Setup code", code, "Printed on the recorder's console by nvr serve (or nvr init).") : null,
    field("Username", user), field("Password", p1, "At least 8 characters."),
    field("Password again", p2), err, submit);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.textContent = "";
    if (p1.value !== p2.value) { err.textContent = "The two passwords differ."; p2.focus(); return; }
    submit.disabled = true;
    try {
      const body = { username: user.value, password: p1.value };
      if (code) body.setup_code = code.value;
      onLoggedIn(await api("POST", "/api/setup", body));
    } catch (e) {
      if (e.kind === "setup_code") {
        err.textContent = "Wrong setup code: use the one printed on the recorder's console.";
        code?.focus();
      } else if (e.status === 409) {
        err.textContent = "An administrator exists already: reload the page and log in.";
      } else {
        err.textContent = e.message;
      }
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
