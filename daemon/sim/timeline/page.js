/*
 * The simulation timeline page's script (browser): reads the recorded run (the JSON
 * of daemon/sim/timeline/recorder.ts in <script id="timeline-data">), turns it into
 * rows and layers for the lanes renderer (daemon/ui/lanes.js) and draws it.
 *
 * Rows, top to bottom:
 *   one row per kind of fault that hits the whole network (loss, reorder, partition
 *                with its sides), or one empty "network" row when there was none
 *   n1 … nN      one lane per board: its side of a partition (a thin strip: light with
 *                the broker, dark without), the faults on that board, the board's
 *                state bar (powered off, booting, crashed,
 *                the engine's role, active), ticks where the engine's own round
 *                number changed (Raft's term, bully's and ZAB's epoch, Paxos's ballot
 *                as round.node, PBFT's view: `round` in the data); relay contacts (◆ on
 *                the board whose supply switched), fences (flag on the fencing board).
 *                A witness, a ZAB observer and a PBFT board that lies (--faults
 *                byzantine) say so in their lane's label.
 *   c1 … cK      one row per client: each request a bar from call to return,
 *                coloured by outcome
 *   lock c1 …    with --locks, one row per lock client: each lock request (acquire,
 *                renew, release) a bar from call to return coloured by outcome, the
 *                grants labelled with their fencing token; under the bars, what the
 *                client counts on holding (a band per lock name, red when the hold is
 *                one of a lock check's violation)
 *   violations   a red line across every row at the step it was found, with its name
 *
 * Fault kinds are drawn generically: a fault with a node goes into that board's strip,
 * one with sides (groups) shows each board's side, anything else goes into the network
 * row; colours of kinds, states and outcomes not listed below come from their names.
 * A failing seed opens on its violation.
 */
