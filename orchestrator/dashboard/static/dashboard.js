// The edgeshift dashboard: the rollouts list and one rollout's page, polled from the
// dashboard server (same origin), which forwards to the API. No other origin is reached.
"use strict";

const POLL_LIST_MS = 2000;
const LIST_LIMIT = 50;
const POLL_ROLLOUT_MS = 1000;
// An ended rollout, or one the API does not know, changes seldom if ever: asked again now
// and then, not every second (each poll reads its whole audit trail from the API).
const POLL_SETTLED_MS = 30000;
const SLOW_MS = 3000;
const STATUSES = ["PENDING", "RUNNING", "PAUSED", "AWAITING_APPROVAL", "PROMOTING",
  "PROMOTED", "ROLLING_BACK", "ROLLED_BACK", "FAILED"];
const VERBS = {
  pause: { label: "Pause", what: "Hold traffic at the current weights from the next look on." },
  resume: { label: "Resume", what: "Go on baking after a pause, approve a waiting stage, or withdraw a pause not yet honoured." },
  abort: { label: "Abort", what: "Roll back: stable for everyone (at once when paused, else at the next look).", danger: true },
  promote: { label: "Promote", what: "Skip the remaining stages: the canary becomes the stable release for everyone." },
};
const COLORS = { pass: "#1f9d55", fail: "#d6353a", inconclusive: "#d79b00", error: "#9b3fc7",
  unknown: "#9b3fc7", none: "#d0d5dd", band: "#dce8ff", accent: "#2f6fde", ink: "#1d2330",
  muted: "#667085", line: "#e3e7ee" };

let timer = null;
let generation = 0; // a page change makes the answers of older polls stale
let current = null; // the rollout page's last model

// -- small helpers ----------------------------------------------------------------------------

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function $(selector) { return document.querySelector(selector); }
function pct(share, digits = 1) { return share == null ? "-" : `${(share * 100).toFixed(digits)}%`; }
function signedPct(x, digits = 2) {
  return x == null ? "-" : `${x >= 0 ? "+" : ""}${(x * 100).toFixed(digits)}%`;
}
function span(seconds) {
  const whole = Math.max(0, Math.round(seconds));
  const h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), s = whole % 60;
  if (h) return `${h}h${String(m).padStart(2, "0")}m`;
  return m ? `${m}m${String(s).padStart(2, "0")}s` : `${s}s`;
}
function clock(iso) { return iso ? new Date(iso).toISOString().slice(11, 19) : ""; }
function day(iso) { return iso ? new Date(iso).toISOString().slice(0, 19).replace("T", " ") : ""; }
function setLive(ok, text) {
  const live = $("#live");
  live.className = `live ${ok ? "on" : "off"}`;
  live.textContent = text;
}
let noticeTimer = null;
function showNotice(kind, html) {
  const notice = $("#notice");
  notice.className = `notice ${kind}`;
  notice.innerHTML = html;
  notice.hidden = false;
  clearTimeout(noticeTimer);
  // A success fades after a while; a refusal stays until the next action or page.
  if (kind === "ok") noticeTimer = setTimeout(hideNotice, 15000);
}
function hideNotice() { $("#notice").hidden = true; }

// An API error, as its problem+json says: title, status, detail and the fields at fault.
async function problemText(response) {
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!body || typeof body !== "object") {
    return { title: `${response.status} ${response.statusText}`, detail: "", errors: [] };
  }
  return {
    title: `${body.title || response.statusText} (${body.status || response.status})`,
    detail: body.detail || "",
    errors: Array.isArray(body.errors) ? body.errors : [],
  };
}
function problemHtml(verb, problem) {
  const fields = problem.errors.map((e) => `<li><b>${esc(e.field)}</b>: ${esc(e.message)}</li>`);
  return `${verb ? `${esc(verb)} refused: ` : ""}${esc(problem.title)}` +
    (problem.detail ? ` &mdash; <span class="detail">${esc(problem.detail)}</span>` : "") +
    (fields.length ? `<ul>${fields.join("")}</ul>` : "");
}

