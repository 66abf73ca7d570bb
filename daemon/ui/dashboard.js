/*
 * quorumd node dashboard: the page code of GET /ui (daemon/ui/dashboard.ts serves it).
 *
 * Reads the node's API with the token the user typed (kept in sessionStorage, sent as
 * `Authorization: Bearer`): /v1/status and /v1/leader every second, /metrics every two
 * seconds, /v1/keys, /v1/locks (the first 200 of each under a prefix) and /v1/jobs
 * every three; a watched key is a long poll (GET /v1/kv/<key>?watch=<index>), its log
 * the last 50 changes. Nothing is written: the page has no operator actions. Names and
 * values from the cluster go into the page as text, never HTML, with invisible and
 * bidirectional control characters shown as marked codes (text.js).
 *
 * "Roles over time" is one lane per member, drawn with the lanes renderer (lanes.js on
 * uPlot), from what this node saw since the page opened:
 *   this node       its own role (follower, pre-candidate, candidate, leader), or
 *                   "unreachable" while the page cannot reach it;
 *   other members   "leader" while this node names it leader; "follower" when this node
 *                   leads and replicates to it; else "heard" (an authenticated message
 *                   arrived within the last 3 s: alive, role not known here — Raft
 *                   followers talk to the leader, not to each other) or "not heard";
 *                   "fenced" once a fence cut its power (or an operator confirmed it
 *                   down), until a message from it arrives after the fence; "unknown"
 *                   while the page cannot reach this node (not the role it had then).
 * Term changes are lines across every lane, fences are flags on the fenced member's lane.
 * While this node does not answer, everything shown from its last answer is greyed out.
 *
 * Plain ES2019 in one function, no build step; `window.quorumdDashboard` exposes the
 * state and the lanes chart (the browser test reads them).
 */
