// towerco-notify service worker: Web Push pages while no dashboard is open, the click
// that opens the incident, and the notification's Acknowledge button, which POSTs the
// page's action link (acting as the person paged, no sign-in needed). Registered by
// dashboard-push.js (scope /static/).
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let page = {};
  try { page = event.data ? event.data.json() : {}; } catch { page = { title: event.data && event.data.text() }; }
  const title = page.title || "towerco-notify page";
  event.waitUntil(self.registration.showNotification(title, {
    body: page.body || "",
    tag: page.incident_id || undefined,   // one notification per incident, updated in place
    renotify: true,
    requireInteraction: page.severity === "critical",
    data: { url: page.url || "/", incident_id: page.incident_id, ack_url: page.ack_url },
    actions: page.ack_url ? (page.actions || [{ action: "acknowledge", title: "Acknowledge" }, { action: "open", title: "Open" }]) : [],
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  if (event.action === "acknowledge" && data.ack_url) {
    event.waitUntil(fetch(data.ack_url, { method: "POST", credentials: "omit" }).then(async (r) => {
      const done = r.ok ? "Acknowledged" : r.status === 410 ? "Already handled" : "Not acknowledged";
      await self.registration.showNotification(done, { body: data.incident_id || "", tag: (data.incident_id || "") + ":ack" });
    }));
    return;
  }
  const url = data.url || "/";
  event.waitUntil((async () => {
    const open = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const c of open) {
      if (new URL(c.url).origin === self.location.origin) { await c.focus(); c.navigate(url); return; }
    }
    await self.clients.openWindow(url);
  })());
});
