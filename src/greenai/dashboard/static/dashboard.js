// greenai dashboard: draws the charts a page carries as data, and keeps a live run's page
// current. No inline script runs on these pages (the Content-Security-Policy forbids it):
// each chart is a <script type="application/json" id="fig-ID"> holding a plotly figure,
// drawn here into <div data-figure="ID">. Text from the ledger only ever reaches the page
// through textContent or through plotly labels the server escaped.
(function () {
  "use strict";

  var CONFIG = { displaylogo: false, responsive: true };
  var MAX_POINTS = 20000; // past this many points in a trace, the live page asks for the downsampled charts again

  function figureOf(id) {
    var holder = document.getElementById("fig-" + id);
    return holder ? JSON.parse(holder.textContent) : null;
  }

  function draw(div, fig) {
    return window.Plotly.react(div, fig.data || [], fig.layout || {}, CONFIG);
  }

  function drawAll() {
    var divs = document.querySelectorAll("div[data-figure]");
    if (!divs.length) {
      document.body.setAttribute("data-drawn", "0");
      return Promise.resolve();
    }
    if (!window.Plotly) {
      document.body.setAttribute("data-drawn", "error");
      return Promise.resolve();
    }
    var pending = [];
    divs.forEach(function (div) {
      var fig = figureOf(div.getAttribute("data-figure"));
      if (fig) pending.push(draw(div, fig));
    });
    return Promise.all(pending).then(function () {
      document.body.setAttribute("data-drawn", String(pending.length));
    });
  }

  function traceIndex(devices) {
    var out = {};
    devices.forEach(function (d, i) { out[d] = i; });
    return out;
  }

  // -- a live run --------------------------------------------------------------------------

  function Live(box) {
    this.box = box;
    this.run = box.getAttribute("data-run");
    this.cursor = Number(box.getAttribute("data-cursor"));
    this.traces = traceIndex(JSON.parse(box.getAttribute("data-devices") || "[]")); // device -> power chart trace
    this.energy = JSON.parse(box.getAttribute("data-energy") || "{}"); // each device's cumulative J
    this.samples = Number(box.getAttribute("data-samples") || "0");
    this.pollMs = Number(box.getAttribute("data-poll-ms") || "1000");
    this.state = document.getElementById("live-state");
    this.updates = 0;
    this.power = document.getElementById("run1-power");
    this.energyChart = document.getElementById("run1-energy");
  }

  Live.prototype.say = function (text) {
    if (this.state) this.state.textContent = text;
  };

  Live.prototype.start = function () {
    var self = this;
    self.timer = window.setTimeout(function () { self.poll(); }, self.pollMs);
  };

  Live.prototype.poll = function () {
    var self = this;
    var url = "/api/runs/" + encodeURIComponent(self.run) + "/live?cursor=" + encodeURIComponent(String(self.cursor));
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (data) { return self.apply(data); })
      .then(function (more) {
        if (more) self.start();
      })
      .catch(function (e) {
        self.say("cannot update (" + e.message + "); retrying");
        self.start();
      });
  };

  Live.prototype.apply = function (data) {
    var self = this;
    self.cursor = data.cursor;
    self.samples += data.rows;
    var head = data.headline || {};
    head.samples = String(self.samples);
    Object.keys(head).forEach(function (key) {
      document.querySelectorAll('[data-live="' + key + '"]').forEach(function (el) {
        el.textContent = head[key];
        if (key === "status") el.className = "status " + head[key];
      });
    });
    var work = [];
    if (data.devices.length && self.power) work.push(self.extendPower(data.devices));
    if (data.devices.length && self.energyChart) work.push(self.extendEnergy(data.devices));
    return Promise.all(work).then(function () {
      self.updates += 1;
      self.box.setAttribute("data-updates", String(self.updates));
      self.box.setAttribute("data-samples-now", String(self.samples));
      var now = new Date().toLocaleTimeString();
      if (data.status !== "running") {
        self.say("the run is " + data.status + " (" + now + "): reload the page for its final figures.");
        self.box.className = "note";
        return false;
      }
      self.say("updated " + now + ", " + data.rows + " new sample rows");
      return self.tooLong() ? self.refresh().then(function () { return true; }) : true;
    });
  };

  Live.prototype.extendPower = function (devices) {
    var self = this;
    var xs = [], ys = [], index = [], added = [];
    devices.forEach(function (d) {
      var i = self.traces[d.device];
      if (i === undefined) {
        // a device seen for the first time: a new trace after the existing ones (legend swatches included)
        self.traces[d.device] = self.power.data.length + added.length;
        added.push({
          x: d.t, y: d.power_w, name: d.name, mode: "lines", stackgroup: "power", line: { width: 0.8 },
          hovertemplate: "%{x:.1f} s: %{y:.3g} W<extra></extra>",
        });
        return;
      }
      xs.push(d.t); ys.push(d.power_w); index.push(i);
    });
    var steps = [];
    if (index.length) steps.push(window.Plotly.extendTraces(self.power, { x: xs, y: ys }, index));
    if (added.length) steps.push(window.Plotly.addTraces(self.power, added));
    return Promise.all(steps);
  };

  Live.prototype.extendEnergy = function (devices) {
    // the run's energy so far: each device's cumulative energy, held until its next sample, summed
    var self = this;
    var points = [];
    devices.forEach(function (d) {
      for (var i = 0; i < d.t.length; i++) points.push([d.t[i], d.device, d.energy_j[i]]);
    });
    points.sort(function (a, b) { return a[0] - b[0]; });
    var xs = [], ys = [];
    points.forEach(function (p) {
      if (p[2] !== null) self.energy[p[1]] = p[2];
      var total = 0;
      Object.keys(self.energy).forEach(function (k) { total += self.energy[k]; });
      if (xs.length && xs[xs.length - 1] === p[0]) ys[ys.length - 1] = total;
      else { xs.push(p[0]); ys.push(total); }
    });
    return window.Plotly.extendTraces(self.energyChart, { x: [xs], y: [ys] }, [0]);
  };

  Live.prototype.tooLong = function () {
    var data = this.power ? this.power.data || [] : [];
    return data.some(function (t) { return t.x && t.x.length > MAX_POINTS; });
  };

  Live.prototype.refresh = function () {
    // the server's downsampled charts of everything so far, and where to poll on from
    var self = this;
    return fetch("/api/runs/" + encodeURIComponent(self.run) + "/charts", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        self.cursor = data.cursor;
        self.traces = traceIndex(data.devices);
        var steps = [];
        Object.keys(data.charts).forEach(function (id) {
          var div = document.getElementById(id);
          if (div) steps.push(draw(div, data.charts[id]));
        });
        return Promise.all(steps);
      });
  };

  function start() {
    drawAll().then(function () {
      var box = document.getElementById("live");
      if (box && window.Plotly) new Live(box).start();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
