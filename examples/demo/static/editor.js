// Collaborative editor: local edits become operations; the server orders and transforms them.
"use strict";

(() => {
  const area = document.getElementById("editor");
  const versionEl = document.getElementById("version");
  let client = null, clientId = null, text = "", seq = 0;

  function show(newText, op) {
    // Keep the caret where the user had it, moved past what others inserted before it.
    const start = OT.transformIndex(area.selectionStart, op);
    const end = OT.transformIndex(area.selectionEnd, op);
    area.value = newText;
    area.setSelectionRange(start, end);
  }

  const socket = liveSocket("/ws/doc/" + encodeURIComponent(window.DOC.id), {
    open() { area.disabled = true; },
    message(msg) {
      if (msg.type === "message") msg = msg.data;  // broadcasts come wrapped by the hub
      switch (msg.type) {
        case "doc":
          clientId = msg.client_id; text = msg.text; area.value = text; area.disabled = false;
          client = new OT.Client(msg.version, (version, op) => socket.send({ type: "edit", version, op, seq: ++seq }));
          versionEl.textContent = msg.version;
          break;
        case "op":
          if (!client || msg.version <= client.version) break;  // already in our snapshot
          if (msg.client_id === clientId) client.ack(msg.version);
          else {
            const op = client.remote(msg.version, msg.op);
            text = OT.apply(text, op);
            show(text, op);
          }
          versionEl.textContent = msg.version;
          break;
        case "error": console.warn("server:", msg.detail); break;
      }
    },
    close() { area.disabled = true; client = null; },
  });

  // For tests and the curious: the text, the version and whether an edit is still in flight.
  window.editorState = () => ({
    text, version: client ? client.version : null,
    synced: client !== null && client.pending === null && client.buffer === null,
  });

  area.addEventListener("input", () => {
    if (!client || area.value === text) return;
    const op = OT.diff(text, area.value);
    text = area.value;
    client.local(op);
  });
})();
