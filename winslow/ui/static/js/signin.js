import { api } from "./api.js";

/** Where to go after signing in: `next` only if the browser's own URL parser resolves it
 * on this origin (the server already sent only a path of its own; this is the second
 * lock), else the overview. */
export function sameOriginTarget(next) {
  let url;
  try {
    url = new URL(next || "/", window.location.origin);
  } catch (_) {
    return "/";
  }
  // The whole URL, never its path alone: "/.//evil.example" resolves here, but its path
  // "//evil.example" read again would lead away.
  return url.origin === window.location.origin ? url.href : "/";
}

/** Sign in with what `body(form)` makes of the form's fields; a refusal is said under the
 * form, next to what to change, and the first field is marked. */
function signInWith(form, problem, body) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    const first = form.querySelector("input");
    problem.textContent = "";
    first.removeAttribute("aria-invalid");
    button.disabled = true;
    try {
      await api("/session", { method: "POST", body: body(form) });
    } catch (error) {
      problem.textContent = error.message;
      first.setAttribute("aria-invalid", "true");
      first.focus();
      button.disabled = false;
      return;
    }
    window.location.assign(sameOriginTarget(form.dataset.next));
  });
}

signInWith(
  document.getElementById("password-form"),
  document.getElementById("password-problem"),
  (form) => ({ username: form.querySelector("#username").value.trim(), password: form.querySelector("#password").value }),
);
signInWith(
  document.getElementById("signin-form"),
  document.getElementById("token-problem"),
  (form) => ({ token: form.querySelector("#token").value.trim() }),
);
