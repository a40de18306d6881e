// @ts-check
// How the NOC is doing (admins): time to acknowledge and to resolve over the last 7 days,
// per site, region, policy, severity or user, as bars of p50 / p90 / mean (a few long
// incidents hide in a mean; the p90 shows them).
//   const report = createReport({ $, el, api })   report.refresh()
const NS = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  return n;
}
const fmt = (s) => (s == null ? "-" : s < 120 ? `${Math.round(s)}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${(s / 3600).toFixed(1)}h`);
function bars(times, scale) {
  const chart = svg("svg", { viewBox: "0 0 160 30", class: "report-bars", role: "img" });
  [["p50", 0], ["p90", 10], ["mean", 20]].forEach(([k, y]) => {
    const v = times[k];
    const w = v == null ? 0 : Math.max(1, (v / scale) * 150);
    chart.append(svg("rect", { x: 0, y, width: w, height: 8, class: `bar ${k}` }));
  });
  const t = svg("title", {});
  t.textContent = `p50 ${fmt(times.p50)} · p90 ${fmt(times.p90)} · mean ${fmt(times.mean)}`;
  chart.append(t);
  return chart;
}
export function createReport({ $, el, api }) {
  async function refresh() {
    const group = $("report-group").value;
    const r = await api("GET", `/api/v1/reports/response?group_by=${encodeURIComponent(group)}`);
    const section = $("report");
    if (r.status === 403 || r.status === 401) { section.hidden = true; return; }
    section.hidden = false;
    const groups = (r.body && r.body.groups) || [];
    const scale = Math.max(1, ...groups.flatMap((g) => [g.mtta_s.p90, g.mttr_s.p90, g.mtta_s.mean, g.mttr_s.mean].filter((v) => v != null)));
    const rows = groups.map((g) => {
      const tr = el("tr");
      tr.dataset.key = g.key;
      tr.append(el("td", null, g.key), el("td", null, String(g.incidents)), el("td", null, String(g.acknowledged)),
        el("td", null, String(g.resolved)), el("td", null, String(g.pages)));
      const a = el("td", "times"); a.append(bars(g.mtta_s, scale), el("span", null, ` ${fmt(g.mtta_s.p50)} / ${fmt(g.mtta_s.p90)}`));
      const b = el("td", "times"); b.append(bars(g.mttr_s, scale), el("span", null, ` ${fmt(g.mttr_s.p50)} / ${fmt(g.mttr_s.p90)}`));
      tr.append(a, b);
      return tr;
    });
    $("report-rows").replaceChildren(...rows);
  }
  $("report-group").onchange = refresh;
  return { refresh };
}
