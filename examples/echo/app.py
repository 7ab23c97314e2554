"""The echo example: a page to try `/ws/echo` and `/ws/json` (the seed handlers), and `/health`.

* ``/ws/echo`` sends every frame back as it came (text as text, bytes as bytes).
* ``/ws/json`` speaks JSON: ``{"type": "ping"}`` gets ``{"type": "pong"}``,
  ``{"type": "message", "text": ...}`` is echoed, anything else gets an
  ``{"type": "error", "detail": ...}`` reply; binary frames close the socket with 1003.
"""

from __future__ import annotations

from brillo.applications import Brillo
from brillo.requests import Request
from brillo.responses import HTMLResponse, JSONResponse
from brillo.routing import Route, WebSocketRoute
from examples.seed.echo import echo
from examples.seed.json_ping import json_ping

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>brillo echo example</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; }
  #log { border: 1px solid #ccc; height: 16rem; overflow-y: auto; padding: .5rem;
         font-family: ui-monospace, monospace; white-space: pre-wrap; }
  .out { color: #05a; } .in { color: #070; } .sys { color: #888; }
  form { display: flex; gap: .5rem; margin-top: .5rem; } input { flex: 1; }
</style>
</head>
<body>
<h1>brillo echo example</h1>
<p>
  <label><input type="radio" name="ep" value="/ws/echo" checked> echo</label>
  <label><input type="radio" name="ep" value="/ws/json"> JSON ping/pong</label>
  <button id="connect" type="button">Connect</button>
  <span id="state">disconnected</span>
</p>
<div id="log" aria-live="polite"></div>
<form id="send">
  <input id="text" autocomplete="off" placeholder='text, or for JSON: {"type": "ping"}'>
  <button type="submit">Send</button>
  <button id="ping" type="button">Ping</button>
</form>
<script>
"use strict";
let socket = null;
const $ = (id) => document.getElementById(id);
function log(kind, text) {
  const line = document.createElement("div");
  line.className = kind;
  line.textContent = (kind === "out" ? "> " : kind === "in" ? "< " : "# ") + text;
  $("log").appendChild(line);
  $("log").scrollTop = $("log").scrollHeight;
}
function endpoint() {
  return document.querySelector("input[name=ep]:checked").value;
}
function connect() {
  if (socket) socket.close(1000);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(scheme + "//" + location.host + endpoint());
  socket = ws;
  $("state").textContent = "connecting";
  ws.onopen = () => { $("state").textContent = "connected to " + endpoint(); log("sys", "open"); };
  ws.onmessage = (event) => log("in", event.data);
  ws.onclose = (event) => {
    if (socket === ws) { socket = null; $("state").textContent = "disconnected"; }
    log("sys", "closed " + event.code + (event.reason ? " " + event.reason : ""));
  };
}
function send(text) {
  if (!socket || socket.readyState !== WebSocket.OPEN) { log("sys", "not connected"); return; }
  socket.send(text);
  log("out", text);
}
$("connect").onclick = connect;
$("send").onsubmit = (event) => {
  event.preventDefault();
  const text = $("text").value;
  if (!text) return;
  if (endpoint() === "/ws/json" && !text.trim().startsWith("{")) {
    send(JSON.stringify({ type: "message", text: text }));
  } else {
    send(text);
  }
  $("text").value = "";
};
$("ping").onclick = () => send(JSON.stringify({ type: "ping" }));
</script>
</body>
</html>
"""


async def homepage(request: Request) -> HTMLResponse:
    """The page to try the WebSockets from a browser."""
    return HTMLResponse(PAGE)


async def health(request: Request) -> JSONResponse:
    """A liveness probe."""
    return JSONResponse({"status": "ok"})


app = Brillo(
    routes=[
        Route("/", homepage, name="home"),
        Route("/health", health, name="health"),
        WebSocketRoute("/ws/echo", echo, name="ws_echo"),
        WebSocketRoute("/ws/json", json_ping, name="ws_json"),
    ]
)
