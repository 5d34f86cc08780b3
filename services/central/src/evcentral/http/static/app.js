// The operator dashboard: one page, plain JS, no build step (docs/operator-guide.md).
// Views are hash routes (#/cps, #/cp/ID, #/sessions, #/log). The CP grid is paged:
// the whole fleet lives in `cps` (fed by /api/events), only one page is in the DOM,
// and live updates are coalesced into at most one render per RENDER_MS.
"use strict";

const TOKEN_KEY = "evcentral.token";
const RENDER_MS = 250;
const LOG_KEEP = 500;
const SESSIONS_PAGE = 50;
const SUMMARY_MS = 10000;
const STATES = [
  ["ACTIVE", "Active"], ["SUPPLYING", "Supplying"], ["WAITING_FOR_SUPPLY", "Waiting for the vehicle"],
  ["STOPPED", "Out of Order"], ["BROKEN_DOWN", "Broken down"], ["DISCONNECTED", "Disconnected"],
];
const collator = new Intl.Collator("en", { numeric: true });

const cps = new Map();          // cp_id -> CP view, the whole fleet
let sortedIds = [];             // every id, in natural order
let idsChanged = false;
const logEntries = [];          // newest last
let token = sessionStorage.getItem(TOKEN_KEY) || "";
let role = "";
let stream = null;              // AbortController of the event stream
const grid = { page: 0, rows: new Map(), shown: [] };
const sessionsPage = { offset: 0, total: 0 };
let detailId = null;
let detailState = null;

const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("aria-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

const kwh = (v) => `${Number(v).toFixed(3)} kWh`;
const euro = (v) => `${Number(v).toFixed(2)} €`;
const price = (v) => `${Number(v).toFixed(2)} €/kWh`;
function when(ts) {
  if (!ts) return "—";
  const d = new Date(ts * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function notify(text) {
  const notice = $("notice");
  notice.textContent = text;
  notice.className = "shown";
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => { notice.className = ""; }, 6000);
}

// --- the API -----------------------------------------------------------------------------

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (response.status === 401) {
    signOut("Your token was refused; sign in again.");
    throw new Error("signed out");
  }
  if (options.raw) return response;
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

async function act(path, method, body) {
  try {
    const answer = await api(path, { method, body });
    if (answer.affected !== undefined) notify(`Sent to ${answer.affected} charging points`);
    return answer;
  } catch (err) {
    if (err.message !== "signed out") notify(`Failed: ${err.message}`);
    return null;
  }
}

// --- sign-in -------------------------------------------------------------------------------

async function signIn(candidate) {
  token = candidate;
  const response = await fetch("/api/whoami", { headers: { Authorization: `Bearer ${token}` } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    token = "";
    sessionStorage.removeItem(TOKEN_KEY);
    throw new Error(body.error || `HTTP ${response.status}`);
  }
  role = body.role === "operator" ? "operator" : "viewer";
  sessionStorage.setItem(TOKEN_KEY, token);
  document.body.dataset.role = role;
  $("role").textContent = role === "operator" ? "Signed in as operator" : "Signed in as viewer (read only)";
  for (const button of document.querySelectorAll("button.operator")) button.disabled = role !== "operator";
  $("price-input").disabled = role !== "operator";
  // a viewer sees drivers as pseudonyms and may not look one up by id
  $("s-driver").disabled = role !== "operator";
  $("s-driver").title = role === "operator" ? "" : "the operator token is needed to look up a driver";
  $("sign-in").hidden = true;
  $("app").hidden = false;
  $("who").hidden = false;
  connect();
  refreshSummary();
  route();
}

function signOut(message) {
  token = "";
  role = "";
  sessionStorage.removeItem(TOKEN_KEY);
  if (stream) stream.abort();
  stream = null;
  cps.clear();
  sortedIds = [];
  grid.rows.clear();
  grid.shown = [];
  $("cp-rows").replaceChildren();
  $("app").hidden = true;
  $("who").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message || "";
  $("link").className = "link-down";
  $("link").textContent = "not connected";
  $("token").value = "";
  $("token").focus();
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  try {
    await signIn($("token").value.trim());
    $("token").value = "";
  } catch (err) {
    $("sign-in-error").textContent = `Sign-in failed: ${err.message}`;
  }
});
$("sign-out").addEventListener("click", () => signOut("Signed out."));

// --- the event stream (fetch, so that it carries the token) ----------------------------------

async function connect() {
  if (stream) stream.abort();
  const controller = new AbortController();
  stream = controller;
  let delay = 1000;
  while (stream === controller) {
    try {
      const response = await fetch("/api/events", {
        headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
        signal: controller.signal,
      });
      if (response.status === 401) { signOut("Your token was refused; sign in again."); return; }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      $("link").className = "link-up";
      $("link").textContent = "live";
      logEntries.length = 0; // the stream starts with a snapshot of the recent log
      delay = 1000;
      await readEvents(response.body.getReader());
    } catch (err) {
      if (controller.signal.aborted) return;
    }
    $("link").className = "link-down";
    $("link").textContent = "reconnecting…";
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 15000);
  }
}

async function readEvents(reader) {
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let kind = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) kind = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (data) onEvent(kind, JSON.parse(data));
    }
  }
}

