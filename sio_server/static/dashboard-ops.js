// @ts-check
// Maintenance windows and silences from the dashboard: the forms that create them, the
// lists of what is active (with an End button), the tenant's sites for the grid, who is
// on call now and next per schedule, and the heartbeats with their state.
//   const ops = createOps({ $, el, api, onSites })   ops.refresh()
const csv = (v) => v.split(",").map((s) => s.trim()).filter(Boolean);
const inMinutes = (m) => new Date(Date.now() + m * 60000).toISOString();
const secs = (t) => (typeof t === "number" ? t : Date.parse(t) / 1000);
const iso = (t) => (t == null ? "" : new Date(secs(t) * 1000).toLocaleString());
export function createOps({ $, el, api, onSites }) {
  async function refresh() {
    const [w, s, sites] = await Promise.all([
      api("GET", "/api/v1/maintenance"), api("GET", "/api/v1/silences"), api("GET", "/api/v1/sites"),
    ]);
    const now = Date.now() / 1000;
    $("windows").replaceChildren(...((w.body && w.body.windows) || []).filter((x) => x.start || x.ends_at == null || secs(x.ends_at) > now).map((x) => {
      const li = el("li", "window");
      li.dataset.id = x.id;
      const when = x.start ? `${(x.days || []).join(",") || "daily"} ${x.start}-${x.end} ${x.timezone}` : `until ${iso(x.ends_at)}`;
      li.append(el("span", null, `${x.site_ids.join(", ")} · ${when}${x.reason ? " · " + x.reason : ""}`));
      if (!x.start && !x.config) li.append(endButton(`/api/v1/maintenance/${encodeURIComponent(x.id)}`));
      return li;
    }));
    $("silences").replaceChildren(...((s.body && s.body.silences) || []).map((x) => {
      const li = el("li", "silence");
      li.dataset.id = x.id;
      const m = Object.entries(x.matchers).map(([k, v]) => `${k}=${v}`).join(" ");
      li.append(el("span", null, `${m} · until ${iso(x.ends_at)}${x.comment ? " · " + x.comment : ""}`));
      li.append(endButton(`/api/v1/silences/${encodeURIComponent(x.id)}`));
      return li;
    }));
    if (sites.body && sites.body.sites) onSites(sites.body.sites);
    await Promise.all([refreshOnCall(), refreshHeartbeats()]);
  }
  const names = (users) => (users && users.length ? users.join(", ") : "nobody");
  async function refreshOnCall() {
    const r = await api("GET", "/api/v1/oncall");
    const now = (r.body && r.body.oncall) || [];
    const rows = await Promise.all(now.map(async (x) => {
      const li = el("li", "oncall");
      li.dataset.schedule = x.schedule;
      let text = `${x.schedule}: ${names(x.users)}`;
      if (x.until) {
        const q = `/api/v1/oncall?schedule=${encodeURIComponent(x.schedule)}&at=${encodeURIComponent(x.until)}`;
        const next = await api("GET", q);
        const after = next.body && next.body.oncall && next.body.oncall[0];
        text += ` until ${iso(x.until)} · next: ${names(after && after.users)}`;
      }
      li.append(el("span", null, text));
      if (!x.users || !x.users.length) li.classList.add("nobody");
      return li;
    }));
    $("oncall").replaceChildren(...rows);
    const chosen = $("override-schedule").value;
    $("override-schedule").replaceChildren(...now.map((x) => { const o = el("option", null, x.schedule); o.value = x.schedule; return o; }));
    if (chosen) $("override-schedule").value = chosen;
    const o = await api("GET", "/api/v1/oncall/overrides");
    const live = ((o.body && o.body.overrides) || []).filter((x) => Date.parse(x.ends_at) > Date.now());
    $("overrides").replaceChildren(...live.map((x) => {
      const li = el("li", "override");
      li.dataset.id = x.id;
      li.append(el("span", null, `${x.schedule}: ${x.user_id}${x.replaces ? " for " + x.replaces : " (also)"} until ${iso(x.ends_at)}`));
      li.append(endButton(`/api/v1/oncall/overrides/${encodeURIComponent(x.id)}`));
      return li;
    }));
  }
  async function refreshHeartbeats() {
    const r = await api("GET", "/api/v1/heartbeats");
    $("heartbeats").replaceChildren(...((r.body && r.body.heartbeats) || []).map((h) => {
      const li = el("li", `heartbeat ${h.state}`);
      li.dataset.name = h.name;
      li.dataset.state = h.state;
      li.append(el("span", null, `${h.name} (${h.kind}) · ${h.state}${h.last_ping ? " · last " + iso(h.last_ping) : ""}`));
      return li;
    }));
  }
  function endButton(path) {
    const b = el("button", "end", "End");
    b.onclick = async () => { await api("DELETE", path); refresh(); };
    return b;
  }
  function say(text) { $("ops-error").textContent = text; }
  $("override-form").onsubmit = async (e) => {
    e.preventDefault();
    const body = {
      schedule: $("override-schedule").value,
      user_id: $("override-user").value.trim(),
      starts_at: new Date().toISOString(),
      ends_at: inMinutes(60 * Number($("override-hours").value)),
    };
    if ($("override-replaces").value.trim()) body.replaces = $("override-replaces").value.trim();
    const r = await api("POST", "/api/v1/oncall/overrides", body);
    say(r.status === 201 ? "" : `override refused: ${(r.body && r.body.error) || r.status}`);
    if (r.status === 201) { $("override-form").reset(); refresh(); }
  };
  $("maint-form").onsubmit = async (e) => {
    e.preventDefault();
    const body = { site_ids: csv($("maint-sites").value), ends_at: inMinutes(Number($("maint-minutes").value)), reason: $("maint-reason").value };
    const r = await api("POST", "/api/v1/maintenance", body);
    say(r.status === 201 ? "" : `maintenance refused: ${r.body.error || r.status}`);
    if (r.status === 201) { $("maint-form").reset(); refresh(); }
  };
  $("silence-form").onsubmit = async (e) => {
    e.preventDefault();
    const matchers = {};
    for (const [id, key] of [["silence-site", "site_id"], ["silence-severity", "severity"], ["silence-kpi", "kpi"]]) if ($(id).value) matchers[key] = $(id).value;
    const r = await api("POST", "/api/v1/silences", { matchers, ends_at: inMinutes(Number($("silence-minutes").value)), comment: $("silence-comment").value });
    say(r.status === 201 ? "" : `silence refused: ${r.body.error || r.status}`);
    if (r.status === 201) { $("silence-form").reset(); refresh(); }
  };
  return { refresh };
}
