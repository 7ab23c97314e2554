// Operational transformation for plain text: the browser half of examples/demo/ot.py.
// An operation is an array: n > 0 retains n chars, n < 0 deletes -n chars, a string inserts it.
"use strict";

const OT = (() => {
  function push(op, c) {
    if (c === 0 || c === "") return;
    const last = op[op.length - 1];
    if (op.length && typeof c === "string" && typeof last === "string") { op[op.length - 1] = last + c; return; }
    if (op.length && typeof c === "number" && typeof last === "number" && (c > 0) === (last > 0)) { op[op.length - 1] = last + c; return; }
    if (op.length && typeof c === "string" && typeof last === "number" && last < 0) {
      if (op.length >= 2 && typeof op[op.length - 2] === "string") op[op.length - 2] += c;
      else op.splice(op.length - 1, 0, c);
      return;
    }
    op.push(c);
  }

  function normalize(op) { const out = []; for (const c of op) push(out, c); return out; }

  function apply(text, op) {
    let i = 0; const parts = [];
    for (const c of op) {
      if (typeof c === "string") parts.push(c);
      else if (c > 0) { parts.push(text.slice(i, i + c)); i += c; }
      else i -= c;
    }
    if (i !== text.length) throw new Error("operation does not fit the document");
    return parts.join("");
  }

  // Hands out pieces of an operation, splitting retains and deletes as asked.
  class Cursor {
    constructor(op) { this.op = op; this.i = 0; this.head = op.length ? op[0] : null; }
    next() { this.i += 1; this.head = this.i < this.op.length ? this.op[this.i] : null; }
    take(n) {
      const h = this.head;
      if (typeof h === "string" || n === null || n >= Math.abs(h)) { this.next(); return h; }
      const sign = h > 0 ? 1 : -1;
      this.head = sign * (Math.abs(h) - n);
      return sign * n;
    }
  }

  // transform(a, b) -> [a', b'] with apply(apply(d, a), b') == apply(apply(d, b), a').
  // a's inserts win ties, exactly as on the server.
  function transform(a, b) {
    const ao = [], bo = []; const ca = new Cursor(a), cb = new Cursor(b);
    while (ca.head !== null || cb.head !== null) {
      if (typeof ca.head === "string") { const t = ca.take(null); push(ao, t); push(bo, t.length); continue; }
      if (typeof cb.head === "string") { const t = cb.take(null); push(ao, t.length); push(bo, t); continue; }
      if (ca.head === null || cb.head === null) throw new Error("operations of different lengths");
      const n = Math.min(Math.abs(ca.head), Math.abs(cb.head));
      const x = ca.take(n), y = cb.take(n);
      if (x > 0 && y > 0) { push(ao, n); push(bo, n); }
      else if (x < 0 && y > 0) push(ao, -n);
      else if (x > 0 && y < 0) push(bo, -n);
    }
    return [ao, bo];
  }

  // compose(a, b): one operation with the effect of a then b.
  function compose(a, b) {
    const out = []; const ca = new Cursor(a), cb = new Cursor(b);
    while (ca.head !== null || cb.head !== null) {
      if (typeof ca.head === "number" && ca.head < 0) { push(out, ca.take(null)); continue; }
      if (typeof cb.head === "string") { push(out, cb.take(null)); continue; }
      if (ca.head === null || cb.head === null) throw new Error("operations do not compose");
      if (typeof ca.head === "string") {
        const t = ca.head, y = cb.head;
        if (y > 0) { const n = Math.min(t.length, y); cb.take(n); if (n === t.length) ca.next(); else ca.head = t.slice(n); push(out, t.slice(0, n)); }
        else { const n = Math.min(t.length, -y); cb.take(n); if (n === t.length) ca.next(); else ca.head = t.slice(n); }
        continue;
      }
      const n = Math.min(ca.head, Math.abs(cb.head));
      ca.take(n); const y = cb.take(n);
      push(out, y > 0 ? n : -n);
    }
    return out;
  }

  // The smallest operation turning `before` into `after` (one changed span).
  function diff(before, after) {
    let p = 0; const max = Math.min(before.length, after.length);
    while (p < max && before[p] === after[p]) p++;
    let s = 0;
    while (s < max - p && before[before.length - 1 - s] === after[after.length - 1 - s]) s++;
    return normalize([p, -(before.length - p - s), after.slice(p, after.length - s), s]);
  }

  // Where index `pos` of the old document lands after `op`.
  function transformIndex(pos, op) {
    let oldI = 0, newI = pos;
    for (const c of op) {
      if (oldI > pos) break;
      if (typeof c === "string") { newI += c.length; }
      else if (c > 0) { oldI += c; }
      else { const n = Math.min(-c, pos - oldI); newI -= n; oldI -= c; }
    }
    return newI;
  }

  // One client of the server: at most one operation in flight, later edits buffered.
  class Client {
    constructor(version, sendEdit) { this.version = version; this.pending = null; this.buffer = null; this.sendEdit = sendEdit; }
    local(op) {
      if (this.pending === null) { this.pending = op; this.sendEdit(this.version, op); }
      else if (this.buffer === null) this.buffer = op;
      else this.buffer = compose(this.buffer, op);
    }
    ack(version) {
      this.version = version; this.pending = this.buffer; this.buffer = null;
      if (this.pending !== null) this.sendEdit(this.version, this.pending);
    }
    remote(version, op) {
      this.version = version;
      if (this.pending !== null) {
        [this.pending, op] = transform(this.pending, op);
        if (this.buffer !== null) [this.buffer, op] = transform(this.buffer, op);
      }
      return op;
    }
    resend() { if (this.pending !== null) this.sendEdit(this.version, this.pending); }
  }

  return { apply, transform, compose, diff, normalize, transformIndex, Client };
})();
