// Collaborative editor: local edits become operations; the server orders and transforms them.
import { connect } from "./live.js";

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

const socket = connect();
const doc = socket.channel("doc:" + window.DOC.id);

function load(snapshot) {
  clientId = snapshot.client_id; text = snapshot.text; area.value = text; area.disabled = false;
  client = new OT.Client(snapshot.version, (version, op) => {
    doc.push("edit", { version, op, seq: ++seq }).catch((error) => console.warn("server:", error.message));
  });
  versionEl.textContent = snapshot.version;
}

doc.addEventListener("joined", ({ detail }) => load(detail.payload));   // first join and rejoins
doc.on("doc", (snapshot) => load(snapshot));   // a fresh copy after an edit that did not fit
doc.on("op", (msg) => {
  if (!client || msg.version <= client.version) return;  // already in our snapshot
  if (msg.client_id === clientId) client.ack(msg.version);
  else {
    const op = client.remote(msg.version, msg.op);
    text = OT.apply(text, op);
    show(text, op);
  }
  versionEl.textContent = msg.version;
});
socket.addEventListener("state", ({ detail }) => {
  if (detail.state !== "open") { area.disabled = true; client = null; }
});
doc.join().catch((error) => console.warn("cannot open the document:", error.message));

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
