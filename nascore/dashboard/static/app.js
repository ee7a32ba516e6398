/* nascore dashboard: the page of `nascore dashboard` and of `nascore report --html`.
 *
 * Plain JavaScript, no build step. Draws with Apache ECharts (static/vendor/echarts.min.js).
 * Live mode polls /api/experiments/{id}/changes with cursors (the highest trial id and metrics row
 * seen, and the trials that may still change), so a refresh fetches only what changed. Static mode
 * (the HTML report) reads the same answers from window.NASCORE_SETTINGS.data.
 */
(function () {
  "use strict";

  const SETTINGS = window.NASCORE_SETTINGS || { mode: "live", poll_ms: 2000 };
  const LIVE = SETTINGS.mode !== "static";
  const QUERY = new URLSearchParams(location.search);
  const POLL_MS = Number(QUERY.get("poll") || SETTINGS.poll_ms || 2000);
  const PAGE_SIZE = 100;
  const SVG_LIMIT = 4000;     // charts with more points draw on a canvas
  const CURVE_LIMIT = 300;    // intermediate curves drawn at most
  const PARALLEL_LIMIT = 2000; // lines of the parallel-coordinates view at most
  const OPEN = new Set(["WAITING", "RUNNING", "INTERRUPTED"]);
  const STATUSES = ["SUCCEEDED", "FAILED", "RUNNING", "WAITING", "INTERRUPTED"];
  const COLORS = { SUCCEEDED: "#4c72b0", FAILED: "#c44e52", best: "#dd8452" };

  // --- small helpers ----------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const $ = (sel, root) => (root || document).querySelector(sel);
  const isNum = (v) => typeof v === "number" && isFinite(v);
  function fmt(v) {
    if (v === null || v === undefined) return "–";
    if (typeof v === "number") return isFinite(v) ? String(Number(v.toPrecision(6))) : String(v);
    if (typeof v === "string") return v;
    return JSON.stringify(v);
  }
  const valueKey = (v) => (v === undefined ? "(absent)" : typeof v === "string" ? v : JSON.stringify(v));
  function when(ts) {
    if (!ts) return "–";
    const d = new Date(ts * 1000), p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }
  function dur(s) {
    if (!isNum(s)) return "–";
    if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
  }
  const esc = encodeURIComponent;
  const link = (text, hash, attrs) => h("a", Object.assign({ href: "#/" + hash }, attrs || {}), text);

  // --- data access: the live API, or the report's embedded answers ---------------------------------

  async function liveApi(path, body) {
    const init = body ? { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) } : {};
    const response = await fetch("api/" + path, init);
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    return answer;
  }

  function staticApi(data) {
    return async function (path, body) {
      const parts = path.split("/").map(decodeURIComponent);
      if (parts.length === 1) return data.experiments;
      if (parts.length === 2) return data.experiment;
      if (parts[2] === "changes") {
        return body && body.trial ? { trials: [], intermediates: {}, cursor: body, experiment: data.experiment } : data.changes;
      }
      if (parts[2] === "oneshot") return data.oneshot;
      if (parts[2] === "trials") {
        const id = parts[3];
        if (parts[4] === "code") return data.code[id] || { error: "this report holds the generated code of the best trials only; open the live dashboard for the others" };
        const t = S.trials.get(Number(id));
        if (!t) throw new Error("no trial " + id);
        const extra = data.details[id] || {};
        return Object.assign({}, t, {
          intermediates: S.inter.get(t.id) || [], events: null, log_tail: extra.log_tail || null,
          error: extra.error || t.error, code_available: data.experiment.format === "graph",
        });
      }
      throw new Error("not in the report: " + path);
    };
  }

  const api = LIVE ? liveApi : staticApi(SETTINGS.data);

  // --- state ------------------------------------------------------------------------------------

  const S = {
    exps: null, expId: null, exp: null, trials: new Map(), inter: new Map(),
    cursor: { trial: 0, metric: 0 }, loaded: false, loading: null, version: 0,
    sort: { key: "id", dir: 1 }, filter: "ALL", page: 0, selected: [], historyMetric: "default",
    lastOk: null, lastError: null, poll: null,
  };

  function resetExperiment(id) {
    S.expId = id; S.exp = null; S.trials = new Map(); S.inter = new Map(); S.cursor = { trial: 0, metric: 0 };
    S.loaded = false; S.loading = null; S.page = 0; S.selected = []; S.historyMetric = "default";
  }

  function merge(answer) {
    for (const t of answer.trials) {
      const old = S.trials.get(t.id);
      if (old && old.attempt !== t.attempt) S.inter.delete(t.id);
      S.trials.set(t.id, t);
    }
    for (const [id, values] of Object.entries(answer.intermediates || {})) S.inter.set(Number(id), values);
    S.cursor = answer.cursor;
    S.exp = answer.experiment;
    return answer.trials.length > 0;
  }

  async function loadExperiment(id) {
    if (S.expId !== id) resetExperiment(id);
    if (S.loaded) return;
    if (!S.loading) {
      S.loading = (async () => {
        const t0 = performance.now();
        const answer = await api("experiments/" + esc(id) + "/changes", { trial: 0, metric: 0, open: [] });
        if (S.expId !== id) return;
        merge(answer);
        S.loaded = true; S.version++;
        S.lastOk = Date.now();
        window.NASCORE_TIMING = Object.assign(window.NASCORE_TIMING || {}, { first_fetch_ms: performance.now() - t0, trials: S.trials.size });
      })();
    }
    await S.loading;
  }

  async function poll() {
    const r = route();
    try {
      if (r.exp) {
        await loadExperiment(r.exp);
        const open = [];
        for (const t of S.trials.values()) if (OPEN.has(t.status)) open.push(t.id);
        const t0 = performance.now();
        const answer = await api("experiments/" + esc(r.exp) + "/changes", { trial: S.cursor.trial, metric: S.cursor.metric, open });
        if (S.expId !== r.exp) return;
        const fetched = performance.now();
        const statusBefore = S.exp && S.exp.status;
        const changed = merge(answer) || (S.exp && S.exp.status !== statusBefore);
        S.lastOk = Date.now(); S.lastError = null;
        if (changed) {
          S.version++;
          update();
          window.NASCORE_TIMING = Object.assign(window.NASCORE_TIMING || {}, {
            refresh_fetch_ms: fetched - t0, refresh_render_ms: performance.now() - fetched, refresh_trials: answer.trials.length,
          });
        }
      } else {
        // Redraw only when the list changed, as for an experiment: an identical table replacing the one
        // shown would drop a row under the pointer, or a selection of its text.
        const rows = await api("experiments");
        const changed = JSON.stringify(rows) !== JSON.stringify(S.exps);
        S.exps = rows;
        S.lastOk = Date.now(); S.lastError = null;
        if (changed) update();
      }
    } catch (err) {
      S.lastError = String(err.message || err);
    }
    showLive();
  }

  function schedulePolling() {
    if (!LIVE) return;
    const loop = async () => {
      await poll();
      S.poll = setTimeout(loop, POLL_MS);
    };
    S.poll = setTimeout(loop, POLL_MS);
  }

  function showLive() {
    const el = $("#live");
    if (!LIVE) {
      el.textContent = "report written " + when(SETTINGS.data && SETTINGS.data.generated);
      return;
    }
    el.classList.toggle("stale", !!S.lastError);
    el.textContent = S.lastError ? "not updating: " + S.lastError
      : S.lastOk ? "live · updated " + when(S.lastOk / 1000).slice(11) : "live";
  }

  // --- derived data -------------------------------------------------------------------------------

  function trialList() { return Array.from(S.trials.values()); }
  const maximize = () => !S.exp || S.exp.optimize_mode !== "minimize";

  function metricNames(trials) {
    const names = [];
    for (const t of trials) {
      for (const [k, v] of Object.entries(t.metrics || {})) if (k !== "default" && isNum(v) && !names.includes(k)) names.push(k);
    }
    return names;
  }

  function decisionLabels(trials) {
    const labels = (S.exp && S.exp.space || []).map((row) => row[0]);
    for (const t of trials) for (const k of Object.keys(t.sample || {})) if (!labels.includes(k)) labels.push(k);
    return labels;
  }

  function metricOf(t, name) {
    if (t.status !== "SUCCEEDED") return null;
    if (name === "default") return isNum(t.metric) ? t.metric : null;
    const v = (t.metrics || {})[name];
    return isNum(v) ? v : null;
  }

  function bestTrial(trials) {
    let best = null;
    for (const t of trials) {
      if (t.status !== "SUCCEEDED" || !isNum(t.metric)) continue;
      if (!best || (maximize() ? t.metric > best.metric : t.metric < best.metric)) best = t;
    }
    return best;
  }

  function quantile(sorted, q) {
    const pos = (sorted.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
  }

  // --- charts -------------------------------------------------------------------------------------

  function draw(el, option, points) {
    const renderer = points > SVG_LIMIT ? "canvas" : "svg";
    let chart = echarts.getInstanceByDom(el);
    if (chart && el.dataset.renderer !== renderer) { chart.dispose(); chart = null; }
    if (!chart) chart = echarts.init(el, null, { renderer });
    chart.setOption(Object.assign({ animation: false }, option), true);
    el.dataset.renderer = renderer;
    el.dataset.points = String(points);
    return chart;
  }

  function disposeCharts(root) {
    root.querySelectorAll(".chart").forEach((el) => { const c = echarts.getInstanceByDom(el); if (c) c.dispose(); });
  }

  window.addEventListener("resize", () => {
    document.querySelectorAll(".chart").forEach((el) => { const c = echarts.getInstanceByDom(el); if (c) c.resize(); });
  });

  // --- views --------------------------------------------------------------------------------------

  const VIEWS = {};

  VIEWS.list = {
    title: "Experiments",
    build(root) {
      root.appendChild(h("h2", { text: "Experiments" }));
      root.appendChild(h("p", { class: "muted", text: LIVE ? "in " + (SETTINGS.experiment_dir || "") : "" }));
      root.appendChild(h("div", { id: "experiments" }));
      if (!S.exps) api("experiments").then((rows) => { S.exps = rows; update(); }, showError);
      else this.update();
    },
    update() {
      const box = $("#experiments");
      if (!box || !S.exps) return;
      box.innerHTML = "";
      if (!S.exps.length) { box.appendChild(h("p", { class: "muted", text: "No experiments yet." })); return; }
      const rows = S.exps.map((e) => e.error
        ? h("tr", {}, h("td", {}, e.id), h("td", { colspan: 6, class: "error", text: e.error }))
        : h("tr", { class: "row", dataset: { id: e.id }, onclick: () => { location.hash = "#/exp/" + esc(e.id) + "/overview"; } },
          h("td", {}, link(e.id, "exp/" + esc(e.id) + "/overview")), h("td", { text: e.name || "–" }),
          h("td", {}, h("span", { class: "status status-" + e.status, text: e.status })),
          h("td", { text: e.strategy || "–" }),
          h("td", { class: "num", text: `${e.trials} (${e.succeeded} ok, ${e.failed} failed)` }),
          h("td", { class: "num", text: fmt(e.best) }), h("td", { text: when(e.created) })));
      box.appendChild(h("table", { id: "experiments-table" },
        h("thead", {}, h("tr", {}, ["ID", "Name", "Status", "Strategy", "Trials", "Best", "Created"].map((c) => h("th", { text: c })))),
        h("tbody", {}, rows)));
    },
  };

  VIEWS.overview = {
    title: "Overview",
    build(root) { root.appendChild(h("div", { id: "overview" })); this.update(); },
    update() {
      const box = $("#overview"), e = S.exp;
      if (!box || !e) return;
      box.innerHTML = "";
      const trials = trialList(), counts = e.counts || {};
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      const best = bestTrial(trials);
      const maxTrials = e.budget && e.budget.max_trials;
      const maxDuration = e.budget && e.budget.max_duration;
      box.appendChild(h("h2", {}, "Experiment " + e.id + (e.name ? " (" + e.name + ")" : "")));
      const card = (label, big, extra) => h("div", { class: "card" }, h("div", { class: "muted", text: label }), h("div", { class: "big" }, big), extra || null);
      const bar = (fraction) => h("div", { class: "bar" }, h("span", { style: "width:" + Math.min(100, 100 * fraction).toFixed(1) + "%" }));
      box.appendChild(h("div", { class: "cards" },
        card("Status", h("span", { id: "exp-status", class: "status status-" + e.status, text: e.status }),
          e.status === "DEAD" ? h("div", { class: "muted", text: "recorded RUNNING but no process runs it: resume it" }) : null),
        card("Trials", h("span", { id: "exp-trials", text: maxTrials ? `${total} / ${maxTrials}` : String(total) }), maxTrials ? bar(total / maxTrials) : null),
        card("Time", dur(e.elapsed), maxDuration ? h("div", {}, h("div", { class: "muted", text: "budget " + dur(Number(maxDuration)) }), bar((e.elapsed || 0) / Number(maxDuration))) : null),
        card("Best " + (maximize() ? "(max)" : "(min)"), best ? fmt(best.metric) : "–",
          best ? h("div", { class: "muted" }, link("trial " + best.id, "exp/" + esc(e.id) + "/trial/" + best.id)) : null)));
      box.appendChild(h("h3", { text: "Trials by status" }));
      box.appendChild(h("dl", { class: "kv" }, STATUSES.filter((s) => counts[s]).map((s) => [h("dt", {}, h("span", { class: "status status-" + s, text: s })), h("dd", { text: String(counts[s]) })])));
      box.appendChild(h("h3", { text: "Run" }));
      const strategy = e.strategy || {};
      const config = e.config || {};
      box.appendChild(h("dl", { class: "kv" },
        [["strategy", strategy.name || strategy.class || "–"], ["engine", config.engine], ["format", config.format],
          ["optimize", e.optimize_mode], ["created", when(e.created)], ["last heartbeat", when(e.heartbeat)],
          ["path", e.path]].map(([k, v]) => [h("dt", { text: k }), h("dd", { text: fmt(v === undefined ? null : v) })])));
      if (best) {
        box.appendChild(h("h3", { text: "Best architecture (trial " + best.id + ")" }));
        box.appendChild(h("pre", { text: JSON.stringify(best.sample, null, 2) }));
      }
      if ((e.space || []).length) {
        box.appendChild(h("h3", { text: "Search space" }));
        box.appendChild(h("table", {}, h("thead", {}, h("tr", {}, h("th", { text: "decision" }), h("th", { text: "values" }))),
          h("tbody", {}, e.space.map((row) => h("tr", {}, h("td", { text: row[0] }), h("td", { class: "sample", text: row.slice(1).join(" ") }))))));
      }
      box.appendChild(h("h3", { text: "Configuration" }));
      box.appendChild(h("pre", { id: "exp-config", text: JSON.stringify(config, null, 2) }));
    },
  };

  function sortValue(t, key) {
    if (key === "id") return t.id;
    if (key === "status") return t.status;
    if (key === "metric") return isNum(t.metric) ? t.metric : null;
    if (key === "duration") return isNum(t.duration) ? t.duration : null;
    if (key === "attempt") return t.attempt;
    if (key === "sample") return JSON.stringify(t.sample);
    if (key === "error") return t.error || null;
    if (key.startsWith("m:")) { const v = (t.metrics || {})[key.slice(2)]; return isNum(v) ? v : null; }
    return null;
  }

  VIEWS.trials = {
    title: "Trials",
    build(root) {
      const filter = h("select", { id: "status-filter", onchange: (ev) => { S.filter = ev.target.value; S.page = 0; this.update(); } },
        ["ALL", ...STATUSES].map((s) => h("option", { value: s, selected: s === S.filter }, s === "ALL" ? "all statuses" : s)));
      root.appendChild(h("div", { class: "controls" },
        h("label", {}, "Show ", filter),
        h("span", { id: "trial-count", class: "muted" }),
        h("button", { id: "prev-page", onclick: () => { S.page = Math.max(0, S.page - 1); this.update(); } }, "‹ previous"),
        h("span", { id: "page-info", class: "muted" }),
        h("button", { id: "next-page", onclick: () => { S.page += 1; this.update(); } }, "next ›"),
        h("button", { id: "compare-button", onclick: () => { if (S.selected.length === 2) location.hash = `#/exp/${esc(S.expId)}/compare/${S.selected[0]}/${S.selected[1]}`; } }, "compare 2 selected")));
      root.appendChild(h("div", { id: "trials-box" }));
      this.update();
    },
    update() {
      const box = $("#trials-box");
      if (!box) return;
      const all = trialList();
      const shown = S.filter === "ALL" ? all : all.filter((t) => t.status === S.filter);
      const { key, dir } = S.sort;
      shown.sort((a, b) => {
        const x = sortValue(a, key), y = sortValue(b, key);
        if (x === y) return a.id - b.id;
        if (x === null) return 1;
        if (y === null) return -1;
        return (x < y ? -1 : 1) * dir;
      });
      const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
      S.page = Math.min(S.page, pages - 1);
      const rows = shown.slice(S.page * PAGE_SIZE, (S.page + 1) * PAGE_SIZE);
      $("#trial-count").textContent = `${shown.length} of ${all.length} trials`;
      $("#page-info").textContent = `page ${S.page + 1} / ${pages}`;
      $("#prev-page").disabled = S.page === 0;
      $("#next-page").disabled = S.page >= pages - 1;
      $("#compare-button").disabled = S.selected.length !== 2;
      const extra = metricNames(all);
      const columns = [["", null], ["ID", "id"], ["Status", "status"], ["Metric", "metric"], ...extra.map((n) => [n, "m:" + n]),
        ["Duration", "duration"], ["Attempt", "attempt"], ["Architecture", "sample"], ["Error", "error"]];
      const head = h("tr", {}, columns.map(([label, k]) => h("th", {
        class: k ? "sortable" + (k === key ? (dir > 0 ? " sorted-asc" : " sorted-desc") : "") : null,
        dataset: k ? { key: k } : {},
        onclick: k ? () => { S.sort = { key: k, dir: S.sort.key === k ? -S.sort.dir : (k === "metric" || k.startsWith("m:") ? (maximize() ? -1 : 1) : 1) }; this.update(); } : null,
      }, label)));
      const body = rows.map((t) => {
        const open = () => { location.hash = `#/exp/${esc(S.expId)}/trial/${t.id}`; };
        const check = h("input", {
          type: "checkbox", class: "pick", checked: S.selected.includes(t.id),
          onclick: (ev) => {
            ev.stopPropagation();
            S.selected = ev.target.checked ? [...S.selected.filter((i) => i !== t.id), t.id].slice(-2) : S.selected.filter((i) => i !== t.id);
            this.update();
          },
        });
        return h("tr", { class: "row", dataset: { id: t.id, status: t.status }, onclick: open },
          h("td", {}, check), h("td", { class: "num" }, t.id),
          h("td", {}, h("span", { class: "status status-" + t.status, text: t.status })),
          h("td", { class: "num metric", text: fmt(t.metric) }),
          extra.map((n) => h("td", { class: "num", text: fmt((t.metrics || {})[n]) })),
          h("td", { class: "num", text: dur(t.duration) }), h("td", { class: "num", text: String(t.attempt) }),
          h("td", { class: "sample", title: JSON.stringify(t.sample), text: JSON.stringify(t.sample) }),
          h("td", { class: "error", title: t.error || "", text: t.status === "FAILED" || t.status === "INTERRUPTED" ? (t.error || "") : "" }));
      });
      box.innerHTML = "";
      box.appendChild(h("table", { id: "trials-table" }, h("thead", {}, head), h("tbody", {}, body)));
    },
  };

  VIEWS.history = {
    title: "History",
    build(root) {
      root.appendChild(h("div", { class: "controls" }, h("label", {}, "Metric ", h("select", { id: "history-metric", onchange: (ev) => { S.historyMetric = ev.target.value; this.update(); } }))));
      root.appendChild(h("div", { id: "history-chart", class: "chart" }));
      this.update();
    },
    update() {
      const el = $("#history-chart");
      if (!el || !S.exp) return;
      const trials = trialList().sort((a, b) => a.id - b.id);
      const names = ["default", ...metricNames(trials)];
      const select = $("#history-metric");
      if (select.options.length !== names.length) {
        select.innerHTML = "";
        names.forEach((n) => select.appendChild(h("option", { value: n, selected: n === S.historyMetric }, n === "default" ? "metric (default)" : n)));
      }
      const name = names.includes(S.historyMetric) ? S.historyMetric : "default";
      const points = [], failed = [], best = [];
      let current = null;
      for (const t of trials) {
        const v = metricOf(t, name);
        if (v !== null) {
          points.push([t.id, v]);
          if (name === "default") {
            current = current === null ? v : maximize() ? Math.max(current, v) : Math.min(current, v);
            best.push([t.id, current]);
          }
        } else if (t.status === "FAILED") failed.push(t.id);
      }
      const values = points.map((p) => p[1]);
      const low = values.length ? Math.min(...values) : 0;
      draw(el, {
        title: { text: `${name === "default" ? "metric" : name} of each trial` + (name === "default" ? " and the best so far" : ""), left: "center", textStyle: { fontSize: 14 } },
        tooltip: { trigger: "item", formatter: (p) => (p.seriesName === "failed" ? `trial ${p.value[0]} failed` : `trial ${p.value[0]}: ${fmt(p.value[1])}`) },
        legend: { top: 26 }, grid: { top: 60, left: 60, right: 30, bottom: 70 },
        xAxis: { type: "value", name: "trial", nameLocation: "middle", nameGap: 28, minInterval: 1 },
        yAxis: { type: "value", name: name === "default" ? "metric" : name, scale: true },
        dataZoom: [{ type: "inside" }, { type: "slider", height: 18, bottom: 8 }],
        series: [
          { name: "trial", type: "scatter", symbolSize: 6, itemStyle: { color: COLORS.SUCCEEDED, opacity: 0.65 }, data: points, large: points.length > SVG_LIMIT },
          { name: "best so far", type: "line", step: "end", showSymbol: false, lineStyle: { color: COLORS.best, width: 2 }, itemStyle: { color: COLORS.best }, data: best },
          { name: "failed", type: "scatter", symbol: "triangle", symbolSize: 7, itemStyle: { color: COLORS.FAILED }, data: failed.map((id) => [id, low]) },
        ],
      }, points.length + failed.length);
    },
  };

  VIEWS.curves = {
    title: "Intermediates",
    build(root) {
      root.appendChild(h("p", { id: "curves-note", class: "muted" }));
      root.appendChild(h("div", { id: "curves-chart", class: "chart" }));
      this.update();
    },
    update() {
      const el = $("#curves-chart");
      if (!el) return;
      let ids = Array.from(S.inter.keys()).filter((id) => (S.inter.get(id) || []).length).sort((a, b) => a - b);
      const total = ids.length;
      if (ids.length > CURVE_LIMIT) {
        const trials = ids.map((id) => S.trials.get(id)).filter(Boolean);
        const ranked = trials.filter((t) => isNum(t.metric)).sort((a, b) => (maximize() ? b.metric - a.metric : a.metric - b.metric)).slice(0, CURVE_LIMIT / 2).map((t) => t.id);
        const recent = ids.slice(-CURVE_LIMIT / 2);
        ids = Array.from(new Set([...ranked, ...recent])).sort((a, b) => a - b);
      }
      $("#curves-note").textContent = total ? `Intermediate results of ${ids.length} of ${total} trials` + (total > ids.length ? ` (the ${CURVE_LIMIT / 2} best and the ${CURVE_LIMIT / 2} latest)` : "") + "; each line is a trial."
        : "No trial reported intermediate results (nascore.report_intermediate_result).";
      let points = 0;
      const series = ids.map((id) => {
        const t = S.trials.get(id) || { status: "?" };
        const values = S.inter.get(id);
        points += values.length;
        return {
          name: "trial " + id, type: "line", showSymbol: values.length < 30, symbolSize: 4, data: values.map((v, i) => [i + 1, v]),
          lineStyle: { width: 1.2, opacity: 0.8, color: t.status === "FAILED" ? COLORS.FAILED : t.status === "RUNNING" ? "#9a6700" : undefined },
        };
      });
      draw(el, {
        title: { text: "intermediate results", left: "center", textStyle: { fontSize: 14 } },
        tooltip: { trigger: "item", formatter: (p) => `${p.seriesName}, step ${p.value[0]}: ${fmt(p.value[1])}` },
        grid: { top: 40, left: 60, right: 30, bottom: 50 },
        xAxis: { type: "value", name: "step", nameLocation: "middle", nameGap: 28, minInterval: 1 },
        yAxis: { type: "value", scale: true }, series,
      }, points);
    },
  };

  VIEWS.decisions = {
    title: "Decisions",
    build(root) {
      root.appendChild(h("p", { class: "muted", text: "The metric of the successful trials for each value of each decision (box and points), and every trial across all decisions (parallel coordinates)." }));
      root.appendChild(h("h3", { text: "Parallel coordinates" }));
      root.appendChild(h("div", { id: "parallel-chart", class: "chart" }));
      root.appendChild(h("h3", { text: "Per decision" }));
      root.appendChild(h("div", { id: "decision-charts", class: "grid" }));
      this.update();
    },
    update() {
      const box = $("#decision-charts");
      if (!box) return;
      const trials = trialList().filter((t) => t.status === "SUCCEEDED" && isNum(t.metric));
      const labels = decisionLabels(trialList());
      // one box/strip chart per decision
      labels.forEach((label, index) => {
        let el = box.querySelector(`[data-label="${CSS.escape(label)}"] .chart`);
        if (!el) {
          el = h("div", { class: "chart small decision-chart", id: "decision-" + index });
          box.appendChild(h("div", { class: "panel", dataset: { label } }, h("h3", { text: label }), el));
        }
        const groups = new Map();
        for (const t of trials) {
          const k = valueKey((t.sample || {})[label]);
          if (!groups.has(k)) groups.set(k, []);
          groups.get(k).push(t);
        }
        const cats = Array.from(groups.keys()).sort((a, b) => (isNaN(a) || isNaN(b) ? a.localeCompare(b) : Number(a) - Number(b)));
        const boxes = cats.map((k) => {
          const v = groups.get(k).map((t) => t.metric).sort((a, b) => a - b);
          return [v[0], quantile(v, 0.25), quantile(v, 0.5), quantile(v, 0.75), v[v.length - 1]];
        });
        const strip = [];
        cats.forEach((k, i) => groups.get(k).forEach((t) => strip.push({ value: [i, t.metric], trial: t.id })));
        draw(el, {
          tooltip: { trigger: "item", formatter: (p) => (p.seriesType === "boxplot" ? `${p.name}: median ${fmt(p.value[3])} (${groups.get(p.name).length} trials)` : `trial ${p.data.trial}: ${fmt(p.value[1])}`) },
          grid: { top: 16, left: 60, right: 16, bottom: 40 },
          xAxis: { type: "category", data: cats, axisLabel: { interval: 0, rotate: cats.length > 6 ? 30 : 0 } },
          yAxis: { type: "value", scale: true, name: "metric" },
          series: [
            { type: "boxplot", data: boxes, itemStyle: { color: "#dce6f2", borderColor: COLORS.SUCCEEDED } },
            { type: "scatter", data: strip, symbolSize: 5, itemStyle: { color: COLORS.best, opacity: 0.5 } },
          ],
        }, strip.length + boxes.length);
      });
      // parallel coordinates
      let lines = trials;
      if (lines.length > PARALLEL_LIMIT) lines = lines.slice(-PARALLEL_LIMIT);
      const axes = labels.map((label, i) => {
        const cats = Array.from(new Set(lines.map((t) => valueKey((t.sample || {})[label])))).sort((a, b) => (isNaN(a) || isNaN(b) ? a.localeCompare(b) : Number(a) - Number(b)));
        return { dim: i, name: label, type: "category", data: cats };
      });
      const metrics = lines.map((t) => t.metric);
      axes.push({ dim: labels.length, name: "metric", type: "value", scale: true });
      const data = lines.map((t) => [...labels.map((l) => valueKey((t.sample || {})[l])), t.metric]);
      const el = $("#parallel-chart");
      draw(el, {
        parallelAxis: axes, parallel: { left: 60, right: 90, top: 40, bottom: 30 },
        visualMap: metrics.length ? { type: "continuous", dimension: labels.length, min: Math.min(...metrics), max: Math.max(...metrics), right: 0, top: "middle", calculable: true, precision: 3, inRange: { color: ["#c6dbef", "#08306b"] } } : undefined,
        series: [{ type: "parallel", data, lineStyle: { width: 1, opacity: 0.5 }, smooth: false }],
      }, data.length);
    },
  };

  async function showTrial(root, id) {
    const t = await api(`experiments/${esc(S.expId)}/trials/${id}`);
    const box = h("div", { id: "trial-view", dataset: { id: t.id } });
    box.appendChild(h("h2", {}, `Trial ${t.id} `, h("span", { class: "status status-" + t.status, text: t.status })));
    box.appendChild(h("div", { class: "controls" },
      h("label", {}, "Compare with trial ", h("input", { id: "compare-with", type: "number", min: 1, style: "width:7em" })),
      h("button", { onclick: () => { const other = $("#compare-with").value; if (other) location.hash = `#/exp/${esc(S.expId)}/compare/${t.id}/${other}`; } }, "compare")));
    box.appendChild(h("dl", { class: "kv" },
      [["metric", fmt(t.metric)], ...Object.entries(t.metrics || {}).filter(([k]) => k !== "default").map(([k, v]) => [k, fmt(v)]),
        ["submitted", when(t.submitted)], ["started", when(t.started)], ["ended", when(t.ended)], ["duration", dur(t.duration)],
        ["attempt", String(t.attempt)]].map(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })])));
    box.appendChild(h("h3", { text: "Architecture" }));
    box.appendChild(h("table", { id: "trial-sample" }, h("tbody", {}, Object.entries(t.sample || {}).map(([k, v]) => h("tr", {}, h("td", { text: k }), h("td", { class: "sample", text: fmt(v) }))))));
    if (t.error) {
      box.appendChild(h("h3", { text: "Error" }));
      box.appendChild(h("pre", { id: "trial-error", class: "error", text: t.error }));
    }
    if (t.log_tail) {
      box.appendChild(h("h3", { text: `Last lines of the log` + (t.log_path ? ` (${t.log_path})` : "") }));
      box.appendChild(h("pre", { id: "trial-log", text: t.log_tail }));
    }
    if ((t.intermediates || []).length) {
      box.appendChild(h("h3", { text: "Intermediate results" }));
      box.appendChild(h("div", { id: "trial-curve", class: "chart small" }));
    }
    if (t.code_available) {
      box.appendChild(h("h3", { text: "Generated code (graph format)" }));
      const pre = h("pre", { id: "trial-code", text: "generating…" });
      box.appendChild(pre);
      api(`experiments/${esc(S.expId)}/trials/${t.id}/code`).then((c) => { pre.textContent = c.code || c.error; pre.classList.toggle("error", !c.code); },
        (err) => { pre.textContent = String(err.message || err); });
    }
    root.appendChild(box);
    const curve = $("#trial-curve");
    if (curve) {
      draw(curve, {
        grid: { top: 16, left: 60, right: 16, bottom: 36 }, tooltip: { trigger: "axis" },
        xAxis: { type: "value", name: "step", minInterval: 1 }, yAxis: { type: "value", scale: true },
        series: [{ type: "line", data: t.intermediates.map((v, i) => [i + 1, v]) }],
      }, t.intermediates.length);
    }
  }

  VIEWS.trial = {
    title: "Trial",
    build(root, r) {
      const id = Number(r.args[0]);
      if (!id) { root.appendChild(h("p", { class: "muted", text: "Pick a trial in the Trials view (click its row)." })); return; }
      showTrial(root, id).catch(showError);
    },
  };

  function lineDiff(a, b) {
    const x = a.split("\n"), y = b.split("\n");
    if (x.length * y.length > 4e6) return [["!", "the code is too long to compare here"]];
    const n = x.length, m = y.length, dp = Array.from({ length: n + 1 }, () => new Int32Array(m + 1));
    for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) dp[i][j] = x[i] === y[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
    const out = [];
    let i = 0, j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && x[i] === y[j]) { out.push([" ", x[i]]); i++; j++; }
      else if (i < n && (j >= m || dp[i + 1][j] >= dp[i][j + 1])) { out.push(["-", x[i]]); i++; }
      else { out.push(["+", y[j]]); j++; }
    }
    return out;
  }

  VIEWS.compare = {
    title: "Compare",
    build(root, r) {
      const [a, b] = r.args.map(Number);
      if (!a || !b) {
        root.appendChild(h("p", { class: "muted", text: "Tick two trials in the Trials view and press “compare 2 selected”, or open a trial and compare it with another." }));
        return;
      }
      Promise.all([a, b].map((id) => api(`experiments/${esc(S.expId)}/trials/${id}`))).then(([ta, tb]) => {
        const box = h("div", { id: "compare-view" });
        box.appendChild(h("h2", { text: `Trial ${ta.id} and trial ${tb.id}` }));
        const labels = Array.from(new Set([...Object.keys(ta.sample || {}), ...Object.keys(tb.sample || {})]));
        const metricKeys = Array.from(new Set([...Object.keys(ta.metrics || {}), ...Object.keys(tb.metrics || {})]));
        const row = (k, va, vb) => h("tr", { class: valueKey(va) !== valueKey(vb) ? "diff" : null }, h("td", { text: k }), h("td", { class: "sample", text: fmt(va) }), h("td", { class: "sample", text: fmt(vb) }));
        const differing = labels.filter((k) => valueKey((ta.sample || {})[k]) !== valueKey((tb.sample || {})[k])).length;
        box.appendChild(h("p", { id: "compare-summary", class: "muted", text: `${differing} of ${labels.length} decisions differ (highlighted).` }));
        box.appendChild(h("table", { id: "compare-table" },
          h("thead", {}, h("tr", {}, h("th", { text: "" }), h("th", {}, link(`trial ${ta.id}`, `exp/${esc(S.expId)}/trial/${ta.id}`)), h("th", {}, link(`trial ${tb.id}`, `exp/${esc(S.expId)}/trial/${tb.id}`)))),
          h("tbody", {}, row("status", ta.status, tb.status), row("metric", ta.metric, tb.metric),
            metricKeys.filter((k) => k !== "default").map((k) => row(k, (ta.metrics || {})[k], (tb.metrics || {})[k])),
            row("duration", dur(ta.duration), dur(tb.duration)), labels.map((k) => row(k, (ta.sample || {})[k], (tb.sample || {})[k])))));
        root.appendChild(box);
        if (ta.code_available) {
          box.appendChild(h("h3", { text: "Generated code: what changes from the first to the second" }));
          const pre = h("pre", { id: "code-diff", text: "generating…" });
          box.appendChild(pre);
          Promise.all([ta.id, tb.id].map((id) => api(`experiments/${esc(S.expId)}/trials/${id}/code`))).then(([ca, cb]) => {
            if (!ca.code || !cb.code) { pre.textContent = ca.error || cb.error; return; }
            pre.textContent = "";
            for (const [mark, text] of lineDiff(ca.code, cb.code)) pre.appendChild(h("span", { class: mark === "+" ? "add" : mark === "-" ? "del" : null, text: mark + " " + text + "\n" }));
          }, showError);
        }
      }, showError);
    },
  };

  VIEWS.oneshot = {
    title: "One-shot",
    build(root) {
      const box = h("div", { id: "oneshot-view" });
      root.appendChild(box);
      api(`experiments/${esc(S.expId)}/oneshot`).then((o) => {
        const history = o.history;
        box.appendChild(h("h2", { text: "Architecture weights over training" }));
        if (!history || history.error || !(history.points || []).length) {
          box.appendChild(h("p", { class: "muted", text: history && history.error ? history.error
            : "No architecture weights were recorded: the strategy is not a one-shot strategy with architecture weights (DARTS, GumbelDARTS, Proxyless record them; ENAS and RandomOneShot sample paths instead)." }));
        } else {
          box.appendChild(h("p", { class: "muted", text: `${history.strategy || ""}: the probability of each value of each decision (softmax of its architecture weights), over ${history.points.length} points of training.` }));
          const grid = h("div", { class: "grid", id: "alpha-charts" });
          box.appendChild(grid);
          Object.entries(history.values || {}).forEach(([label, values], index) => {
            const el = h("div", { class: "chart small alpha-chart", id: "alpha-" + index });
            grid.appendChild(h("div", { class: "panel" }, h("h3", { text: label }), el));
            const series = values.map((v, i) => ({
              name: valueKey(v), type: "line", showSymbol: history.points.length < 40,
              data: history.points.filter((p) => p.probs[label]).map((p) => [p.step, p.probs[label][i]]),
            }));
            draw(el, {
              tooltip: { trigger: "axis" }, legend: { type: "scroll", top: 0 }, grid: { top: 30, left: 50, right: 16, bottom: 36 },
              xAxis: { type: "value", name: "step", minInterval: 1 }, yAxis: { type: "value", min: 0, max: 1, name: "probability" }, series,
            }, series.reduce((n, s) => n + s.data.length, 0));
          });
        }
        box.appendChild(h("h3", { text: "Exported architectures" }));
        const exported = o.exported || [];
        if (!exported.length) { box.appendChild(h("p", { class: "muted", text: "None recorded (exported architectures are a one-shot strategy's result)." })); return; }
        const byKey = new Map(trialList().map((t) => [JSON.stringify(t.sample), t]));
        box.appendChild(h("table", { id: "exported-table" },
          h("thead", {}, h("tr", {}, ["Rank", "Architecture", "Trial", "Metric"].map((c) => h("th", { text: c })))),
          h("tbody", {}, exported.map((s, i) => {
            const t = byKey.get(JSON.stringify(s));
            return h("tr", {}, h("td", { class: "num", text: String(i + 1) }), h("td", { class: "sample", text: JSON.stringify(s) }),
              h("td", {}, t ? link(String(t.id), `exp/${esc(S.expId)}/trial/${t.id}`) : "–"), h("td", { class: "num", text: t ? fmt(t.metric) : "–" }));
          }))));
      }, showError);
    },
  };

  // --- routing and rendering ------------------------------------------------------------------------

  const TABS = ["overview", "trials", "history", "curves", "decisions", "trial", "compare", "oneshot"];

  function route() {
    const parts = location.hash.replace(/^#\/?/, "").split("/").filter((p) => p !== "");
    if (parts[0] !== "exp" || !parts[1]) return { view: "list", key: "list" };
    const view = VIEWS[parts[2]] ? parts[2] : "overview";
    return { view, exp: decodeURIComponent(parts[1]), args: parts.slice(3), key: parts.slice(0, 3).concat(parts.slice(3)).join("/") };
  }

  let shownKey = null;

  function showError(err) {
    const root = $("#app");
    root.appendChild(h("pre", { class: "error load-error", text: String((err && err.message) || err) }));
  }

  async function render() {
    const r = route();
    const root = $("#app");
    const tabs = $("#tabs"), crumbs = $("#crumbs");
    tabs.innerHTML = "";
    crumbs.innerHTML = "";
    if (r.exp) {
      crumbs.appendChild(link("experiments", ""));
      crumbs.appendChild(document.createTextNode(" / " + r.exp));
      for (const v of TABS) {
        if (v === "oneshot" && S.exp && !S.exp.architecture_history && !(S.exp.exported || []).length) continue;
        tabs.appendChild(link(VIEWS[v].title, `exp/${esc(r.exp)}/${v}`, { class: v === r.view ? "active" : null, id: "tab-" + v }));
      }
    }
    if (r.key === shownKey) { update(); return; }
    shownKey = r.key;
    disposeCharts(root);
    root.innerHTML = "";
    try {
      if (r.exp) {
        if (S.expId !== r.exp || !S.loaded) root.appendChild(h("p", { class: "muted", text: "Loading…" }));
        await loadExperiment(r.exp);
        if (route().key !== r.key) return;
        root.innerHTML = "";
        if (!tabs.querySelector("#tab-oneshot") && (S.exp.architecture_history || (S.exp.exported || []).length)) { shownKey = null; return render(); }
      }
      VIEWS[r.view].build(root, r);
      document.body.dataset.view = r.view;
      document.body.dataset.trials = String(S.trials.size);
      document.body.dataset.ready = "1";
      window.NASCORE_TIMING = Object.assign(window.NASCORE_TIMING || {}, { rendered_ms: performance.now() });
    } catch (err) {
      root.innerHTML = "";
      showError(err);
    }
    showLive();
  }

  function update() {
    const r = route();
    if (r.key !== shownKey) return;
    const view = VIEWS[r.view];
    if (view.update && (r.view === "list" || S.loaded)) {
      try { view.update(r); } catch (err) { console.error(err); }
    }
    document.body.dataset.version = String(S.version);
    document.body.dataset.trials = String(S.trials.size);
  }

  window.addEventListener("hashchange", render);
  window.NASCORE_STATE = S;
  if (!location.hash && SETTINGS.experiment) location.hash = "#/exp/" + esc(SETTINGS.experiment) + "/overview";
  render().then(() => { showLive(); schedulePolling(); });
})();
