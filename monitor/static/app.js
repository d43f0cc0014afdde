// paystream status page: polls /api/status every 2 s and redraws.
// No framework and no dependencies; the charts are drawn on <canvas> below.
(function () {
  "use strict";

  var POLL_MS = 2000;
  var FETCH_TIMEOUT_MS = 5000;

  var last = null;          // last successfully fetched status
  var lastOkAt = null;      // Date of the last successful fetch
  var failingSince = null;  // Date of the first failure in the current run of failures

  // ---------------------------------------------------------------- helpers

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (attrs[k] !== undefined && attrs[k] !== null) node.setAttribute(k, attrs[k]);
      });
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function isNum(v) { return typeof v === "number" && isFinite(v); }

  function pad2(n) { return (n < 10 ? "0" : "") + n; }

  function clock(ms, withSeconds) {
    var d = new Date(ms);
    var s = pad2(d.getHours()) + ":" + pad2(d.getMinutes());
    return withSeconds ? s + ":" + pad2(d.getSeconds()) : s;
  }

  function fmtAgo(s) {
    if (!isNum(s)) return "\u2014";
    if (s < 60) return s.toFixed(1) + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.floor(s % 60) + " s ago";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min ago";
    return Math.floor(s / 86400) + " d ago";
  }

  function fmtDuration(s) {
    if (!isNum(s)) return "\u2014";
    s = Math.max(0, Math.floor(s));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + "m " + pad2(s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h " + pad2(Math.floor((s % 3600) / 60)) + "m";
    return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  }

  function fmtMiB(bytes) {
    return isNum(bytes) ? (bytes / 1048576).toFixed(1) + " MiB" : "\u2014";
  }

  function fmtInt(v) {
    return isNum(v) ? Math.round(v).toLocaleString("en-US") : "\u2014";
  }

  function fmtFixed(v, digits, suffix) {
    return isNum(v) ? v.toFixed(digits) + (suffix || "") : "\u2014";
  }

  function lastValue(values) {
    for (var i = values.length - 1; i >= 0; i--) if (isNum(values[i])) return values[i];
    return null;
  }

  function arr(v) { return Array.isArray(v) ? v : []; }

  // ---------------------------------------------------------------- chart drawing

  var AXIS_FONT = "11px system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif";
  var GRID = "#e6e8ec";
  var AXIS = "#c5cad3";
  var LABEL = "#6b7280";

  // A "nice" step (1, 2, 2.5, 5 x 10^k) splitting `span` into about `count`
  // parts; with `integer`, a whole number and never 2.5.
  function niceStep(span, count, integer) {
    var raw = span / Math.max(1, count);
    if (integer && raw <= 1) return 1;
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var n = raw / mag;
    var m = n <= 1 ? 1 : n <= 2 ? 2 : n <= 2.5 && !(integer && mag < 10) ? 2.5 : n <= 5 ? 5 : 10;
    return m * mag;
  }

  function decimalsFor(step) {
    for (var d = 0; d < 8; d++) {
      var scaled = step * Math.pow(10, d);
      if (Math.abs(scaled - Math.round(scaled)) < 1e-6) return d;
    }
    return 8;
  }

  function fmtTick(v, decimals) {
    var a = Math.abs(v);
    if (a >= 1e6) return +(v / 1e6).toFixed(2) + "M";
    if (a >= 1e4) return +(v / 1e3).toFixed(1) + "k";
    return v.toFixed(decimals);
  }

  var TIME_STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];

  // Pixel-exact canvas sized to its CSS box; returns a context in CSS pixels.
  function prepareCanvas(canvas) {
    var dpr = window.devicePixelRatio || 1;
    var w = Math.max(1, Math.round(canvas.clientWidth));
    var h = Math.max(1, Math.round(canvas.clientHeight));
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return { ctx: ctx, w: w, h: h };
  }

  // Draws `lines` ([{name, color, values}]) against timestamps `xs` (ms, or
  // null when unknown). Returns the number of non-null points drawn.
  // opts: {fixedMax, minSpan, integer, fill, step, spread}: `step` draws each value until the next
  // one (counts change at a sample, they do not slide); `spread` moves line k of n by
  // (k - (n - 1) / 2) * spread pixels, so lines holding the same value stay apart.
  function drawChart(canvas, xs, lines, opts) {
    var c = prepareCanvas(canvas);
    var ctx = c.ctx;
    var n = xs.length;

    // y range: from 0 (all series here are non-negative) to the data max.
    var lo = 0, hi = -Infinity, count = 0;
    lines.forEach(function (line) {
      for (var i = 0; i < n; i++) {
        var v = line.values[i];
        if (isNum(v)) { count++; if (v > hi) hi = v; if (v < lo) lo = v; }
      }
    });
    if (opts.fixedMax !== undefined) hi = Math.max(opts.fixedMax, isFinite(hi) ? hi : 0);
    if (!isFinite(hi) || hi - lo < (opts.minSpan || 1e-9)) hi = lo + (opts.minSpan || 1);

    ctx.font = AXIS_FONT;
    var padTop = 8, padBottom = 22, padRight = 12;
    var plotH = c.h - padTop - padBottom;
    var step = niceStep(hi - lo, Math.max(2, Math.floor(plotH / 38)), opts.integer);
    var yMin = Math.floor(lo / step) * step;
    var yMax = Math.ceil(hi / step - 1e-9) * step;
    if (opts.fixedMax !== undefined && yMax > opts.fixedMax && hi <= opts.fixedMax) yMax = opts.fixedMax;
    var dec = decimalsFor(step);

    var ticks = [];
    for (var t = yMin; t <= yMax + step * 1e-6; t += step) ticks.push(t);
    var labelW = 0;
    ticks.forEach(function (v) { labelW = Math.max(labelW, ctx.measureText(fmtTick(v, dec)).width); });
    var padLeft = Math.ceil(labelW) + 10;
    var plotW = Math.max(10, c.w - padLeft - padRight);
    var x0 = padLeft, y0 = padTop, x1 = padLeft + plotW, y1 = padTop + plotH;

    function yPix(v) { return y1 - (v - yMin) / (yMax - yMin) * plotH; }

    // x domain: the timestamps, or the index when they are missing.
    var xmin = 0, xmax = 0, haveTime = n > 0 && xs.every(isNum);
    if (n > 0) {
      xmin = haveTime ? xs[0] : 0;
      xmax = haveTime ? xs[n - 1] : n - 1;
      if (xmax <= xmin) { xmin -= haveTime ? 1000 : 1; xmax += haveTime ? 1000 : 1; }
    }
    function xPix(i) {
      var x = haveTime ? xs[i] : i;
      return x0 + (x - xmin) / (xmax - xmin) * plotW;
    }

    // grid + y labels
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ticks.forEach(function (v) {
      var y = Math.round(yPix(v)) + 0.5;
      ctx.strokeStyle = GRID;
      ctx.beginPath(); ctx.moveTo(x0, y); ctx.lineTo(x1, y); ctx.stroke();
      ctx.fillStyle = LABEL;
      ctx.fillText(fmtTick(v, dec), x0 - 6, y);
    });

    // time labels: a round step leaving ~110 px per label
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    if (n > 0 && haveTime) {
      var maxLabels = Math.max(1, Math.floor(plotW / 110));
      var spanS = (xmax - xmin) / 1000, stepS = TIME_STEPS_S[TIME_STEPS_S.length - 1];
      for (var k = 0; k < TIME_STEPS_S.length; k++) {
        if (spanS / TIME_STEPS_S[k] <= maxLabels) { stepS = TIME_STEPS_S[k]; break; }
      }
      var stepMs = stepS * 1000;
      for (var tm = Math.ceil(xmin / stepMs) * stepMs; tm <= xmax; tm += stepMs) {
        var x = x0 + (tm - xmin) / (xmax - xmin) * plotW;
        var label = clock(tm, stepS < 60);
        var half = ctx.measureText(label).width / 2;
        ctx.strokeStyle = AXIS;
        ctx.beginPath(); ctx.moveTo(Math.round(x) + 0.5, y1); ctx.lineTo(Math.round(x) + 0.5, y1 + 4); ctx.stroke();
        ctx.fillStyle = LABEL;
        ctx.fillText(label, Math.min(Math.max(x, x0 + half), c.w - half - 1), y1 + 6);
      }
    }

    // x axis line
    ctx.strokeStyle = AXIS;
    ctx.beginPath(); ctx.moveTo(x0, Math.round(y1) + 0.5); ctx.lineTo(x1, Math.round(y1) + 0.5); ctx.stroke();

    if (count === 0) {
      ctx.fillStyle = "#9ca3af";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.font = "13px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
      ctx.fillText(n === 0 ? "no data yet" : "no data in this window", x0 + plotW / 2, y0 + plotH / 2);
      return 0;
    }

    // lines: a null breaks the line; a point with no neighbour is drawn as a dot
    ctx.save();
    ctx.beginPath(); ctx.rect(x0 - 4, y0 - 4, plotW + 8, plotH + 8); ctx.clip();
    lines.forEach(function (line, k) {
      var shift = opts.spread ? (k - (lines.length - 1) / 2) * opts.spread : 0;
      var segments = [], seg = [];
      for (var i = 0; i < n; i++) {
        var v = line.values[i];
        if (isNum(v)) seg.push([xPix(i), yPix(v) + shift]);
        else if (seg.length) { segments.push(seg); seg = []; }
      }
      if (seg.length) segments.push(seg);

      segments.forEach(function (s) {
        if (s.length === 1) {
          ctx.fillStyle = line.color;
          ctx.beginPath(); ctx.arc(s[0][0], s[0][1], 3, 0, 2 * Math.PI); ctx.fill();
          return;
        }
        if (opts.fill) {
          ctx.globalAlpha = 0.12;
          ctx.fillStyle = line.color;
          ctx.beginPath();
          ctx.moveTo(s[0][0], y1);
          s.forEach(function (p) { ctx.lineTo(p[0], p[1]); });
          ctx.lineTo(s[s.length - 1][0], y1);
          ctx.closePath(); ctx.fill();
          ctx.globalAlpha = 1;
        }
        ctx.strokeStyle = line.color;
        ctx.lineWidth = 1.75;
        ctx.lineJoin = "round";
        ctx.beginPath();
        ctx.moveTo(s[0][0], s[0][1]);
        for (var j = 1; j < s.length; j++) {
          if (opts.step) ctx.lineTo(s[j][0], s[j - 1][1]);
          ctx.lineTo(s[j][0], s[j][1]);
        }
        ctx.stroke();
      });
    });
    ctx.restore();
    return count;
  }

  // ---------------------------------------------------------------- charts

  // Each chart card is a spec: its element id, drawing options, its lines from the data, and how a
  // value reads. With `legend`, every line's last value is in the legend; without, the one line's
  // last value is the card's headline.

  var INSTANCE_COLORS = { ingress: "#2563eb", worker: "#7c3aed", sinks: "#0891b2", analytics: "#ea580c" };

  var CHARTS = [
    {
      id: "chart-payments",
      opts: { minSpan: 1, fill: true },
      lines: function (s) { return [{ name: "payments/s", color: "#2563eb", values: arr(s.payments_per_s) }]; },
      value: function (v) { return fmtFixed(v, 1, " /s"); },
    },
    {
      id: "chart-latency",
      opts: { minSpan: 10 },
      legend: true,
      lines: function (s) {
        var l = s.latency_ms || {};
        return [
          { name: "p50", color: "#2563eb", values: arr(l.p50) },
          { name: "p90", color: "#f59e0b", values: arr(l.p90) },
          { name: "p99", color: "#db2777", values: arr(l.p99) },
        ];
      },
      value: function (v) { return fmtFixed(v, 1, " ms"); },
    },
    {
      id: "chart-lag",
      opts: { minSpan: 10, integer: true, fill: true },
      lines: function (s) { return [{ name: "lag", color: "#7c3aed", values: arr(s.consumer_lag) }]; },
      value: function (v) { return isNum(v) ? fmtInt(v) + " msgs" : "\u2014"; },
    },
    {
      id: "chart-cache",
      opts: { fixedMax: 1, minSpan: 1 },
      lines: function (s) { return [{ name: "hit ratio", color: "#0891b2", values: arr(s.cache_hit_ratio) }]; },
      value: function (v) { return fmtFixed(v, 3); },
    },
    {
      id: "chart-requests",
      opts: { minSpan: 1, fill: true },
      lines: function (s) { return [{ name: "requests/s", color: "#0f766e", values: arr(s.requests_per_s) }]; },
      value: function (v) { return fmtFixed(v, 1, " /s"); },
    },
    {
      id: "chart-instances",
      opts: { minSpan: 2, integer: true, step: true, spread: 2.5 },
      legend: true,
      lines: function (s) {
        var counts = s.instances || {};
        return Object.keys(INSTANCE_COLORS).map(function (kind) {
          return { name: kind, color: INSTANCE_COLORS[kind], values: arr(counts[kind]) };
        });
      },
      value: function (v) { return isNum(v) ? fmtInt(v) : "\u2014"; },
    },
  ];

  // ---------------------------------------------------------------- windowed charts (from the workers' tables)

  var STATUS_COLORS = { started: "#2563eb", receipted: "#16a34a", declined: "#f59e0b", failed: "#dc2626" };
  var PALETTE = ["#7c3aed", "#0891b2", "#db2777", "#65a30d", "#ea580c", "#4b5563"];

  var ANALYTICS_CHARTS = [
    {
      id: "chart-status-minute",
      opts: { minSpan: 1, integer: true },
      legend: true,
      lines: function (a) {
        var byStatus = a.by_status || {};
        return Object.keys(STATUS_COLORS).map(function (name) {
          return { name: name, color: STATUS_COLORS[name], values: arr(byStatus[name]) };
        });
      },
      value: function (v) { return isNum(v) ? fmtInt(v) + " /min" : "\u2014"; },
    },
    {
      id: "chart-volume-minute",
      opts: { minSpan: 1 },
      legend: true,
      // Volumes arrive as exact decimal strings; they become numbers here only to be drawn.
      lines: function (a) {
        var volume = a.volume || {};
        return Object.keys(volume).sort().map(function (currency, i) {
          return { name: currency, color: PALETTE[i % PALETTE.length],
                   values: arr(volume[currency]).map(function (d) { return parseFloat(d); }) };
        });
      },
      value: function (v) { return isNum(v) ? v.toFixed(2) : "\u2014"; },
    },
  ];

  // Draws `specs` from `data` ({t: [ISO times], ...}); each card's data-points says how many points it drew.
  function renderChartSet(specs, data) {
    data = data || {};
    var xs = arr(data.t).map(function (t) { var ms = Date.parse(t); return isFinite(ms) ? ms : null; });
    specs.forEach(function (spec) {
      var box = $(spec.id);
      var lines = spec.lines(data);
      box.dataset.points = String(drawChart(box.querySelector("canvas"), xs, lines, spec.opts));
      var legend = box.querySelector(".legend");
      legend.textContent = "";
      box.querySelector(".chart-value").textContent =
        spec.legend || !lines.length ? "" : spec.value(lastValue(lines[0].values));
      if (!spec.legend) return;
      lines.forEach(function (line) {
        var item = el("span", { "class": "legend-item", "data-line": line.name });
        var sw = el("span", { "class": "swatch" });
        sw.style.background = line.color;
        item.appendChild(sw);
        item.appendChild(el("span", { "class": "legend-name" }, line.name));
        item.appendChild(el("span", { "class": "legend-value" }, spec.value(lastValue(line.values))));
        legend.appendChild(item);
      });
    });
  }

  function renderCharts(series) { renderChartSet(CHARTS, series); }

  function renderAnalytics(a) {
    renderChartSet(ANALYTICS_CHARTS, a);
    var error = a && a.error;
    var note = $("analytics-note");
    note.hidden = !error;
    note.textContent = error ? "Windowed charts: " + error : "";
  }

  // ---------------------------------------------------------------- tables

  // Up, and judged overloaded by the monitor (monitor/overload.py): answering, but not in time. A
  // component that is down shows as down.
  function isOverloaded(c) { return c.state === "up" && c.overloaded === true; }

  function badge(state) {
    var s = state === "up" ? "up" : state === "down" ? "down" : "unknown";
    return el("span", { "class": "badge badge-" + s }, s.toUpperCase());
  }

  function renderOverall(data) {
    var comps = arr(data.components), svcs = arr(data.services);
    var state = data.overall === "up" ? "up" : data.overall === "down" ? "down" : "unknown";
    var header = $("overall");
    header.dataset.state = state;
    $("overall-text").textContent = state === "up" ? "All systems up" : state === "down" ? "Degraded" : "Unknown";

    var downC = comps.filter(function (c) { return c.state !== "up"; }).length;
    var downS = svcs.filter(function (s) { return s.state !== "up"; }).length;
    var overloaded = comps.filter(isOverloaded).length;
    var parts = [
      (comps.length - downC) + "/" + comps.length + " components up",
      (svcs.length - downS) + "/" + svcs.length + " services up",
    ];
    if (overloaded) parts.push(overloaded + " overloaded");
    header.dataset.overloaded = String(overloaded);
    $("overall-summary").textContent = parts.join(" \u00b7 ");
    var gen = Date.parse(data.generated_at);
    $("generated-at").textContent = isFinite(gen) ? clock(gen, true) : "\u2014";
    document.title = (state === "up" ? "UP" : state === "down" ? "DOWN" : "?") + " \u00b7 paystream status";
  }

  function renderComponents(components) {
    var tbody = $("components").tBodies[0];
    var rows = document.createDocumentFragment();
    if (!components.length) {
      var tr = el("tr", { "class": "empty" });
      tr.appendChild(el("td", { colspan: "10" }, "No component has sent a heartbeat yet."));
      rows.appendChild(tr);
    }
    components.forEach(function (c) {
      var state = c.state === "up" ? "up" : "down";
      var overloaded = isOverloaded(c);
      var row = el("tr", { "data-component-id": c.id, "data-state": state, "data-overloaded": String(overloaded),
                           "class": "state-" + (overloaded ? "overloaded" : state) });
      row.appendChild(el("td", { "class": "kind" }, c.kind || "\u2014"));
      row.appendChild(el("td", { "class": "mono", title: (c.host || "?") + " pid " + (c.pid === undefined ? "?" : c.pid) }, c.id));
      var st = el("td");
      st.appendChild(overloaded
        ? el("span", { "class": "badge badge-overloaded", title: c.overload_reason || "judged overloaded" }, "OVERLOADED")
        : badge(state));
      row.appendChild(st);
      row.appendChild(el("td", { "class": "num" }, fmtAgo(c.seconds_since_beat)));
      row.appendChild(el("td", { "class": "num" }, fmtDuration(c.uptime_s)));
      row.appendChild(el("td", { "class": "num" }, fmtMiB(c.rss_bytes)));
      row.appendChild(el("td", { "class": "num" }, fmtFixed(c.cpu_percent, 1, " %")));
      row.appendChild(el("td", { "class": "num" }, fmtInt(c.in_flight)));
      row.appendChild(el("td", { "class": "num" }, fmtInt(c.consumer_lag)));
      var verdict = c.verdict || "\u2014";
      row.appendChild(el("td", { "class": "verdict " + (verdict === "healthy" ? "verdict-ok" : "verdict-bad") }, verdict));
      rows.appendChild(row);
    });
    tbody.textContent = "";
    tbody.appendChild(rows);
  }

  function renderServices(services) {
    var list = $("services");
    var items = document.createDocumentFragment();
    if (!services.length) items.appendChild(el("li", { "class": "empty" }, "No services reported."));
    services.forEach(function (s) {
      var state = s.state === "up" ? "up" : "down";
      var li = el("li", { "data-service": s.name, "data-state": state, "class": "service state-" + state });
      li.appendChild(badge(state));
      var text = el("div", { "class": "service-text" });
      text.appendChild(el("span", { "class": "service-name", title: s.name }, s.name));
      text.appendChild(el("span", { "class": "service-detail", title: s.detail || "" }, s.detail || "\u00a0"));
      li.appendChild(text);
      items.appendChild(li);
    });
    list.textContent = "";
    list.appendChild(items);
  }

  var RECON_LABELS = {
    charged_not_receipted: "charged, not receipted",
    receipted_not_charged: "receipted, not charged",
    amount_mismatch: "amount or currency differs",
    charged_twice: "charged twice",
    refund_mismatch: "refund differs",
    refund_pending: "refund still pending",
    refunded_amount_mismatch: "refunded total differs",
  };

  function renderReconciliation(recon) {
    var box = $("reconciliation");
    var last = recon && recon.last;
    box.dataset.state = (recon && recon.state) || "unknown";
    var summary;
    if (!recon) summary = "Waiting for the monitor\u2026";
    else if (!last) summary = recon.interval_s > 0 ? "First run within " + recon.interval_s + " s." : "Turned off.";
    else {
      var total = Object.keys(last.counts).reduce(function (n, k) { return n + last.counts[k]; }, 0);
      var at = Date.parse(last.at);
      summary = (total ? total + " difference" + (total === 1 ? "" : "s") : "No difference") +
        " \u00b7 " + fmtInt(last.payments) + " payments judged, " + fmtInt(last.in_flight) + " in flight" +
        " \u00b7 last run " + (isFinite(at) ? clock(at, true) : "\u2014");
    }
    if (recon && recon.error) summary += " \u00b7 last attempt failed: " + recon.error;
    $("recon-summary").textContent = summary;

    var counts = document.createDocumentFragment();
    Object.keys(RECON_LABELS).forEach(function (kind) {
      var n = last ? last.counts[kind] : null;
      var state = !isNum(n) ? "unknown" : n > 0 ? "down" : "up";
      var li = el("li", { "data-kind": kind, "data-count": isNum(n) ? String(n) : "", "class": "service state-" + state });
      li.appendChild(el("span", { "class": "recon-count" }, isNum(n) ? fmtInt(n) : "\u2014"));
      li.appendChild(el("span", { "class": "service-name" }, RECON_LABELS[kind]));
      counts.appendChild(li);
    });
    $("recon-counts").textContent = "";
    $("recon-counts").appendChild(counts);

    var list = $("recon-differences");
    list.textContent = "";
    arr(last && last.differences).forEach(function (d) {
      list.appendChild(el("li", { "class": "mono" }, (RECON_LABELS[d.kind] || d.kind) + ": " + d.payment_id + " \u2014 " + d.detail));
    });
  }

  function render(data) {
    renderOverall(data);
    renderComponents(arr(data.components));
    renderServices(arr(data.services));
    renderReconciliation(data.reconciliation);
    renderCharts(data.series);
    renderAnalytics(data.analytics);
  }

  // ---------------------------------------------------------------- polling

  function setBanner(title, message) {
    var banner = $("banner");
    if (title === null) {
      banner.hidden = true;
      document.body.classList.remove("stale");
      return;
    }
    $("banner-title").textContent = title;
    $("banner-detail").textContent = message;
    banner.hidden = false;
    document.body.classList.add("stale");
  }

  function fetchStatus() {
    var ctrl = typeof AbortController === "function" ? new AbortController() : null;
    var timer = ctrl ? setTimeout(function () { ctrl.abort(); }, FETCH_TIMEOUT_MS) : null;
    return fetch("/api/status", { cache: "no-store", signal: ctrl ? ctrl.signal : undefined })
      .then(function (resp) {
        if (!resp.ok) throw new Error("HTTP " + resp.status);
        return resp.json();
      })
      .finally(function () { if (timer) clearTimeout(timer); });
  }

  function poll() {
    fetchStatus()
      .then(function (data) {
        if (!data || typeof data !== "object") throw new Error("malformed response");
        last = data;
        lastOkAt = new Date();
        failingSince = null;
        setBanner(null, null);
        try {
          render(data);
          document.body.dataset.loaded = "true";
        } catch (err) {
          console.error("render failed", err);
          setBanner("Display error", "could not draw the status: " + err.message);
        }
      })
      .catch(function (err) {
        if (!failingSince) failingSince = new Date();
        var why = err && err.name === "AbortError" ? "timed out" : (err && err.message) || "error";
        setBanner(
          "Monitor unreachable",
          "since " + clock(failingSince.getTime(), true) + " (" + why + "). " +
          (lastOkAt ? "Showing data from " + clock(lastOkAt.getTime(), true) + "; " : "No data yet; ") +
          "retrying every " + POLL_MS / 1000 + " s."
        );
      })
      .then(function () { setTimeout(poll, POLL_MS); });
  }

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { if (last) { renderCharts(last.series); renderAnalytics(last.analytics); } }, 100);
  });

  poll();
})();