(function () {
  'use strict';

  var TOKEN_KEY = 'quorumd.apiToken';
  var HEARD_MS = 3000; // a peer heard within this is "heard"
  var KEEP_MS = 30 * 60 * 1000; // history kept for the lanes (oldest dropped)
  var LIST_LIMIT = 200; // keys and locks asked for per poll (narrow the prefix for more)
  var WATCH_LOG_MAX = 50; // changes kept in a watched key's log (oldest dropped)
  var FUTURE_SLOT_MS = 60000; // a job's last slot this far after this node's clock was claimed with a clock ahead
  var WATCH_LOG_CHARS = 2000; // characters of each value in that log (the full value is shown above it)
  var COLORS = {
    leader: '#2e7d32', coordinator: '#2e7d32', follower: '#1565c0', candidate: '#f9a825', 'pre-candidate': '#fbc02d',
    heard: '#90caf9', 'not heard': '#bdbdbd', unreachable: '#616161', down: '#616161', witness: '#6a1b9a',
    fenced: '#212121', unknown: '#eeeeee',
  };
  // Fence outcomes after which the target is down: its power was cut (off, or found off),
  // or an operator confirmed it down. 'powered-on' (a reboot fence switched it on again)
  // ends that.
  var DOWN_OUTCOMES = { off: true, 'already-off': true, confirmed: true };

  var $ = function (id) { return document.getElementById(id); };
  var token = sessionStorage.getItem(TOKEN_KEY);
  var t0 = Date.now();
  var state = {
    status: null, leader: null, error: '', members: [], spans: [], marks: [], lastTerm: null, fencesSeen: {},
    metrics: [], prevMetrics: null, polls: 0, lanesRenders: 0,
    // member -> {since (page clock, ms), text}: its newest fence left it down. It shows as
    // "fenced" until a message from it arrives after since (powered on by hand, say).
    fenced: {},
    lastOkAt: null, // page clock of this node's last answer
  };
  var chart = null; // lanes
  var plot = null; // uPlot line chart
  var hovering = false;
  var lastStructure = '';
  var lastRenderAt = 0;
  var timers = [];

  // ---- helpers ------------------------------------------------------------------
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function table(id, head, rows, rowAttrs) {
    var t = $(id);
    t.textContent = '';
    var tr = el('tr');
    head.forEach(function (h) { tr.appendChild(el('th', null, h)); });
    t.appendChild(tr);
    rows.forEach(function (r, i) {
      var row = el('tr', rowAttrs ? rowAttrs(i) : null);
      r.forEach(function (c) {
        var td = el('td');
        if (c instanceof Node) td.appendChild(c);
        else td.textContent = c === null || c === undefined ? '—' : String(c);
        row.appendChild(td);
      });
      t.appendChild(row);
    });
    if (rows.length === 0) {
      var none = el('tr');
      none.appendChild(el('td', { colspan: String(head.length) }, 'none'));
      t.appendChild(none);
    }
  }
  /**
   * A name or value from the cluster (a key, a lock, its holder) as text, with the
   * characters that would be invisible or reorder the text shown as marked codes
   * (daemon/ui/text.js). `layout`: a value, whose tabs and line breaks stay.
   */
  function shown(s, layout) {
    var span = el('span');
    if (typeof QuorumdText === 'undefined') span.textContent = String(s);
    else span.appendChild(QuorumdText.fragment(document, String(s), { keepLayout: !!layout }));
    return span;
  }
  function pill(text, cls) { return el('span', { class: 'pill ' + (cls || text) }, text); }
  function ago(ms) {
    if (ms === null || ms === undefined) return 'never';
    if (ms < 1000) return ms + ' ms ago';
    if (ms < 120000) return (ms / 1000).toFixed(1) + ' s ago';
    return Math.round(ms / 60000) + ' min ago';
  }
  function clock(ms) { return new Date(ms).toLocaleTimeString(); }
  function rel(ms) { return ms - t0; }

  function api(path, opts) {
    opts = opts || {};
    return fetch(path, { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store', signal: opts.signal }).then(function (r) {
      if (r.status === 401 || r.status === 403) {
        return r.json().catch(function () { return {}; }).then(function (j) {
          var e = new Error(j.error || 'HTTP ' + r.status);
          e.auth = true;
          throw e;
        });
      }
      return r;
    });
  }
  function json(path) {
    return api(path).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) { var e = new Error(j.error || 'HTTP ' + r.status); e.status = r.status; throw e; }
        return j;
      });
    });
  }

  // ---- sign in ------------------------------------------------------------------
  function showLogin(msg) {
    timers.forEach(clearInterval);
    timers = [];
    $('app').hidden = true;
    $('signout').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = msg || '';
    $('token').focus();
  }
  $('login-form').addEventListener('submit', function (e) {
    e.preventDefault();
    token = $('token').value.trim();
    if (!token) return showLogin('paste the token first');
    json('/v1/status').then(function () {
      sessionStorage.setItem(TOKEN_KEY, token);
      $('token').value = '';
      start();
    }, function (err) {
      showLogin(err.auth ? 'the node refused this token: ' + err.message : 'the node did not answer: ' + err.message);
    });
  });
  $('signout').addEventListener('click', function () {
    sessionStorage.removeItem(TOKEN_KEY);
    token = null;
    showLogin('signed out');
  });

  // ---- lanes: what this node saw ---------------------------------------------------
  function memberState(s, m, now) {
    if (m.self) return s.role === 'down' ? 'down' : s.role;
    // A fenced member is down, whatever this node heard from it before the fence (a
    // message up to 3 s old would otherwise make a powered-off node "heard").
    var f = state.fenced[m.id];
    if (f && (m.lastContactMs === null || m.lastContactMs === undefined || now - m.lastContactMs <= f.since)) return 'fenced';
    if (s.leader === m.id) return s.engine === 'bully' ? 'coordinator' : 'leader';
    // Raft and Multi-Paxos say 'replicate', ZAB 'synced' (a learner in its session).
    if (s.role === 'leader' && (m.state === 'replicate' || m.state === 'synced') && m.lastContactMs !== null && m.lastContactMs < HEARD_MS) return m.role === 'witness' ? 'witness' : 'follower';
    if (m.lastContactMs !== null && m.lastContactMs < HEARD_MS) return 'heard';
    return 'not heard';
  }
  function spanText(sp) {
    var end = sp.to === null ? 'now' : clock(sp.to);
    return sp.member + ': ' + sp.state + (sp.term !== null ? ' (term ' + sp.term + ')' : '') + '\n' + clock(sp.from) + ' – ' + end +
      ' (' + QuorumdLanes.fmtSpan((sp.to === null ? Date.now() : sp.to) - sp.from) + ')' + (sp.note ? '\n' + sp.note : '');
  }
  function record(now, rows) {
    // rows: [{member, state, term, note}] in member order
    rows.forEach(function (r, i) {
      var open = null;
      for (var k = state.spans.length - 1; k >= 0; k--) if (state.spans[k].row === i && state.spans[k].to === null) { open = state.spans[k]; break; }
      if (open && open.state === r.state && open.term === r.term) { open.note = r.note; return; }
      if (open) open.to = now;
      state.spans.push({ row: i, member: r.member, state: r.state, term: r.term, note: r.note, from: now, to: null });
    });
    var cut = now - KEEP_MS;
    state.spans = state.spans.filter(function (sp) { return sp.to === null || sp.to > cut; });
    state.marks = state.marks.filter(function (mk) { return mk.at > cut; });
  }
  function noteUnreachable(now, msg) {
    if (!state.members.length) return;
    // What this node saw of the others is not known while it does not answer: their
    // lanes must not go on saying "leader" or "follower" (a failover happens meanwhile).
    record(now, state.members.map(function (m) {
      if (m.self) return { member: m.id, state: 'unreachable', term: null, note: msg };
      return { member: m.id, state: 'unknown', term: null, note: 'not known: this page cannot reach ' + state.status.id };
    }));
  }

  function renderLanes(force) {
    if (!state.members.length || typeof QuorumdLanes === 'undefined') return;
    var now = Date.now();
    var structure = state.members.map(function (m) { return m.id; }).join() + '|' + state.spans.length + '|' + state.marks.length;
    if (!force && structure === lastStructure && (hovering || now - lastRenderAt < 5000)) return;
    if (hovering && structure !== lastStructure && !force && now - lastRenderAt < 15000) return;
    var prev = chart ? chart.range() : null;
    var prevMax = chart ? chart.xMaxShown : null;
    var spans = state.spans;
    var marks = state.marks;
    var xMax = rel(now) + 1000;
    var xMin = Math.max(0, Math.min.apply(null, spans.map(function (sp) { return rel(sp.from); }).concat([rel(now) - 1000])));
    if (chart) chart.destroy();
    chart = QuorumdLanes.render($('lanes'), {
      xMin: xMin,
      xMax: xMax,
      initial: null,
      rows: state.members.map(function (m) { return { label: m.id + (m.self ? ' (this)' : '') + (m.role === 'witness' ? ' W' : ''), height: 26 }; }),
      layers: [
        {
          kind: 'spans', n: spans.length, top: 0.15, bottom: 0.85,
          row: function (i) { return spans[i].row; },
          from: function (i) { return rel(spans[i].from); },
          to: function (i) { return rel(spans[i].to === null ? now : spans[i].to); },
          color: function (i) { return COLORS[spans[i].state] || '#9e9e9e'; },
          label: function (i) { return spans[i].state; },
          text: function (i) { return spanText(spans[i]); },
        },
        {
          kind: 'marks', shape: 'line', n: marks.length,
          row: function (i) { return marks[i].row; },
          at: function (i) { return rel(marks[i].at); },
          color: function (i) { return marks[i].kind === 'fence' ? '#b00020' : '#ff6f00'; },
          text: function (i) { return marks[i].text; },
        },
      ],
    }, { details: $('lane-details') });
    chart.xMaxShown = xMax;
    chart.renderedAt = now;
    // Keep a zoom the user chose; otherwise follow the live edge.
    if (prev && prevMax !== null && prev.max < prevMax - 1) chart.setRange(prev.min, prev.max);
    lastStructure = structure;
    lastRenderAt = now;
    state.lanesRenders++;
    window.quorumdDashboard.chart = chart;
  }
  $('lanes').addEventListener('mouseenter', function () { hovering = true; });
  $('lanes').addEventListener('mouseleave', function () { hovering = false; });

  // ---- status ---------------------------------------------------------------------
  function summary(s, l) {
    var box = $('summary');
    box.textContent = '';
    function item(label, value, testid) {
      var d = el('div', { 'data-testid': testid });
      d.appendChild(el('b', null, label));
      if (value instanceof Node) d.appendChild(value);
      else d.appendChild(document.createTextNode(value === null || value === undefined || value === '' ? '—' : String(value)));
      box.appendChild(d);
    }
    item('node', s.id + (s.witness ? ' (witness)' : ''), 'sum-node');
    item('engine', s.engine, 'sum-engine');
    item('role', pill(s.role), 'sum-role');
    item(s.engine === 'bully' ? 'epoch' : 'term', s.term, 'sum-term');
    item('leader', s.leader, 'sum-leader');
    item('fencing token', l ? l.token : null, 'sum-token');
    var act = s.active ? 'active' : s.elected ? 'elected, not active' + (s.waitingFor ? ': ' + s.waitingFor : '') : 'not active';
    item('activation', act, 'sum-active');
    if (s.suspects) item('suspects', s.suspects.length ? s.suspects.map(function (x) { return x.node + ': ' + (x.clearedBy || 'not cleared yet'); }).join(', ') : 'none', 'sum-suspects');
    if (s.selfFencing) item('self-fencing', 'yes: stopped feeding its watchdog', 'sum-selffence');
    item('commit / applied', s.commitIndex + ' / ' + s.appliedIndex, 'sum-index');
  }

  function members(s) {
    var list = [{ id: s.id, nodeId: null, role: s.witness ? 'witness' : 'voter', self: true, lastContactMs: 0, linkContactMs: {} }];
    s.peers.forEach(function (p) { list.push({ id: p.id, nodeId: p.nodeId, role: p.role, self: false, lastContactMs: p.lastContactMs, linkContactMs: p.linkContactMs || {}, state: p.state, match: p.match }); });
    list.sort(function (a, b) { return a.id < b.id ? -1 : a.id > b.id ? 1 : 0; });
    return list;
  }

  /**
   * The fences to show: the replicated history (every node's fences, under Raft, Paxos
   * and ZAB); where the engine keeps none (PBFT: each board fences on its own decision;
   * bully: no log, and its history is this node's own), the fences this node ran —
   * without them a failover that fenced a node showed "none".
   */
  function fenceRecords(s) {
    var f = s.fences || {};
    if (f.history && f.history.length) return f.history;
    return (f.local || []).map(function (r) {
      return {
        key: 'local:' + r.id + ':' + r.outcome, index: r.id, target: r.target, by: s.id, term: r.term, outcome: r.outcome,
        level: r.level === null || r.level === undefined ? -1 : r.level - 1, reason: r.reason, poweredOn: r.poweredOnAtMs !== null && r.poweredOnAtMs !== undefined, local: true,
      };
    });
  }

  function onStatus(s, l) {
    var now = Date.now();
    state.status = s;
    state.leader = l;
    var ms = members(s);
    if (ms.map(function (m) { return m.id; }).join() !== state.members.map(function (m) { return m.id; }).join()) {
      state.spans = [];
      state.marks = [];
    }
    state.members = ms;
    if (state.lastTerm !== null && s.term !== state.lastTerm) {
      state.marks.push({ row: -1, at: now, kind: 'term', text: (s.engine === 'bully' ? 'epoch ' : 'term ') + state.lastTerm + ' → ' + s.term + ' at ' + clock(now) + (s.leader ? '\nleader now: ' + s.leader : '') });
    }
    state.lastTerm = s.term;
    var hist = fenceRecords(s);
    hist.forEach(function (h) {
      // Finished fences only; a local record's key stays the same while it is updated.
      if (h.outcome === 'pending') return;
      var k = h.key || JSON.stringify(h);
      if (!state.fencesSeen[k]) {
        state.fencesSeen[k] = true;
        var row = -1;
        ms.forEach(function (m, i) { if (m.id === h.target) row = i; });
        // Records already there when the page opened are listed below, not drawn at a made-up time.
        if (state.polls > 0) state.marks.push({ row: row, at: now, kind: 'fence', text: 'fence of ' + h.target + ' by ' + h.by + ': ' + h.outcome + ' (term ' + h.term + ')' + (h.reason ? '\n' + h.reason : '') });
        // Down from now on. A record that was there when the page opened: a member heard
        // within the last 3 s is up again (switched on since), not fenced.
        if (DOWN_OUTCOMES[h.outcome]) state.fenced[h.target] = { since: state.polls > 0 ? now : now - HEARD_MS, text: 'fenced by ' + h.by + ': ' + h.outcome + ' (term ' + h.term + ')' };
        else if (h.outcome === 'powered-on') delete state.fenced[h.target];
      }
      if (h.poweredOn && !state.fencesSeen[k + ':on']) {
        state.fencesSeen[k + ':on'] = true;
        delete state.fenced[h.target];
      }
    });
    record(now, ms.map(function (m) {
      var st = memberState(s, m, now);
      var term = m.self || st === 'leader' || st === 'coordinator' ? s.term : null;
      var note = m.self ? '' : 'last contact ' + ago(m.lastContactMs);
      if (st === 'fenced') note = state.fenced[m.id].text + '; ' + note;
      return { member: m.id, state: st, term: term, note: note };
    }));
    state.polls++;

    $('node-title').textContent = s.id + ' · ' + s.engine;
    summary(s, l);
    table('members', ['member', 'kind', 'role seen here', s.engine === 'bully' ? 'epoch' : 'term', 'last contact', 'per link', 'match'], ms.map(function (m) {
      var st = memberState(s, m, now);
      var links = Object.keys(m.linkContactMs).map(function (k) { return k + ': ' + ago(m.linkContactMs[k]); }).join(', ');
      return [m.id + (m.self ? ' (this node)' : ''), m.role, pill(st, st.replace(' ', '-')), m.self || st === 'leader' || st === 'coordinator' ? s.term : '—',
        m.self ? '—' : ago(m.lastContactMs), m.self ? '—' : links || '—', m.match === undefined ? '—' : m.match];
    }), function (i) { return { 'data-member': ms[i].id }; });
    table('links', ['link', 'state'].concat(ms.filter(function (m) { return !m.self; }).map(function (m) { return 'heard ' + m.id; })), s.links.map(function (k) {
      var up = k.up === undefined ? 'unknown' : k.up ? 'up' : 'down';
      return [k.name, el('span', { class: k.up === false ? 'dn' : 'up' }, up)].concat(ms.filter(function (m) { return !m.self; }).map(function (m) {
        var v = m.linkContactMs[k.name];
        return ago(v === undefined ? null : v);
      }));
    }));
    var fences = hist.slice().reverse().slice(0, 50);
    // Bully's status lists this node's own fences as its history (it has no log to replicate them).
    $('fence-scope').textContent = s.engine === 'bully' ? 'the fences this node ran (bully keeps no shared record: another node\'s fences are in its own page)'
      : hist.length && hist[0].local ? 'the fences this node ran in this boot (no replicated record of them yet, or this engine keeps none)' : 'every node\'s, replicated';
    table('fences', ['#', 'target', 'by', 'term', 'outcome', 'level', 'reason'], fences.map(function (h) {
      return [h.index, h.target, h.by, h.term, h.outcome, typeof h.level === 'number' && h.level >= 0 ? h.level + 1 : '—', h.reason || ''];
    }));
    renderLanes(false);
  }

  function pollStatus() {
    Promise.all([json('/v1/status'), json('/v1/leader')]).then(function (r) {
      state.error = '';
      state.lastOkAt = Date.now();
      $('error').textContent = '';
      $('app').classList.remove('stale');
      $('updated').classList.remove('error');
      var first = state.status === null;
      onStatus(r[0], r[1]);
      if (first) {
        pollKeys();
        pollLocks();
        pollJobs();
      }
      $('updated').textContent = 'updated ' + clock(Date.now());
    }, function (err) {
      if (err.auth) return showLogin('the node refused the token: ' + err.message);
      state.error = err.message;
      var since = state.lastOkAt === null ? '' : ' since ' + clock(state.lastOkAt) + ' (' + QuorumdLanes.fmtSpan(Math.round((Date.now() - state.lastOkAt) / 100) * 100) + ')';
      $('error').textContent = 'this node has not answered' + since + ' (' + err.message + '); still trying. What is greyed out below is what it said then, not now.';
      // Everything below is the last answer: grey it out, so that an old "leader" or
      // "heard 29 ms ago" is not read as the state now.
      $('app').classList.add('stale');
      $('updated').classList.add('error');
      $('updated').textContent = 'no answer' + since;
      noteUnreachable(Date.now(), err.message);
      renderLanes(false);
    });
  }

  // ---- metrics chart --------------------------------------------------------------
  function parseMetrics(text) {
    var out = {};
    text.split('\n').forEach(function (line) {
      if (!line || line[0] === '#') return;
      var m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (!m) return;
      var name = m[1] + (m[2] || '');
      out[name] = Number(m[3]);
    });
    return out;
  }
  function pollMetrics() {
    if (state.error) return; // the node does not answer: its status poll says when it does
    api('/metrics').then(function (r) { return r.text(); }).then(function (text) {
      var m = parseMetrics(text);
      var now = Date.now() / 1000;
      var prev = state.prevMetrics;
      var lat = null;
      var elections = 0;
      if (prev) {
        var dc = (m.quorumd_commit_seconds_count || 0) - (prev.quorumd_commit_seconds_count || 0);
        var ds = (m.quorumd_commit_seconds_sum || 0) - (prev.quorumd_commit_seconds_sum || 0);
        lat = dc > 0 ? (ds / dc) * 1000 : null;
        elections = Math.max(0, (m.quorumd_elections_total || 0) - (prev.quorumd_elections_total || 0));
      }
      state.prevMetrics = m;
      state.metrics.push([now, lat, m.quorumd_term === undefined ? null : m.quorumd_term, elections || null]);
      while (state.metrics.length > 900) state.metrics.shift();
      drawChart();
    }, function () { /* status polling reports the node's absence */ });
  }
  function drawChart() {
    var rows = state.metrics;
    var data = [rows.map(function (r) { return r[0]; }), rows.map(function (r) { return r[1]; }), rows.map(function (r) { return r[2]; }), rows.map(function (r) { return r[3]; })];
    if (!plot) {
      plot = new uPlot({
        width: chartWidth(),
        height: 220,
        scales: { ms: { auto: true }, term: { auto: true } },
        series: [
          {},
          { label: 'commit latency (mean, ms)', scale: 'ms', stroke: '#1565c0', width: 2, spanGaps: false },
          { label: 'term', scale: 'term', stroke: '#ff6f00', width: 1, paths: uPlot.paths && uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined },
          { label: 'elections started here', scale: 'term', stroke: '#b00020', width: 0, points: { show: true, size: 8, fill: '#b00020' } },
        ],
        // Times of day only: uPlot's default adds a date line whose labels ran into each
        // other on a narrow window ("12/8/26 3:02am3:03am").
        axes: [{ space: 90, values: function (u, splits) { return splits.map(function (v) { return clock(v * 1000); }); } }, { scale: 'ms', label: 'ms' }, { scale: 'term', side: 1, label: 'term', grid: { show: false } }],
      }, data, $('chart'));
      // Follow the window: made at the width of the moment, the chart stayed that wide (a
      // phone turned, a window narrowed to 390 px: the whole page scrolled sideways).
      if (typeof ResizeObserver === 'function') {
        new ResizeObserver(function () {
          var w = chartWidth();
          if (Math.abs(w - plot.width) > 2) plot.setSize({ width: w, height: 220 });
        }).observe($('chart'));
      }
    } else plot.setData(data);
  }
  function chartWidth() { return Math.max(280, $('chart').clientWidth || 800); }

  // ---- keys, locks, jobs ------------------------------------------------------------
  var selectedKey = null;
  var watchAbort = null;
  // What this node's engine cannot do (501: bully keeps no keys, locks or jobs): asked once, not again.
  var unsupported = {};
  // Engines that keep no replicated log, so no keys, locks or jobs: not even asked (each
  // 501 is a failed request the browser logs as an error in its console).
  var NO_LOG = { bully: true };
  function noKeys() { unsupported.keys = true; table('keys', ['key'], [['(this engine keeps no keys)']]); }
  function noLocks() { unsupported.locks = true; table('locks', ['lock'], [['(this engine has no locks)']]); }
  function noJobs() { unsupported.jobs = true; table('jobs', ['job'], [['(no scheduled jobs under this engine: they need raft, paxos or zab)']]); }
  // PBFT answers /v1/jobs with an empty list: "none" read as if no job were configured.
  var NO_JOBS = { pbft: true };
  /** The lists are asked for once the engine is known (the first status answer). */
  function listsWanted(what) {
    // Not while the node does not answer: only its status is asked, once a second.
    if (!state.status || unsupported[what] || state.error) return false;
    if (NO_LOG[state.status.engine]) {
      noKeys();
      noLocks();
      noJobs();
      return false;
    }
    if (what === 'jobs' && NO_JOBS[state.status.engine]) {
      noJobs();
      return false;
    }
    return true;
  }
  function pollKeys() {
    if (!listsWanted('keys')) return;
    var prefix = $('kv-prefix').value;
    json('/v1/keys?prefix=' + encodeURIComponent(prefix) + '&limit=' + LIST_LIMIT).then(function (r) {
      table('keys', ['key', 'bytes', 'created at', 'modified at'], r.keys.map(function (k) { return [shown(k.key), k.size, k.createIndex, k.modIndex]; }),
        function (i) { return { 'data-key': r.keys[i].key }; });
      if (r.more) {
        var tr = el('tr');
        tr.appendChild(el('td', { colspan: '4' }, 'the first ' + r.keys.length + ' keys are shown; more: narrow the prefix'));
        $('keys').appendChild(tr);
      }
    }, function (err) {
      if (err.status === 501) noKeys();
    });
  }
  function showValue(r, key) {
    return r.arrayBuffer().then(function (buf) {
      var bytes = new Uint8Array(buf);
      var text;
      try { text = new TextDecoder('utf-8', { fatal: true }).decode(bytes); } catch (e) { text = '(' + bytes.length + ' bytes, not UTF-8)'; }
      var idx = Number(r.headers.get('X-Quorumd-Index') || 0);
      $('kv-key').textContent = '';
      $('kv-key').appendChild(shown(key));
      $('kv-key').appendChild(document.createTextNode('  (index ' + idx + ')'));
      $('kv-text').textContent = '';
      $('kv-text').appendChild(r.status === 404 ? document.createTextNode('(absent)') : shown(text, true));
      return { idx: idx, text: r.status === 404 ? '(deleted)' : text };
    });
  }
  function selectKey(key) {
    if (watchAbort) watchAbort.abort();
    watchAbort = null;
    selectedKey = key;
    $('kv-value').hidden = false;
    $('kv-log').textContent = '';
    api('/v1/kv/' + encodeURIComponent(key) + '?stale').then(function (r) { return showValue(r, key); }).then(function (v) {
      if ($('kv-watch').checked) watch(key, v.idx);
    });
  }
  function watch(key, idx) {
    if (selectedKey !== key || !$('kv-watch').checked) return;
    var ac = new AbortController();
    watchAbort = ac;
    api('/v1/kv/' + encodeURIComponent(key) + '?watch=' + idx + '&wait=30s', { signal: ac.signal }).then(function (r) {
      if (r.status !== 200 && r.status !== 404) throw new Error('HTTP ' + r.status);
      return showValue(r, key);
    }).then(function (v) {
      if (selectedKey !== key) return;
      if (v.idx !== idx) {
        // Bounded: a key written all the time must not grow the page without end.
        var cut = WATCH_LOG_CHARS - (/[\ud800-\udbff]/.test(v.text.charAt(WATCH_LOG_CHARS - 1)) ? 1 : 0); // not between the halves of a surrogate pair
        var t = v.text.length > WATCH_LOG_CHARS ? v.text.slice(0, cut) + '… (' + v.text.length + ' characters in all)' : v.text;
        var li = el('li', null, clock(Date.now()) + '  index ' + v.idx + ': ');
        li.appendChild(shown(t, true));
        var log = $('kv-log');
        log.insertBefore(li, log.firstChild);
        while (log.children.length > WATCH_LOG_MAX) log.removeChild(log.lastChild);
      }
      watch(key, Math.max(idx, v.idx));
    }, function (err) {
      if (ac.signal.aborted) return;
      setTimeout(function () { watch(key, idx); }, 2000);
      void err;
    });
  }
  $('keys').addEventListener('click', function (e) {
    var tr = e.target.closest ? e.target.closest('tr[data-key]') : null;
    if (tr) selectKey(tr.getAttribute('data-key'));
  });
  $('kv-watch').addEventListener('change', function () { if (selectedKey !== null) selectKey(selectedKey); });
  $('kv-form').addEventListener('submit', function (e) { e.preventDefault(); pollKeys(); });
  $('lock-form').addEventListener('submit', function (e) { e.preventDefault(); pollLocks(); });

  function pollLocks() {
    if (!listsWanted('locks')) return;
    var prefix = $('lock-prefix').value;
    json('/v1/locks?prefix=' + encodeURIComponent(prefix) + '&limit=' + LIST_LIMIT).then(function (r) {
      table('locks', ['lock', 'holder', 'fencing token', 'ttl', r.exact ? 'expires in' : 'expires in, at most'], r.locks.map(function (k) {
        return [shown(k.name), shown(k.owner), k.token, QuorumdLanes.fmtSpan(k.ttlMs), QuorumdLanes.fmtSpan(Math.max(0, k.expiresAt - r.clockMs))];
      }), function (i) { return { 'data-lock': r.locks[i].name }; });
      if (r.more) {
        var tr = el('tr');
        tr.appendChild(el('td', { colspan: '5' }, 'the first ' + r.locks.length + ' locks are shown; more: narrow the prefix'));
        $('locks').appendChild(tr);
      }
      if (!r.exact && r.locks.length) {
        // Said under the table, not in its header (a header that long made the column of
        // times a word wide on a phone).
        var note = el('tr', { class: 'note' });
        note.appendChild(el('td', { colspan: '5' }, 'at most: this node follows, and its lock clock lags the leader\'s'));
        $('locks').appendChild(note);
      }
    }, function (err) {
      if (err.status === 501) noLocks();
    });
  }
  function pollJobs() {
    if (!listsWanted('jobs')) return;
    var asked = Date.now();
    api('/v1/jobs').then(function (resp) {
      return resp.json().then(function (j) {
        if (!resp.ok) { var e = new Error(j.error || 'HTTP ' + resp.status); e.status = resp.status; throw e; }
        // This node's clock (the answer's Date header), not the browser's, says what is "future".
        var d = Date.parse(resp.headers.get('Date') || '');
        j.nodeNowMs = isNaN(d) ? asked : d;
        return j;
      });
    }).then(function (r) {
      table('jobs', ['job', 'schedule', 'last slot', 'ran on', 'result', 'took', 'next run'], r.jobs.map(function (j) {
        var l = j.last;
        // Withdrawn by `quorumd jobs reset`, no slot granted since: not "never" (slots ran before it).
        var z = !l && j.reset ? j.reset : null;
        var slot = l ? l.slot : z ? 'none since reset' : 'never';
        // A slot claimed by a leader whose clock was ahead: every slot until it is refused,
        // so the job does not run; say so where the user looks when it does not.
        if (l && Date.parse(l.slot) > r.nodeNowMs + FUTURE_SLOT_MS) {
          slot = el('span', { class: 'warn', 'data-testid': 'job-future' });
          slot.appendChild(el('span', null, l.slot));
          slot.appendChild(el('small', null, ' in the future by ' + QuorumdLanes.fmtSpan(Math.round((Date.parse(l.slot) - r.nodeNowMs) / 1000) * 1000) +
            ' of this node\'s clock: claimed by a leader whose clock was ahead; no slot runs until then. Fix that clock, then `quorumd jobs reset ' + j.name + '`'));
        }
        return [shown(j.name), j.cron + (j.timezone && j.timezone !== 'UTC' ? ' (' + j.timezone + ')' : ''), slot, l ? l.node : '—',
          l ? (l.result === 'failed' ? 'failed (' + (l.exitCode !== null ? l.exitCode : l.signal) + ')' : l.result) : z ? 'reset (withdrew ' + z.withdrawn.slot + ')' : '—',
          l && l.durationMs !== null ? l.durationMs + ' ms' : '—', j.nextRun || '—'];
      }), function (i) { return { 'data-job': r.jobs[i].name }; });
    }, function (err) {
      if (err.status === 501) noJobs();
    });
  }

  // ---- start ----------------------------------------------------------------------
  function start() {
    $('login').hidden = true;
    $('app').hidden = false;
    $('signout').hidden = false;
    timers.forEach(clearInterval);
    pollStatus();
    pollMetrics();
    pollKeys();
    pollLocks();
    pollJobs();
    timers = [
      setInterval(pollStatus, 1000),
      setInterval(pollMetrics, 2000),
      setInterval(function () { pollKeys(); pollLocks(); pollJobs(); }, 3000),
    ];
  }

  window.quorumdDashboard = { state: state, chart: null, t0: t0, renderLanes: renderLanes };
  if (token) start();
  else showLogin('');
})();