// -- routing ----------------------------------------------------------------------------------

function route() {
  clearTimeout(timer);
  generation += 1;
  current = null;
  hideNotice();
  const match = location.hash.match(/^#\/rollouts\/([A-Za-z0-9-]+)$/);
  if (match) showRollout(match[1]); else showList();
}

// fn may answer how long to wait before the next poll. A tab out of sight asks nothing.
let wake = null; // the current poll's next tick, run at once when the tab is back in sight
function poll(fn, ms) {
  const mine = generation;
  let busy = false;
  const tick = async () => {
    if (mine !== generation || busy) return;
    clearTimeout(timer);
    if (document.hidden) { timer = setTimeout(tick, ms); return; }
    busy = true;
    // A slow answer is said, rather than leaving "live" with an old time on show.
    const slow = setTimeout(() => { if (mine === generation) setLive(false, "waiting for the API…"); }, SLOW_MS);
    const wait = await fn(mine);
    clearTimeout(slow);
    busy = false;
    if (mine === generation) timer = setTimeout(tick, wait || ms);
  };
  wake = tick;
  tick();
}

// -- the rollouts list ------------------------------------------------------------------------

function filtersFromHash() {
  const query = new URLSearchParams(location.hash.split("?")[1] || "");
  return { host: query.get("host") || "", pathRule: query.get("path_rule") || "",
    statuses: query.getAll("status") };
}

function showList() {
  const filters = filtersFromHash();
  document.title = "rollouts · edgeshift";
  $("#main").innerHTML = `
    <section class="panel">
      <h2>Rollouts</h2>
      <form id="filters" class="filters">
        <label>Target host<input type="text" id="f-host" placeholder="any host" value="${esc(filters.host)}"></label>
        <label>Path rule<input type="text" id="f-path" placeholder="default" value="${esc(filters.pathRule)}"></label>
        <div><div class="muted"><b>Status</b></div><div class="statuses">${STATUSES.map((s) => `
          <label><input type="checkbox" name="status" value="${s}" ${filters.statuses.includes(s) ? "checked" : ""}>${s}</label>`).join("")}
        </div></div>
      </form>
    </section>
    <section class="panel"><div id="list-body" class="empty">loading…</div></section>`;
  const apply = () => {
    const query = new URLSearchParams();
    if ($("#f-host").value.trim()) query.set("host", $("#f-host").value.trim());
    if ($("#f-path").value.trim()) query.set("path_rule", $("#f-path").value.trim());
    document.querySelectorAll("#filters input[name=status]:checked")
      .forEach((box) => query.append("status", box.value));
    history.replaceState(null, "", `#/${query.toString() ? `?${query}` : ""}`);
    clearTimeout(timer);
    generation += 1;
    poll(loadList, POLL_LIST_MS);
  };
  $("#filters").addEventListener("change", apply);
  $("#filters").addEventListener("submit", (event) => { event.preventDefault(); apply(); });
  poll(loadList, POLL_LIST_MS);
}

async function loadList(mine) {
  const filters = filtersFromHash();
  const query = new URLSearchParams({ limit: String(LIST_LIMIT) });
  if (filters.host) {
    query.set("host", filters.host);
    query.set("path_rule", filters.pathRule || "default");
  }
  filters.statuses.forEach((s) => query.append("status", s));
  try {
    const response = await fetch(`/api/rollouts?${query}`, { cache: "no-store" });
    if (mine !== generation) return;
    if (!response.ok) {
      $("#list-body").innerHTML = `<div class="notice problem">${problemHtml("", await problemText(response))}</div>`;
      setLive(false, "API error");
      return;
    }
    const page = await response.json();
    if (mine !== generation) return;
    $("#list-body").innerHTML = listTable(page.items) + (page.next_token
      ? `<p id="list-more" class="muted">the newest ${LIST_LIMIT} shown; filter by target or status to find older ones</p>`
      : "");
    document.querySelectorAll("#list-body tr.link").forEach((row) => {
      row.addEventListener("click", () => { location.hash = `#/rollouts/${row.dataset.id}`; });
    });
    setLive(true, `live · updated ${clock(new Date().toISOString())} UTC`);
  } catch (error) {
    setLive(false, "dashboard server unreachable, retrying");
  }
}

function listTable(items) {
  if (!items.length) return `<div class="empty">No rollouts match these filters.</div>`;
  const rows = items.map((r) => `
    <tr class="link" data-id="${esc(r.rollout_id)}">
      <td class="mono"><a href="#/rollouts/${esc(r.rollout_id)}">${esc(r.rollout_id)}</a></td>
      <td><span class="badge ${esc(r.status)}">${esc(r.status)}</span></td>
      <td>${esc(r.plan.target.host)} <span class="muted">${esc(r.plan.target.path_rule)}</span></td>
      <td>${esc(r.plan.stable.version)} → <b>${esc(r.plan.canary.version)}</b></td>
      <td class="num">${esc(r.canary_weight)}%</td>
      <td class="num">${esc(r.stage)}/${esc(r.stages)}</td>
      <td class="muted">${esc(day(r.created_at))}</td>
      <td class="muted">${esc(r.reason)}</td>
    </tr>`).join("");
  return `<table><thead><tr><th>rollout</th><th>status</th><th>target</th><th>versions</th>
    <th class="num">canary</th><th class="num">stage</th><th>started (UTC)</th><th>reason</th>
    </tr></thead><tbody>${rows}</tbody></table>`;
}

// -- one rollout ------------------------------------------------------------------------------

function showRollout(id) {
  drawn.clear();
  document.title = `${id} · edgeshift`;
  $("#main").innerHTML = `<p><a href="#/">← all rollouts</a></p>
    <div id="rollout"><div class="empty" id="loading">loading…</div>
      <section class="panel" id="part-header" hidden></section>
      <section class="panel" id="part-stages" hidden></section>
      <section class="panel" id="part-metrics" hidden></section>
      <div class="grid2">
        <section class="panel" id="part-verdicts" hidden></section>
        <section class="panel" id="part-split" hidden></section>
      </div>
      <section class="panel" id="part-audit" hidden></section></div>`;
  // One listener for the buttons, however often the header is redrawn.
  $("#rollout").addEventListener("click", (event) => {
    const button = event.target.closest("[data-verb]");
    if (button && !button.disabled) openSteer(button.dataset.verb);
  });
  poll((mine) => loadRollout(id, mine), POLL_ROLLOUT_MS);
}

async function loadRollout(id, mine) {
  try {
    const response = await fetch(`/view/rollouts/${encodeURIComponent(id)}`, { cache: "no-store" });
    if (mine !== generation) return;
    if (!response.ok) {
      $("#loading").hidden = false;
      $("#loading").innerHTML = `<div class="notice problem">${problemHtml("", await problemText(response))}</div>`;
      setLive(false, "API error");
      return response.status === 404 ? POLL_SETTLED_MS : POLL_ROLLOUT_MS;
    }
    const model = await response.json();
    if (mine !== generation) return;
    current = model;
    $("#loading").hidden = true;
    drawRollout(model);
    const final = ["PROMOTED", "ROLLED_BACK", "FAILED"].includes(model.rollout.status);
    setLive(true, `${final ? "ended" : "live"} · updated ${clock(model.now)} UTC`);
    return final ? POLL_SETTLED_MS : POLL_ROLLOUT_MS;
  } catch (error) {
    setLive(false, "dashboard server unreachable, retrying");
  }
}

const drawn = new Map(); // each part's last HTML

// Each part is redrawn only when what it shows changed, so a selection, a hover or the
// audit trail's scroll position survive the polls.
function drawRollout(m) {
  const parts = {
    "part-header": headerHtml(m),
    "part-stages": `<h2>Stages</h2>${ladderHtml(m)}${bakeHtml(m)}`,
    "part-metrics": `<h2>Canary vs baseline, latest look</h2>${metricsHtml(m)}`,
    "part-verdicts": `<h2>Verdict history</h2>${verdictsHtml(m)}`,
    "part-split": `<h2>Served split</h2>${splitHtml(m)}`,
    "part-audit": `<h2>Audit trail</h2><div class="scroll">${auditHtml(m)}</div>`,
  };
  for (const [id, html] of Object.entries(parts)) {
    const part = document.getElementById(id);
    if (drawn.get(id) !== html) {
      const scroll = part.querySelector(".scroll");
      const top = scroll ? scroll.scrollTop : 0;
      part.innerHTML = html;
      drawn.set(id, html);
      if (scroll) part.querySelector(".scroll").scrollTop = top;
    }
    part.hidden = false;
  }
}

function headerHtml(m) {
  const r = m.rollout, plan = r.plan;
  const promoted = r.status === "PROMOTED";
  const weights = promoted
    ? `${esc(plan.canary.version)} for everyone <span class="muted">the new stable</span>`
    : `canary ${esc(r.canary_weight)}% <span class="muted">· ${esc(plan.stable.name)} ${esc(100 - r.canary_weight)}%</span>`;
  const control = r.control
    ? `<div class="pending"><b>${esc(r.control.action)}</b> requested by ${esc(r.control.actor)}` +
      `${r.control.reason ? `: ${esc(r.control.reason)}` : ""} (honoured at the next look)</div>`
    : "";
  const final = ["PROMOTED", "ROLLED_BACK", "FAILED"].includes(r.status);
  const buttons = Object.entries(VERBS).map(([verb, v]) => `
    <button type="button" class="button ${v.danger ? "danger" : ""} ${m.offered.includes(verb) ? "offered" : ""}"
      data-verb="${verb}" id="action-${verb}" ${final ? "disabled" : ""} title="${esc(v.what)}">${v.label}</button>`).join("");
  return `
    <div class="head">
      <h1>${esc(r.rollout_id)}</h1>
      <span id="status" class="badge ${esc(r.status)}">${esc(r.status)}</span>
      <span class="target">${esc(plan.target.host)} <span class="muted">${esc(plan.target.path_rule)}</span></span>
      <span class="versions">${esc(plan.stable.name)} ${esc(plan.stable.version)} → ${esc(plan.canary.name)} <b>${esc(plan.canary.version)}</b></span>
    </div>
    <div class="weights">${weights}</div>
    ${r.reason ? `<div class="why" id="reason">${esc(r.reason)}</div>` : ""}
    ${control}
    <div class="actions">${buttons}</div>
    <div class="details">started ${esc(day(r.created_at))} UTC by ${esc(r.created_by)}</div>`;
}

function ladderHtml(m) {
  const cls = { passed: "passed", promoted: "promoted", "promoted from here": "promoted",
    baking: "baking", promoting: "promoting",
    paused: "paused", "awaiting approval": "awaiting", "rolled back": "rolled", failed: "failed",
    "rolling back": "rolling" };
  const steps = m.ladder.map((s) => {
    const timing = s.weight >= 100 ? "promotion" : `bake ${span(s.bake)} · look every ${span(s.interval)}`;
    const state = s.state + (s.approval && ["next", ""].includes(s.state) ? " (needs approval)" : "");
    return `<div class="step ${cls[s.state] || ""}" data-stage="${s.number}">
      <div class="n">stage ${s.number}/${m.ladder.length}</div>
      <div class="w">${esc(s.weight)}%</div>
      ${bar(s.weight / 100, 150, 6, s.state === "" || s.state === "next" ? COLORS.none : COLORS.accent)}
      <div class="muted">${esc(timing)}</div>
      <div class="s">${esc(state || "\u00a0")}</div></div>`;
  });
  return `<div class="ladder">${steps.join("")}</div>`;
}

function bar(fraction, width, height, color) {
  const w = Math.max(0, Math.min(1, fraction)) * width;
  return `<svg width="100%" height="${height + 4}" viewBox="0 0 ${width} ${height + 4}" preserveAspectRatio="none" aria-hidden="true">
    <rect x="0" y="2" width="${width}" height="${height}" rx="3" fill="${COLORS.line}"/>
    <rect x="0" y="2" width="${w.toFixed(1)}" height="${height}" rx="3" fill="${color}"/></svg>`;
}

function bakeHtml(m) {
  const b = m.bake;
  if (!b) return "";
  const left = b.bake - b.elapsed;
  let note = left >= 0 ? `${span(b.elapsed)} of ${span(b.bake)}, ${span(left)} left`
    : `bake over ${span(-left)} ago: no verdict yet, watching on`;
  if (b.awaiting_approval) note = `bake done; waiting for approval for ${span(-left)}`;
  if (b.paused) note += " (paused: traffic held at this weight)";
  return `<div class="bake" id="bake"><b>stage ${b.stage} bake</b>
    <div class="barwrap">${bar(b.elapsed / b.bake, 420, 10, b.paused ? "#c77700" : COLORS.accent)}</div>
    <span>${esc(note)}</span></div>`;
}

// -- evidence ---------------------------------------------------------------------------------

function metricsHtml(m) {
  if (!m.metrics.length) {
    return `<div class="empty">No analysis yet: the first look comes one interval into the bake.</div>`;
  }
  const rows = m.metrics.map((row) => {
    const e = row.latest;
    if (!e) {
      return `<tr><td class="metric-name">${esc(row.metric)}</td><td colspan="4" class="muted">not in the last look</td></tr>`;
    }
    const measured = (rate, counts, isCanary) => {
      if (rate == null && counts == null) return isCanary && e.value != null ? esc(e.value) : "-";
      return `${pct(rate, 2)}${counts ? ` <span class="muted">(${counts[0]}/${counts[1]})</span>` : ""}`;
    };
    const was = e.judged && e.judged !== e.outcome ? ` <span class="muted">(was ${esc(e.judged)})</span>` : "";
    return `<tr data-metric="${esc(row.metric)}" class="metric">
      <td><span class="metric-name">${esc(row.metric)}</span>${e.critical ? '<span class="critical">critical</span>' : ""}</td>
      <td class="num">${measured(e.canary_rate, e.canary, true)}</td>
      <td class="num">${measured(e.baseline_rate, e.baseline, false)}</td>
      <td>${intervalSvg(e)}<div class="details">${esc(effectText(e))}</div></td>
      <td><span class="outcome ${esc(e.outcome)}">${esc(e.outcome)}</span>${was}
        <div>${historySvg(row.history.map((h) => ({ stage: h.stage, outcome: h.outcome })))}</div></td>
    </tr>
    <tr class="metric-why"><td></td><td colspan="4">${esc(e.reason)}</td></tr>`;
  }).join("");
  return `<table class="metrics"><thead><tr><th>metric</th><th class="num">canary</th>
    <th class="num">baseline</th><th>canary − baseline and its interval</th><th>verdict · looks so far</th></tr></thead>
    <tbody>${rows}</tbody></table>
    <div class="legend"><span><i class="pass"></i>pass</span><span><i class="fail"></i>fail</span>
      <span><i class="inconclusive"></i>inconclusive</span><span><i class="error"></i>not measured</span>
      <span><i class="tol"></i>passes within</span><span><i class="lim"></i>fails beyond</span></div>`;
}

function effectText(e) {
  if (e.effect != null) {
    const parts = [`Δ ${signedPct(e.effect)}`];
    if (e.interval) parts.push(`interval [${signedPct(e.interval[0])}, ${signedPct(e.interval[1])}]`);
    if (e.margin != null) parts.push(`passes within ${pct(e.margin, 2)}`);
    return parts.join(" · ");
  }
  if (e.value != null && e.threshold != null) return `limit ${e.threshold}`;
  return "";
}

// The effect and its interval on one axis, with zero, the pass margin and the fail margin.
function intervalSvg(e) {
  if (e.effect == null && !e.interval) return "";
  const W = 320, H = 40, pad = 18;
  const marks = [0, e.effect, e.margin, e.fail_margin, ...(e.interval || [])].filter((x) => x != null);
  let lo = Math.min(...marks), hi = Math.max(...marks);
  const room = Math.max((hi - lo) * 0.12, 0.001);
  lo -= room; hi += room;
  const x = (v) => pad + ((v - lo) / (hi - lo)) * (W - 2 * pad);
  const color = COLORS[e.outcome] || COLORS.error;
  const parts = [`<line x1="${pad}" y1="18" x2="${W - pad}" y2="18" stroke="${COLORS.line}" stroke-width="1"/>`,
    `<line x1="${x(0)}" y1="4" x2="${x(0)}" y2="30" stroke="${COLORS.muted}" stroke-width="1"/>`,
    `<text x="${x(0)}" y="${H - 1}" font-size="8" text-anchor="middle" fill="${COLORS.muted}">0</text>`];
  if (e.margin != null) {
    parts.push(`<line x1="${x(e.margin)}" y1="6" x2="${x(e.margin)}" y2="30" stroke="${COLORS.pass}" stroke-dasharray="3 2" stroke-width="1.5"/>`);
  }
  if (e.fail_margin != null) {
    parts.push(`<line x1="${x(e.fail_margin)}" y1="6" x2="${x(e.fail_margin)}" y2="30" stroke="${COLORS.fail}" stroke-dasharray="3 2" stroke-width="1.5"/>`);
  }
  const label = (v, color) => `<text x="${x(v)}" y="${H - 1}" font-size="8" text-anchor="middle" fill="${color}">${signedPct(v, 2)}</text>`;
  if (e.margin != null) parts.push(label(e.margin, COLORS.pass));
  if (e.fail_margin != null) parts.push(label(e.fail_margin, COLORS.fail));
  if (e.interval) {
    const [a, b] = e.interval;
    parts.push(`<rect x="${x(a)}" y="13" width="${Math.max(2, x(b) - x(a))}" height="10" rx="3" fill="${color}" fill-opacity="0.28" stroke="${color}"/>`);
  }
  if (e.effect != null) parts.push(`<circle cx="${x(e.effect)}" cy="18" r="3.5" fill="${color}"/>`);
  return `<svg class="interval" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img"
    aria-label="effect ${signedPct(e.effect)}">${parts.join("")}</svg>`;
}

// One square per look, coloured by its outcome; a gap where the stage changes.
function historySvg(history, size = 8) {
  if (!history.length) return "";
  let x = 0, stage = null;
  const cells = history.map((h) => {
    if (stage !== null && h.stage !== stage) x += size * 0.7;
    stage = h.stage;
    const cell = `<rect x="${x}" y="2" width="${size}" height="${size * 1.5}" rx="2" fill="${COLORS[h.outcome] || (h.outcome ? COLORS.error : COLORS.none)}"><title>stage ${h.stage == null ? "?" : h.stage + 1}: ${esc(h.outcome || "not measured")}</title></rect>`;
    x += size + 2;
    return cell;
  });
  const h = size * 1.5 + 4;
  return `<svg class="history" width="${x}" height="${h}" viewBox="0 0 ${x} ${h}" role="img" aria-label="verdict history">${cells.join("")}</svg>`;
}

function splitHtml(m) {
  if (!m.split.length) {
    return `<div class="empty">No served-split measurement yet: it comes with the looks.</div>`;
  }
  const last = m.split[m.split.length - 1];
  const outcome = { ok: "pass", mismatch: "fail" }[last.outcome] || "inconclusive";
  const W = 380, H = 46, pad = 10;
  const top = Math.max(last.high * 1.3, (last.share || 0) * 1.15, 0.05);
  const x = (v) => pad + (Math.min(v, top) / top) * (W - 2 * pad);
  const scale = `<svg width="100%" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="served share ${pct(last.share)}">
    <line x1="${pad}" y1="24" x2="${W - pad}" y2="24" stroke="${COLORS.line}" stroke-width="6" stroke-linecap="round"/>
    <rect x="${x(last.low)}" y="16" width="${Math.max(2, x(last.high) - x(last.low))}" height="16" rx="3" fill="${COLORS.band}" stroke="#9db4e8"/>
    <line x1="${x(last.weight)}" y1="12" x2="${x(last.weight)}" y2="36" stroke="${COLORS.accent}" stroke-width="2"/>
    <text x="${x(last.weight)}" y="10" font-size="10" text-anchor="middle" fill="${COLORS.accent}">weight ${pct(last.weight, 0)}</text>
    ${last.share == null ? "" : `<circle cx="${x(last.share)}" cy="24" r="6" fill="${COLORS[outcome]}"/>
    <text x="${x(last.share)}" y="45" font-size="10" text-anchor="middle" fill="${COLORS.ink}">served ${pct(last.share)}</text>`}
    <text x="${pad}" y="45" font-size="9" fill="${COLORS.muted}">0%</text>
    <text x="${W - pad}" y="45" font-size="9" text-anchor="end" fill="${COLORS.muted}">${pct(top, 0)}</text></svg>`;
  return `${scale}
    <div id="split-summary"><span class="outcome ${outcome}">${esc(last.outcome)}</span>
      canary served <b>${pct(last.share)}</b> of ${last.requests == null ? "the" : esc(last.requests.toLocaleString("en"))} ${esc(last.unit || "requests")};
      its weight allows ${pct(last.low)} – ${pct(last.high)}</div>
    ${last.outcome === "ok" ? "" : `<div class="details">${esc(last.reason)}</div>`}
    ${splitTrend(m.split)}`;
}

// The served share look by look against each look's allowed band.
function splitTrend(checks) {
  const points = checks.slice(-40);
  if (points.length < 2) return "";
  const W = 380, H = 70, pad = 6;
  const top = Math.max(...points.map((p) => Math.max(p.high, p.share || 0))) * 1.15;
  const x = (i) => pad + (i / (points.length - 1)) * (W - 2 * pad);
  const y = (v) => H - pad - (v / top) * (H - 2 * pad);
  const band = points.map((p, i) => `${x(i)},${y(p.high)}`).join(" ") + " " +
    points.map((p, i) => `${x(points.length - 1 - i)},${y(points[points.length - 1 - i].low)}`).join(" ");
  const line = points.filter((p) => p.share != null).map((p) => `${x(points.indexOf(p))},${y(p.share)}`).join(" ");
  const dots = points.map((p, i) => p.share == null ? "" :
    `<circle cx="${x(i)}" cy="${y(p.share)}" r="2.5" fill="${p.outcome === "mismatch" ? COLORS.fail : COLORS.accent}"/>`).join("");
  return `<svg width="100%" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="served share by look">
    <polygon points="${band}" fill="${COLORS.band}"/>
    <polyline points="${line}" fill="none" stroke="${COLORS.accent}" stroke-width="1.5"/>${dots}</svg>
    <div class="legend"><span><i class="served"></i>share served to the canary, look by look</span><span><i class="allowed"></i>what its weight allows</span></div>`;
}

function verdictsHtml(m) {
  if (!m.verdicts.length) return `<div class="empty">No looks yet.</div>`;
  const rows = m.verdicts.slice().reverse().slice(0, 8).map((v) => `<tr>
    <td class="muted">${esc(clock(v.at))}</td>
    <td class="nowrap">stage ${v.stage == null ? "?" : v.stage + 1}${v.weight == null ? "" : ` · ${esc(v.weight)}%`}</td>
    <td><span class="outcome ${esc(v.outcome)}">${esc(v.outcome)}</span></td>
    <td><b>${esc(v.action || "?")}</b></td><td>${esc(v.reason)}</td></tr>`).join("");
  return `<div class="looks">${historySvg(m.verdicts.map((v) => ({ stage: v.stage, outcome: v.outcome })), 11)}
    <span class="muted">each look, oldest first; a gap where the stage changes</span></div>
    <table><thead><tr><th>time</th><th>stage</th><th>verdict</th><th>decision</th><th>why</th></tr></thead>
    <tbody>${rows}</tbody></table>`;
}

function auditHtml(m) {
  if (!m.audit.length) return `<div class="empty">No events yet.</div>`;
  const rows = m.audit.map((e) => `<tr class="${esc(e.kind)}" data-kind="${esc(e.kind)}">
    <td class="num muted">${esc(e.seq)}</td><td class="muted">${esc(clock(e.at))}</td>
    <td class="kind">${esc(e.kind)}</td><td>${esc(e.actor)}</td><td class="reason">${esc(e.reason)}</td></tr>`).join("");
  const more = m.audit_total > m.audit.length
    ? `<p id="audit-more" class="muted">the latest ${m.audit.length} of ${esc(m.audit_total)} events; rollout history ${esc(m.rollout.rollout_id)} lists them all</p>`
    : "";
  return `<table class="audit" id="audit"><thead><tr><th class="num">#</th><th>time (UTC)</th><th>event</th>
    <th>who</th><th>why</th></tr></thead><tbody>${rows}</tbody></table>${more}`;
}

// -- steering ---------------------------------------------------------------------------------

let steering = null;

function openSteer(verb) {
  if (!current) return;
  steering = { verb, id: current.rollout.rollout_id };
  const v = VERBS[verb];
  $("#steer-title").textContent = `${v.label} ${steering.id}`;
  $("#steer-what").textContent = v.what;
  $("#steer-confirm").textContent = v.label;
  $("#steer-confirm").className = `button primary ${v.danger ? "danger" : ""}`;
  $("#steer-reason").value = "";
  $("#steer-reason").classList.remove("invalid");
  $("#steer-error").hidden = true;
  $("#steer").showModal();
  $("#steer-reason").focus();
}

async function confirmSteer(event) {
  event.preventDefault();
  if (!steering) return;
  const reason = $("#steer-reason").value.trim();
  if (!reason) {
    // Refused here, before anything is sent: every action is recorded with its reason.
    $("#steer-error").textContent = "A reason is required: it is recorded in the audit trail.";
    $("#steer-error").hidden = false;
    $("#steer-reason").classList.add("invalid");
    $("#steer-reason").focus();
    return;
  }
  const { verb, id } = steering;
  $("#steer-confirm").disabled = true;
  try {
    const response = await fetch(`/api/rollouts/${encodeURIComponent(id)}/${verb}`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ reason }),
    });
    $("#steer").close();
    if (response.ok) {
      const after = await response.json();
      showNotice("ok", `${esc(VERBS[verb].label)} sent: the rollout is ${esc(after.status)}` +
        `${after.control ? ` (${esc(after.control.action)} honoured at the next look)` : ""}.`);
    } else {
      showNotice("problem", problemHtml(VERBS[verb].label, await problemText(response)));
    }
  } catch (error) {
    $("#steer").close();
    showNotice("problem", `${esc(VERBS[verb].label)} not sent: the dashboard server is unreachable.`);
  } finally {
    $("#steer-confirm").disabled = false;
    steering = null;
  }
}

window.addEventListener("DOMContentLoaded", () => {
  $("#steer-form").addEventListener("submit", confirmSteer);
  $("#steer-cancel").addEventListener("click", () => { steering = null; $("#steer").close(); });
  window.addEventListener("hashchange", route);
  // Back in sight: poll at once rather than at the end of a settled wait.
  document.addEventListener("visibilitychange", () => { if (!document.hidden && wake) wake(); });
  route();
});
