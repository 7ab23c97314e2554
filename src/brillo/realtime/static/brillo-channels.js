// brillo-channels.js: the browser client of brillo's channel protocol (docs/channels.md).
//
// One ES module, no dependencies, no build step. One Socket carries many rooms:
//
//   import { Socket } from "/brillo-channels.js";
//   const socket = new Socket("/ws");
//   socket.addEventListener("state", (e) => console.log(e.detail.state));
//   const lobby = socket.channel("chat:lobby");
//   lobby.on("said", (payload) => show(payload));
//   await lobby.join();
//   const reply = await lobby.push("say", { text: "hi" });   // rejects on error or timeout
//
// The socket reconnects by itself (exponential backoff with jitter), rejoins every room from the
// last position it saw (the server sends what was missed; nothing is shown twice), keeps each
// room's presence from the server's diffs, and answers the server's heartbeat pings.

const PROTOCOL = "brillo.channels.v1";

const DEFAULTS = {
  protocols: [PROTOCOL],
  minDelay: 250,        // ms before the first reconnect attempt (on average)
  maxDelay: 10000,      // ms, the cap of the exponential backoff
  timeout: 10000,       // ms a push or join waits for its reply
  heartbeat: 25000,     // ms of silence before the client pings; twice that and it reconnects
  fatalCodes: [1008],   // close codes after which it does not reconnect (policy: not allowed)
  WebSocket: globalThis.WebSocket,
  random: Math.random,
};

/** An error reply from the server, or a local failure ("timeout", "disconnected", "closed"). */
export class ChannelError extends Error {
  constructor(code, message, room = null) {
    super(`${code}: ${message}`);
    this.name = "ChannelError";
    this.code = code;
    this.room = room;
  }
}

function parsePosition(value) {
  if (typeof value !== "string") return null;
  const at = value.lastIndexOf(":");
  const offset = Number(value.slice(at + 1));
  if (at <= 0 || !Number.isInteger(offset) || offset < 0) return null;
  return { epoch: value.slice(0, at), offset };
}

function absoluteURL(url) {
  const resolved = new URL(url, globalThis.location ? globalThis.location.href : undefined);
  if (resolved.protocol === "http:") resolved.protocol = "ws:";
  if (resolved.protocol === "https:") resolved.protocol = "wss:";
  return resolved.href;
}

/** One WebSocket to a brillo channels endpoint, carrying any number of rooms. */
export class Socket extends EventTarget {
  constructor(url, options = {}) {
    super();
    this.url = url;                         // a string, or a function returning one
    this.options = { ...DEFAULTS, ...options };
    this.state = "idle";
    this.channels = new Map();              // room -> Channel
    this._ws = null;
    this._ref = 0;
    this._pending = new Map();              // ref -> {resolve, reject, timer, sent, channel}
    this._attempt = 0;
    this._retryTimer = null;
    this._heartbeatTimer = null;
    this._heard = 0;                        // when the server was last heard from
    this._pinged = false;
  }

  /** Open the connection (done by the first join too). */
  connect() {
    if (this.state === "open" || this.state === "connecting") return this;
    clearTimeout(this._retryTimer);
    this._setState(this._attempt ? "reconnecting" : "connecting");
    const url = typeof this.url === "function" ? this.url() : this.url;
    const ws = new this.options.WebSocket(absoluteURL(url), this.options.protocols);
    this._ws = ws;
    ws.onopen = () => this._opened(ws);
    ws.onmessage = (event) => this._received(ws, event.data);
    ws.onclose = (event) => this._closed(ws, event.code, event.reason);
    ws.onerror = () => {};                  // a close event follows
    return this;
  }

  /** Close for good: no reconnect; pending pushes are rejected. */
  close(code = 1000, reason = "") {
    clearTimeout(this._retryTimer);
    const ws = this._ws;
    this._ws = null;
    this._stopHeartbeat();
    this._failPending("closed", "the socket was closed", () => true);
    for (const channel of this.channels.values()) channel._disconnected();
    this._setState("closed", { code, reason });
    if (ws && ws.readyState <= 1) ws.close(code, reason);
  }

