// @ts-check
// The signed-in person's own contact methods (add, verify with the code sent through the
// method, delete) and notification rules (which verified method, how long after a page).
//   const me = createMe({ $, el, api })   me.refresh()
export function createMe({ $, el, api }) {
  let methods = [];
  async function refresh() {
    const [m, r] = await Promise.all([
      api("GET", "/api/v1/me/contact-methods"), api("GET", "/api/v1/me/notification-rules"),
    ]);
    methods = (m.body && m.body.contact_methods) || [];
    const after = new Map(((r.body && r.body.default) || []).map((x) => [x.contact_method_id, x.after]));
    $("my-methods").replaceChildren(...methods.map((cm) => {
      const li = el("li", "method" + (cm.verified ? " verified" : "") + (cm.disabled ? " disabled" : ""));
      li.dataset.id = cm.id;
      li.append(el("span", null, `${cm.type} ${cm.value}${cm.verified ? "" : " (unverified)"}${cm.disabled ? " (stopped)" : ""}`));
      if (!cm.verified) {
        const code = el("input", "code");
        code.placeholder = "6-digit code"; code.inputMode = "numeric"; code.maxLength = 6;
        const ok = el("button", "verify", "Verify");
        ok.onclick = async () => {
          const res = await api("POST", `/api/v1/me/contact-methods/${encodeURIComponent(cm.id)}/verify`, { code: code.value });
          say(res.status === 200 ? "" : `not verified: ${(res.body && res.body.error) || res.status}`);
          refresh();
        };
        li.append(code, ok);
      } else {
        const wait = el("input", "after");
        wait.type = "number"; wait.min = "0"; wait.max = "1440"; wait.title = "minutes after a page (empty: not used)";
        const set = after.get(cm.id);
        wait.value = set == null ? "" : String(minutes(set));
        li.append(el("span", "after-label", " page after "), wait, el("span", null, " min"));
      }
      const del = el("button", "end", "Remove");
      del.onclick = async () => { await api("DELETE", `/api/v1/me/contact-methods/${encodeURIComponent(cm.id)}`); refresh(); };
      li.append(del);
      return li;
    }));
  }
  function minutes(text) {
    const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(text || "0m");
    if (!m) return 0;
    const n = Number(m[1]);
    return m[2] === "h" ? n * 60 : m[2] === "s" ? n / 60 : n;
  }
  function say(text) { $("me-error").textContent = text; }
  $("method-form").onsubmit = async (e) => {
    e.preventDefault();
    const res = await api("POST", "/api/v1/me/contact-methods", { type: $("method-type").value, value: $("method-value").value.trim() });
    say(res.status === 201 ? "a code was sent through it: type it below" : `refused: ${(res.body && res.body.error) || res.status}`);
    if (res.status === 201) $("method-form").reset();
    refresh();
  };
  $("rules-save").onclick = async () => {
    const rules = [];
    for (const li of $("my-methods").querySelectorAll("li.verified")) {
      const v = li.querySelector("input.after").value;
      if (v !== "") rules.push({ after: `${Number(v)}m`, contact_method_id: li.dataset.id });
    }
    rules.sort((a, b) => parseFloat(a.after) - parseFloat(b.after));
    const res = await api("PUT", "/api/v1/me/notification-rules", { default: rules, important: [] });
    say(res.status === 200 ? "rules saved" : `refused: ${(res.body && res.body.error) || res.status}`);
  };
  return { refresh };
}