function onEvent(kind, data) {
  if (kind === "cp") {
    const before = cps.get(data.cp_id);
    if (!before) idsChanged = true;
    else if (before.state !== data.state) refreshSummarySoon(); // sessions open may have changed
    cps.set(data.cp_id, data);
  } else if (kind === "log") {
    logEntries.push(data);
    if (logEntries.length > LOG_KEEP) logEntries.splice(0, logEntries.length - LOG_KEEP);
    if (data.kind === "ticket") refreshSummarySoon();
  }
  scheduleRender();
}

let renderTimer = null;
function scheduleRender() {
  if (renderTimer === null) renderTimer = setTimeout(render, RENDER_MS);
}

function render() {
  renderTimer = null;
  if (idsChanged) {
    sortedIds = [...cps.keys()].sort(collator.compare);
    idsChanged = false;
  }
  renderCounts();
  const view = currentView();
  if (view === "cps") renderGrid();
  else if (view === "cp") renderDetailLive();
  else if (view === "log") renderLog();
}

// --- summary strip -------------------------------------------------------------------------------

function renderCounts() {
  const counts = Object.fromEntries(STATES.map(([state]) => [state, 0]));
  for (const cp of cps.values()) counts[cp.state] = (counts[cp.state] || 0) + 1;
  const list = $("state-counts");
  if (!list.children.length) {
    for (const [state, label] of STATES) {
      const link = el("a", { href: `#/cps?state=${state}`, className: `state s-${state}`, dataset: { state } },
        el("span", { className: "n" }), ` ${label}`);
      list.append(el("li", {}, link));
    }
  }
  for (const link of list.querySelectorAll("a")) {
    link.querySelector(".n").textContent = counts[link.dataset.state].toLocaleString("en");
  }
}

let summaryTimer = null;
function refreshSummarySoon() {
  if (summaryTimer === null) summaryTimer = setTimeout(refreshSummary, 1000);
}

async function refreshSummary() {
  clearTimeout(summaryTimer);
  summaryTimer = null;
  if (!token) return;
  const midnight = new Date();
  midnight.setHours(0, 0, 0, 0);
  try {
    const s = await api(`/api/summary?since=${midnight.getTime() / 1000}`);
    $("sum-open").textContent = s.sessions_open.toLocaleString("en");
    $("sum-sessions").textContent = s.sessions.toLocaleString("en");
    $("sum-kwh").textContent = kwh(s.kwh);
    $("sum-eur").textContent = euro(s.eur);
  } catch (err) { /* shown again at the next refresh */ }
  summaryTimer = setTimeout(refreshSummary, SUMMARY_MS);
}

// --- CP grid ---------------------------------------------------------------------------------------

