// Dashboard page: the server pushes metrics every second; numbers and a small chart update live.
import { connect } from "./live.js";

const canvas = document.getElementById("chart");
const ctx = canvas.getContext("2d");
const rates = [], cpus = [];
let ticks = 0;

function set(id, value) { document.getElementById(id).textContent = value; }

function line(values, color, max) {
  const w = canvas.width, h = canvas.height, step = w / 59;
  ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.beginPath();
  values.forEach((v, i) => {
    const x = i * step, y = h - 10 - (h - 20) * (v / max);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
}

function draw() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  line(rates, "#2563eb", Math.max(1, ...rates) * 1.2);
  line(cpus, "#ea580c", Math.max(100, ...cpus));
}

const dashboard = connect().channel("dashboard");
dashboard.on("metrics", (m) => {
  ticks += 1;
  set("m-connections", m.connections);
  set("m-rooms", m.rooms);
  set("m-rate", m.messages_per_s.toFixed(1));
  set("m-cpu", m.cpu_percent.toFixed(1));
  set("m-rss", (m.rss_bytes / 1048576).toFixed(1));
  set("m-ticks", ticks);
  rates.push(m.messages_per_s); cpus.push(m.cpu_percent);
  if (rates.length > 60) { rates.shift(); cpus.shift(); }
  draw();
});
dashboard.join();
