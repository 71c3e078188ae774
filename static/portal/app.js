// Small behaviours without inline scripts (the CSP forbids them).
document.addEventListener("change", (event) => {
  const el = event.target;
  if (el.matches("[data-autosubmit]")) el.form.submit();
});
// The user menu (<details class="usermenu">) closes on a click outside it or on Escape.
document.addEventListener("click", (event) => {
  document.querySelectorAll("details.usermenu[open]").forEach((menu) => {
    if (!menu.contains(event.target)) menu.removeAttribute("open");
  });
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  document.querySelectorAll("details.usermenu[open]").forEach((menu) => {
    menu.removeAttribute("open");
    menu.querySelector("summary").focus();
  });
});
// <form data-confirm="message">: ask before submitting (no confirm, no request). Asked in the
// capture phase, before the form's own listeners: htmx (data-hx-post) sends its request from a
// listener on the form, which a bubbling handler here would only reach after the request left.
document.addEventListener(
  "submit",
  (event) => {
    const form = event.target;
    const message = form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
      event.stopPropagation();
    }
  },
  true,
);
// Countdown timers: <span data-deadline="ISO-8601">.
function tick() {
  document.querySelectorAll("[data-deadline]").forEach((el) => {
    const left = new Date(el.dataset.deadline) - new Date();
    if (left <= 0) { el.textContent = el.dataset.expiredText || "0:00:00"; return; }
    const h = Math.floor(left / 3600000), m = Math.floor((left % 3600000) / 60000), s = Math.floor((left % 60000) / 1000);
    el.textContent = `${h}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
  });
}
setInterval(tick, 1000);
document.addEventListener("DOMContentLoaded", tick);
// Charts: <canvas data-chart="json-script-id"> whose JSON is a Chart.js config. With
// data-time-axis="x" the x values are epoch milliseconds, shown as Asia/Shanghai dates (the
// JSON cannot carry the formatting functions, and Chart.js's own time axis needs an adapter).
// Dates read as everywhere else on the site, 2026-05-03 (zh-CN's own format is 2026/05/03).
function shanghaiTime(ms, withTime) {
  const options = { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit" };
  if (withTime) Object.assign(options, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const part = {};
  new Intl.DateTimeFormat("en-US", options).formatToParts(new Date(ms)).forEach((p) => {
    part[p.type] = p.value;
  });
  const date = `${part.year}-${part.month}-${part.day}`;
  return withTime ? `${date} ${part.hour}:${part.minute}` : date;
}
// With data-money-axis="y" the y values are yuan: ticks and tooltips read "¥1,234".
function yuan(value) {
  const text = Math.abs(value).toLocaleString("en-US", { maximumFractionDigits: 2 });
  return value < 0 ? `-¥${text}` : `¥${text}`;
}
document.addEventListener("DOMContentLoaded", () => {
  if (!window.Chart) return;
  document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    const source = document.getElementById(canvas.dataset.chart);
    if (!source) return;
    const config = JSON.parse(source.textContent);
    const axis = canvas.dataset.timeAxis;
    if (axis) {
      const scales = (config.options.scales = config.options.scales || {});
      scales[axis] = Object.assign({ type: "linear" }, scales[axis]);
      scales[axis].ticks = Object.assign({}, scales[axis].ticks, {
        // Under three days shown, dates alone would repeat: add the time.
        callback(value) {
          return shanghaiTime(value, this.max - this.min < 3 * 86400000);
        },
        maxTicksLimit: 8,
      });
      const plugins = (config.options.plugins = config.options.plugins || {});
      plugins.tooltip = Object.assign({}, plugins.tooltip, {
        callbacks: { title: (items) => (items.length ? shanghaiTime(items[0].parsed[axis], true) : "") },
      });
    }
    const money = canvas.dataset.moneyAxis;
    if (money) {
      const scales = (config.options.scales = config.options.scales || {});
      scales[money] = Object.assign({}, scales[money]);
      scales[money].ticks = Object.assign({}, scales[money].ticks, { callback: (value) => yuan(value) });
      const plugins = (config.options.plugins = config.options.plugins || {});
      plugins.tooltip = Object.assign({}, plugins.tooltip);
      plugins.tooltip.callbacks = Object.assign({}, plugins.tooltip.callbacks, {
        label: (item) => `${item.dataset.label ? `${item.dataset.label}: ` : ""}${yuan(item.parsed[money])}`,
      });
    }
    canvas.chart = new window.Chart(canvas, config);
  });
});
// List tables on a phone: each cell is labelled with its column's heading (data-label) and the
// table marked .stacked, which app.css shows as one card per row under its breakpoint. Done
// again after htmx swaps in rows or tables; a cell already labelled keeps its label.
function labelTableCells() {
  document.querySelectorAll("table.table:not(.facts)").forEach((table) => {
    const head = table.tHead && table.tHead.rows[0];
    if (!head) return;
    const labels = [];
    for (const th of head.cells) {
      for (let i = 0; i < th.colSpan; i += 1) labels.push(th.textContent.replace(/\s+/g, " ").trim());
    }
    for (const body of table.tBodies) {
      for (const row of body.rows) {
        let column = 0;
        for (const cell of row.cells) {
          const label = cell.colSpan === 1 ? labels[column] : "";
          if (label && !cell.hasAttribute("data-label")) cell.dataset.label = label;
          column += cell.colSpan;
        }
      }
    }
    table.classList.add("stacked");
  });
}
document.addEventListener("DOMContentLoaded", labelTableCells);
document.addEventListener("htmx:afterSettle", labelTableCells);