function filteredIds() {
  const state = $("cp-state").value;
  const search = $("cp-search").value.trim().toLowerCase();
  if (!state && !search) return sortedIds;
  return sortedIds.filter((id) => {
    const cp = cps.get(id);
    if (state && cp.state !== state) return false;
    return !search || id.toLowerCase().includes(search) || cp.location.toLowerCase().includes(search);
  });
}

function stateBadge(cp) {
  return el("span", { className: `state s-${cp.state}` }, cp.label);
}

function makeRow(id) {
  const link = el("a", { href: `#/cp/${encodeURIComponent(id)}` }, id);
  const stop = el("button", { type: "button", className: "danger operator", dataset: { action: "stop", cpId: id },
    "aria-label": `Stop ${id}` }, "Stop");
  const resume = el("button", { type: "button", className: "operator", dataset: { action: "resume", cpId: id },
    "aria-label": `Resume ${id}` }, "Resume");
  stop.disabled = resume.disabled = role !== "operator";
  const row = el("tr", { dataset: { cpId: id } },
    el("th", { scope: "row" }, link), el("td"), el("td"), el("td"), el("td"), el("td", { className: "num" }),
    el("td", { className: "num" }), el("td", { className: "buttons" }, stop, resume));
  return row;
}

function fillRow(row, cp) {
  if (row.dataset.sig === sig(cp)) return;
  row.dataset.sig = sig(cp);
  row.dataset.state = cp.state;
  const cells = row.children;
  cells[1].textContent = cp.location;
  cells[2].replaceChildren(stateBadge(cp));
  cells[3].textContent = price(cp.price);
  cells[4].textContent = cp.driver_id || "";
  const supplying = cp.state === "SUPPLYING";
  cells[5].textContent = supplying ? kwh(cp.kwh) : "";
  cells[6].textContent = supplying ? euro(cp.eur) : "";
}

function sig(cp) {
  return `${cp.state}|${cp.location}|${cp.price}|${cp.driver_id}|${cp.kwh}|${cp.eur}`;
}

function renderGrid() {
  const ids = filteredIds();
  const size = Number($("cp-page-size").value);
  const pages = Math.max(1, Math.ceil(ids.length / size));
  grid.page = Math.min(grid.page, pages - 1);
  const shown = ids.slice(grid.page * size, (grid.page + 1) * size);
  const same = shown.length === grid.shown.length && shown.every((id, i) => id === grid.shown[i]);
  if (!same) {
    const rows = new Map();
    for (const id of shown) rows.set(id, grid.rows.get(id) || makeRow(id));
    grid.rows = rows;
    grid.shown = shown;
    $("cp-rows").replaceChildren(...rows.values());
  }
  for (const [id, row] of grid.rows) fillRow(row, cps.get(id));
  const first = ids.length ? grid.page * size + 1 : 0;
  $("cp-count").textContent = `Showing ${first.toLocaleString("en")}–${(grid.page * size + shown.length).toLocaleString("en")} ` +
    `of ${ids.length.toLocaleString("en")} charging points (${cps.size.toLocaleString("en")} in all)`;
  $("cp-page").textContent = `Page ${grid.page + 1} of ${pages}`;
  $("cp-prev").disabled = grid.page === 0;
  $("cp-next").disabled = grid.page >= pages - 1;
  $("cp-empty").hidden = ids.length > 0;
}

function resetGridPage() { grid.page = 0; renderGrid(); }
$("cp-state").addEventListener("change", resetGridPage);
$("cp-search").addEventListener("input", resetGridPage);
$("cp-page-size").addEventListener("change", resetGridPage);
$("cp-prev").addEventListener("click", () => { grid.page -= 1; renderGrid(); });
$("cp-next").addEventListener("click", () => { grid.page += 1; renderGrid(); });
$("cp-rows").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  act(`/api/cps/${encodeURIComponent(button.dataset.cpId)}/${button.dataset.action}`, "POST");
});
for (const [state, label] of STATES) $("cp-state").append(el("option", { value: state }, label));

function confirmAction(text, okText) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = okText;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "cancel";
    dialog.showModal();
    $("confirm-cancel").focus();
  });
}

