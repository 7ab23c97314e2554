// Types of brillo-channels.js, the browser client of brillo's channel protocol.

/** "epoch:offset" of a room message. */
export type Position = string;

/** The socket's connection state. */
export type SocketState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/** A room's state on this socket. */
export type ChannelState = "closed" | "joining" | "joined" | "errored";

export interface SocketOptions {
  /** Subprotocols offered (default ["brillo.channels.v1"]). */
  protocols?: string[];
  /** Milliseconds before the first reconnect attempt, on average (default 250). */
  minDelay?: number;
  /** Cap of the exponential backoff in milliseconds (default 10000). */
  maxDelay?: number;
  /** Milliseconds a join or push waits for its reply (default 10000). */
  timeout?: number;
  /** Milliseconds of silence before the client pings; twice that and it reconnects (0: off). */
  heartbeat?: number;
  /** Close codes after which the socket does not reconnect (default [1008]). */
  fatalCodes?: number[];
  /** The WebSocket class to use (default globalThis.WebSocket). */
  WebSocket?: typeof WebSocket;
  /** Source of randomness for the jitter (default Math.random). */
  random?: () => number;
}

export interface StateDetail {
  state: SocketState;
  previous: SocketState;
  /** The close code that caused a reconnect or the end. */
  code?: number;
  reason?: string;
  /** Milliseconds until the next attempt (state "reconnecting"). */
  delay?: number;
}

export interface ErrorDetail {
  code: string;
  message: string;
}

/** A message broadcast to a room. */
export interface Message<P = unknown> {
  room: string;
  event: string;
  payload: P;
  /** null for a message sent to this connection only. */
  position: Position | null;
}

export interface PresenceEntry {
  connection: string;
  meta: Record<string, unknown>;
}

/** user -> that user's connections in the room. */
export type Presence = Record<string, PresenceEntry[]>;

export interface PresenceDiff {
  type: "presence";
  event: "join" | "leave";
  room: string;
  user: string;
  connection: string;
  meta: Record<string, unknown>;
  expired: boolean;
}

/** An error reply, or a local failure: code "timeout", "disconnected" or "closed". */
export class ChannelError extends Error {
  readonly code: string;
  readonly room: string | null;
  constructor(code: string, message: string, room?: string | null);
}

export interface SocketEventMap {
  state: CustomEvent<StateDetail>;
  error: CustomEvent<ErrorDetail>;
  /** A frame for no known room (an app's own shutdown notice, say). */
  frame: CustomEvent<Record<string, unknown>>;
}

export class Socket extends EventTarget {
  constructor(url: string | (() => string), options?: SocketOptions);
  readonly url: string | (() => string);
  readonly options: Required<SocketOptions>;
  readonly state: SocketState;
  readonly connected: boolean;
  readonly channels: Map<string, Channel>;
  /** Open the connection (the first join does it too). */
  connect(): this;
  /** Close for good: no reconnect; pending pushes are rejected with code "closed". */
  close(code?: number, reason?: string): void;
  /** The Channel of `room`, created on first use. */
  channel(room: string, payload?: unknown): Channel;
  addEventListener<K extends keyof SocketEventMap>(
    type: K,
    listener: (event: SocketEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options?: boolean | AddEventListenerOptions,
  ): void;
}

export interface ChannelEventMap {
  state: CustomEvent<{ state: ChannelState; previous: ChannelState }>;
  /** The room was joined (rejoin: after a reconnect). */
  joined: CustomEvent<{ payload: unknown; rejoin: boolean }>;
  message: CustomEvent<Message>;
  /** Presence changed: the whole state, and the diff (null for the state sent on join). */
  presence: CustomEvent<{ presence: Presence; diff: PresenceDiff | null }>;
  /** The history no longer reaches back: reload the room's state (or call reset()). */
  resync: CustomEvent<{ position: Position }>;
  error: CustomEvent<ErrorDetail>;
  frame: CustomEvent<Record<string, unknown>>;
}

export class Channel extends EventTarget {
  readonly socket: Socket;
  readonly room: string;
  /** Sent with every (re)join. */
  payload: unknown;
  readonly state: ChannelState;
  /** The last position seen: a rejoin resumes from it. */
  readonly position: Position | null;
  /** Who is here, kept in sync from the server's diffs. */
  readonly presence: Presence;
  /** Join; resolves with the join reply's payload, rejects with a ChannelError if refused. */
  join<R = unknown>(payload?: unknown): Promise<R>;
  /** Forget the position and join again (the server's replay instead of what was missed). */
  reset<R = unknown>(): Promise<R>;
  /** Push an event; resolves with the reply's payload, rejects on error or timeout. */
  push<R = unknown>(event: string, payload?: unknown, options?: { timeout?: number }): Promise<R>;
  /** Leave; the room is not rejoined after a reconnect. */
  leave(options?: { timeout?: number }): Promise<null>;
  /** Call `callback` for every `event` ("*": every event); returns the unsubscribe function. */
  on<P = unknown>(event: string, callback: (payload: P, message: Message<P>) => void): () => void;
  addEventListener<K extends keyof ChannelEventMap>(
    type: K,
    listener: (event: ChannelEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options?: boolean | AddEventListenerOptions,
  ): void;
}

export default Socket;
