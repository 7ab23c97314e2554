// The one socket of a page: brillo's channel client, its state shown in the #status badge.
import { Socket } from "/brillo-channels.js";

export function connect() {
  const socket = new Socket("/ws");
  const status = document.getElementById("status");
  socket.addEventListener("state", ({ detail }) => {
    if (!status) return;
    const text = {
      open: "online",
      connecting: "connecting…",
      reconnecting: "reconnecting…",
      closed: "closed" + (detail.reason ? ": " + detail.reason : ""),
    }[detail.state] || detail.state;
    status.textContent = text;
    status.className = "status " + (detail.state === "open" ? "online" : "offline");
  });
  return socket;
}
