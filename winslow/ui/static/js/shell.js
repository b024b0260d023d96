// Every page: the sign-out button, the light/dark switch, the keyboard shortcuts.
import { api, guarded } from "./api.js";
import { showShortcuts } from "./keys.js";

const signOut = document.getElementById("sign-out");
if (signOut) {
  signOut.addEventListener("click", () => guarded(async () => {
    await api("/session", { method: "DELETE" });
    window.location.assign("/signin");
  }));
}

// The theme follows the system until the person picks one with the switch; the choice is
// kept in localStorage (base.html applies it before the page paints).
const THEME_KEY = "winslow-theme";
const systemDark = window.matchMedia("(prefers-color-scheme: dark)");
const themeSwitch = document.getElementById("theme-switch");

function chosenTheme() {
  try {
    const stored = localStorage.getItem(THEME_KEY);
    if (stored === "dark" || stored === "light") return stored;
  } catch (_) { /* storage blocked: follow the system */ }
  return systemDark.matches ? "dark" : "light";
}

function applyTheme() {
  const theme = chosenTheme();
  document.documentElement.dataset.theme = theme;
  if (themeSwitch) themeSwitch.setAttribute("aria-checked", String(theme === "dark"));
}

systemDark.addEventListener("change", applyTheme);
if (themeSwitch) {
  themeSwitch.addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    try { localStorage.setItem(THEME_KEY, next); } catch (_) { /* kept for this page only */ }
    applyTheme();
  });
}
applyTheme();

const shortcutsButton = document.getElementById("show-shortcuts");
if (shortcutsButton) shortcutsButton.addEventListener("click", showShortcuts);
