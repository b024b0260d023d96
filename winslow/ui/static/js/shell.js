// Every signed-in page: the sign-out button.
import { api, guarded } from "./api.js";

const signOut = document.getElementById("sign-out");
if (signOut) {
  signOut.addEventListener("click", () => guarded(async () => {
    await api("/session", { method: "DELETE" });
    window.location.assign("/signin");
  }));
}