  /** The Channel for `room` (created on first use; join it with channel.join()). */
  channel(room, payload = null) {
    let channel = this.channels.get(room);
    if (!channel) {
      channel = new Channel(this, room, payload);
      this.channels.set(room, channel);
    }
    return channel;
  }

  get connected() {
    return this.state === "open";
  }

  // -- internals ---------------------------------------------------------------------------

  _setState(state, extra = {}) {
    if (state === this.state && !extra.delay) return;
    const previous = this.state;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, previous, ...extra } }));
  }

  _nextRef() {
    this._ref += 1;
    return String(this._ref);
  }

  _send(frame) {
    if (this.state !== "open" || !this._ws) return false;
    this._ws.send(JSON.stringify(frame));
    return true;
  }

  // Send `frame` now (or later, when `send` is false) and settle with the reply frame:
  // rejected on an error reply, on timeout, or when the socket is lost after sending it.
  _request(channel, frame, timeout, send = true) {
    return new Promise((resolve, reject) => {
      const ref = frame.ref;
      const timer = setTimeout(() => {
        this._pending.delete(ref);
        reject(new ChannelError("timeout", `no reply within ${timeout} ms`, channel.room));
      }, timeout);
      const entry = { resolve, reject, timer, channel, frame, sent: false };
      this._pending.set(ref, entry);
      if (send) entry.sent = this._send(frame);
    });
  }

  _failPending(code, message, which) {
    for (const [ref, entry] of this._pending) {
      if (!which(entry)) continue;
      this._pending.delete(ref);
      clearTimeout(entry.timer);
      entry.reject(new ChannelError(code, message, entry.channel.room));
    }
  }

  _opened(ws) {
    if (ws !== this._ws) return;
    this._heard = Date.now();
    this._pinged = false;
    this._setState("open");
    this._startHeartbeat();
    for (const channel of this.channels.values()) channel._rejoin();
  }

  _received(ws, data) {
    if (ws !== this._ws) return;
    this._heard = Date.now();
    this._pinged = false;
    this._attempt = 0;                      // the server talks: the next loss starts over
    let frame;
    try {
      frame = JSON.parse(data);
    } catch (error) {
      console.warn("brillo-channels: a frame that is not JSON", data);
      return;
    }
    switch (frame.type) {
      case "ping":
        this._send({ type: "pong" });
        return;
      case "pong":
        return;
      case "reply": {
        const entry = this._pending.get(frame.ref);
        if (!entry) return;                 // timed out already
        this._pending.delete(frame.ref);
        clearTimeout(entry.timer);
        if (frame.error) {
          entry.reject(new ChannelError(frame.error.code, frame.error.message, frame.room));
        } else {
          entry.resolve(frame);
        }
        return;
      }
      case "error":
        this.dispatchEvent(new CustomEvent("error", { detail: frame.error }));
        if (frame.room && this.channels.has(frame.room)) this.channels.get(frame.room)._error(frame.error);
        return;
      default: {
        const channel = frame.room ? this.channels.get(frame.room) : null;
        if (channel) channel._frame(frame);
        else this.dispatchEvent(new CustomEvent("frame", { detail: frame }));
      }
    }
  }

  _closed(ws, code, reason) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._stopHeartbeat();
    // A request that went out on this socket will get no reply: tell its caller now.
    this._failPending("disconnected", "the connection was lost before the reply", (e) => e.sent);
    for (const channel of this.channels.values()) channel._disconnected();
    if (this.options.fatalCodes.includes(code)) {
      this._failPending("closed", reason || `closed with ${code}`, () => true);
      this._setState("closed", { code, reason });
      return;
    }
    const { minDelay, maxDelay, random } = this.options;
    const ceiling = Math.min(maxDelay, minDelay * 2 ** this._attempt);
    const delay = Math.round(ceiling / 2 + random() * (ceiling / 2));   // equal jitter
    this._attempt += 1;
    this._setState("reconnecting", { code, reason, delay });
    this._retryTimer = setTimeout(() => this.connect(), delay);
  }

  _startHeartbeat() {
    const every = this.options.heartbeat;
    if (!every) return;
    this._heartbeatTimer = setInterval(() => {
      const silent = Date.now() - this._heard;
      if (silent >= 2 * every) {
        const ws = this._ws;
        this._closed(ws, 4000, "heartbeat timeout");   // reconnect now; the old socket is dropped
        if (ws) ws.close(4000, "heartbeat timeout");
      } else if (silent >= every && !this._pinged) {
        this._pinged = true;
        this._send({ type: "ping" });
      }
    }, Math.max(50, every / 4));
  }

  _stopHeartbeat() {
    clearInterval(this._heartbeatTimer);
    this._heartbeatTimer = null;
  }
}

