// Moments as the server-rendered pages write them (`2026-12-03 14:40 UTC`): the same in
// every time zone, so what a person reads matches the API, the CLI and the logs.

/** `2026-12-03 14:40 UTC` of an ISO moment; "" for none. */
export function moment(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}
