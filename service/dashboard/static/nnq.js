/* Shared helpers of the dashboard pages: the JSON API (with the token for changes),
   polling, and building DOM from data with textContent only. */
"use strict";

const NNQ = (() => {
  const API = document.body.dataset.api;
  const ROOT = document.body.dataset.root || "";
  const POLL_MS = 2000;
  const TOKEN_KEY = "nnq-api-token";
  const UNAUTHORIZED = 401;
  const MS_PER_SECOND = 1000;
  const SECONDS_PER_MINUTE = 60;
  const SECONDS_PER_HOUR = 3600;
  const PERCENT = 100;
  const SIGNIFICANT = 4;
  const MISSING = "—";
  const LIVE = new Set(document.body.dataset.live.split(",")); // statuses that may still change

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function parse(response) {
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const message = body && body.error ? body.error.message : response.statusText;
      throw new ApiError(response.status, message);
    }
    return body;
  }

  /** GET an API path (relative to /api/v1); rejects with ApiError on 4xx/5xx. */
  async function get(path) {
    return parse(await fetch(API + path, {headers: {Accept: "application/json"}}));
  }

  /** GET, but a 404 (no such resource, or an endpoint this build lacks) gives null. */
  async function optional(path) {
    try {
      return await get(path);
    } catch (err) {
      if (err.status === 404) return null;
      throw err;
    }
  }

  /** POST/PUT with a JSON or FormData body. On a 401 the token is asked for once and kept
      for this tab only (sessionStorage), then the request is repeated. */
  async function send(method, path, body) {
    const attempt = () => {
      const headers = {Accept: "application/json"};
      const token = sessionStorage.getItem(TOKEN_KEY);
      if (token) headers.Authorization = `Bearer ${token}`;
      let payload = body;
      if (body !== undefined && !(body instanceof FormData)) {
        headers["Content-Type"] = "application/json";
        payload = JSON.stringify(body);
      }
      return fetch(API + path, {method, headers, body: payload});
    };
    let response = await attempt();
    if (response.status === UNAUTHORIZED) {
      const token = window.prompt("The service needs its API token (NNQ_API_TOKEN) for this:");
      if (token) {
        sessionStorage.setItem(TOKEN_KEY, token.trim());
        response = await attempt();
      }
    }
    return parse(response);
  }

  /** Run fn now and again every POLL_MS for as long as it resolves to true. */
  function poll(fn) {
    const tick = async () => {
      let again = true;
      try {
        again = await fn();
      } catch (err) {
        console.warn("refresh failed:", err);
      }
      if (again) window.setTimeout(tick, POLL_MS);
    };
    tick();
  }

  /** A new element whose text is set as text, never parsed as HTML. */
  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function page(path) {
    return ROOT + path;
  }

  function link(path, text) {
    const anchor = el("a", text);
    anchor.href = page(path);
    return anchor;
  }

  /** A table row of cells; each value is text or a Node. */
  function row(values) {
    const tr = document.createElement("tr");
    for (const value of values) {
      const td = document.createElement("td");
      if (value instanceof Node) td.append(value);
      else td.textContent = value === null || value === undefined ? MISSING : String(value);
      tr.append(td);
    }
    return tr;
  }

  function accuracy(value) {
    return value === null || value === undefined ? MISSING : `${(PERCENT * value).toFixed(1)} %`;
  }

  function number(value) {
    if (value === null || value === undefined) return MISSING;
    if (typeof value === "number" && !Number.isInteger(value)) {
      return String(Number(value.toPrecision(SIGNIFICANT)));
    }
    return String(value);
  }

  function when(iso) {
    if (!iso) return MISSING;
    return iso.replace("T", " ").replace(/\.\d+/, "").replace(/(Z|\+00:00)$/, " UTC");
  }

  /** "1h 02m", "3m 05s" or "12s" between two ISO times (the second defaults to now). */
  function duration(startIso, endIso) {
    if (!startIso) return MISSING;
    const end = endIso ? Date.parse(endIso) : Date.now();
    const total = Math.max(0, Math.floor((end - Date.parse(startIso)) / MS_PER_SECOND));
    const hours = Math.floor(total / SECONDS_PER_HOUR);
    const minutes = Math.floor((total % SECONDS_PER_HOUR) / SECONDS_PER_MINUTE);
    const seconds = total % SECONDS_PER_MINUTE;
    const two = (n) => String(n).padStart(2, "0");
    if (hours) return `${hours}h ${two(minutes)}m`;
    if (minutes) return `${minutes}m ${two(seconds)}s`;
    return `${seconds}s`;
  }

  /** Show a status word on a status badge (text and colour class). */
  function setStatus(node, word) {
    node.textContent = word;
    node.className = `status status-${word}`;
  }

  return {ApiError, LIVE, accuracy, duration, el, get, link, number, optional, page, poll,
          row, send, setStatus, when};
})();
