import { api, showError } from "./api.js";

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
  const next = form.dataset.next || "/";
  window.location.assign(next.startsWith("/") && !next.startsWith("//") ? next : "/");
});
