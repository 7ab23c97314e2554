// Chat page: messages, join/leave notices, presence, typing, replay of what was missed.
"use strict";

(() => {
  const list = document.getElementById("messages");
  const presence = document.getElementById("presence");
  const typing = document.getElementById("typing");
  const input = document.getElementById("text");
  const seen = new Set();      // "epoch:offset" of every message shown: replays never duplicate
  let last = null;             // "epoch:offset" of the newest message seen
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

  function showMessage(position, data) {
    if (seen.has(position)) return;
    seen.add(position);
    last = position;
    const li = document.createElement("li");
    li.dataset.pos = position;
    const user = document.createElement("span");
    user.className = "user"; user.textContent = data.user;
    const text = document.createElement("span");
    text.className = "text"; text.textContent = data.text;
    li.append(user, text);
    add(li);
    stopTyping(data.user);
  }

  // user -> Set of connection ids: a user with two tabs stays present until both are gone.
  let present = new Map();
  function showPresence() {
    const names = [...present.keys()].sort();
    presence.replaceChildren(...names.map((u) => {
      const li = document.createElement("li"); li.textContent = u; return li;
    }));
  }

  function renderTyping() {
    const names = [...typers.keys()];
    typing.textContent = names.length ? names.join(", ") + (names.length > 1 ? " are" : " is") + " typing…" : "";
  }
  function stopTyping(user) {
    if (typers.has(user)) { clearTimeout(typers.get(user)); typers.delete(user); renderTyping(); }
  }

  const room = window.CHAT.room;
  const socket = liveSocket("/ws/chat/" + encodeURIComponent(room), {
    query: () => last ? "since=" + encodeURIComponent(last) : "",
    message(msg) {
      switch (msg.type) {
        case "message":
          if (msg.data.kind === "chat") showMessage(msg.position, msg.data);
          else if (msg.data.kind === "typing" && msg.data.user !== window.CHAT.name) {
            clearTimeout(typers.get(msg.data.user));
            typers.set(msg.data.user, setTimeout(() => stopTyping(msg.data.user), 3000));
            renderTyping();
          }
          break;
        case "roster":
          present = new Map(Object.entries(msg.users).map(([u, conns]) => [u, new Set(conns)]));
          showPresence();
          break;
        case "presence": {
          if (msg.room !== room) break;
          const conns = present.get(msg.user) || new Set();
          if (msg.event === "join") {
            if (!conns.size && msg.user !== window.CHAT.name) notice(msg.user + " joined");
            conns.add(msg.connection); present.set(msg.user, conns);
          } else {
            conns.delete(msg.connection);
            if (!conns.size) { present.delete(msg.user); notice(msg.user + " left"); stopTyping(msg.user); }
          }
          showPresence();
          break;
        }
        case "resync": seen.clear(); last = null; list.replaceChildren(); notice("history reloaded"); break;
        case "shutdown": notice("server restarting, reconnecting…"); break;
        case "error": notice("error: " + msg.detail); break;
      }
    },
  });

  document.getElementById("send").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (text && socket.send({ type: "message", text })) { input.value = ""; lastTyping = 0; }
  });
  input.addEventListener("input", () => {
    const now = Date.now();
    if (now - lastTyping > 1000) { lastTyping = now; socket.send({ type: "typing" }); }
  });
})();