/** One room on a Socket: join, push, events, presence, position. */
export class Channel extends EventTarget {
  constructor(socket, room, payload) {
    super();
    this.socket = socket;
    this.room = room;
    this.payload = payload;                 // sent with every (re)join
    this.state = "closed";                  // closed | joining | joined | errored
    this.position = null;                   // "epoch:offset" of the last message seen
    this._position = null;
    this._wanted = false;                   // the app wants to be in the room
    this._joins = [];                       // [resolve, reject] of join() calls not settled
    this._buffer = [];                      // pushes waiting for the room to be joined
    this._presence = new Map();             // user -> Map(connection -> meta)
    this._pendingDiffs = null;              // diffs between a join and its presence_state
    this._handlers = new Map();             // event -> Set(callback)
  }

  /** Join the room; resolves with the join reply's payload (rejects when refused). */
  join(payload = this.payload) {
    this.payload = payload;
    this._wanted = true;
    const settled = new Promise((resolve, reject) => this._joins.push([resolve, reject]));
    if (this.state === "joined") {
      this._settleJoins(null, this._lastReply);
    } else if (this.state !== "joining") {
      if (this.socket.state === "idle" || this.socket.state === "closed") this.socket.connect();
      else if (this.socket.connected) this._sendJoin();
    }
    return settled;
  }

  /** Forget the position and join again: the server's replay instead of what was missed. */
  async reset() {
    if (this.state === "joined") await this.leave().catch(() => {});
    this._setPosition(null);
    return this.join();
  }

  /** Push `event`; resolves with the reply's payload, rejects on an error reply or timeout. */
  push(event, payload = null, { timeout = this.socket.options.timeout } = {}) {
    const frame = { type: "push", ref: this.socket._nextRef(), room: this.room, event };
    if (payload !== null && payload !== undefined) frame.payload = payload;
    const now = this.state === "joined" && this.socket.connected;
    if (!now) this._buffer.push(frame.ref);   // sent once the room is (re)joined
    return this.socket._request(this, frame, timeout, now).then((reply) => reply.payload);
  }

  /** Leave the room; it is not rejoined after a reconnect. */
  leave({ timeout = this.socket.options.timeout } = {}) {
    this._wanted = false;
    const wasJoined = this.state === "joined";
    this._setState("closed");
    this._presence = new Map();
    if (!wasJoined || !this.socket.connected) return Promise.resolve(null);
    const frame = { type: "leave", ref: this.socket._nextRef(), room: this.room };
    return this.socket._request(this, frame, timeout).then((reply) => reply.payload);
  }