$("stop-all").addEventListener("click", async () => {
  const n = cps.size.toLocaleString("en");
  if (await confirmAction(`Stop all ${n} charging points? Running supplies end at once and every CP shows Out of Order until resumed.`, "Stop all charging points")) {
    act("/api/cps/stop", "POST");
  }
});
$("resume-all").addEventListener("click", async () => {
  const n = cps.size.toLocaleString("en");
  if (await confirmAction(`Resume all ${n} charging points? Every stopped CP becomes available to drivers again.`, "Resume all charging points")) {
    act("/api/cps/resume", "POST");
  }
});

// --- one CP ------------------------------------------------------------------------------------------

async function showDetail(id) {
  detailId = id;
  detailState = null;
  $("cp-title").textContent = `Charging point ${id}`;
  $("price-label").textContent = `Price of ${id} (€/kWh)`;
  $("price-submit").setAttribute("aria-label", `Set price of ${id}`);
  $("cp-stop").setAttribute("aria-label", `Stop ${id}`);
  $("cp-reset").setAttribute("aria-label", `Reset credentials of ${id}`);
  $("cp-resume").setAttribute("aria-label", `Resume ${id}`);
  $("price-input").value = "";
  $("cp-history").replaceChildren();
  $("cp-sessions").replaceChildren();
  try {
    const cp = await api(`/api/cps/${encodeURIComponent(id)}`);
    if (!cps.has(id)) { cps.set(id, cp); idsChanged = true; }
    $("price-input").value = Number(cp.price).toFixed(2);
  } catch (err) {
    $("cp-facts").replaceChildren(el("div", {}, el("dt", {}, "Error"), el("dd", {}, err.message)));
    return;
  }
  renderDetailLive();
  loadDetailHistory();
}

async function loadDetailHistory() {
  const id = detailId;
  try {
    const [history, sessions] = await Promise.all([
      api(`/api/cps/${encodeURIComponent(id)}/history`),
      api(`/api/sessions?cp_id=${encodeURIComponent(id)}&limit=10`),
    ]);
    if (id !== detailId) return;
    $("cp-history").replaceChildren(...history.history.map((h) =>
      el("li", {}, el("time", {}, when(h.ts)), " ", el("span", { className: `state s-${h.state}` }, h.label),
        h.health ? ` (health ${h.health})` : "")));
    $("cp-sessions").replaceChildren(...sessions.sessions.map((s) => el("tr", {},
      el("td", {}, when(s.started_at || s.authorized_at)), el("td", {}, driverCell(s.driver_id)),
      el("td", {}, s.outcome || s.status), el("td", { className: "num" }, kwh(s.kwh)),
      el("td", { className: "num" }, euro(s.eur)))));
  } catch (err) { /* the next state change loads it again */ }
}

function renderDetailLive() {
  const cp = cps.get(detailId);
  if (!cp) return;
  const fact = (name, value) => el("div", {}, el("dt", {}, name), el("dd", {}, value));
  $("cp-facts").replaceChildren(
    fact("State", stateBadge(cp)), fact("Location", cp.location), fact("Price", price(cp.price)),
    fact("Connected", cp.connected ? "yes" : "no"), fact("Health", cp.health || "unknown"),
    fact("Last seen", when(cp.last_seen)));
  $("cp-session").textContent = cp.session_id
    ? `${cp.driver_id} · ${kwh(cp.kwh)} · ${euro(cp.eur)} (session ${cp.session_id})`
    : "None.";
  if (detailState !== null && detailState !== cp.state) loadDetailHistory();
  detailState = cp.state;
}

