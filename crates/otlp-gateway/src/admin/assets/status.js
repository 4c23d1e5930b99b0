// The status page's live part: fetch /api/status every 2 s (a relative URL, so the page
// works behind any prefix and needs nothing but this server) and redraw. The server
// renders the same markup for the first paint; keep the two in step (admin/page.rs).
(function () {
  "use strict";
  var REFRESH_MS = 2000;
  var fetches = 0;

  function esc(v) {
    return String(v).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function num(n) {
    n = Math.round(Number(n) || 0);
    return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }
  function rate(r) {
    r = Number(r) || 0;
    return r < 10 ? r.toFixed(1) : num(r);
  }
  function bytes(b) {
    b = Number(b) || 0;
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
    return (i === 0 ? String(Math.round(b)) : b.toFixed(1)) + " " + units[i];
  }
  function duration(s) {
    s = Math.floor(Number(s) || 0);
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d > 0) return d + "d " + h + "h " + m + "m";
    if (h > 0) return h + "h " + m + "m " + (s % 60) + "s";
    return m + "m " + (s % 60) + "s";
  }
  function last(a) { return a && a.length ? a[a.length - 1] : 0; }

  function spark(label, points, fmt) {
    var w = 240, h = 40, top = 0, i;
    points = points || [];
    for (i = 0; i < points.length; i++) if (points[i] > top) top = points[i];
    var max = Math.max(top, 1);
    var step = w / Math.max(points.length - 1, 1), line = [];
    for (i = 0; i < points.length; i++) {
      line.push((i * step).toFixed(1) + "," + (h - 2 - (points[i] / max) * (h - 4)).toFixed(1));
    }
    var svg = '<svg viewBox="0 0 ' + w + " " + h + '" preserveAspectRatio="none">';
    if (line.length > 1) {
      svg += '<polygon fill="rgba(88,166,255,.18)" points="0,' + h + " " + line.join(" ") + " " +
        ((points.length - 1) * step).toFixed(1) + "," + h + '"/>' +
        '<polyline fill="none" stroke="#58a6ff" stroke-width="1.5" points="' + line.join(" ") + '"/>';
    } else {
      svg += '<line x1="0" y1="' + (h - 2) + '" x2="' + w + '" y2="' + (h - 2) + '" stroke="#2a3440"/>';
    }
    svg += "</svg>";
    return '<div class="spark"><div class="l"><span>' + esc(label) + "</span><span>now <b>" +
      esc(fmt(last(points))) + "</b> · max " + esc(fmt(top)) +
      "</span></div>" + svg + "</div>";
  }

  function box(cls, title, kind, lines) {
    return '<div class="box ' + cls + '"><div class="t">' + esc(title) + "</div>" +
      (kind ? '<div class="k">' + esc(kind) + "</div>" : "") +
      lines.map(function (l) { return '<div class="n">' + l + "</div>"; }).join("") + "</div>";
  }
  var arrow = '<div class="arrow">&#10140;</div>';

  function pipeline(s) {
    var receivers = s.sources.filter(function (x) { return x.kind === "receiver"; });
    var rx = receivers.length ? receivers.map(function (r) {
      return box("", r.name, r.values.protocol || "receiver",
        [num(r.values.requests) + " requests", num(r.values.accepted_items) + " items accepted"]);
    }) : [box("", "OTLP in", "gRPC · HTTP", [num(s.totals.requests) + " requests"])];
    var refusedBy = [];
    ["rate_limited", "memory", "bad_data"].forEach(function (r) {
      var n = 0;
      Object.keys(s.signals).forEach(function (k) {
        var x = s.signals[k].refused[r];
        n += x ? x.items : 0;
      });
      if (n > 0) refusedBy.push(esc(r) + " " + num(n));
    });
    var control = s.sources.filter(function (x) { return x.kind === "degradation"; })[0];
    var dropped = 0;
    Object.keys(s.signals).forEach(function (k) {
      dropped += s.signals[k].dropped.sampled + s.signals[k].dropped.degraded;
    });
    var routes = s.routes.map(function (r) {
      var q = r.queue;
      var qbox = box("", r.name, "queue · " + q.kind + " · " + r.mode, [
        num(q.depth) + " entries · " + bytes(q.bytes),
        '<div class="fill"><span style="width:' + Math.min(100, q.fill * 100).toFixed(1) + '%"></span></div>'
      ]);
      var members = r.exporters.map(function (e) {
        return box("br-" + e.breaker, e.name, e.kind + " · breaker " + e.breaker,
          [num(e.exported_total) + " exported", num(e.retryable_failures + e.permanent_failures) + " failures"]);
      }).join("");
      return '<div class="route">' + qbox + arrow + '<div class="members">' + members + "</div></div>";
    }).join("");
    return '<div class="pipeline">' +
      '<div class="stage">' + rx.join("") + "</div>" + arrow +
      '<div class="stage">' + box("", "protect", "auth · rate limit · memory",
        [num(s.totals.received_items) + " received", num(s.totals.refused_items) + " refused"]
          .concat(refusedBy)) + "</div>" + arrow +
      '<div class="stage">' + box("lvl-" + s.degradation.level, "degrade", "level " + s.degradation.name,
        [num(s.totals.accepted_items) + " accepted", num(dropped) + " sampled/degraded"]
          .concat(control ? [esc(control.values.mode)] : [])) + "</div>" + arrow +
      '<div class="routes">' + (routes || '<div class="empty">no routes</div>') + "</div></div>";
  }

  function throughput(h) {
    return spark("received items/s", h.received, rate) + spark("accepted items/s", h.accepted, rate) +
      spark("refused items/s", h.refused, rate) + spark("exported items/s", h.exported, rate);
  }

  function queues(h) {
    if (!h.queues.length) return '<div class="empty">no queues</div>';
    return h.queues.map(function (q) {
      return spark(q.route + " depth", q.depth, num) + spark(q.route + " bytes", q.bytes, bytes);
    }).join("");
  }

  function exporters(s) {
    var rows = [];
    s.routes.forEach(function (r) {
      r.exporters.forEach(function (e) {
        rows.push("<tr><td>" + esc(e.name) + '</td><td>' + esc(r.name) + '</td><td><span class="badge br-' +
          esc(e.breaker) + '">' + esc(e.breaker) + '</span></td><td class="num">' + num(e.exported_total) +
          '</td><td class="num">' + num(e.retryable_failures) + '</td><td class="num">' + num(e.permanent_failures) +
          '</td><td class="num">' + num(e.retries) + '</td><td class="num">' + num(e.in_flight) + '</td><td class="msg">' +
          (e.last_error ? esc(e.last_error.message) : "") + "</td></tr>");
      });
    });
    return rows.length ? rows.join("") : '<tr><td colspan="9" class="empty">no exporters</td></tr>';
  }

  function signals(s) {
    return Object.keys(s.signals).map(function (k) {
      var x = s.signals[k], refused = 0, dropped = 0;
      Object.keys(x.refused).forEach(function (r) { refused += x.refused[r].items; });
      Object.keys(x.dropped).forEach(function (r) { dropped += x.dropped[r]; });
      return "<tr><td>" + esc(k) + '</td><td class="num">' + num(x.requests) + '</td><td class="num">' +
        num(x.received_items) + '</td><td class="num">' + num(x.accepted_items) + '</td><td class="num">' +
        num(refused) + '</td><td class="num">' + num(dropped) + '</td><td class="num">' + bytes(x.received_bytes) + "</td></tr>";
    }).join("");
  }

  function errors(s) {
    if (!s.recent_errors.length) return '<tr><td colspan="2" class="empty">no errors</td></tr>';
    return s.recent_errors.map(function (e) {
      return '<tr><td class="at">' + esc(e.at) + '</td><td class="msg">' + esc(e.message) + "</td></tr>";
    }).join("");
  }

  function set(id, html) {
    var el = document.getElementById(id);
    if (el) el.innerHTML = html;
  }

  function render(s) {
    var phase = document.getElementById("phase");
    phase.textContent = s.phase;
    phase.className = "badge s-" + s.phase;
    document.getElementById("uptime").textContent = duration(s.uptime_seconds);
    document.getElementById("version").textContent = s.version;
    var level = document.getElementById("level");
    level.textContent = s.degradation.name + " (" + s.degradation.level + ")";
    level.className = "badge lvl-" + s.degradation.level;
    document.getElementById("memory").textContent = bytes(s.memory_bytes);
    set("pipeline-diagram", pipeline(s));
    set("spark-throughput", throughput(s.history));
    set("spark-queues", queues(s.history));
    set("exporter-rows", exporters(s));
    set("signal-rows", signals(s));
    set("error-rows", errors(s));
    document.getElementById("updated").textContent = s.now;
  }

  function connection(ok, text) {
    var c = document.getElementById("conn");
    c.textContent = text;
    c.className = ok ? "conn" : "conn down";
  }

  function refresh() {
    var xhr = new XMLHttpRequest();
    xhr.open("GET", "api/status");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.timeout = REFRESH_MS * 2;
    xhr.onload = function () {
      if (xhr.status !== 200) { connection(false, "status " + xhr.status); return; }
      var s;
      try { s = JSON.parse(xhr.responseText); } catch (e) { connection(false, "bad response"); return; }
      fetches += 1;
      render(s);
      // Proof of life for people and for the screenshot test: numbers that only came
      // through /api/status.
      var names = [];
      s.routes.forEach(function (r) {
        names.push(r.name);
        r.exporters.forEach(function (e) { names.push(e.name + "=" + e.exported_total); });
      });
      var js = document.getElementById("js-rendered");
      js.setAttribute("data-fetches", String(fetches));
      js.textContent = "live: fetch " + fetches + ", received_items=" + s.totals.received_items +
        ", accepted_items=" + s.totals.accepted_items + ", exported_items=" + s.totals.exported_items +
        ", routes " + names.join(" ");
      connection(true, "live · every " + REFRESH_MS / 1000 + " s");
    };
    xhr.onerror = xhr.ontimeout = function () { connection(false, "gateway unreachable"); };
    xhr.send();
  }

  refresh();
  setInterval(refresh, REFRESH_MS);
})();
