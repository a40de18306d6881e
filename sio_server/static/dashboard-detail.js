// @ts-check
// The incident detail pane: what happened (the timeline: alerts, pages, deliveries,
// acknowledgements, notes, comments), who else is looking, and the actions with a note.
//   const detail = createDetail({ $, el, api, act, socket: () => socket })
//   detail.open(inc) / detail.close() / detail.changed(inc, ev) / detail.viewers(ev)
const WHEN = (t) => new Date(t * 1000).toLocaleTimeString();
function describe(e) {
  const by = e.by ? ` by ${e.by}` : "";
  switch (e.kind) {
    case "notified": return `level ${e.level} paged (${(e.targets || []).map((t) => Object.keys(t)[0]).join(", ")})`;
    case "delivery": return `${e.receiver} ${e.action || "page"} attempt ${e.attempt}: ${e.ok ? "delivered" : "failed" + (e.error ? " (" + e.error + ")" : "")}`;
    case "webhook": return `webhook ${e.url}: ${e.ok ? "delivered" : "failed"} after ${e.attempts} attempt(s)`;
    case "comment": return `comment${by}: ${e.note || (e.comment && e.comment.text) || ""}`;
    case "suppressed": return `held back: ${e.by_reason || e.by || ""} ${e.until ? "until " + e.until : ""}`;
    default: return `${e.kind}${by}${e.note ? ": " + e.note : ""}${e.until ? " until " + e.until : ""}${e.assignee ? " → " + e.assignee : ""}`;
  }
}
export function createDetail({ $, el, api, act, socket }) {
  let current = null;
  let asked = 0;        // the newest timeline request: an older answer arriving late is dropped
  let again = null;     // the second look after a change (see `changed`)
  async function loadTimeline(id) {
    const mine = ++asked;
    const r = await api("GET", `/api/v1/incidents/${encodeURIComponent(id)}/timeline`);
    if (mine !== asked || !current || current.incident_id !== id) return;
    const entries = (r.body && r.body.timeline) || [];
    $("timeline").replaceChildren(...entries.map((e) => {
      const li = el("li", "entry " + e.kind);
      li.append(el("span", "when", WHEN(e.at)), el("span", "what", describe(e)));
      return li;
    }));
    $("detail").dataset.timeline = String(entries.length);
  }
  function render() {
    const inc = current;
    if (!inc) return;
    $("detail-title").textContent = inc.title;
    $("detail-meta").textContent = `${inc.severity} · ${inc.site_id || "tenant-wide"} · ${inc.incident_id} · ${inc.status}` +
      (inc.assignee ? ` · taken by ${inc.assignee}` : "") + (inc.snoozed_until ? ` · snoozed until ${inc.snoozed_until}` : "") +
      (inc.suppressed ? ` · quiet (${inc.suppressed.by})` : "");
    $("detail").dataset.status = inc.status;
    $("detail").dataset.assignee = inc.assignee || "";
    $("detail-take").textContent = inc.assignee ? "Release" : "Take";
    $("detail-snooze").hidden = inc.status === "snoozed" || inc.status === "resolved";
    $("detail-unsnooze").hidden = inc.status !== "snoozed";
  }
  function open(inc) {
    if (current && current.incident_id !== inc.incident_id) socket().emit("unview_incident", { incident_id: current.incident_id }, () => {});
    const fresh = !current || current.incident_id !== inc.incident_id;
    current = inc;
    $("detail").hidden = false; $("detail").dataset.id = inc.incident_id;
    render();
    if (fresh) {
      $("viewers").textContent = "";
      socket().emit("view_incident", { incident_id: inc.incident_id }, () => {});
      loadTimeline(inc.incident_id);
    }
  }
  function close() {
    if (current) socket().emit("unview_incident", { incident_id: current.incident_id }, () => {});
    current = null; $("detail").hidden = true; delete $("detail").dataset.id;
  }
  async function run(action, extra) {
    if (!current) return;
    const note = $("note").value.trim();
    const body = { ...extra };
    if (note) body.note = note;
    if (action === "comment" && !note) { $("detail-error").textContent = "write a comment first"; return; }
    const ack = await act(current.incident_id, action, body);
    $("detail-error").textContent = ack && ack.ok ? "" : `${action} failed: ${(ack && ack.error) || "no answer"}`;
    if (ack && ack.ok) $("note").value = "";
  }
  $("detail-close").onclick = close;
  $("detail-ack").onclick = () => run("acknowledge");
  $("detail-resolve").onclick = () => run("resolve");
  $("detail-comment").onclick = () => run("comment");
  $("detail-take").onclick = () => run(current && current.assignee ? "release" : "take");
  $("detail-snooze").onclick = () => run("snooze", { minutes: Number($("snooze-minutes").value) });
  $("detail-unsnooze").onclick = () => run("unsnooze");
  return {
    open, close, run,
    get current() { return current; },
    // an update is broadcast before the pipeline writes its timeline entry (the entry is
    // written by the step that runs after publishing), so look again a moment later
    changed(inc) {
      if (!current || current.incident_id !== inc.incident_id) return;
      current = inc; render(); loadTimeline(inc.incident_id);
      clearTimeout(again);
      again = setTimeout(() => { if (current && current.incident_id === inc.incident_id) loadTimeline(inc.incident_id); }, 600);
    },
    viewers(ev) {
      if (!current || ev.incident_id !== current.incident_id) return;
      $("viewers").textContent = `looking: ${(ev.users || []).map((u) => u.user_id || u).join(", ")}`;
    },
  };
}