$("price-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = Number($("price-input").value);
  const answer = await act(`/api/cps/${encodeURIComponent(detailId)}/price`, "PUT", { price: value });
  if (answer) {
    cps.set(answer.cp_id, answer);
    notify(`Price of ${answer.cp_id} is now ${price(answer.price)}`);
    renderDetailLive();
  }
});
$("cp-reset").addEventListener("click", async () => {
  const id = detailId;
  const text = `Reset the credentials of ${id}? Its monitor is disconnected and must register again ` +
    "with the registration token (use this when a CP was replaced or its secret lost).";
  if (await confirmAction(text, `Reset ${id}`) && await act(`/api/cps/${encodeURIComponent(id)}/reset`, "POST")) {
    notify(`${id} reset: it registers again with the registration token`);
  }
});
$("cp-stop").addEventListener("click", () => act(`/api/cps/${encodeURIComponent(detailId)}/stop`, "POST"));
$("cp-resume").addEventListener("click", () => act(`/api/cps/${encodeURIComponent(detailId)}/resume`, "POST"));

// --- sessions ------------------------------------------------------------------------------------------

// The operator looks a driver up by clicking it; a viewer sees a pseudonym it may not look up.
function driverCell(driverId) {
  if (role !== "operator") return driverId;
  return el("a", { href: `#/sessions?driver_id=${encodeURIComponent(driverId)}`,
    "aria-label": `Sessions of driver ${driverId}` }, driverId);
}

function sessionFilters() {
  const params = new URLSearchParams();
  const put = (name, value) => { if (value) params.set(name, value); };
  put("cp_id", $("s-cp").value.trim());
  put("driver_id", $("s-driver").value.trim());
  put("outcome", $("s-outcome").value);
  for (const name of ["since", "until"]) {
    const value = $(`s-${name}`).value;
    if (value) params.set(name, String(new Date(value).getTime() / 1000));
  }
  return params;
}

async function loadSessions() {
  const params = sessionFilters();
  params.set("limit", String(SESSIONS_PAGE));
  params.set("offset", String(sessionsPage.offset));
  let answer;
  try {
    answer = await api(`/api/sessions?${params}`);
  } catch (err) {
    $("s-count").textContent = `Could not load sessions: ${err.message}`;
    return;
  }
  sessionsPage.total = answer.total;
  $("s-rows").replaceChildren(...answer.sessions.map((s) => el("tr", {},
    el("td", {}, when(s.started_at || s.authorized_at)),
    el("td", {}, el("a", { href: `#/cp/${encodeURIComponent(s.cp_id)}` }, s.cp_id)),
    el("td", {}, driverCell(s.driver_id)), el("td", {}, s.status), el("td", {}, s.outcome || ""),
    el("td", { className: "num" }, kwh(s.kwh)), el("td", { className: "num" }, euro(s.eur)),
    el("td", { className: "num" }, price(s.price)), el("td", {}, s.reason))));
  const first = answer.total ? sessionsPage.offset + 1 : 0;
  $("s-count").textContent = `Showing ${first}–${sessionsPage.offset + answer.sessions.length} of ${answer.total.toLocaleString("en")} sessions`;
  const pages = Math.max(1, Math.ceil(answer.total / SESSIONS_PAGE));
  $("s-page").textContent = `Page ${Math.floor(sessionsPage.offset / SESSIONS_PAGE) + 1} of ${pages}`;
  $("s-prev").disabled = sessionsPage.offset === 0;
  $("s-next").disabled = sessionsPage.offset + SESSIONS_PAGE >= answer.total;
}

$("sessions-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionsPage.offset = 0;
  loadSessions();
});
$("s-prev").addEventListener("click", () => { sessionsPage.offset = Math.max(0, sessionsPage.offset - SESSIONS_PAGE); loadSessions(); });
$("s-next").addEventListener("click", () => { sessionsPage.offset += SESSIONS_PAGE; loadSessions(); });
$("s-csv").addEventListener("click", async () => {
  try {
    const response = await api(`/api/sessions.csv?${sessionFilters()}`, { raw: true });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: "sessions.csv" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    if (err.message !== "signed out") notify(`CSV export failed: ${err.message}`);
  }
});

// --- drivers (operator only) ---------------------------------------------------------------------------

