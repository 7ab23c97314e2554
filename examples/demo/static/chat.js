// Chat page: messages, join/leave notices, presence, typing, replay of what was missed.
// The socket, reconnects, positions and presence come from brillo-channels.js.
import { connect } from "./live.js";

const list = document.getElementById("messages");
const presence = document.getElementById("presence");
const typing = document.getElementById("typing");
const input = document.getElementById("text");
const typers = new Map();    // user -> timer
let lastTyping = 0;

function add(li) {
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 5;
  list.appendChild(li);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function notice(text) {
  const li = document.createElement("li");
  li.className = "notice"; li.textContent = text; add(li);
}

function showMessage(line, position) {
  const li = document.createElement("li");
  li.dataset.pos = position;
  const user = document.createElement("span");
  user.className = "user"; user.textContent = line.user;
  const text = document.createElement("span");
  text.className = "text"; text.textContent = line.text;
  li.append(user, text);
  add(li);
  stopTyping(line.user);
}

function renderTyping() {
  const names = [...typers.keys()];
  typing.textContent = names.length ? names.join(", ") + (names.length > 1 ? " are" : " is") + " typing…" : "";
}
function stopTyping(user) {
  if (typers.has(user)) { clearTimeout(typers.get(user)); typers.delete(user); renderTyping(); }
}

const socket = connect();
const chat = socket.channel("chat:" + window.CHAT.room);
const typingRoom = socket.channel("typing:" + window.CHAT.room);

chat.on("chat", (line, message) => showMessage(line, message.position));
chat.addEventListener("presence", ({ detail }) => {
  const names = Object.keys(detail.presence).sort();
  presence.replaceChildren(...names.map((u) => {
    const li = document.createElement("li"); li.textContent = u; return li;
  }));
  const diff = detail.diff;  // a connection joined or left: say so when it was a user's first/last
  if (!diff || diff.user === window.CHAT.name) return;
  const present = diff.user in detail.presence;
  if (diff.event === "join" && detail.presence[diff.user].length === 1) notice(diff.user + " joined");
  if (diff.event === "leave" && !present) { notice(diff.user + " left"); stopTyping(diff.user); }
});
chat.addEventListener("resync", () => {
  list.replaceChildren(); notice("history reloaded"); chat.reset();
});
chat.addEventListener("error", ({ detail }) => notice("error: " + detail.message));
typingRoom.on("typing", ({ user }) => {
  clearTimeout(typers.get(user));
  typers.set(user, setTimeout(() => stopTyping(user), 3000));
  renderTyping();
});
socket.addEventListener("frame", ({ detail }) => {
  if (detail.type === "shutdown") notice("server restarting, reconnecting…");
});
socket.addEventListener("error", ({ detail }) => notice("error: " + detail.message));

chat.join().catch((error) => notice("cannot join: " + error.message));
typingRoom.join().catch(() => {});

document.getElementById("send").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  chat.push("message", { text }).then(
    () => { if (input.value.trim() === text) input.value = ""; lastTyping = 0; },
    (error) => notice("not sent: " + error.message),
  );
});
input.addEventListener("input", () => {
  const now = Date.now();
  if (now - lastTyping > 1000 && typingRoom.state === "joined") {
    lastTyping = now;
    typingRoom.push("typing").catch(() => {});
  }
});
