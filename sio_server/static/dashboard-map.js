// @ts-check
// The sites on a map drawn from lat/lon (no tile server: NOCs are often offline), each dot
// coloured by its worst open severity, and each outage of a site others depend on shown as
// one item listing the sites behind it (sites.yaml's depends_on, followed transitively).
//   const map = createSiteMap({ $, el })   map.render(siteInfo, worstBySite, statusOf)
const NS = "http://www.w3.org/2000/svg";
const W = 640, H = 360, PAD = 12;
function svg(tag, attrs) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  return n;
}
export function createSiteMap({ $, el }) {
  function behind(root, children) {
    const out = [], seen = new Set([root]), queue = [root];
    while (queue.length) {
      for (const c of children.get(queue.shift()) || []) {
        if (!seen.has(c)) { seen.add(c); out.push(c); queue.push(c); }
      }
    }
    return out;
  }
  function render(siteInfo, worstBySite, statusOf) {
    const placed = [...siteInfo.values()].filter((s) => s.lat != null && s.lon != null);
    const map = $("site-map");
    map.replaceChildren();
    map.setAttribute("viewBox", `0 0 ${W} ${H}`);
    if (placed.length) {
      const lats = placed.map((s) => s.lat), lons = placed.map((s) => s.lon);
      const [a, b] = [Math.min(...lats), Math.max(...lats)], [c, d] = [Math.min(...lons), Math.max(...lons)];
      const sx = (W - 2 * PAD) / Math.max(d - c, 1e-6), sy = (H - 2 * PAD) / Math.max(b - a, 1e-6);
      const s = Math.min(sx, sy);
      const frag = document.createDocumentFragment();
      for (const site of placed) {
        const worst = worstBySite.get(site.id) || "";
        const status = statusOf(site.id);
        const dot = svg("circle", { cx: PAD + (site.lon - c) * s, cy: H - PAD - (site.lat - a) * s,
          r: worst || status === "down" ? 5 : 3, class: `dot ${worst ? "worst-" + worst : ""} ${status}` });
        dot.dataset.site = site.id;
        const title = svg("title", {});
        title.textContent = `${site.name || site.id} (${site.id})${site.region ? " · " + site.region : ""}${worst ? " · " + worst : ""}`;
        dot.append(title);
        frag.append(dot);
      }
      map.append(frag);
    }
    map.dataset.sites = String(placed.length);
    // outages: a down site with sites behind it is one item
    const children = new Map();
    for (const s of siteInfo.values()) for (const p of s.depends_on || []) {
      if (!children.has(p)) children.set(p, []);
      children.get(p).push(s.id);
    }
    const items = [];
    for (const s of siteInfo.values()) {
      if (statusOf(s.id) !== "down" || !children.has(s.id)) continue;
      const affected = behind(s.id, children);
      const li = el("li", "outage");
      li.dataset.site = s.id;
      li.dataset.affected = affected.join(",");
      li.append(el("strong", null, `${s.name || s.id} down`), el("span", null, ` · ${affected.length} site(s) behind it: ${affected.join(", ")}`));
      items.push(li);
    }
    $("outages").replaceChildren(...items);
  }
  return { render };
}
