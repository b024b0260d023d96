import { api, showError } from "./api.js";

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

const form = document.getElementById("signin-form");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = form.querySelector("#token").value.trim();
  try {
    await api("/session", { method: "POST", body: { token } });
  } catch (error) {
    showError(error);
    return;
  }
  window.location.assign(sameOriginTarget(form.dataset.next));
});