  /** Call `callback(payload, message)` for every `event` broadcast to the room; returns an
   * unsubscribe function. `"*"` gets every event. */
  on(event, callback) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(callback);
    return () => this._handlers.get(event).delete(callback);
  }

  /** Who is here: { user: [{ connection, meta }] }, kept in sync from the server's diffs. */
  get presence() {
    const out = {};
    for (const [user, connections] of this._presence) {
      out[user] = [...connections].map(([connection, meta]) => ({ connection, meta }));
    }
    return out;
  }

  // -- internals ---------------------------------------------------------------------------

  _setState(state) {
    if (state === this.state) return;
    const previous = this.state;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, previous } }));
  }

  _setPosition(pair) {
    this._position = pair;
    this.position = pair ? `${pair.epoch}:${pair.offset}` : null;
  }

  _advance(pair) {
    const last = this._position;
    if (!last || last.epoch !== pair.epoch || pair.offset > last.offset) this._setPosition(pair);
  }

  _sendJoin() {
    const socket = this.socket;
    const frame = { type: "join", ref: socket._nextRef(), room: this.room };
    if (this.payload !== null && this.payload !== undefined) frame.payload = this.payload;
    if (this.position) frame.since = this.position;
    const rejoin = this._lastReply !== undefined;
    this._pendingDiffs = [];
    this._setState("joining");
    socket._request(this, frame, socket.options.timeout).then(
      (reply) => this._joined(reply, rejoin),
      (error) => this._joinFailed(error),
    );
  }

  _joined(reply, rejoin) {
    if (!this._wanted) return;
    const pair = parsePosition(reply.position);
    if (pair) this._advance(pair);
    this._lastReply = reply.payload;
    this._setState("joined");
    this.dispatchEvent(new CustomEvent("joined", { detail: { payload: reply.payload, rejoin } }));
    this._settleJoins(null, reply.payload);
    const buffered = this._buffer;
    this._buffer = [];
    for (const ref of buffered) {
      const entry = this.socket._pending.get(ref);
      if (entry && !entry.sent) entry.sent = this.socket._send(entry.frame);
    }
  }

  _joinFailed(error) {
    if (error.code === "disconnected" || error.code === "timeout") {
      if (this.state === "joining") this._setState("closed");
      if (error.code === "timeout" && this._wanted && this.socket.connected) this._sendJoin();
      return;                               // a reconnect rejoins
    }
    this._wanted = false;
    this._setState("errored");
    this._error({ code: error.code, message: error.message });
    this._settleJoins(error);
    this.socket._failPending(error.code, "the room could not be joined", (e) => e.channel === this && !e.sent);
    this._buffer = [];
  }

  _settleJoins(error, payload) {
    const joins = this._joins;
    this._joins = [];
    for (const [resolve, reject] of joins) error ? reject(error) : resolve(payload);
  }

  _rejoin() {
    if (this._wanted && this.state !== "joining") this._sendJoin();
  }

  _disconnected() {
    this._presence = new Map();
    this._pendingDiffs = null;
    if (this.state === "joined" || this.state === "joining") this._setState("closed");
  }

  _error(error) {
    this.dispatchEvent(new CustomEvent("error", { detail: error }));
  }

  _emit(event, payload, message) {
    for (const key of [event, "*"]) {
      const handlers = this._handlers.get(key);
      if (handlers) for (const callback of [...handlers]) callback(payload, message);
    }
    this.dispatchEvent(new CustomEvent("message", { detail: message }));
  }

  _applyDiff(frame) {
    const connections = this._presence.get(frame.user) || new Map();
    if (frame.event === "join") {
      connections.set(frame.connection, frame.meta || {});
      this._presence.set(frame.user, connections);
    } else {
      connections.delete(frame.connection);
      if (!connections.size) this._presence.delete(frame.user);
    }
  }

  _frame(frame) {
    switch (frame.type) {
      case "message": {
        const pair = parsePosition(frame.position);
        if (pair) {
          const last = this._position;
          if (last && last.epoch === pair.epoch && pair.offset <= last.offset) return;  // seen
          this._advance(pair);
        }
        const data = frame.data;
        const hasEvent = data !== null && typeof data === "object" && "event" in data;
        const event = hasEvent ? data.event : "message";
        const payload = hasEvent ? data.payload : data;
        this._emit(event, payload, { room: this.room, event, payload, position: frame.position });
        return;
      }
      case "presence_state": {
        this._presence = new Map();
        for (const [user, entries] of Object.entries(frame.presence || {})) {
          this._presence.set(user, new Map(entries.map((e) => [e.connection, e.meta || {}])));
        }
        for (const diff of this._pendingDiffs || []) this._applyDiff(diff);
        this._pendingDiffs = null;
        this.dispatchEvent(new CustomEvent("presence", { detail: { presence: this.presence, diff: null } }));
        return;
      }
      case "presence": {
        if (this._pendingDiffs) this._pendingDiffs.push(frame);
        this._applyDiff(frame);
        this.dispatchEvent(new CustomEvent("presence", { detail: { presence: this.presence, diff: frame } }));
        return;
      }
      case "resync": {
        this._setPosition(parsePosition(frame.position));
        this.dispatchEvent(new CustomEvent("resync", { detail: { position: frame.position } }));
        return;
      }
      default:
        this.dispatchEvent(new CustomEvent("frame", { detail: frame }));
    }
  }
}

export default Socket;
