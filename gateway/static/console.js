// OMN operator console. Vanilla JS, no build step, no external assets.
// Auth: a one-time login code (URL fragment #code=... or pasted) is exchanged for a session
// token kept in sessionStorage; REST uses it as a bearer token, the websocket logs in with it.
"use strict";

(() => {
  const TOKEN_KEY = "omn.console.session";
  const MAX_TRADES = 200;
  const STATES = ["pending", "submitted", "confirmed", "final", "failed"];
  const HEALTH_POLL_MS = 2000;

  const state = {
    session: null, // {token, operator, expires_at}
    instruments: new Map(), // symbol -> instrument JSON
    trades: [], // newest first
    participants: [],
    rejectionCounts: {},
    recentRejections: [],
    settlementCounts: {},
    settlements: new Map(), // trade_id -> notice (insertion: newest first on render)
    reconciliation: null,
    audit: { chain_ok: null, entries: [] },
    ws: null,
    wsBackoff: 500,
    loading: false,
    queued: [],
    wsError: "",
    heartbeatTimer: null,
    refreshTimer: null,
    reference: new Map(), // symbol -> /instruments/{symbol}/reference (NAV, collar, attestations, halt reason)
    indicative: new Map(), // symbol -> the latest indicative uncross of a call auction
    referenceTimer: null,
    healthTimer: null,
  };

  // ------------------------------------------------------------ DOM helpers

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "testid") node.dataset.testid = value;
      else if (key === "onclick") node.addEventListener("click", value);
      else if (key === "style") Object.assign(node.style, value); // CSSOM: allowed by the page's CSP
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function replaceRows(tbody, rows, colspan, emptyText) {
    tbody.replaceChildren(...(rows.length ? rows : [el("tr", { class: "empty" }, el("td", { colspan }, emptyText))]));
  }

  const pill = (text, kind, testid) => el("span", { class: `pill pill-${kind}`, testid }, text);

  function fmtTime(ns) {
    if (ns === null || ns === undefined) return "—";
    const d = new Date(Number(ns) / 1e6);
    return d.toISOString().slice(11, 23);
  }
  function fmtDateTime(ns) {
    if (ns === null || ns === undefined) return "—";
    return new Date(Number(ns) / 1e6).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }
  function fmtDate(ns) {
    if (ns === null || ns === undefined) return "—";
    return new Date(Number(ns) / 1e6).toISOString().slice(0, 10);
  }
  function fmtUnits(text, decimals) {
    if (text === null || text === undefined) return "—";
    let v = BigInt(text);
    const sign = v < 0n ? "-" : "";
    if (v < 0n) v = -v;
    if (decimals === null) return sign + v.toLocaleString("en-US");
    const base = 10n ** BigInt(decimals);
    const frac = (v % base).toString().padStart(decimals, "0").replace(/0+$/, "");
    return sign + (v / base).toLocaleString("en-US") + (frac ? `.${frac}` : "");
  }
  // balances come in base units; scale them when every listing agrees on the decimals
  function commonDecimals(field) {
    const values = new Set([...state.instruments.values()].map((i) => i[field]));
    return values.size === 1 ? [...values][0] : null;
  }
  // One decimal format everywhere: a price (or NAV, collar, spread) of an instrument is shown with
  // exactly the decimals of its price increment, a quantity with those of its quantity increment
  // (the API trims trailing zeros: "45000.1" beside "45045.19" is the same format misread).
  function decimalsOf(text) {
    const s = String(text || "");
    return s.includes(".") ? s.split(".")[1].length : 0;
  }
  // decimal string -> fixed decimals, exact (BigInt, half away from zero), no float rounding
  function fixed(text, dp) {
    if (text === null || text === undefined || text === "") return "—";
    let s = String(text).trim();
    const neg = s.startsWith("-");
    if (neg) s = s.slice(1);
    let [whole, frac = ""] = s.split(".");
    let digits = BigInt((whole || "0") + frac.padEnd(dp + 1, "0").slice(0, dp + 1));
    digits = (digits + 5n) / 10n;
    const str = digits.toString().padStart(dp + 1, "0");
    const out = dp ? `${str.slice(0, -dp)}.${str.slice(-dp)}` : str;
    return (neg && digits !== 0n ? "-" : "") + out;
  }
  function priceDp(sym) {
    const inst = state.instruments.get(sym);
    return inst ? decimalsOf(inst.price_increment) : 2;
  }
  function qtyDp(sym) {
    const inst = state.instruments.get(sym);
    return inst ? decimalsOf(inst.quantity_increment) : 0;
  }
  const fmtPx = (text, sym) => fixed(text, priceDp(sym));
  const fmtQty = (text, sym) => fixed(text, qtyDp(sym));
  function fmtBps(bps) {
    if (bps === null || bps === undefined) return "—";
    return `${bps > 0 ? "+" : ""}${bps} bps`;
  }
  const fmtInt = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"));
  const short = (hex, n = 10) => (hex && hex.length > n + 4 ? `${hex.slice(0, n)}…${hex.slice(-4)}` : hex || "—");

  const STATUS_KIND = { open: "ok", halted: "bad", pre_open: "warn", closed: "idle", call: "warn" };
  const SETTLE_KIND = { pending: "warn", submitted: "info", confirmed: "ok", final: "ok", failed: "bad" };

  // ------------------------------------------------------------ banners

  let bannerTimer = null;
  function banner(kind, text) {
    const err = $("action-error"), ok = $("action-ok");
    err.hidden = ok.hidden = true;
    const target = kind === "error" ? err : ok;
    target.textContent = text;
    target.hidden = false;
    clearTimeout(bannerTimer);
    bannerTimer = setTimeout(() => { target.hidden = true; }, kind === "error" ? 12000 : 5000);
  }

  // ------------------------------------------------------------ REST

  class ApiError extends Error {
    constructor(status, code, message) { super(`${code}: ${message}`); this.status = status; this.code = code; }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (state.session) headers.Authorization = `Bearer ${state.session.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    let data = null;
    try { data = await resp.json(); } catch (_) { data = null; }
    if (!resp.ok) {
      const err = (data && data.error) || {};
      const code = err.code || `HTTP_${resp.status}`;
      const message = err.message || resp.statusText;
      if (resp.status === 401 && state.session) logout(`${code}: ${message}`);
      throw new ApiError(resp.status, code, message);
    }
    return data;
  }

  async function action(button, label, fn) {
    if (button) button.disabled = true;
    try {
      const detail = await fn();
      banner("ok", detail ? `${label}: ${detail}` : label);
    } catch (err) {
      banner("error", `${label} failed — ${err.message}`);
    } finally {
      if (button) button.disabled = false;
    }
  }

  // ------------------------------------------------------------ session

  function saveSession(session) {
    state.session = session;
    sessionStorage.setItem(TOKEN_KEY, JSON.stringify(session));
    scheduleRefresh();
  }

  function scheduleRefresh() {
    clearTimeout(state.refreshTimer);
    if (!state.session) return;
    const inMs = state.session.expires_at * 1000 - Date.now() - 5 * 60 * 1000;
    state.refreshTimer = setTimeout(async () => {
      try {
        saveSession(await api("POST", "/console/api/session/refresh"));
        if (state.ws) state.ws.close(); // the refresh retired the old token: log in again with the new one
      }
      catch (err) { banner("error", `Session refresh failed — ${err.message}`); }
    }, Math.max(inMs, 10_000));
  }

  async function loginWithCode(code) {
    state.session = null;
    saveSession(await api("POST", "/console/api/session", { code }));
  }

  async function loginWithTokenOrCode(text) {
    const value = text.trim();
    if (!value) throw new Error("enter a login code or session token");
    if (value.includes(".")) { // session tokens are "<payload>.<signature>"; codes have no dot
      state.session = { token: value, operator: "", expires_at: Date.now() / 1000 + 3600 };
      const who = await api("GET", "/console/api/whoami");
      saveSession({ ...state.session, operator: who.operator });
    } else {
      await loginWithCode(value);
    }
  }

  function logout(reason) {
    const session = state.session;
    state.session = null;
    sessionStorage.removeItem(TOKEN_KEY);
    clearTimeout(state.refreshTimer);
    clearInterval(state.heartbeatTimer);
    clearInterval(state.healthTimer);
    $("alert-strip").hidden = true;
    if (state.ws) { state.ws.onclose = null; state.ws.close(); state.ws = null; }
    if (session && !reason) {
      fetch("/console/api/session", { method: "DELETE", headers: { Authorization: `Bearer ${session.token}` } })
        .catch(() => {});
    }
    showLogin(reason || "");
  }

  function showLogin(message) {
    $("main").hidden = true;
    $("login").hidden = false;
    $("logout").hidden = true;
    $("operator-name").textContent = "";
    $("login-error").textContent = message;
    setConnection("offline", "idle");
  }

  async function start() {
    $("login").hidden = true;
    $("main").hidden = false;
    $("logout").hidden = false;
    $("operator-name").textContent = state.session.operator;
    connect(); // the snapshot is loaded once the websocket is logged in (see sync)
    if (!state.referenceTimer) state.referenceTimer = setInterval(loadReferences, 2000);
    if (!state.offBookTimer) state.offBookTimer = setInterval(loadOffBook, 2000);
    loadOffBook();
    if (!state.recordsTimer) {
      state.recordsTimer = setInterval(() => { loadHolders(); loadAnchors(); }, 15_000);
    }
    clearInterval(state.healthTimer);
    pollHealth();
    state.healthTimer = setInterval(pollHealth, HEALTH_POLL_MS);
  }

  // ------------------------------------------------------------ alert strip (readiness)

  // /health/ready answers 503 with the failing checks (journal, store backlog, chain watcher lag,
  // stopping); the strip lists them and hides again once every check passes.
  async function pollHealth() {
    let reasons;
    try {
      const resp = await fetch("/health/ready", { cache: "no-store" });
      reasons = resp.ok ? [] : ((await resp.json()).reasons || [{ check: "ready", reason: `HTTP ${resp.status}` }]);
    } catch (err) {
      reasons = [{ check: "health", reason: "the readiness check is unreachable" }];
    }
    renderAlerts(reasons);
  }

  function renderAlerts(reasons) {
    const strip = $("alert-strip");
    strip.hidden = reasons.length === 0;
    strip.replaceChildren(el("strong", {}, "Not ready: "), ...reasons.map((r) =>
      el("span", { class: "alert-item", testid: `alert-${r.check}` }, `${r.check}: ${r.reason}`)));
  }

  // NAV, premium/discount, collar, attestation freshness and halt reason per instrument. Venues
  // without attestations answer 404: the card then shows no reference block.
  async function loadReferences() {
    if (!state.session) return;
    const symbols = [...state.instruments.keys()];
    const views = await Promise.all(symbols.map(async (sym) => {
      try {
        const resp = await fetch(`/console/api/instruments/${encodeURIComponent(sym)}/reference`,
          { headers: { Accept: "application/json", Authorization: `Bearer ${state.session.token}` } });
        return resp.ok ? [sym, await resp.json()] : null;
      } catch (_) { return null; }
    }));
    let changed = false;
    for (const v of views) if (v) { state.reference.set(v[0], v[1]); changed = true; }
    if (changed) renderInstruments();
  }

  // Live requests for quotes (with the responders asked and every quote) and block trades.
  async function loadOffBook() {
    if (!state.session) return;
    let rfqs, blocks;
    try {
      [rfqs, blocks] = await Promise.all([api("GET", "/console/api/rfqs"), api("GET", "/console/api/blocks")]);
    } catch (_) { return; } // a venue without the off-book desks: the panel stays empty
    const rfqRows = rfqs.map((r) => el("tr", { testid: `rfq-${r.rfq_id}` },
      el("td", { class: "mono", title: fmtTime(r.ts) }, fmtTime(r.ts).slice(0, 8)),
      el("td", {}, "RFQ"),
      el("td", { class: "mono" }, r.symbol),
      el("td", { class: r.side === "buy" ? "buy" : "sell" }, `${r.requester} ${r.side.toUpperCase()}`),
      el("td", { class: "num" }, r.qty),
      el("td", {}, r.quotes.map((q) => `${q.responder} ${q.qty}@${q.price} (${q.state})`).join(", ") ||
        `asked: ${(r.responders || []).join(", ")}`),
      el("td", {}, pill(r.state, r.state === "open" ? "pending" : r.state === "filled" ? "confirmed" : "idle",
        `rfq-state-${r.rfq_id}`)),
      el("td", { class: "num muted" }, r.trade_id ?? "")));
    const blockRows = blocks.map((b) => el("tr", { testid: `block-${b.block_id}` },
      el("td", { class: "mono", title: fmtTime(b.ts) }, fmtTime(b.ts).slice(0, 8)),
      el("td", {}, "BLOCK"),
      el("td", { class: "mono" }, b.symbol),
      el("td", {}, `${b.seller} → ${b.buyer}`),
      el("td", { class: "num" }, b.qty),
      el("td", {}, `@${b.price}, confirmed by ${b.submitted_by.join(" + ")}`),
      el("td", {}, pill(b.state, b.state === "pending" ? "pending" : b.state === "matched" ? "confirmed" : "idle",
        `block-state-${b.block_id}`)),
      el("td", { class: "num muted" }, b.trade_id ?? "")));
    $("offbook-meta").textContent = `${rfqs.filter((r) => r.state === "open").length} open RFQs, ` +
      `${blocks.filter((b) => b.state === "pending").length} pending blocks`;
    replaceRows($("offbook"), [...rfqRows, ...blockRows], 8, "No requests for quotes or block trades yet.");
  }

  function pct(text) {
    if (text === null || text === undefined) return "—";
    const n = Number(text) * 100;
    return `${n >= 0 ? "+" : ""}${n.toFixed(2)}%`;
  }

  function referenceBlock(sym) {
    const ref = state.reference.get(sym);
    if (!ref) return el("div", { class: "muted small", testid: `reference-${sym}` }, "");
    const fresh = Object.entries(ref.freshness).map(([kind, f]) =>
      pill(`${kind.toLowerCase()} ${f.age_s === null ? "none" : f.age_s + "s"}`, f.stale ? (f.max_age_s ? "bad" : "idle") : "ok",
        `fresh-${kind.toLowerCase()}-${sym}`));
    const collar = ref.collar ? `${fmtPx(ref.collar.low, sym)} to ${fmtPx(ref.collar.high, sym)}` : "—";
    const cov = ref.custody_coverage === null ? "—" : `${(Number(ref.custody_coverage) * 100).toFixed(2)}%`;
    return el("div", { class: "reference", testid: `reference-${sym}` },
      el("div", { class: "inst-stats" },
        el("div", { class: "stat" }, el("div", { class: "k" }, `NAV (${ref.nav_currency || "—"})`),
          el("div", { class: "v", testid: `nav-${sym}` }, ref.nav_per_note === null ? "—" : fmtPx(ref.nav_per_note, sym))),
        el("div", { class: "stat" }, el("div", { class: "k" }, "Mid vs NAV"),
          el("div", { class: "v", testid: `premium-${sym}`, title: fmtBps(ref.mid_premium_bps) }, pct(ref.mid_premium))),
        el("div", { class: "stat" }, el("div", { class: "k" }, "Collar"), el("div", { class: "v", testid: `collar-${sym}` }, collar)),
        el("div", { class: "stat" }, el("div", { class: "k" }, "Custody cover"), el("div", { class: "v", testid: `coverage-${sym}` }, cov)),
        el("div", { class: "stat" }, el("div", { class: "k" }, "Accrued BTC/note"),
          el("div", { class: "v", testid: `accrued-${sym}` }, ref.accrued_btc_per_note || "—"))),
      el("div", { class: "small" }, el("span", { class: "muted" }, "attestations: "), ...fresh,
        ref.matured ? pill("matured", "idle", `matured-${sym}`) : "",
        ref.halt_reason ? el("span", { class: "pill pill-bad", testid: `halt-reason-${sym}`, title: ref.halt_message || "" },
          ref.halt_reason) : ""),
      el("div", { class: "muted small" }, [ref.metadata.identifier, ref.metadata.hashrate_ph_s_per_note && `${ref.metadata.hashrate_ph_s_per_note} PH/s per note`,
        ref.metadata.tenor_months && `${ref.metadata.tenor_months} months`, ref.metadata.issue_date && `issued ${ref.metadata.issue_date}`,
        ref.metadata.maturity_date && `matures ${ref.metadata.maturity_date}`,
        ref.metadata.expense_ratio_bps !== null && `expenses ${(ref.metadata.expense_ratio_bps / 100).toFixed(2)}%/y`,
        ref.metadata.settlement_asset].filter(Boolean).join(" · ")));
  }

  function resumeInstrument(sym, button) {
    const ref = state.reference.get(sym);
    if (!ref || !ref.halt_reason) { setInstrumentStatus(sym, "open", button); return; }
    const reason = window.prompt(`${sym} is halted (${ref.halt_reason}). Reason for resuming (audited):`);
    if (!reason || !reason.trim()) return;
    action(button, "Resume", async () => {
      await api("POST", `/console/api/instruments/${encodeURIComponent(sym)}/resume`, { reason });
      await loadReferences();
    });
  }

  // ------------------------------------------------------------ data loading

  // Live updates that arrive while a REST snapshot is loading are queued and reconciled with it
  // afterwards, so nothing that happens between the snapshot and the stream is lost.
  const SNAPSHOT_TYPES = { settlements: loadSettlements, rejections: loadRejections,
    participants: reloadParticipants, reconciliation: loadReconciliation, audit: reloadAudit };

  async function sync() {
    state.loading = true;
    state.queued = [];
    try {
      await loadAll();
    } finally {
      state.loading = false;
    }
    const queued = state.queued;
    state.queued = [];
    const refetch = new Set();
    for (const m of queued) {
      if (m.type === "trades") {
        apply(m); // de-duplicated by trade id
      } else if (m.type === "book") {
        const current = state.instruments.get(m.instrument.symbol);
        if (!current || m.instrument.md_seq >= current.md_seq) apply(m);
      } else if (m.type in SNAPSHOT_TYPES) {
        refetch.add(SNAPSHOT_TYPES[m.type]); // its payload may predate the snapshot: fetch again
      } else if (m.type !== "status") { // book snapshots carry the status
        apply(m);
      }
    }
    await Promise.all([...refetch].map((load) => load()));
  }

  async function loadSettlements() {
    const settl = await api("GET", "/console/api/settlements?limit=200");
    state.settlementCounts = settl.counts;
    state.settlements = new Map(settl.settlements.map((n) => [n.trade_id, n]));
    renderSettlements();
  }

  async function loadRejections() {
    const rej = await api("GET", "/console/api/rejections?limit=50");
    state.rejectionCounts = rej.counts;
    state.recentRejections = rej.recent;
    renderRejections();
  }

  async function loadReconciliation() {
    state.reconciliation = await api("GET", "/console/api/reconciliation");
    renderReconciliation();
  }

  async function loadAll() {
    const [inst, trades, parts, rej, settl, recon, audit] = await Promise.all([
      api("GET", "/console/api/instruments?depth=10"),
      api("GET", `/console/api/trades?limit=${MAX_TRADES}`),
      api("GET", "/console/api/participants"),
      api("GET", "/console/api/rejections?limit=50"),
      api("GET", "/console/api/settlements?limit=200"),
      api("GET", "/console/api/reconciliation"),
      api("GET", "/console/api/audit?limit=100"),
    ]);
    state.instruments = new Map(inst.instruments.map((i) => [i.symbol, i]));
    state.trades = trades.trades;
    state.participants = parts.participants;
    state.rejectionCounts = rej.counts;
    state.recentRejections = rej.recent;
    state.settlementCounts = settl.counts;
    state.settlements = new Map(settl.settlements.map((n) => [n.trade_id, n]));
    state.reconciliation = recon;
    state.audit = audit;
    renderAll();
    loadReferences();
    loadHolders();
    loadAnchors();
  }

  async function reloadParticipants() {
    state.participants = (await api("GET", "/console/api/participants")).participants;
    renderParticipants();
  }

  async function reloadAudit() {
    state.audit = await api("GET", "/console/api/audit?limit=100");
    renderAudit();
  }

  // ------------------------------------------------------------ websocket

  function setConnection(text, kind) {
    const node = $("connection-status");
    node.textContent = text;
    node.className = `pill pill-${kind}`;
  }

  function connect() {
    if (!state.session) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/v1/operator/ws`);
    state.ws = ws;
    state.wsError = "";
    setConnection("connecting", "warn");
    ws.onmessage = (msg) => {
      let data;
      try { data = JSON.parse(msg.data); } catch (_) { return; }
      onMessage(ws, data);
    };
    ws.onclose = (event) => {
      clearInterval(state.heartbeatTimer);
      if (state.ws !== ws) return;
      state.ws = null;
      setConnection("offline", "bad");
      if (!state.session) return;
      if (event.code === CLOSE_SESSION_ENDED) { // the console session expired or was logged out
        logout(state.wsError || "session ended; log in again");
        return;
      }
      setTimeout(connect, state.wsBackoff);
      state.wsBackoff = Math.min(state.wsBackoff * 2, 10_000);
    };
  }

  // The gateway's websocket framing: replies carry "op" (and "ok"), live pushes carry "channel".
  const CLOSE_SESSION_ENDED = 4003;

  function send(ws, message) {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  }

  function onMessage(ws, m) {
    if (m.channel === "operator") {
      if (state.loading) state.queued.push(m);
      else apply(m);
      return;
    }
    if (m.op === "welcome") {
      send(ws, { op: "login", token: state.session.token });
      clearInterval(state.heartbeatTimer);
      state.heartbeatTimer = setInterval(() => send(ws, { op: "heartbeat" }), m.heartbeat_timeout_s * 1000 / 3);
    } else if (m.op === "login" && !m.ok) { // refused: retrying with the same token cannot help
      logout(`${m.error.code}: ${m.error.message}`);
    } else if (m.op === "login") {
      setConnection("syncing", "warn");
      sync().then(() => {
        state.wsBackoff = 500;
        setConnection("live", "ok");
      }, (err) => {
        banner("error", `Loading the console failed — ${err.message}`);
        if (state.ws) state.ws.close(); // reconnects with backoff and tries again
      });
    } else if (m.ok === false) {
      state.wsError = `${m.error.code}: ${m.error.message}`; // a 4003 close that follows logs out with it
      banner("error", state.wsError);
    }
  }

  function apply(m) {
    switch (m.type) {
      case "trades": {
        const known = new Set(state.trades.map((t) => t.trade_id));
        const fresh = m.trades.filter((t) => !known.has(t.trade_id));
        state.trades = [...fresh.reverse(), ...state.trades].slice(0, MAX_TRADES);
        renderTrades(new Set(fresh.map((t) => t.trade_id)));
        break;
      }
      case "book":
        state.instruments.set(m.instrument.symbol, m.instrument);
        renderInstruments();
        break;
      case "indicative":
        state.indicative.set(m.symbol, m);
        renderInstruments();
        break;
      case "status": {
        const inst = state.instruments.get(m.symbol);
        if (inst) { inst.status = m.status; renderInstruments(); }
        break;
      }
      case "settlements": {
        const updated = new Map(m.notices.map((n) => [n.trade_id, n]));
        const rest = [...state.settlements].filter(([id]) => !updated.has(id));
        state.settlements = new Map([...[...updated].sort((a, b) => b[0] - a[0]), ...rest]);
        state.settlementCounts = m.counts;
        for (const t of state.trades) if (updated.has(t.trade_id)) t.settlement = updated.get(t.trade_id).state;
        renderSettlements(new Set(updated.keys()));
        renderTrades();
        if (m.truncated) loadSettlements().catch(() => {});
        break;
      }
      case "rejections":
        state.rejectionCounts = m.counts;
        state.recentRejections = m.recent;
        renderRejections();
        break;
      case "participants":
        state.participants = m.participants;
        renderParticipants();
        break;
      case "reconciliation":
        state.reconciliation = m.report;
        renderReconciliation();
        break;
      case "audit":
        state.audit = { chain_ok: m.chain_ok, entries: m.entries };
        renderAudit();
        break;
      default:
        break;
    }
  }

  // ------------------------------------------------------------ rendering

  function renderAll() {
    renderInstruments();
    renderTrades();
    renderParticipants();
    renderRejections();
    renderSettlements();
    renderReconciliation();
    renderAudit();
  }

  function setInstrumentStatus(symbol, status, button) {
    if (status === "halted" && !window.confirm(
      `Halt ${symbol}? Matching stops for every participant until an operator resumes it (audited).`)) {
      banner("ok", `Halt ${symbol} cancelled`);
      return Promise.resolve();
    }
    const label = `${status === "halted" ? "Halt" : "Resume"} ${symbol}`;
    return action(button, label, async () => {
      const inst = await api("POST", `/console/api/instruments/${encodeURIComponent(symbol)}/status`, { status });
      state.instruments.set(symbol, { ...state.instruments.get(symbol), ...inst });
      renderInstruments();
      reloadAudit().catch(() => {});
    });
  }

  function renderInstruments() {
    const list = [...state.instruments.values()].sort((a, b) => a.symbol.localeCompare(b.symbol));
    $("instruments-meta").textContent = `${list.length} listed`;
    const cards = list.map((inst) => {
      const sym = inst.symbol;
      const halted = inst.status === "halted";
      const bid = inst.bids[0], ask = inst.asks[0];
      const dp = priceDp(sym);
      const spread = bid && ask ? fixed(subtract(ask.price, bid.price, dp), dp) : "—";
      const depth = Math.max(inst.bids.length, inst.asks.length, 1);
      const rows = [];
      for (let i = 0; i < Math.min(depth, 5); i++) {
        const b = inst.bids[i], a = inst.asks[i];
        rows.push(el("tr", {},
          el("td", { class: "num muted" }, b ? b.count : ""),
          el("td", { class: "num bidq" }, b ? fmtQty(b.qty, sym) : ""),
          el("td", { class: "num bidp", testid: b ? `bid-price-${sym}-${i}` : null }, b ? fmtPx(b.price, sym) : ""),
          el("td", { class: "num askp", testid: a ? `ask-price-${sym}-${i}` : null }, a ? fmtPx(a.price, sym) : ""),
          el("td", { class: "num askq" }, a ? fmtQty(a.qty, sym) : ""),
          el("td", { class: "num muted" }, a ? a.count : "")));
      }
      const canHalt = inst.status === "open" || inst.status === "call";
      const ind = inst.status === "call" ? state.indicative.get(sym) : undefined;
      const canResume = inst.status === "halted" || inst.status === "pre_open";
      return el("div", { class: `inst ${halted ? "halted" : ""}`, testid: `instrument-${sym}` },
        el("div", { class: "inst-head" },
          el("span", { class: "inst-sym" }, sym),
          el("span", { class: "inst-name", title: inst.name }, inst.name),
          pill(inst.status.replace("_", "-"), STATUS_KIND[inst.status] || "idle", `status-${sym}`),
          el("span", { class: "actions" },
            el("button", { type: "button", class: "btn btn-danger", testid: `halt-${sym}`, disabled: !canHalt,
              onclick: (e) => setInstrumentStatus(sym, "halted", e.currentTarget) }, "Halt"),
            el("button", { type: "button", class: "btn btn-ok", testid: `resume-${sym}`, disabled: !canResume,
              onclick: (e) => resumeInstrument(sym, e.currentTarget) }, inst.status === "pre_open" ? "Open" : "Resume"))),
        el("div", { class: "inst-stats" },
          el("div", { class: "stat" }, el("div", { class: "k" }, "Bid"), el("div", { class: "v buy", testid: `best-bid-${sym}` }, bid ? fmtPx(bid.price, sym) : "—")),
          el("div", { class: "stat" }, el("div", { class: "k" }, "Ask"), el("div", { class: "v sell", testid: `best-ask-${sym}` }, ask ? fmtPx(ask.price, sym) : "—")),
          el("div", { class: "stat" }, el("div", { class: "k" }, "Spread"), el("div", { class: "v" }, spread)),
          el("div", { class: "stat" }, el("div", { class: "k" }, "Last"), el("div", { class: "v", testid: `last-${sym}` }, inst.last_price ? fmtPx(inst.last_price, sym) : "—"))),
        inst.status === "call" ? el("div", { class: "small", testid: `indicative-${sym}` },
          el("span", { class: "muted" }, "call auction, indicative uncross: "),
          !ind || ind.price === null ? "nothing would execute"
            : `${ind.volume} at ${fmtPx(ind.price, sym)}` + (ind.imbalance_side ? `, ${ind.imbalance_side} surplus ${ind.imbalance_qty}` : "")) : "",
        referenceBlock(sym),
        el("div", { class: "charts" }, priceChart(sym), depthChart(inst)),
        el("table", { class: "tbl ladder", testid: `depth-${sym}` },
          el("thead", {}, el("tr", {}, el("th", { class: "num" }, "#"), el("th", { class: "num" }, "Bid qty"),
            el("th", { class: "num" }, "Bid"), el("th", { class: "num" }, "Ask"), el("th", { class: "num" }, "Ask qty"),
            el("th", { class: "num" }, "#"))),
          el("tbody", {}, rows)));
    });
    $("instruments").replaceChildren(...(cards.length ? cards : [el("div", { class: "muted" }, "No instruments listed.")]));
  }

  // ------------------------------------------------------------ charts (hand-written SVG, no library)

  const SVG_NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined) continue;
      if (key === "testid") node.setAttribute("data-testid", value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // a - b of two decimal strings with dp decimals, exact
  function subtract(a, b, dp) {
    const units = (t) => BigInt(fixed(t, dp).replace(".", "").replace("—", "0"));
    const d = units(a) - units(b);
    const neg = d < 0n;
    const str = (neg ? -d : d).toString().padStart(dp + 1, "0");
    return (neg ? "-" : "") + (dp ? `${str.slice(0, -dp)}.${str.slice(-dp)}` : str);
  }

  const utcClock = (ns) => `${fmtTime(ns).slice(0, 8)} UTC`;

  // Price (line) and volume (bars) of the instrument's recent trades, oldest left, with the NAV in
  // force as a dashed line; the y range always includes the NAV so the premium is visible.
  function priceChart(sym) {
    const W = 600, H = 170, top = 8, priceH = 112, volTop = 126, volH = 30, left = 64, right = 8;
    const trades = state.trades.filter((t) => t.symbol === sym && t.price !== null).slice(0, 120).reverse();
    const ref = state.reference.get(sym);
    const nav = ref && (ref.nav_in_force || ref.nav_per_note);
    const prices = trades.map((t) => Number(t.price));
    const bounds = prices.concat(nav ? [Number(nav)] : []);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", testid: `price-chart-${sym}`,
      "data-points": trades.length, role: "img", "aria-label": `${sym} price and volume, UTC` });
    root.append(svg("text", { x: left, y: H - 1, class: "axis" }, trades.length ? utcClock(trades[0].ts) : ""));
    root.append(svg("text", { x: W - right, y: H - 1, class: "axis", "text-anchor": "end" },
      trades.length ? utcClock(trades[trades.length - 1].ts) : "no trades yet"));
    if (!bounds.length) return root;
    let lo = Math.min(...bounds), hi = Math.max(...bounds);
    const pad = (hi - lo) * 0.08 || Math.max(Math.abs(hi) * 0.001, 1);
    lo -= pad; hi += pad;
    const y = (p) => top + priceH - ((p - lo) / (hi - lo)) * priceH;
    const x = (i) => left + (trades.length <= 1 ? (W - left - right) / 2 : (i * (W - left - right)) / (trades.length - 1));
    root.append(
      svg("line", { x1: left, x2: W - right, y1: top, y2: top, class: "grid" }),
      svg("line", { x1: left, x2: W - right, y1: top + priceH, y2: top + priceH, class: "grid" }),
      svg("text", { x: left - 4, y: top + 4, class: "axis", "text-anchor": "end" }, fixed(String(hi), priceDp(sym))),
      svg("text", { x: left - 4, y: top + priceH, class: "axis", "text-anchor": "end" }, fixed(String(lo), priceDp(sym))));
    if (nav) {
      const ny = y(Number(nav));
      root.append(svg("line", { x1: left, x2: W - right, y1: ny, y2: ny, class: "nav-line", testid: `nav-line-${sym}`,
        "data-nav": fmtPx(nav, sym) }),
      svg("text", { x: W - right - 2, y: ny - 3, class: "nav-label", "text-anchor": "end" }, `NAV ${fmtPx(nav, sym)}`));
    }
    if (trades.length) {
      const maxQty = Math.max(...trades.map((t) => Number(t.qty)), 1);
      const barW = Math.max(1, Math.min(8, (W - left - right) / trades.length - 1));
      root.append(...trades.map((t, i) => {
        const h = Math.max(1, (Number(t.qty) / maxQty) * volH);
        return svg("rect", { x: x(i) - barW / 2, y: volTop + volH - h, width: barW, height: h, class: "vol" });
      }));
      root.append(svg("polyline", { class: "price-line", testid: `price-line-${sym}`,
        points: trades.map((t, i) => `${x(i).toFixed(1)},${y(Number(t.price)).toFixed(1)}`).join(" ") }));
      const last = trades[trades.length - 1];
      root.append(svg("circle", { cx: x(trades.length - 1), cy: y(Number(last.price)), r: 2.5, class: "price-dot" }));
      root.append(svg("text", { x: left, y: volTop - 2, class: "axis" }, `volume (max ${fmtQty(String(maxQty), sym)})`));
    }
    return root;
  }

  // Cumulative depth: bids (green) stepping down from the best bid, asks (red) up from the best ask.
  function depthChart(inst) {
    const sym = inst.symbol, W = 600, H = 120, top = 6, h = 96, left = 64, right = 8;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", testid: `depth-chart-${sym}`,
      "data-levels": inst.bids.length + inst.asks.length, role: "img", "aria-label": `${sym} cumulative depth` });
    if (!inst.bids.length && !inst.asks.length) {
      root.append(svg("text", { x: W / 2, y: H / 2, class: "axis", "text-anchor": "middle" }, "empty book"));
      return root;
    }
    const cum = (levels) => { let c = 0; return levels.map((l) => [Number(l.price), (c += Number(l.qty))]); };
    const bids = cum(inst.bids), asks = cum(inst.asks);
    const all = bids.concat(asks);
    let lo = Math.min(...all.map((p) => p[0])), hi = Math.max(...all.map((p) => p[0]));
    const margin = (hi - lo) * 0.08 || Math.max(hi * 0.001, 1);
    lo -= margin; hi += margin;
    const maxQ = Math.max(...all.map((p) => p[1]));
    const x = (p) => left + ((p - lo) / (hi - lo)) * (W - left - right);
    const y = (q) => top + h - (q / maxQ) * h;
    // a step area from the best price outward to the chart's edge: up at each level, flat between
    const area = (pts, edge) => {
      if (!pts.length) return "";
      let d = `M${x(pts[0][0]).toFixed(1)},${y(0).toFixed(1)}`;
      pts.forEach(([p, q], i) => {
        if (i) d += ` L${x(p).toFixed(1)},${y(pts[i - 1][1]).toFixed(1)}`;
        d += ` L${x(p).toFixed(1)},${y(q).toFixed(1)}`;
      });
      return `${d} L${x(edge).toFixed(1)},${y(pts[pts.length - 1][1]).toFixed(1)} L${x(edge).toFixed(1)},${y(0).toFixed(1)} Z`;
    };
    const bidPath = area(bids, lo), askPath = area(asks, hi);
    root.append(
      svg("line", { x1: left, x2: W - right, y1: top + h, y2: top + h, class: "grid" }),
      svg("path", { d: bidPath, class: "depth-bid" }), svg("path", { d: askPath, class: "depth-ask" }),
      svg("text", { x: left - 4, y: top + 8, class: "axis", "text-anchor": "end" }, fmtQty(String(maxQ), sym)),
      svg("text", { x: left, y: H - 2, class: "axis" }, fixed(String(lo), priceDp(sym))),
      svg("text", { x: W - right, y: H - 2, class: "axis", "text-anchor": "end" }, fixed(String(hi), priceDp(sym))));
    const ref = state.reference.get(sym);
    const nav = ref && (ref.nav_in_force || ref.nav_per_note);
    if (nav && Number(nav) >= lo && Number(nav) <= hi) {
      root.append(svg("line", { x1: x(Number(nav)), x2: x(Number(nav)), y1: top, y2: top + h, class: "nav-line" }));
    }
    return root;
  }

  function renderTrades(flash = new Set()) {
    $("trades-meta").textContent = state.trades.length ? `last ${state.trades.length}` : "";
    const rows = state.trades.map((t) => el("tr", { testid: `trade-${t.trade_id}`, class: flash.has(t.trade_id) ? "flash" : null },
      el("td", { class: "mono", title: fmtTime(t.ts) }, fmtTime(t.ts).slice(0, 8)),
      el("td", { class: "mono" }, t.symbol),
      el("td", { class: t.aggressor === "buy" ? "buy" : "sell" }, t.aggressor.toUpperCase(),
        t.origin && t.origin !== "continuous" ? [" ", pill(t.origin.toUpperCase(), "idle", `trade-origin-${t.trade_id}`)]
          : null),
      el("td", { class: "num", testid: `trade-price-${t.trade_id}` }, fmtPx(t.price, t.symbol)),
      el("td", { class: "num", testid: `trade-qty-${t.trade_id}` }, fmtQty(t.qty, t.symbol)),
      el("td", { class: "num", testid: `trade-premium-${t.trade_id}` }, fmtBps(t.premium_bps)),
      el("td", {}, t.buyer),
      el("td", {}, t.seller),
      el("td", { class: "num muted" }, t.trade_id),
      el("td", {}, pill(t.settlement, SETTLE_KIND[t.settlement] || "idle", `trade-settlement-${t.trade_id}`))));
    replaceRows($("trades"), rows, 10, "No trades yet.");
    if (flash.size) renderInstruments(); // the price charts follow the tape
  }

  function participantAction(p, kind, button) {
    const id = encodeURIComponent(p.participant);
    const spec = {
      suspend: ["Suspend", `/console/api/participants/${id}/status`, { status: "suspended" }],
      activate: ["Activate", `/console/api/participants/${id}/status`, { status: "active" }],
      freeze: ["Freeze wallet of", `/console/api/participants/${id}/freeze`, { frozen: true }],
      unfreeze: ["Unfreeze wallet of", `/console/api/participants/${id}/freeze`, { frozen: false }],
    }[kind];
    return action(button, `${spec[0]} ${p.participant}`, async () => {
      const result = await api("POST", spec[1], spec[2]);
      await reloadParticipants();
      reloadAudit().catch(() => {});
      return result && result.tx_hash ? `tx ${result.tx_hash}` : "";
    });
  }

  function renderParticipants() {
    const list = state.participants;
    const eligible = list.filter((p) => p.eligible).length;
    $("participants-meta").textContent = `${list.length} participants · ${eligible} eligible`;
    const noteDp = commonDecimals("token_decimals"), cashDp = commonDecimals("cash_decimals");
    const rows = list.map((p) => {
      const id = p.participant;
      const active = p.status === "active";
      return el("tr", { testid: `participant-${id}` },
        el("td", { class: "mono" }, id),
        el("td", {}, p.name),
        el("td", {}, pill(p.status, active ? "ok" : "bad", `participant-status-${id}`)),
        el("td", {}, p.category),
        el("td", {}, p.jurisdiction),
        el("td", { class: "mono" }, fmtDate(p.kyc_expiry_ts)),
        el("td", { class: "mono", title: p.wallet || "" }, short(p.wallet, 8)),
        el("td", {}, p.verified ? pill("yes", "ok") : pill("no", "bad")),
        el("td", {}, p.frozen ? pill("frozen", "bad", `participant-frozen-${id}`) : pill("no", "idle", `participant-frozen-${id}`)),
        el("td", { class: "num" }, fmtUnits(p.note_balance, noteDp)),
        el("td", { class: "num" }, fmtUnits(p.cash_balance, cashDp)),
        el("td", { class: "num" }, fmtUnits(p.open_buy_reserved, cashDp)),
        el("td", { class: "num" }, fmtUnits(p.open_sell_reserved, noteDp)),
        el("td", { testid: `participant-eligibility-${id}` },
          p.eligible ? pill("eligible", "ok") : pill(p.reason || "ineligible", "bad")),
        el("td", {}, el("span", { class: "actions" },
          active
            ? el("button", { type: "button", class: "btn btn-danger", testid: `suspend-${id}`, onclick: (e) => participantAction(p, "suspend", e.currentTarget) }, "Suspend")
            : el("button", { type: "button", class: "btn btn-ok", testid: `activate-${id}`, onclick: (e) => participantAction(p, "activate", e.currentTarget) }, "Activate"),
          p.frozen
            ? el("button", { type: "button", class: "btn btn-ok", testid: `unfreeze-${id}`, disabled: !p.wallet, onclick: (e) => participantAction(p, "unfreeze", e.currentTarget) }, "Unfreeze")
            : el("button", { type: "button", class: "btn btn-danger", testid: `freeze-${id}`, disabled: !p.wallet, onclick: (e) => participantAction(p, "freeze", e.currentTarget) }, "Freeze"))));
    });
    replaceRows($("participants"), rows, 15, "No participants.");
  }

  function renderRejections() {
    const entries = Object.entries(state.rejectionCounts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const total = entries.reduce((s, [, n]) => s + n, 0);
    const max = entries.length ? entries[0][1] : 1;
    $("rejections-total").textContent = `${total} total`;
    replaceRows($("rejection-counts"), entries.map(([code, n]) => el("tr", { testid: `rejection-row-${code}` },
      el("td", { class: "mono" }, code),
      el("td", { class: "num", testid: `rejection-count-${code}` }, n),
      el("td", {}, el("div", { class: "bar", style: { width: `${Math.max(2, (100 * n) / max)}%` } })))), 3, "No rejections.");
    replaceRows($("rejections-recent"), state.recentRejections.map((r) => el("tr", {},
      el("td", { class: "mono", title: fmtTime(r.ts) }, fmtTime(r.ts).slice(0, 8)),
      el("td", {}, r.participant),
      el("td", { class: "mono" }, r.symbol),
      el("td", { class: "mono" }, r.code),
      el("td", { class: "wrap muted msg" }, r.message))), 5, "None.");
  }

  function renderSettlements(flash = new Set()) {
    $("settlement-counts").replaceChildren(...STATES.map((s) => el("div", { class: `tile ${s}` },
      el("div", { class: "k" }, s), el("div", { class: "v", testid: `settlement-count-${s}` }, state.settlementCounts[s] || 0))));
    const ordered = [...state.settlements.values()].sort((a, b) => b.trade_id - a.trade_id);
    const rows = ordered.slice(0, 200).map((n) => el("tr", { testid: `settlement-${n.trade_id}`, class: flash.has(n.trade_id) ? "flash" : null },
      el("td", { class: "num" }, n.trade_id),
      el("td", { class: "mono" }, n.symbol),
      el("td", {}, n.buyer),
      el("td", {}, n.seller),
      el("td", {}, pill(n.state, SETTLE_KIND[n.state] || "idle", `settlement-state-${n.trade_id}`)),
      el("td", { class: "mono", title: n.tx_hash || "", testid: `settlement-tx-${n.trade_id}` }, short(n.tx_hash, 12)),
      el("td", { class: "num" }, n.block ?? "—"),
      el("td", { class: "num", testid: `settlement-gas-${n.trade_id}` }, n.gas_used === null || n.gas_used === undefined ? "—" : fmtInt(n.gas_used)),
      el("td", { class: "wrap muted" }, n.reason || "")));
    replaceRows($("settlements"), rows, 9, "No settlements yet.");
  }

  function renderReconciliation() {
    const r = state.reconciliation;
    const node = $("reconciliation-status");
    if (!r || r.ts === null) { node.textContent = "never run"; node.className = "pill pill-idle"; }
    else if (r.ok) { node.textContent = "in balance"; node.className = "pill pill-ok"; }
    else { node.textContent = `${r.differences.length} differences`; node.className = "pill pill-bad"; }
    $("reconciliation-ts").textContent = r ? fmtDateTime(r.ts) : "—";
    $("reconciliation-diffs").replaceChildren(...(r ? r.differences.map((d) => el("li", {}, d)) : []));
  }

  function renderAudit() {
    const node = $("audit-chain");
    const ok = state.audit.chain_ok;
    node.textContent = ok === null ? "…" : ok ? "hash chain OK" : "hash chain BROKEN";
    node.className = `pill ${ok === null ? "pill-idle" : ok ? "pill-ok" : "pill-bad"}`;
    replaceRows($("audit"), state.audit.entries.map((e) => el("tr", { testid: `audit-${e.id}` },
      el("td", { class: "num" }, e.id),
      el("td", { class: "mono" }, fmtDateTime(e.ts)),
      el("td", {}, e.actor),
      el("td", { class: "mono" }, e.action),
      el("td", { class: "wrap mono small" }, e.details),
      el("td", { class: "mono muted", title: e.hash }, short(e.hash, 8)))), 6, "No audit entries.");
  }

  // ------------------------------------------------------------ register of holders, exports, anchors

  async function loadHolders() {
    const select = $("holders-symbol");
    const symbols = [...state.instruments.keys()].sort();
    if (select.options.length !== symbols.length) {
      const keep = select.value;
      select.replaceChildren(...symbols.map((s) => el("option", { value: s }, s)));
      if (symbols.includes(keep)) select.value = keep;
    }
    const sym = select.value;
    if (!sym || !state.session) return;
    try {
      renderHolders(await api("GET", `/console/api/holders/${encodeURIComponent(sym)}`));
    } catch (err) {
      const node = $("holders-status");
      node.textContent = err.code || "error";
      node.className = "pill pill-bad";
      $("holders-meta").textContent = err.message;
    }
  }

  function renderHolders(reg) {
    const node = $("holders-status");
    node.textContent = reg.reconciled ? "reconciled" : `${reg.flagged} flagged`;
    node.className = `pill ${reg.reconciled ? "pill-ok" : "pill-bad"}`;
    $("holders-meta").textContent = `positions from settled trades since block ${reg.baseline_block}, chain at block `
      + `${reg.head_block} · register total ${fmtQty(reg.total_expected, reg.symbol)} · on chain ${fmtQty(reg.total_chain, reg.symbol)}`;
    replaceRows($("holders"), reg.holders.map((h) => el("tr", { testid: `holder-${h.participant || h.wallet}`,
      class: h.flagged ? "flagged" : null },
      el("td", { class: "mono", title: h.wallet }, short(h.wallet, 10)),
      el("td", {}, h.participant || "—"),
      el("td", { class: "num" }, fmtQty(h.opening, reg.symbol)),
      el("td", { class: "num" }, fmtQty(h.settled, reg.symbol)),
      el("td", { class: "num" }, fmtQty(h.expected, reg.symbol)),
      el("td", { class: "num" }, fmtQty(h.chain, reg.symbol)),
      el("td", { class: "num", testid: `holder-diff-${h.participant || h.wallet}` }, fmtQty(h.difference, reg.symbol)),
      el("td", {}, h.flagged ? pill("difference", "bad") : pill("ok", "ok")))), 8, "No holders known.");
  }

  async function download(kind) {
    const day = $("export-date").value;
    const resp = await fetch(`/console/api/exports/${kind}?date=${encodeURIComponent(day)}`,
      { headers: { Authorization: `Bearer ${state.session.token}` } });
    if (!resp.ok) {
      const err = ((await resp.json().catch(() => ({}))).error) || {};
      throw new Error(`${err.code || resp.status}: ${err.message || resp.statusText}`);
    }
    const text = await resp.text();
    const url = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    const link = el("a", { href: url, download: `${kind}-${day}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    return `${Math.max(0, text.trim().split("\n").length - 1)} rows`;
  }

  async function loadAnchors() {
    if (!state.session) return;
    const node = $("audit-anchor"), detail = $("audit-anchor-detail");
    try {
      const v = await api("GET", "/console/api/audit/anchors");
      const newest = v.anchors.length ? v.anchors.reduce((a, b) => ((a.audit_id || 0) >= (b.audit_id || 0) ? a : b)) : null;
      node.textContent = v.ok ? "anchored, verified" : v.code === "ANCHOR_NONE" ? "not anchored yet" : v.code;
      node.className = `pill ${v.ok ? "pill-ok" : v.code === "ANCHOR_NONE" ? "pill-idle" : "pill-bad"}`;
      detail.textContent = newest && newest.tx_hash
        ? `entry #${newest.audit_id} in tx ${short(newest.tx_hash, 12)} (block ${newest.block}) · ${v.message}` : v.message;
    } catch (err) {
      node.textContent = err.code || "error";
      node.className = "pill pill-bad";
    }
  }

  function tickClock() {
    $("utc-clock").textContent = `${new Date().toISOString().slice(11, 19)} UTC`;
  }

  // ------------------------------------------------------------ wiring

  function init() {
    $("logout").addEventListener("click", () => logout(""));
    tickClock();
    setInterval(tickClock, 1000);
    $("export-date").value = new Date().toISOString().slice(0, 10);
    $("export-rts22").addEventListener("click", (e) => action(e.currentTarget, "RTS 22 export", () => download("rts22")));
    $("export-rts24").addEventListener("click", (e) => action(e.currentTarget, "RTS 24 export", () => download("rts24")));
    $("holders-symbol").addEventListener("change", () => loadHolders());
    $("reconcile-run").addEventListener("click", (e) => action(e.currentTarget, "Reconciliation", async () => {
      state.reconciliation = await api("POST", "/console/api/reconciliation/run");
      renderReconciliation();
      reloadAudit().catch(() => {});
    }));
    $("login-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      $("login-error").textContent = "";
      try {
        await loginWithTokenOrCode($("login-code").value);
        $("login-code").value = "";
        await start();
      } catch (err) {
        state.session = null;
        $("login-error").textContent = err.message;
      }
    });

    const hash = new URLSearchParams(location.hash.slice(1));
    const code = hash.get("code");
    if (code) history.replaceState(null, "", location.pathname + location.search); // the code is single-use
    const stored = sessionStorage.getItem(TOKEN_KEY);
    (async () => {
      try {
        if (code) await loginWithCode(code);
        else if (stored) { state.session = JSON.parse(stored); scheduleRefresh(); }
        if (state.session) await start();
        else showLogin("");
      } catch (err) {
        showLogin(err.message);
      }
    })();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
