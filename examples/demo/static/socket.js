// A WebSocket that reconnects by itself with capped exponential back-off, and shows its state.
"use strict";

function liveSocket(path, handlers) {
  const statusEl = document.getElementById("status");
  let delay = 250, ws = null, stopped = false;

  function setStatus(online, text) {
    if (!statusEl) return;
    statusEl.textContent = text;
    statusEl.className = "status " + (online ? "online" : "offline");
  }

  function open() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = handlers.query ? handlers.query() : "";
    ws = new WebSocket(scheme + "//" + location.host + path + (query ? "?" + query : ""));
    ws.onopen = () => { delay = 250; setStatus(true, "online"); if (handlers.open) handlers.open(); };
    ws.onmessage = (event) => {
      let data;
      try { data = JSON.parse(event.data); } catch (e) { console.warn("not JSON", event.data); return; }
      handlers.message(data);
    };
    ws.onclose = (event) => {
      if (handlers.close) handlers.close(event);
      if (stopped || event.code === 1008) { setStatus(false, "closed: " + (event.reason || event.code)); return; }
      setStatus(false, "reconnecting…");
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 5000);
    };
  }

  open();
  return {
    send(obj) { if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify(obj)); return true; } return false; },
    close() { stopped = true; if (ws) ws.close(1000); },
  };
}
