// @ts-check
// Web Push and OS notifications for the dashboard (no build step, no CDN).
//   TowercoPush.enable(token)   ask permission, register the service worker, subscribe this
//                               browser to pages (POST /api/v1/push/subscriptions)
//   TowercoPush.disable(token)  remove this browser's subscription
//   TowercoPush.notify(ev)      an OS notification for a critical incident while the tab is
//                               hidden (the Notifications API through the service worker)
let registration = null;

function keyBytes(b64url) {
  const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (b64url.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}
async function worker() {
  if (registration) return registration;
  if (!("serviceWorker" in navigator)) return null;
  registration = await navigator.serviceWorker.register("/static/sw.js", { scope: "/static/" });
  return registration;
}
async function api(method, path, token, body) {
  const res = await fetch(path, {
    method, headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => ({})) };
}
// -> "subscribed" | "notifications-only" (no push service reachable) | "denied" | "unsupported"
async function enable(token) {
  if (!("Notification" in window)) return "unsupported";
  const permission = Notification.permission === "granted" ? "granted" : await Notification.requestPermission();
  if (permission !== "granted") return "denied";
  const reg = await worker();
  if (!reg || !reg.pushManager) return "notifications-only";
  try {
    const { body } = await api("GET", "/api/v1/push/vapid-public-key", token);
    const sub = (await reg.pushManager.getSubscription()) ||
      (await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(body.public_key) }));
    const saved = await api("POST", "/api/v1/push/subscriptions", token, sub.toJSON());
    return saved.status === 201 ? "subscribed" : "notifications-only";
  } catch (err) {
    return "notifications-only";  // e.g. no push service: OS notifications while open still work
  }
}
async function disable(token) {
  const reg = await worker();
  const sub = reg && reg.pushManager && (await reg.pushManager.getSubscription());
  if (!sub) return false;
  await api("DELETE", "/api/v1/push/subscriptions", token, { endpoint: sub.endpoint });
  return sub.unsubscribe();
}
async function notify(ev) {
  if (!("Notification" in window) || Notification.permission !== "granted") return false;
  if (document.visibilityState !== "hidden") return false;  // the screen shows it already
  const inc = ev.incident || {};
  const title = `[${ev.priority}] ${inc.title || inc.incident_id}`;
  const options = {
    body: ev.site_id ? `site ${ev.site_id}` : "", tag: inc.incident_id, renotify: true,
    requireInteraction: ev.priority === "critical",
    data: { url: `${location.origin}/#incident=${encodeURIComponent(inc.incident_id)}` },
  };
  const reg = await worker().catch(() => null);
  if (reg) { await reg.showNotification(title, options); return true; }
  new Notification(title, options);
  return true;
}
export const TowercoPush = { enable, disable, notify, worker };