async function loadDrivers() {
  let answer;
  try {
    answer = await api("/api/drivers");
  } catch (err) {
    if (err.message !== "signed out") notify(`Could not load drivers: ${err.message}`);
    return;
  }
  $("driver-rows").replaceChildren(...answer.drivers.map((d) => {
    const revoke = el("button", { type: "button", className: "danger operator", dataset: { driverId: d.driver_id },
      "aria-label": `Revoke ${d.driver_id}` }, "Revoke");
    revoke.disabled = Boolean(d.revoked_at);
    return el("tr", { dataset: { driverId: d.driver_id } },
      el("th", { scope: "row" }, driverCell(d.driver_id)), el("td", {}, when(d.enrolled_at)),
      el("td", {}, d.enrolled_by || ""), el("td", {}, d.revoked_at ? when(d.revoked_at) : ""),
      el("td", { className: "buttons" }, revoke));
  }));
}

$("enroll-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const driverId = $("enroll-id").value.trim();
  const answer = await act("/api/drivers", "POST", { driver_id: driverId });
  if (answer) {
    $("enroll-secret").textContent = `Secret of ${answer.driver_id} (shown this once; hand it to the driver): ${answer.secret}`;
    $("enroll-id").value = "";
    loadDrivers();
  }
});
$("driver-rows").addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-driver-id]");
  if (!button) return;
  const id = button.dataset.driverId;
  if (await confirmAction(`Revoke ${id}? Its app can no longer request supplies until it is enrolled again.`, `Revoke ${id}`)
      && await act(`/api/drivers/${encodeURIComponent(id)}`, "DELETE")) {
    notify(`${id} revoked`);
    loadDrivers();
  }
});

// --- live log ----------------------------------------------------------------------------------------

function renderLog() {
  const kind = $("log-kind").value;
  const shown = [];
  for (let i = logEntries.length - 1; i >= 0 && shown.length < 200; i -= 1) {
    const entry = logEntries[i];
    if (!kind || entry.kind === kind) shown.push(entry);
  }
  $("log").replaceChildren(...shown.map((entry) => el("li", { className: `k-${entry.kind}` },
    el("time", {}, when(entry.ts)), " ", el("span", { className: "kind" }, entry.kind), " ",
    el("span", { className: "message" }, entry.message))));
}
$("log-kind").addEventListener("change", renderLog);

// --- routing ------------------------------------------------------------------------------------------

function currentView() {
  const hash = location.hash || "#/cps";
  if (hash.startsWith("#/cp/")) return "cp";
  if (hash.startsWith("#/sessions")) return "sessions";
  if (hash.startsWith("#/log")) return "log";
  if (hash.startsWith("#/drivers") && role === "operator") return "drivers";
  return "cps";
}

function route() {
  if (!role) return;
  const view = currentView();
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${view}`;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === view || (view === "cp" && link.dataset.view === "cps")) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const hash = location.hash;
  if (view === "cps") {
    const state = new URLSearchParams(hash.split("?")[1] || "").get("state");
    if (state !== null) { $("cp-state").value = state; grid.page = 0; }
    renderGrid();
    $("cps-title").focus();
  } else if (view === "cp") {
    showDetail(decodeURIComponent(hash.slice("#/cp/".length)));
    $("cp-title").focus();
  } else if (view === "sessions") {
    const params = new URLSearchParams(hash.split("?")[1] || "");
    if (params.has("driver_id") || params.has("cp_id")) {
      for (const id of ["s-cp", "s-driver", "s-outcome", "s-since", "s-until"]) $(id).value = "";
      $("s-driver").value = params.get("driver_id") || "";
      $("s-cp").value = params.get("cp_id") || "";
    }
    sessionsPage.offset = 0;
    loadSessions();
    $("sessions-title").focus();
  } else if (view === "drivers") {
    $("enroll-secret").textContent = "";
    loadDrivers();
    $("drivers-title").focus();
  } else {
    renderLog();
    $("log-title").focus();
  }
}
window.addEventListener("hashchange", route);

if (token) signIn(token).catch(() => signOut("Your token was refused; sign in again."));
else $("token").focus();
