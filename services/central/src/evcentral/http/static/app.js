// The operator dashboard: a tile per CP, STOP/RESUME, a live log, all fed by /api/events.
"use strict";

const TOKEN_KEY = "evcentral.operatorToken";
const LOG_KEEP = 200;
const tiles = new Map();
const tilesEl = document.getElementById("tiles");
const logEl = document.getElementById("log");

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function euro(value) { return Number(value).toFixed(2) + " €"; }

function renderCp(cp) {
  let tile = tiles.get(cp.cp_id);
  if (!tile) {
    tile = el("div", "tile");
    tile.dataset.cpId = cp.cp_id;
    tiles.set(cp.cp_id, tile);
    const after = [...tiles.keys()].sort().find((id) => id > cp.cp_id);
    tilesEl.insertBefore(tile, after ? tiles.get(after) : null);
  }
  tile.className = "tile " + cp.colour;
  tile.dataset.state = cp.state;
  tile.replaceChildren(
    el("span", "id", cp.cp_id),
    el("span", "location", cp.location),
    el("span", "price", cp.price.toFixed(2) + " €/kWh"),
    el("span", "label", cp.label),
  );
  if (cp.state === "SUPPLYING" || cp.state === "WAITING_FOR_SUPPLY") {
    const supply = el("span", "supply");
    supply.textContent = cp.state === "SUPPLYING"
      ? `${cp.driver_id} · ${cp.kwh.toFixed(3)} kWh · ${euro(cp.eur)}`
      : `for ${cp.driver_id}`;
    tile.append(supply);
  }
  const buttons = el("div", "buttons");
  for (const [action, text] of [["stop", "STOP"], ["resume", "RESUME"]]) {
    const button = el("button", action, text);
    button.dataset.action = action;
    buttons.append(button);
  }
  tile.append(buttons);
  summarise();
}

function summarise() {
  const counts = {};
  for (const tile of tiles.values()) counts[tile.dataset.state] = (counts[tile.dataset.state] || 0) + 1;
  document.getElementById("empty").style.display = tiles.size ? "none" : "";
  document.getElementById("summary").textContent = Object.entries(counts)
    .map(([state, n]) => `${state}: ${n}`).join(" · ");
}

function renderLog(entry) {
  const item = el("li", entry.kind);
  const time = new Date(entry.ts * 1000).toLocaleTimeString();
  item.append(el("span", "time", time), el("span", "kind", entry.kind), el("span", "message", entry.message));
  logEl.prepend(item);
  while (logEl.children.length > LOG_KEEP) logEl.lastElementChild.remove();
}

function notify(text) {
  const notice = document.getElementById("notice");
  notice.textContent = text;
  notice.className = "shown";
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => { notice.className = ""; }, 4000);
}

function operatorToken() {
  let token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    token = (window.prompt("Operator token") || "").trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
  }
  return token;
}

async function operate(path, method) {
  const token = operatorToken();
  if (!token) return;
  try {
    const response = await fetch(path, { method, headers: { Authorization: `Bearer ${token}` } });
    const body = await response.json().catch(() => ({}));
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      notify(`Refused: ${body.error || "wrong operator token"}`);
    } else if (!response.ok) {
      notify(`Failed: ${body.error || response.status}`);
    } else if (body.affected !== undefined) {
      notify(`Sent to ${body.affected} charging points`);
    }
  } catch (err) {
    notify(`The central did not answer: ${err}`);
  }
}

function connect() {
  const source = new EventSource("/api/events");
  const link = document.getElementById("link");
  source.addEventListener("open", () => {
    link.className = "link-up";
    link.textContent = "live";
    logEl.replaceChildren(); // the stream starts with a snapshot of the recent log
  });
  source.addEventListener("error", () => {
    link.className = "link-down";
    link.textContent = "reconnecting…";
  });
  source.addEventListener("cp", (event) => renderCp(JSON.parse(event.data)));
  source.addEventListener("log", (event) => renderLog(JSON.parse(event.data)));
}

tilesEl.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const cpId = button.closest(".tile").dataset.cpId;
  operate(`/api/cps/${encodeURIComponent(cpId)}/${button.dataset.action}`, "POST");
});
document.getElementById("stop-all").addEventListener("click", () => operate("/api/cps/stop", "POST"));
document.getElementById("resume-all").addEventListener("click", () => operate("/api/cps/resume", "POST"));
summarise();
connect();