(function () {
  'use strict';

  var STATE_COLORS = {
    off: '#3a3a3a',
    'off (fenced)': '#7b1f1f',
    booting: '#c8c8c8',
    crashed: '#f2b8b5',
    starting: '#e6e6e6',
    follower: '#9ecae1',
    'pre-candidate': '#fde3a7',
    candidate: '#fdae6b',
    leader: '#a1d99b',
    coordinator: '#a1d99b',
    active: '#1f7a3a',
    // Paxos: asking whether a ballot could win, then phase 1 with it.
    'pre-prepare': '#fde3a7',
    prepare: '#fdae6b',
    // ZAB (ZooKeeper's states, with the phase until the leadership is established).
    looking: '#fdae6b',
    'leading (discovery)': '#d9f0a3',
    'leading (sync)': '#c2e699',
    'following (discovery)': '#deebf7',
    'following (sync)': '#c6dbef',
    observer: '#bcbddc',
    'observing (discovery)': '#efedf5',
    'observing (sync)': '#dadaeb',
    // PBFT.
    primary: '#a1d99b',
    backup: '#9ecae1',
    'view-change': '#fdae6b',
  };
  var STATE_TEXT = {
    off: 'powered off',
    'off (fenced)': 'powered off by a fence (relay open)',
    booting: 'booting (rail on, OS starting)',
    crashed: 'process crashed, restarting',
    starting: 'process up, recovering from disk',
    active: 'active leader (may act on the outside world)',
    leader: 'elected leader, not active yet',
    coordinator: 'coordinator, not active yet',
    'pre-prepare': 'asking a quorum whether a new ballot could win, before taking one',
    prepare: 'phase 1 with its own ballot (Prepare / Promise)',
    looking: 'looking: leader election',
    'leading (discovery)': 'elected, gathering the followers\' epochs and histories',
    'leading (sync)': 'elected, bringing the followers\' logs up to its own',
    'following (discovery)': 'following an elected leader, telling it its epoch and history',
    'following (sync)': 'following, its log being synchronized with the leader\'s',
    follower: 'follower',
    observer: 'observer: receives the committed stream, never votes',
    'observing (discovery)': 'observer, telling the leader where its log ends',
    'observing (sync)': 'observer, its log being synchronized with the leader\'s',
    primary: 'primary of its view, not active yet (its view\'s opening request not executed)',
    backup: 'backup',
    'view-change': 'changing views (has given up on the primary of its view)',
  };
  /** What differs from STATE_TEXT for one engine. */
  var ENGINE_STATE_TEXT = {
    paxos: { leader: 'leader: phase 1 done, not active yet' },
    zab: { leader: 'established leader (a quorum acknowledged NEWLEADER), not active yet', follower: 'follower, broadcast phase' },
    pbft: { active: 'active primary: its view\'s opening request executed; acts with that sequence number as its token' },
  };
  var KIND_COLORS = {
    partition: '#8e6bd6',
    crash: '#d62728',
    power: '#222222',
    loss: '#ff9f1c',
    reorder: '#e9c46a',
    clock: '#17becf',
    disk: '#8c564b',
    stall: '#e377c2',
  };
  var KIND_TEXT = {
    partition: 'network partition',
    crash: 'process crash',
    power: 'power cut (mains off)',
    loss: 'message loss',
    reorder: 'message reordering',
    clock: 'wall-clock step',
    disk: 'disk fault',
    stall: 'stall',
  };
  var OUTCOME_COLORS = {
    ok: '#43a047',
    'not-found': '#80cbc4',
    conflict: '#ffb300',
    unavailable: '#9e9e9e',
    unknown: '#e53935',
    timeout: '#8e24aa',
    rejected: '#000000',
  };
  var OUTCOME_TEXT = {
    ok: 'ok (200)',
    'not-found': 'not found (404)',
    conflict: 'cas conflict (409)',
    unavailable: 'unavailable (503: did not happen)',
    unknown: 'outcome unknown (504)',
    timeout: 'no answer (client gave up: may have happened)',
    rejected: 'rejected (4xx)',
  };
  var LOCK_OUTCOME_COLORS = {
    granted: '#1b5e20',
    renewed: '#66bb6a',
    released: '#90a4ae',
    held: '#ffb300',
    expired: '#ff7043',
    unavailable: '#9e9e9e',
    unknown: '#e53935',
    timeout: '#8e24aa',
    error: '#000000',
  };
  var LOCK_OUTCOME_TEXT = {
    granted: 'granted (200, with its fencing token)',
    renewed: 'renewed (200: the ttl runs again from when it was sent)',
    released: 'released (200)',
    held: 'held by another client (409)',
    expired: 'not held by this lease any more (409: it ran out, or another holds the lock)',
    unavailable: 'unavailable (503: did not happen)',
    unknown: 'outcome unknown (504)',
    timeout: 'no answer (client gave up: may have happened)',
    error: 'error (400 or another status: a bug)',
  };
  var LOCK_KIND_WORD = { acquire: 'acquire', renew: 'renew', release: 'release' };
  var HOLD_END_TEXT = {
    held: 'still held when the run ended',
    released: 'released by its client',
    lapsed: 'lapsed: the client counted on it to the end of its lease, then forgot it without a release (a client that dies)',
    lost: 'lost: a renewal was refused (409)',
    overdue: 'ran out: its renewals got no answer before the lease ended; the client released it late',
  };
  var LOCK_NAME_COLORS = { pump: '#3f6fb5', valve: '#b5843f' };
  var HOLD_IN_VIOLATION = '#d00000';
  /** A lock client's row, as fractions of its height: request bars, then what it counts on holding. */
  var LOCK_ROW = { height: 26, bars: [0.04, 0.52], holds: [0.58, 0.96] };
  /** A partition side's colour: light with the broker (it can talk), dark without. */
  var SIDE_WITH_BROKER = '#c9b8ef';
  var SIDE_WITHOUT_BROKER = '#5b3a9c';
  /** A board's lane, as fractions of its height: partition side, faults, state bar, term ticks. */
  var LANE = { height: 50, sides: [0.03, 0.13], faults: [0.15, 0.35], bar: [0.38, 0.8], ticks: [0.82, 1] };

  /** A stable colour for a name nobody listed (a new fault kind, role or outcome). */
  function hashColor(name) {
    var h = 0;
    for (var i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
    var hue = h % 360;
    return hslHex(hue, 0.55, 0.55);
  }
  function hslHex(h, s, l) {
    var a = s * Math.min(l, 1 - l);
    function f(n) {
      var k = (n + h / 30) % 12;
      var c = l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
      return ('0' + Math.round(c * 255).toString(16)).slice(-2);
    }
    return '#' + f(0) + f(8) + f(4);
  }
  function colorOf(table, name) {
    return table[name] || (table[name] = hashColor(name));
  }

  var fmt = QuorumdLanes.fmtSpan;
  function at(ms) {
    return (ms / 1000).toFixed(3) + ' s';
  }
  function interval(a, b) {
    return at(a) + ' → ' + at(b) + ' (' + fmt(b - a) + ')';
  }
  function nodeName(n) {
    return n === 'broker' ? 'broker' : 'n' + n;
  }

  var D = JSON.parse(document.getElementById('timeline-data').textContent);
  if (D.version !== 1) throw new Error('timeline data version ' + D.version + ' (this page reads version 1)');
  var endMs = D.end / 1000;
  var meta = D.meta;
  var own = ENGINE_STATE_TEXT[meta.engine] || {};
  Object.keys(own).forEach(function (k) { STATE_TEXT[k] = own[k]; });
  /** The engine's round number: its name, and how one reads (a Paxos ballot as round.node). */
  var ROUND = D.round || { word: meta.engine === 'raft' ? 'term' : 'epoch' };
  var termWord = ROUND.word;
  function fmtRound(v) {
    if (v === null || v === undefined) return String(v);
    if (!ROUND.idSpan || v === 0) return String(v);
    return Math.floor(v / ROUND.idSpan) + '.' + (v % ROUND.idSpan);
  }
  var lanes = D.lanes;
  var laneRow = {};
  var laneIds = lanes.map(function (l) { return l.id; });
  function isNetworkFault(f) { return f.node === null || laneIds.indexOf(f.node) < 0; }
  var netKinds = [];
  D.faults.forEach(function (f) { if (isNetworkFault(f) && netKinds.indexOf(f.kind) < 0) netKinds.push(f.kind); });
  var rows = netKinds.length > 0
    ? netKinds.map(function (k) { return { label: k, height: 16, background: '#fafafa' }; })
    : [{ label: 'network', height: 16, background: '#fafafa' }];
  var nNet = rows.length;
  lanes.forEach(function (l) {
    laneRow[l.id] = rows.length;
    rows.push({ label: 'n' + l.id + (l.witness ? ' (witness)' : l.observer ? ' (observer)' : l.byzantine ? ' (byzantine)' : ''), height: LANE.height });
  });
  var clientRow0 = rows.length;
  for (var c = 1; c <= D.ops.clients; c++) rows.push({ label: 'client ' + c, height: 13, background: '#fcfcfc' });
  var LK = D.locks || null;
  var lockRow0 = rows.length;
  if (LK) for (var lc = 1; lc <= LK.clients; lc++) rows.push({ label: 'lock client ' + lc, height: LOCK_ROW.height, background: '#f8fbff' });
  var layers = [];

  // ---- lane states ------------------------------------------------------------------
  var st = { row: [], from: [], to: [], state: [], cause: [], term: [], termEnd: [] };
  function termAt(li, us) {
    var t = D.terms[li];
    var term = null;
    for (var i = 0; i < t.length && t[i] <= us; i += 2) term = t[i + 1];
    return term;
  }
  function tokenAt(node, us) {
    var tok = null;
    for (var i = 0; i < D.tokens.length && D.tokens[i] <= us; i += 3) if (D.tokens[i + 1] === node) tok = D.tokens[i + 2];
    return tok;
  }
  lanes.forEach(function (l, li) {
    var s = D.spans[li];
    for (var i = 0; i < s.length; i += 3) {
      var to = i + 3 < s.length ? s[i + 3] : D.end;
      if (to <= s[i]) continue;
      st.row.push(laneRow[l.id]);
      st.from.push(s[i] / 1000);
      st.to.push(to / 1000);
      st.state.push(D.states[s[i + 1]]);
      st.cause.push(s[i + 2] >= 0 ? D.causes[s[i + 2]] : null);
      st.term.push(termAt(li, s[i]));
      st.termEnd.push(termAt(li, to - 1));
    }
  });
  var CAUSE_TEXT = { 'power-on': 'power on', 'mains-off': 'mains cut', 'relay-open': 'its supply relay opened (fenced)', watchdog: 'watchdog reset', crash: 'process crash', boot: 'boot finished' };
  layers.push({
    kind: 'spans',
    n: st.row.length,
    top: LANE.bar[0],
    bottom: LANE.bar[1],
    row: function (i) { return st.row[i]; },
    from: function (i) { return st.from[i]; },
    to: function (i) { return st.to[i]; },
    color: function (i) { return colorOf(STATE_COLORS, st.state[i]); },
    label: function (i) {
      if (st.state[i] !== 'active') return st.state[i];
      var tok = tokenAt(lanes[st.row[i] - nNet].id, st.from[i] * 1000);
      return tok !== null ? ['active · token ' + tok, 'active'] : 'active';
    },
    text: function (i) {
      var node = lanes[st.row[i] - nNet].id;
      var s = st.state[i];
      var lines = ['n' + node + ': ' + s + (STATE_TEXT[s] ? ' — ' + STATE_TEXT[s] : ''), interval(st.from[i], st.to[i])];
      if (st.term[i] !== null && ['off', 'off (fenced)', 'booting', 'crashed', 'starting'].indexOf(s) < 0) {
        lines.push(st.termEnd[i] !== st.term[i] ? termWord + ' ' + fmtRound(st.term[i]) + ' → ' + fmtRound(st.termEnd[i]) : termWord + ' ' + fmtRound(st.term[i]));
      }
      if (s === 'active') {
        var tok = tokenAt(node, st.from[i] * 1000);
        if (tok !== null) lines.push('fencing token ' + tok);
      }
      if (st.cause[i]) lines.push('after: ' + (CAUSE_TEXT[st.cause[i]] || st.cause[i]));
      var lane = lanes[st.row[i] - nNet];
      if (lane.byzantine) lines.push('this board lies for the whole run (' + lane.byzantine.join(', ') + ')');
      return lines.join('\n');
    },
  });

  // ---- term / epoch changes -----------------------------------------------------------
  var tm = { row: [], at: [], term: [], prev: [] };
  lanes.forEach(function (l, li) {
    var t = D.terms[li];
    for (var i = 0; i < t.length; i += 2) {
      tm.row.push(laneRow[l.id]);
      tm.at.push(t[i] / 1000);
      tm.term.push(t[i + 1]);
      tm.prev.push(i >= 2 ? t[i - 1] : null);
    }
  });
  layers.push({
    kind: 'marks',
    shape: 'tick',
    n: tm.row.length,
    top: LANE.ticks[0],
    bottom: LANE.ticks[1],
    row: function (i) { return tm.row[i]; },
    at: function (i) { return tm.at[i]; },
    color: function () { return '#555'; },
    label: function (i) { return fmtRound(tm.term[i]); },
    text: function (i) {
      return 'n' + lanes[tm.row[i] - nNet].id + ': ' + termWord + ' ' + fmtRound(tm.term[i]) + (tm.prev[i] !== null ? ' (was ' + fmtRound(tm.prev[i]) + ')' : ' (after boot)') + '\nat ' + at(tm.at[i]);
    },
  });

  // ---- faults -------------------------------------------------------------------------
  // One band per (fault, row): a board's fault on its lane; each board's side of a
  // partition on its lane, plus the whole partition on the network row; the rest on the
  // network row.
  var fb = { row: [], from: [], to: [], f: [], side: [] };
  var kindsSeen = [];
  D.faults.forEach(function (f, fi) {
    if (kindsSeen.indexOf(f.kind) < 0) kindsSeen.push(f.kind);
    var from = f.at / 1000;
    var to = (f.heal !== null ? f.heal : Math.min(f.planHeal, D.end)) / 1000;
    function add(row, side) {
      fb.row.push(row);
      fb.from.push(from);
      fb.to.push(Math.max(to, from));
      fb.f.push(fi);
      fb.side.push(side);
    }
    var netRow = netKinds.indexOf(f.kind);
    if (!isNetworkFault(f)) add(laneRow[f.node], -1);
    else {
      add(netRow, -1);
      if (f.groups) {
        f.groups.forEach(function (g, gi) {
          g.forEach(function (n) { if (laneRow[n] !== undefined) add(laneRow[n], gi); });
        });
      }
    }
  });
  function faultText(i) {
    var f = D.faults[fb.f[i]];
    var what = KIND_TEXT[f.kind] || f.kind;
    var lines = ['fault: ' + what + (f.node !== null ? ' on n' + f.node : '')];
    if (f.groups) {
      lines.push('sides: ' + f.groups.map(function (g) { return '{' + g.map(nodeName).join(', ') + '}'; }).join(' | '));
      if (fb.side[i] >= 0) {
        var mine = f.groups[fb.side[i]];
        lines.push('this board is on side ' + (fb.side[i] + 1) + (mine.indexOf('broker') >= 0 ? ', with the broker' : ', cut off from the broker'));
      }
    }
    if (f.detail) lines.push(f.detail);
    lines.push(interval(fb.from[i], fb.to[i]));
    lines.push(f.heal !== null ? 'healed at ' + at(f.heal / 1000) : f.kind === 'crash' ? 'the board restarts by itself' : 'not healed before the end');
    return lines.join('\n');
  }
  var faultIdx = [];
  var sideIdx = [];
  var netIdx = [];
  for (var k = 0; k < fb.row.length; k++) (fb.row[k] < nNet ? netIdx : fb.side[k] >= 0 ? sideIdx : faultIdx).push(k);
  function hasBroker(j) {
    return D.faults[fb.f[j]].groups[fb.side[j]].indexOf('broker') >= 0;
  }
  // A board's side of each partition: a thin strip at the top of its lane.
  layers.push({
    kind: 'spans',
    n: sideIdx.length,
    top: LANE.sides[0],
    bottom: LANE.sides[1],
    minPx: 2,
    row: function (i) { return fb.row[sideIdx[i]]; },
    from: function (i) { return fb.from[sideIdx[i]]; },
    to: function (i) { return fb.to[sideIdx[i]]; },
    color: function (i) { return hasBroker(sideIdx[i]) ? SIDE_WITH_BROKER : SIDE_WITHOUT_BROKER; },
    text: function (i) { return faultText(sideIdx[i]); },
  });
  // The faults on a board (crash, power, clock, disk, and any kind added later).
  layers.push({
    kind: 'spans',
    n: faultIdx.length,
    top: LANE.faults[0],
    bottom: LANE.faults[1],
    minPx: 2,
    row: function (i) { return fb.row[faultIdx[i]]; },
    from: function (i) { return fb.from[faultIdx[i]]; },
    to: function (i) { return fb.to[faultIdx[i]]; },
    color: function (i) { return colorOf(KIND_COLORS, D.faults[fb.f[faultIdx[i]]].kind); },
    label: function (i) { return D.faults[fb.f[faultIdx[i]]].kind; },
    text: function (i) { return faultText(faultIdx[i]); },
  });
  // The network rows: their faults over the whole row.
  layers.push({
    kind: 'spans',
    n: netIdx.length,
    top: 0.1,
    bottom: 0.9,
    minPx: 2,
    row: function (i) { return fb.row[netIdx[i]]; },
    from: function (i) { return fb.from[netIdx[i]]; },
    to: function (i) { return fb.to[netIdx[i]]; },
    color: function (i) { return colorOf(KIND_COLORS, D.faults[fb.f[netIdx[i]]].kind); },
    label: function (i) {
      var f = D.faults[fb.f[netIdx[i]]];
      return f.groups ? f.groups.map(function (g) { return g.map(nodeName).join(','); }).join(' | ') : f.detail;
    },
    text: function (i) { return faultText(netIdx[i]); },
  });

  // ---- relays and fences --------------------------------------------------------------
  var rl = D.relays;
  layers.push({
    kind: 'marks',
    shape: 'diamond',
    n: rl.length / 4,
    top: LANE.bar[0],
    bottom: LANE.bar[1],
    row: function (i) { return laneRow[rl[i * 4 + 2]] === undefined ? -1 : laneRow[rl[i * 4 + 2]]; },
    at: function (i) { return rl[i * 4] / 1000; },
    color: function (i) { return rl[i * 4 + 3] ? '#2e7d32' : '#c62828'; },
    text: function (i) {
      var open = !rl[i * 4 + 3];
      return 'relay n' + rl[i * 4 + 1] + '→n' + rl[i * 4 + 2] + ': contact ' + (open ? 'opened: n' + rl[i * 4 + 2] + ' loses power' : 'closed: n' + rl[i * 4 + 2] + ' is fed again') + '\nat ' + at(rl[i * 4] / 1000);
    },
  });
  var fe = D.fences;
  layers.push({
    kind: 'marks',
    shape: 'flag',
    n: fe.length,
    top: LANE.bar[0] - 0.02,
    bottom: LANE.bar[1],
    row: function (i) { return laneRow[fe[i].by] === undefined ? -1 : laneRow[fe[i].by]; },
    at: function (i) { return fe[i].at / 1000; },
    color: function (i) { return fe[i].outcome === 'failed' ? '#c62828' : '#000'; },
    text: function (i) {
      var f = fe[i];
      return 'fence: n' + f.by + ' fenced n' + f.target + ' → ' + f.outcome + ' (action ' + f.action + ', ' + (meta.engine === 'pbft' ? 'on the decision executed at index ' + f.term : termWord + ' ' + fmtRound(f.term)) + ')\n' +
        'took ' + fmt(f.durMs) + ' from request, finished at ' + at(f.at / 1000) + (f.reason ? '\nreason: ' + f.reason : '');
    },
  });

  // ---- client requests ----------------------------------------------------------------
  var op = D.ops.cols;
  var nOps = op.length / 7;
  layers.push({
    kind: 'spans',
    n: nOps,
    top: 0.12,
    bottom: 0.88,
    minPx: 2,
    row: function (i) { return clientRow0 + op[i * 7 + 2] - 1; },
    from: function (i) { return op[i * 7] / 1000; },
    to: function (i) { return op[i * 7 + 1] / 1000; },
    color: function (i) { return colorOf(OUTCOME_COLORS, D.ops.outcomes[op[i * 7 + 6]]); },
    text: function (i) {
      var kind = D.ops.kinds[op[i * 7 + 4]];
      var key = D.ops.keys[op[i * 7 + 5]];
      var out = D.ops.outcomes[op[i * 7 + 6]];
      var v = D.ops.values[i];
      var what = kind === 'get' ? 'get ' + key + (v !== null ? ' → ' + v : '') : kind + ' ' + key + '=' + v;
      return 'client ' + op[i * 7 + 2] + ': ' + what + ' via n' + op[i * 7 + 3] + '\n' + (OUTCOME_TEXT[out] || out) + '\ncall ' + at(op[i * 7] / 1000) + ', return ' + at(op[i * 7 + 1] / 1000) + ' (' + fmt((op[i * 7 + 1] - op[i * 7]) / 1000) + ')';
    },
  });

  // ---- lock requests and holds (--locks) -----------------------------------------------
  var lk = LK ? LK.cols : [];
  var nLock = lk.length / 10;
  var lh = LK ? LK.holds : [];
  var ls = LK ? LK.spans : [];
  function lockNameOf(code) { return LK.names[code]; }
  if (LK) {
    layers.push({
      kind: 'spans',
      n: nLock,
      top: LOCK_ROW.bars[0],
      bottom: LOCK_ROW.bars[1],
      minPx: 2,
      row: function (i) { return lockRow0 + lk[i * 10 + 2] - 1; },
      from: function (i) { return lk[i * 10] / 1000; },
      to: function (i) { return lk[i * 10 + 1] / 1000; },
      color: function (i) { return colorOf(LOCK_OUTCOME_COLORS, LK.outcomes[lk[i * 10 + 6]]); },
      label: function (i) { return LK.outcomes[lk[i * 10 + 6]] === 'granted' ? 'token ' + lk[i * 10 + 7] : ''; },
      text: function (i) {
        var b = i * 10;
        var kind = LK.kinds[lk[b + 4]];
        var out = LK.outcomes[lk[b + 6]];
        var tok = lk[b + 7];
        var lines = ['lock client ' + lk[b + 2] + ': ' + (LOCK_KIND_WORD[kind] || kind) + ' ' + lockNameOf(lk[b + 5]) + (kind === 'acquire' ? ' (ttl ' + fmt(lk[b + 8]) + ')' : '') + ' via n' + lk[b + 3]];
        lines.push(LOCK_OUTCOME_TEXT[out] || out);
        if (tok >= 0) lines.push(out === 'held' ? 'held with token ' + tok : 'fencing token ' + tok);
        if (out === 'error' && lk[b + 9] >= 0) lines.push('status ' + lk[b + 9]);
        lines.push('call ' + at(lk[b] / 1000) + ', return ' + at(lk[b + 1] / 1000) + ' (' + fmt((lk[b + 1] - lk[b]) / 1000) + ')');
        return lines.join('\n');
      },
    });
    layers.push({
      kind: 'spans',
      n: ls.length / 3,
      top: LOCK_ROW.holds[0],
      bottom: LOCK_ROW.holds[1],
      minPx: 2,
      row: function (i) { return lockRow0 + lh[ls[i * 3 + 2] * 7 + 1] - 1; },
      from: function (i) { return ls[i * 3] / 1000; },
      to: function (i) { return ls[i * 3 + 1] / 1000; },
      color: function (i) {
        var h = ls[i * 3 + 2] * 7;
        return lh[h + 6] ? HOLD_IN_VIOLATION : colorOf(LOCK_NAME_COLORS, lockNameOf(lh[h + 2]));
      },
      label: function (i) { return lockNameOf(lh[ls[i * 3 + 2] * 7 + 2]); },
      text: function (i) {
        var k = ls[i * 3 + 2];
        var h = k * 7;
        var lines = [
          'lock client ' + lh[h + 1] + ' holds ' + lockNameOf(lh[h + 2]) + ' (token ' + lh[h + 3] + ', ttl ' + fmt(lh[h + 4]) + ')',
          'counts on it ' + interval(ls[i * 3] / 1000, ls[i * 3 + 1] / 1000),
          'granted at ' + at(lh[h] / 1000),
          HOLD_END_TEXT[LK.ends[lh[h + 5]]] || LK.ends[lh[h + 5]],
        ];
        if (lh[h + 6]) lines.push('VIOLATION: this hold is one of ' + (D.violations[0] ? D.violations[0].invariant : 'a lock check') + "'s (the red line)");
        return lines.join('\n');
      },
    });
  }

  // ---- violations ---------------------------------------------------------------------
  var vi = D.violations;
  layers.push({
    kind: 'marks',
    shape: 'line',
    n: vi.length,
    row: function () { return -1; },
    at: function (i) { return vi[i].at / 1000; },
    color: function () { return '#d00000'; },
    label: function (i) { return '✖ ' + vi[i].invariant; },
    text: function (i) { return 'VIOLATION: ' + vi[i].invariant + ' at ' + at(vi[i].at / 1000) + '\n' + vi[i].detail; },
  });

  // ---- legend -------------------------------------------------------------------------
  function legend(el, title, names, table, texts) {
    if (names.length === 0) return;
    var g = document.createElement('div');
    g.className = 'lg-group';
    var h = document.createElement('b');
    h.textContent = title + ': ';
    g.appendChild(h);
    names.forEach(function (n) {
      var item = document.createElement('span');
      item.className = 'lg-item';
      item.title = (texts && texts[n]) || n;
      var sw = document.createElement('i');
      sw.style.background = colorOf(table, n);
      item.appendChild(sw);
      item.appendChild(document.createTextNode(n));
      g.appendChild(item);
    });
    el.appendChild(g);
  }
  var lg = document.getElementById('legend');
  legend(lg, 'board', D.states, STATE_COLORS, STATE_TEXT);
  if (tm.row.length > 0) {
    var ROUND_TEXT = {
      raft: 'Raft term: a tick where a node\'s term changed, with the new one',
      bully: 'bully epoch: a tick where the epoch a node acts on changed, with the new one',
      paxos: 'Paxos ballot this node promised, as round.node (node = the ballot\'s owner): a tick where it changed',
      zab: 'ZAB accepted epoch: a tick where it changed, with the new one',
      pbft: 'PBFT view (its primary is member view mod n): a tick where a node moved to another view',
    };
    var TICKS = {};
    var TICK_TEXT = {};
    var tickName = termWord + (ROUND.idSpan ? ' (round.node)' : '');
    TICKS[tickName] = '#555';
    TICK_TEXT[tickName] = ROUND_TEXT[meta.engine] || termWord;
    legend(lg, 'ticks', [tickName], TICKS, TICK_TEXT);
  }
  legend(lg, 'faults', kindsSeen, KIND_COLORS, KIND_TEXT);
  if (sideIdx.length > 0) {
    var SIDES = { 'side with the broker': SIDE_WITH_BROKER, 'side without it': SIDE_WITHOUT_BROKER };
    legend(lg, 'partition', Object.keys(SIDES), SIDES, null);
  }
  var outs = [];
  for (var q = 0; q < nOps; q++) {
    var o = D.ops.outcomes[op[q * 7 + 6]];
    if (outs.indexOf(o) < 0) outs.push(o);
  }
  legend(lg, 'requests', outs, OUTCOME_COLORS, OUTCOME_TEXT);
  if (LK) {
    var louts = [];
    for (var r = 0; r < nLock; r++) {
      var lo = LK.outcomes[lk[r * 10 + 6]];
      if (louts.indexOf(lo) < 0) louts.push(lo);
    }
    legend(lg, 'lock requests', louts, LOCK_OUTCOME_COLORS, LOCK_OUTCOME_TEXT);
    var held = [];
    for (var hi = 0; hi < lh.length; hi += 7) {
      var hn = lockNameOf(lh[hi + 2]);
      if (held.indexOf(hn) < 0) held.push(hn);
    }
    var HELD_COLORS = {};
    var HELD_TEXT = {};
    held.forEach(function (n) { HELD_COLORS['held: ' + n] = colorOf(LOCK_NAME_COLORS, n); HELD_TEXT['held: ' + n] = 'what a lock client counts on holding ' + n + ': from the grant until sent + ttl, or its release'; });
    var violating = false;
    for (var vh = 0; vh < lh.length; vh += 7) if (lh[vh + 6]) violating = true;
    if (violating) { HELD_COLORS['hold in the violation'] = HOLD_IN_VIOLATION; HELD_TEXT['hold in the violation'] = 'a hold that a lock check found overlapping another, or with a wrong token'; }
    legend(lg, 'locks', Object.keys(HELD_COLORS), HELD_COLORS, HELD_TEXT);
  }

  // ---- draw ---------------------------------------------------------------------------
  var first = vi.length > 0 ? vi[0].at / 1000 : null;
  // A violation stops the run: when it is at the end, half a second more of axis keeps its
  // line (and what was granted at that moment) off the chart's edge.
  var xMax = first !== null && endMs - first < 500 ? first + 500 : endMs;
  var focus = first === null ? null : { min: Math.max(0, first - 5000), max: Math.min(xMax, first + 1500) };
  var buttons = [];
  if (first !== null) {
    buttons.push({ label: 'violation', title: 'go to the violation', onClick: function (ch) { ch.setRange(focus.min, focus.max); } });
  }
  var chart = QuorumdLanes.render(document.getElementById('chart'), { xMin: 0, xMax: xMax, initial: focus, rows: rows, layers: layers }, {
    buttons: buttons,
    details: document.getElementById('details'),
  });
  window.quorumdTimeline = { data: D, chart: chart, rows: rows, laneRow: laneRow, clientRow0: clientRow0, lockRow0: LK ? lockRow0 : -1 };
  document.body.setAttribute('data-ready', '1');
})();
