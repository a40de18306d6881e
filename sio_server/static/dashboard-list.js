// @ts-check
// A virtualised incident list: only the rows in view (plus a margin) are in the DOM, so a
// wall screen with 5 000 open incidents scrolls and updates as fast as one with 50.
//   const list = createIncidentList(scroller, ul, { rowHeight, renderRow, compare, visible })
//   list.update(inc) / list.remove(id) / list.refresh()   (batched: one paint per tick)
//   list.order  the filtered, sorted incidents;  list.reveal(id)  scroll a row into view
export function createIncidentList(scroller, ul, opts) {
  const items = new Map();
  const nodes = new Map();
  let order = [];
  let timer = null;
  const h = opts.rowHeight;
  function schedule() { if (!timer) timer = setTimeout(render, 30); }
  function render() {
    timer = null;
    order = [...items.values()].filter(opts.visible).sort(opts.compare);
    paint();
    if (opts.rendered) opts.rendered(order);
  }
  function paint() {
    ul.style.height = `${order.length * h}px`;
    const top = scroller.scrollTop, view = scroller.clientHeight || 800;
    const start = Math.max(0, Math.floor(top / h) - 10);
    const end = Math.min(order.length, Math.ceil((top + view) / h) + 10);
    const keep = new Set();
    for (let i = start; i < end; i++) {
      const inc = order[i];
      keep.add(inc.incident_id);
      let li = nodes.get(inc.incident_id);
      if (!li) { li = document.createElement("li"); li.dataset.id = inc.incident_id; nodes.set(inc.incident_id, li); ul.append(li); }
      li.style.top = `${i * h}px`;
      opts.renderRow(li, inc);
    }
    for (const [id, li] of nodes) if (!keep.has(id)) { li.remove(); nodes.delete(id); }
  }
  scroller.addEventListener("scroll", () => requestAnimationFrame(paint), { passive: true });
  return {
    update(inc) { items.set(inc.incident_id, inc); schedule(); },
    remove(id) { items.delete(id); schedule(); },
    refresh: schedule,
    now() { if (timer) { clearTimeout(timer); } render(); },
    get order() { return order; },
    reveal(id) {
      const i = order.findIndex((inc) => inc.incident_id === id);
      if (i < 0) return;
      if (i * h < scroller.scrollTop) scroller.scrollTop = i * h;
      else if ((i + 1) * h > scroller.scrollTop + scroller.clientHeight) scroller.scrollTop = (i + 1) * h - scroller.clientHeight;
      paint();
    },
  };
}
