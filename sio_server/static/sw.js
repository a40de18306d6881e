// towerco-notify service worker: Web Push pages while no dashboard is open, and the
// click that opens the incident. Registered by dashboard-push.js (scope /static/).
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
    data: { url: page.url || "/", incident_id: page.incident_id },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || "/";
  event.waitUntil((async () => {
    const open = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const c of open) {
      if (new URL(c.url).origin === self.location.origin) { await c.focus(); c.navigate(url); return; }
    }
    await self.clients.openWindow(url);
  })());
});
