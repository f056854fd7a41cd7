// The midstream dashboard: plain JavaScript, no build step. It reads the
// JSON API beside it (relative URLs, so the handler can be mounted anywhere).
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="midstream-csrf"]').content;
  const $ = (id) => document.getElementById(id);
  const state = { overview: null, stream: null, dlqAfter: "", pendingGroup: "", pendingAfter: "", tail: null, timer: null };

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
    return e;
  }
  function td(v, cls) { return el("td", cls ? { class: cls } : {}, v); }
  function dur(ms) {
    if (!ms || ms <= 0) return "-";
    if (ms < 1000) return ms + "ms";
    const s = ms / 1000;
    if (s < 60) return s.toFixed(1) + "s";
    if (s < 3600) return Math.floor(s / 60) + "m" + Math.round(s % 60) + "s";
    return Math.floor(s / 3600) + "h" + Math.round((s % 3600) / 60) + "m";
  }
  function fields(f) {
    if (!f) return "";
    return Object.keys(f).sort().map((k) => k + "=" + JSON.stringify(f[k])).join(" ");
  }
  function message(text, kind) {
    const m = $("message");
    m.textContent = text || "";
    m.className = kind || "";
  }

  async function get(path) {
    const r = await fetch(path, { headers: { Accept: "application/json" } });
    const body = await r.json().catch(() => ({ error: r.statusText }));
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }
  async function post(path, payload) {
    const headers = { "Content-Type": "application/json", "X-Midstream-CSRF": csrf };
    const token = sessionStorage.getItem("midstream-token");
    if (token) headers.Authorization = "Bearer " + token;
    const r = await fetch(path, { method: "POST", headers, body: JSON.stringify(payload), credentials: "same-origin" });
    const body = await r.json().catch(() => ({ error: r.statusText }));
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }

  // A sparkline of the last minutes: an inline SVG polyline.
  function spark(points, key) {
    const vals = points.map((p) => (p[key] == null ? null : Number(p[key])));
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    const w = 90, h = 22;
    svg.setAttribute("width", w); svg.setAttribute("height", h); svg.setAttribute("class", "spark");
    const known = vals.filter((v) => v != null);
    if (known.length < 2) return svg;
    const max = Math.max(...known), min = Math.min(0, ...known), span = max - min || 1;
    const step = w / (vals.length - 1);
    const pts = [];
    vals.forEach((v, i) => { if (v != null) pts.push((i * step).toFixed(1) + "," + (h - 2 - ((v - min) / span) * (h - 4)).toFixed(1)); });
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", pts.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", key === "dead_letters" ? "#c73a3a" : key === "lag" ? "#c98a12" : "#2f6fde");
    line.setAttribute("stroke-width", "1.5");
    svg.append(line);
    const title = document.createElementNS(ns, "title");
    title.textContent = key + " over the last " + Math.round((points[points.length - 1].t - points[0].t) / 60000) + " min: " + min + "…" + max;
    svg.append(title);
    return svg;
  }

  async function loadOverview() {
    let o;
    try { o = await get("api/overview"); } catch (e) { message("overview: " + e.message, "error"); return; }
    state.overview = o;
    $("patterns").textContent = "streams " + o.patterns.join(", ");
    $("mode").textContent = o.writable ? "write actions enabled" : "read-only";
    $("mode").className = "mode" + (o.writable ? " writable" : "");
    $("token").classList.toggle("hidden", !o.token_required);
    $("updated").textContent = "updated " + new Date(o.time).toLocaleTimeString();
    const body = $("streams");
    body.replaceChildren();
    $("no-streams").classList.toggle("hidden", o.streams.length > 0);
    for (const s of o.streams) {
      const tr = el("tr", { class: "clickable", "data-stream": s.stream });
      tr.append(td(s.stream), td(s.length, "num"), td(s.added_per_sec.toFixed(1), "num"), td(s.delivered_per_sec.toFixed(1), "num"));
      const charted = (v, cls, key) => el("td", { class: cls }, el("span", { class: "v" }, v), spark(s.history, key));
      const lag = charted(s.groups === 0 ? "-" : s.lag == null ? "?" : s.lag, "num lag" + (s.lag > 0 ? " warn" : ""), "lag");
      const pend = charted(s.pending, "num pending", "pending");
      const dlq = charted(s.dead_letters, "num dlq" + (s.dead_letters > 0 ? " bad" : ""), "dead_letters");
      tr.append(lag, pend, td(dur(s.oldest_pending_age_ms), "num"), dlq);
      tr.addEventListener("click", () => { location.hash = "#stream=" + encodeURIComponent(s.stream); });
      body.append(tr);
    }
    if (o.truncated) message("More streams match than the dashboard lists.", "");
    document.body.dataset.loads = String(Number(document.body.dataset.loads || 0) + 1);
  }

  async function loadStream(name) {
    let d;
    try { d = await get("api/stream?stream=" + encodeURIComponent(name)); } catch (e) { message(name + ": " + e.message, "error"); return; }
    const h = d.health;
    $("detail").classList.remove("hidden");
    $("detail-title").textContent = h.stream;
    const info = $("detail-info");
    info.replaceChildren();
    for (const [k, v] of [["length", h.length], ["last id", h.last_id], ["entries added", h.entries_added], ["dead letters", h.dead_letter.length + " in " + h.dead_letter.key]]) {
      info.append(el("div", {}, k), el("div", {}, v));
    }
    const groups = $("groups"), consumers = $("consumers");
    groups.replaceChildren(); consumers.replaceChildren();
    for (const g of h.groups) {
      const tr = el("tr", { class: "clickable", "data-group": g.name });
      tr.append(td(g.name), td(g.consumer_count, "num"), td(g.pending, "num"), td(dur(g.oldest_pending_age_ms), "num"),
        td(g.oldest_pending_deliveries, "num"), td(g.last_delivered_id), td(g.lag == null ? "?" : g.lag, "num"));
      tr.addEventListener("click", () => { state.pendingGroup = g.name; state.pendingAfter = ""; loadPending(false); });
      groups.append(tr);
      for (const c of g.consumers || []) {
        consumers.append(el("tr", {}, td(g.name), td(c.name), td(c.pending, "num"), td(dur(c.idle_ms), "num"),
          td(c.inactive_ms < 0 ? "never read" : dur(c.inactive_ms), "num")));
      }
    }
    const t = d.trim, trim = $("trim");
    trim.replaceChildren();
    const rows = [["policy", t.policy], ["removable now", t.removable + (t.more ? "+" : "")], ["length after", t.length_after], ["cutoff", t.cutoff]];
    for (const hb of t.held_back_by) rows.push(["held back by", hb.group + " needs " + hb.until + " (" + hb.reason + ")"]);
    for (const [k, v] of rows) trim.append(el("div", {}, k), el("div", {}, v));
  }

  async function loadPending(more) {
    const name = state.stream;
    if (!name || !state.pendingGroup) return;
    let p;
    try {
      p = await get("api/pending?fields=1&stream=" + encodeURIComponent(name) + "&group=" + encodeURIComponent(state.pendingGroup) +
        "&after=" + encodeURIComponent(more ? state.pendingAfter : ""));
    } catch (e) { message("pending: " + e.message, "error"); return; }
    $("pending-box").classList.remove("hidden");
    $("pending-title").textContent = "Pending entries of " + state.pendingGroup;
    const body = $("pending");
    if (!more) body.replaceChildren();
    for (const e of p.entries) {
      body.append(el("tr", {}, td(e.id), td(e.consumer), td(dur(e.idle_ms), "num"), td(e.deliveries, "num"),
        td(e.deleted ? "(deleted from the stream)" : fields(e.fields), "wrap")));
    }
    state.pendingAfter = p.next;
    $("pending-more").classList.toggle("hidden", !p.next);
  }

  async function loadDLQ(more) {
    const name = state.stream;
    if (!name) return;
    let p;
    try {
      p = await get("api/dlq?stream=" + encodeURIComponent(name) + "&after=" + encodeURIComponent(more ? state.dlqAfter : ""));
    } catch (e) { message("dead letters: " + e.message, "error"); return; }
    $("dlq-count").textContent = "(" + p.length + " in " + p.key + ")";
    const body = $("dlq");
    if (!more) body.replaceChildren();
    for (const e of p.entries) {
      const box = el("input", { type: "checkbox", value: e.id });
      box.addEventListener("change", updateButtons);
      body.append(el("tr", { "data-id": e.id }, el("td", {}, box), td(e.id), td(e.group), td(e.consumer), td(e.original_id),
        td(e.deliveries, "num"), td(e.reason, "wrap"), td(fields(e.fields), "wrap")));
    }
    state.dlqAfter = p.next;
    $("dlq-more").classList.toggle("hidden", !p.next);
    body.dataset.length = String(p.length);
    $("dlq-all").checked = false;
    updateButtons();
  }

  function selected() { return [...document.querySelectorAll("#dlq input[type=checkbox]:checked")].map((b) => b.value); }
  function updateButtons() {
    const writable = state.overview && state.overview.writable;
    const n = selected().length;
    $("redrive").disabled = !writable || n === 0;
    $("delete").disabled = !writable || n === 0;
    $("dlq-note").textContent = writable ? (n ? n + " selected" : "") : "read-only: start the dashboard with write actions to redrive or delete";
  }

  async function act(kind) {
    const ids = selected();
    if (!ids.length) return;
    if (kind === "delete" && !confirm("Delete " + ids.length + " dead letters for good?")) return;
    try {
      const r = await post("api/dlq/" + kind, { stream: state.stream, ids });
      message(kind === "redrive" ? "Redrove " + r.redriven + " entries (" + r.skipped + " already gone)." : "Deleted " + r.deleted + " entries.", "ok");
    } catch (e) { message(kind + ": " + e.message, "error"); }
    await Promise.all([loadDLQ(false), loadStream(state.stream), loadOverview()]);
  }

  function stopTail() {
    if (state.tail) { state.tail.close(); state.tail = null; }
    $("tail-start").disabled = false; $("tail-stop").disabled = true;
    $("tail-state").textContent = "";
  }
  function startTail() {
    stopTail();
    const f = $("tail-filter").value.trim();
    let url = "api/tail?stream=" + encodeURIComponent(state.stream);
    if (f) url += "&filter=" + encodeURIComponent(f);
    const es = new EventSource(url);
    state.tail = es;
    $("tail-start").disabled = true; $("tail-stop").disabled = false;
    $("tail-log").textContent = "";
    es.addEventListener("ready", () => { $("tail-state").textContent = "following new entries"; });
    es.addEventListener("entry", (ev) => {
      const e = JSON.parse(ev.data);
      const log = $("tail-log");
      log.append(document.createTextNode(e.id + "  " + fields(e.fields) + "\n"));
      while (log.childNodes.length > 500) log.removeChild(log.firstChild);
      log.scrollTop = log.scrollHeight;
    });
    es.addEventListener("failure", (ev) => { message("tail: " + ev.data, "error"); stopTail(); });
    es.onerror = () => { $("tail-state").textContent = "reconnecting…"; };
  }

  function route() {
    const m = /^#stream=(.+)$/.exec(location.hash);
    stopTail();
    state.stream = m ? decodeURIComponent(m[1]) : null;
    state.pendingGroup = ""; state.dlqAfter = "";
    $("pending-box").classList.add("hidden");
    if (!state.stream) { $("detail").classList.add("hidden"); return; }
    loadStream(state.stream);
    loadDLQ(false);
  }

  $("token").value = sessionStorage.getItem("midstream-token") || "";
  $("token").addEventListener("change", (e) => sessionStorage.setItem("midstream-token", e.target.value));
  $("redrive").addEventListener("click", () => act("redrive"));
  $("delete").addEventListener("click", () => act("delete"));
  $("dlq-all").addEventListener("change", (e) => {
    document.querySelectorAll("#dlq input[type=checkbox]").forEach((b) => { b.checked = e.target.checked; });
    updateButtons();
  });
  $("dlq-more").addEventListener("click", () => loadDLQ(true));
  $("pending-more").addEventListener("click", () => loadPending(true));
  $("tail-start").addEventListener("click", startTail);
  $("tail-stop").addEventListener("click", stopTail);
  window.addEventListener("hashchange", route);

  async function tick() {
    await loadOverview();
    if (state.stream) await loadStream(state.stream);
    const every = (state.overview && state.overview.interval_ms) || 5000;
    state.timer = setTimeout(tick, Math.max(every, 1000));
  }
  loadOverview().then(() => { route(); updateButtons(); state.timer = setTimeout(tick, 1000); });
})();
