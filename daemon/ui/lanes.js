/*
 * quorumd lanes: rows of spans and marks over one time axis, for the browser.
 *
 * Used by the simulation timeline (`quorumd sim --html`: one lane per board with its
 * role over time, fault bands, fences, client requests) and meant for the node
 * dashboard too (elections and fences over time): a page inlines this file and uPlot
 * (daemon/ui/assets.ts), builds a model and calls
 *
 *   const chart = QuorumdLanes.render(container, model, options)
 *
 * Why uPlot underneath: it is a small (50 KB) canvas chart made for time series, and
 * gives us the time axis with sensible ticks, drag-to-zoom, the cursor and resizing.
 * Lanes are not one of its series types, so the rows are drawn in its `draw` hook on
 * its canvas with its scale (valToPos); hovering and hit-testing are ours, against the
 * same model. No network, no build step: plain ES2019 in one IIFE.
 *
 * The model (times in ms, any origin):
 *   { xMin, xMax,                      the data range ("reset" shows it)
 *     initial: {min, max} | null,      the range to open on (e.g. around a violation)
 *     rows: [{ label, height }],       top to bottom, heights in CSS px
 *     layers: [ ... ] }                drawn in order; hover looks at them in reverse
 *   A spans layer: { kind: 'spans', n, row(i), from(i), to(i), color(i),
 *                    top, bottom (fractions of the row, default 0 and 1),
 *                    label(i)? (drawn inside when it fits; an array: the first of
 *                    them that fits, longest first), text(i) (the hover text),
 *                    minPx? (narrowest drawn width, default 1) }
 *   A marks layer: { kind: 'marks', n, row(i) (-1: across every row), at(i), color(i),
 *                    shape: 'tick' | 'diamond' | 'flag' | 'line', top, bottom,
 *                    label(i)? (where two labels of one row would overlap, the
 *                    later one in time is drawn), text(i) }
 * Options: { buttons: [{ label, title, onClick(chart) }], onPick(hit), details: element
 *            (shows the text of the clicked item) }
 *
 * The handle: range(), setRange(min, max), zoom(factor), pan(fraction), reset(),
 * hitAt(x, y) (CSS px in the plot area) → { layer, index, text } | null, rowBox(row),
 * posOf(ms), uplot, destroy(). Zoom: drag across the plot, the mouse wheel, the +/−
 * buttons or keys; pan: shift+wheel, shift+drag, the ◀ ▶ buttons or arrow keys;
 * double-click or "reset" shows everything.
 */
(function (global) {
  'use strict';

  var CSS = [
    '.ql-wrap{position:relative;font:12px system-ui,sans-serif;outline:none}',
    '.ql-bar{display:flex;gap:4px;align-items:center;margin:4px 0}',
    '.ql-bar button{font:12px system-ui,sans-serif;padding:2px 8px;cursor:pointer}',
    '.ql-range{margin-left:8px;color:#555;font-variant-numeric:tabular-nums}',
    '.ql-tip{position:absolute;pointer-events:none;background:#fffff0;border:1px solid #888;padding:4px 6px;',
    'white-space:pre-line;max-width:480px;box-shadow:0 2px 6px rgba(0,0,0,.25);z-index:10;display:none}',
    '.ql-hl{position:absolute;pointer-events:none;border:2px solid #000;box-sizing:border-box;display:none;z-index:5}',
  ].join('\n');

  function injectCss() {
    if (document.getElementById('ql-css')) return;
    var s = document.createElement('style');
    s.id = 'ql-css';
    s.textContent = CSS;
    document.head.appendChild(s);
  }

  function fmtSpan(ms) {
    var a = Math.abs(ms);
    if (a < 1) return (ms * 1000).toFixed(0) + ' µs';
    if (a < 1000) return ms.toFixed(a < 10 ? 2 : a < 100 ? 1 : 0) + ' ms';
    if (a < 60000) return (ms / 1000).toFixed(3).replace(/\.?0+$/, '') + ' s';
    return Math.floor(ms / 60000) + ' min ' + ((ms % 60000) / 1000).toFixed(1) + ' s';
  }

  /** A time on the axis: seconds with as many decimals as the tick step needs. */
  function fmtTick(ms, incr) {
    var dec = Math.max(0, Math.min(6, -Math.floor(Math.log10(incr / 1000) + 1e-9)));
    return (ms / 1000).toFixed(dec) + ' s';
  }

  function lowerBound(arr, v, key) {
    var lo = 0;
    var hi = arr.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (key(arr[mid]) <= v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  function render(container, model, options) {
    if (typeof uPlot !== 'function') throw new Error('QuorumdLanes: uPlot is not loaded (inline it before this script)');
    if (!model || !Array.isArray(model.rows) || !Array.isArray(model.layers)) throw new Error('QuorumdLanes.render: expected a model { xMin, xMax, rows, layers }');
    var opts = options || {};
    injectCss();
    var rows = model.rows;
    var layers = model.layers;
    var xMin = model.xMin;
    var xMax = model.xMax > model.xMin ? model.xMax : model.xMin + 1;
    var rowTop = [];
    var total = 0;
    for (var r = 0; r < rows.length; r++) {
      rowTop.push(total);
      total += rows[r].height;
    }

    // Per layer and row: item indices sorted by start, and the longest item (for the
    // backward scan of a hit test).
    var index = layers.map(function (L) {
      var byRow = {};
      var longest = {};
      for (var i = 0; i < L.n; i++) {
        var row = L.row(i);
        (byRow[row] || (byRow[row] = [])).push(i);
        var len = L.kind === 'spans' ? L.to(i) - L.from(i) : 0;
        if (!(longest[row] >= len)) longest[row] = len;
      }
      var start = L.kind === 'spans' ? L.from : L.at;
      for (var k in byRow) byRow[k].sort(function (a, b) { return start(a) - start(b); });
      return { byRow: byRow, longest: longest, start: start };
    });

    var wrap = document.createElement('div');
    wrap.className = 'ql-wrap';
    wrap.tabIndex = 0;
    var bar = document.createElement('div');
    bar.className = 'ql-bar';
    var plotEl = document.createElement('div');
    var tip = document.createElement('div');
    tip.className = 'ql-tip';
    tip.setAttribute('data-testid', 'tooltip');
    var hl = document.createElement('div');
    hl.className = 'ql-hl';
    wrap.appendChild(bar);
    wrap.appendChild(plotEl);
    container.appendChild(wrap);

    var chart; // the handle, below
    function button(label, title, fn) {
      var b = document.createElement('button');
      b.type = 'button';
      b.textContent = label;
      b.title = title;
      b.setAttribute('data-action', title);
      b.addEventListener('click', function () { fn(chart); });
      bar.appendChild(b);
      return b;
    }
    var rangeEl = document.createElement('span');
    rangeEl.className = 'ql-range';

    var AXIS_X = 36;
    var width = Math.max(320, container.clientWidth || 900);
    var u;

    function yOf(v) { return total - v; } // row offsets (from the top) in y-scale values

    function drawLayer(u, L, li) {
      var ctx = u.ctx;
      var bb = u.bbox;
      var min = u.scales.x.min;
      var max = u.scales.x.max;
      var pxr = bb.width / (max - min);
      var dpr = uPlot.pxRatio;
      var top = L.top == null ? 0 : L.top;
      var bottom = L.bottom == null ? 1 : L.bottom;
      var minPx = (L.minPx == null ? 1 : L.minPx) * dpr;
      ctx.textBaseline = 'middle';
      ctx.textAlign = 'left';
      ctx.font = Math.round(10 * dpr) + 'px system-ui,sans-serif';
      var lastColor = null;
      /** A marks layer's labels, drawn after its marks: [row, x, y, text, colour]. */
      var labels = [];
      for (var i = 0; i < L.n; i++) {
        var row = L.row(i);
        var y0, y1;
        if (row < 0) {
          y0 = bb.top;
          y1 = bb.top + bb.height;
        } else {
          var rt = u.valToPos(yOf(rowTop[row]), 'y', true);
          var rb = u.valToPos(yOf(rowTop[row] + rows[row].height), 'y', true);
          y0 = rt + (rb - rt) * top;
          y1 = rt + (rb - rt) * bottom;
        }
        var c = L.color(i);
        if (L.kind === 'spans') {
          var f = L.from(i);
          var t = L.to(i);
          if (t < min || f > max) continue;
          var x0 = bb.left + (Math.max(f, min) - min) * pxr;
          var x1 = bb.left + (Math.min(t, max) - min) * pxr;
          var w = Math.max(x1 - x0, minPx);
          if (c !== lastColor) {
            ctx.fillStyle = c;
            lastColor = c;
          }
          ctx.fillRect(x0, y0, w, y1 - y0);
          if (L.label && w > 24 * dpr && y1 - y0 >= 8 * dpr) {
            var text = fitting(ctx, L.label(i), w - 6 * dpr);
            if (text) {
              ctx.fillStyle = textOn(c);
              ctx.fillText(text, x0 + 3 * dpr, (y0 + y1) / 2);
              lastColor = null;
            }
          }
        } else {
          var a = L.at(i);
          if (a < min || a > max) continue;
          var x = bb.left + (a - min) * pxr;
          ctx.fillStyle = c;
          ctx.strokeStyle = c;
          lastColor = null;
          var shape = L.shape || 'tick';
          if (shape === 'line' || shape === 'tick') {
            ctx.lineWidth = (shape === 'line' ? 2 : 1.5) * dpr;
            ctx.beginPath();
            ctx.moveTo(x, y0);
            ctx.lineTo(x, y1);
            ctx.stroke();
          } else if (shape === 'diamond') {
            var m = (y0 + y1) / 2;
            var h = Math.min((y1 - y0) / 2, 6 * dpr);
            ctx.beginPath();
            ctx.moveTo(x, m - h);
            ctx.lineTo(x + h, m);
            ctx.lineTo(x, m + h);
            ctx.lineTo(x - h, m);
            ctx.closePath();
            ctx.fill();
          } else if (shape === 'flag') {
            ctx.lineWidth = 1.5 * dpr;
            ctx.beginPath();
            ctx.moveTo(x, y1);
            ctx.lineTo(x, y0);
            ctx.lineTo(x + 7 * dpr, y0 + 3 * dpr);
            ctx.lineTo(x, y0 + 6 * dpr);
            ctx.fill();
            ctx.stroke();
          }
          if (L.label) {
            var lt = L.label(i);
            if (lt) labels.push([row, x + 3 * dpr, shape === 'line' ? y0 + 8 * dpr : (y0 + y1) / 2, lt, c]);
          }
        }
      }
      drawMarkLabels(ctx, labels, 2 * dpr);
    }

    /** The label (or the first of several) narrower than `room` canvas px; null when none is. */
    function fitting(ctx, label, room) {
      var list = Array.isArray(label) ? label : [label];
      for (var k = 0; k < list.length; k++) if (list[k] && ctx.measureText(list[k]).width < room) return list[k];
      return null;
    }

    /**
     * Labels of marks, right to left in each row: one that would run into the label on
     * its right (the later mark's) is left out, so that bursts of marks (a term bumped
     * twice in a few ms) do not print their numbers over each other; zooming in shows them.
     */
    function drawMarkLabels(ctx, labels, gap) {
      if (labels.length === 0) return;
      labels.sort(function (a, b) { return a[0] - b[0] || b[1] - a[1]; });
      var lastRow = null;
      var limit = Infinity;
      for (var k = 0; k < labels.length; k++) {
        var lb = labels[k];
        if (lb[0] !== lastRow) {
          lastRow = lb[0];
          limit = Infinity;
        }
        if (lb[1] + ctx.measureText(lb[3]).width + gap > limit) continue;
        ctx.fillStyle = lb[4];
        ctx.fillText(lb[3], lb[1], lb[2]);
        limit = lb[1] - 3 * gap;
      }
    }

    function draw(u) {
      var ctx = u.ctx;
      var bb = u.bbox;
      ctx.save();
      ctx.beginPath();
      ctx.rect(bb.left, bb.top, bb.width, bb.height);
      ctx.clip();
      // Row backgrounds and separators.
      for (var r = 0; r < rows.length; r++) {
        var rt = u.valToPos(yOf(rowTop[r]), 'y', true);
        var rb = u.valToPos(yOf(rowTop[r] + rows[r].height), 'y', true);
        if (rows[r].background) {
          ctx.fillStyle = rows[r].background;
          ctx.fillRect(bb.left, rt, bb.width, rb - rt);
        }
        ctx.fillStyle = '#e4e4e4';
        ctx.fillRect(bb.left, rb - 1, bb.width, 1);
      }
      for (var li = 0; li < layers.length; li++) drawLayer(u, layers[li], li);
      ctx.restore();
    }

    /** Black or white text on a fill colour (by its luminance; # colours only, else black). */
    function textOn(color) {
      var m = /^#([0-9a-f]{6})$/i.exec(color);
      if (!m) return '#000';
      var n = parseInt(m[1], 16);
      var l = 0.299 * (n >> 16) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255);
      return l < 140 ? '#fff' : '#000';
    }

    function hitAt(x, y) {
      if (!u) return null;
      var bbh = u.bbox.height / uPlot.pxRatio;
      if (x < 0 || y < 0 || y > bbh) return null;
      var v = u.posToVal(x, 'x');
      var pxPerMs = (u.bbox.width / uPlot.pxRatio) / (u.scales.x.max - u.scales.x.min);
      var row = -1;
      var fr = 0;
      for (var r = 0; r < rows.length; r++) {
        var t = u.valToPos(yOf(rowTop[r]), 'y');
        var b = u.valToPos(yOf(rowTop[r] + rows[r].height), 'y');
        if (y >= t && y < b) {
          row = r;
          fr = (y - t) / (b - t);
          break;
        }
      }
      for (var li = layers.length - 1; li >= 0; li--) {
        var L = layers[li];
        var top = L.top == null ? 0 : L.top;
        var bottom = L.bottom == null ? 1 : L.bottom;
        var ix = index[li];
        if (L.kind === 'marks') {
          var tol = 5 / pxPerMs;
          var cands = [];
          if (ix.byRow[-1]) cands.push(ix.byRow[-1]);
          if (row >= 0 && ix.byRow[row] && fr >= top - 0.05 && fr <= bottom + 0.05) cands.push(ix.byRow[row]);
          var best = -1;
          var bestD = Infinity;
          for (var c = 0; c < cands.length; c++) {
            var list = cands[c];
            var j = lowerBound(list, v - tol - 1e-9, ix.start);
            for (; j < list.length && ix.start(list[j]) <= v + tol; j++) {
              var d = Math.abs(ix.start(list[j]) - v);
              if (d < bestD) {
                bestD = d;
                best = list[j];
              }
            }
          }
          if (best >= 0) return { layer: li, index: best, text: L.text(best) };
        } else {
          if (row < 0 || fr < top || fr > bottom) continue;
          var items = ix.byRow[row];
          if (!items) continue;
          var minMs = ((L.minPx == null ? 1 : L.minPx) + 2) / pxPerMs;
          var k = lowerBound(items, v + minMs / 2, ix.start) - 1;
          var reach = ix.longest[row] + minMs;
          for (; k >= 0; k--) {
            var i = items[k];
            var f = L.from(i);
            if (f < v - reach) break;
            var to = Math.max(L.to(i), f + minMs);
            if (f - minMs / 2 <= v && v <= to) return { layer: li, index: i, text: L.text(i) };
          }
        }
      }
      return null;
    }

    /** The item's box in CSS px of the plot area (for the highlight). */
    function boxOf(hit) {
      var L = layers[hit.layer];
      var i = hit.index;
      var row = L.row(i);
      var top = L.top == null ? 0 : L.top;
      var bottom = L.bottom == null ? 1 : L.bottom;
      var y0, y1;
      if (row < 0) {
        y0 = 0;
        y1 = u.bbox.height / uPlot.pxRatio;
      } else {
        var t = u.valToPos(yOf(rowTop[row]), 'y');
        var b = u.valToPos(yOf(rowTop[row] + rows[row].height), 'y');
        y0 = t + (b - t) * top;
        y1 = t + (b - t) * bottom;
      }
      var x0, x1;
      if (L.kind === 'spans') {
        x0 = Math.max(0, u.valToPos(L.from(i), 'x'));
        x1 = Math.min(u.bbox.width / uPlot.pxRatio, u.valToPos(L.to(i), 'x'));
        if (x1 - x0 < 3) {
          x0 -= 1.5;
          x1 = x0 + 3;
        }
      } else {
        x0 = u.valToPos(L.at(i), 'x') - 5;
        x1 = x0 + 10;
      }
      return { left: x0, top: y0, width: x1 - x0, height: y1 - y0 };
    }

    var hover = null;
    function showHover() {
      var left = u.cursor.left;
      var top = u.cursor.top;
      var h = left == null || left < 0 ? null : hitAt(left, top);
      hover = h;
      if (!h) {
        tip.style.display = 'none';
        hl.style.display = 'none';
        return;
      }
      tip.textContent = h.text;
      tip.style.display = 'block';
      var ow = u.over.clientWidth;
      var tw = tip.offsetWidth;
      var px = left + 14;
      if (px + tw > ow) px = Math.max(0, left - tw - 14);
      tip.style.left = px + 'px';
      tip.style.top = top + 16 + 'px';
      var b = boxOf(h);
      hl.style.display = 'block';
      hl.style.left = b.left + 'px';
      hl.style.top = b.top + 'px';
      hl.style.width = Math.max(3, b.width) + 'px';
      hl.style.height = Math.max(3, b.height) + 'px';
    }

    function showRange() {
      if (!u) return;
      var s = u.scales.x;
      rangeEl.textContent = (s.min / 1000).toFixed(3) + ' s – ' + (s.max / 1000).toFixed(3) + ' s  (' + fmtSpan(s.max - s.min) + ' shown)';
    }

    function clampRange(min, max) {
      var span = Math.max(max - min, 0.01);
      var full = xMax - xMin;
      if (span > full) return [xMin, xMax];
      if (min < xMin) {
        min = xMin;
        max = min + span;
      }
      if (max > xMax) {
        max = xMax;
        min = max - span;
      }
      return [min, max];
    }

    function setRange(min, max) {
      var c = clampRange(min, max);
      u.setScale('x', { min: c[0], max: c[1] });
    }

    var uopts = {
      width: width,
      height: total + AXIS_X,
      legend: { show: false },
      padding: [4, 12, 0, 0],
      scales: {
        x: { time: false, range: function (u, min, max) { return [min, max]; } },
        y: { auto: false, range: [0, total] },
      },
      cursor: {
        y: false,
        points: { show: false },
        drag: { x: true, y: false, setScale: true },
      },
      select: { show: true },
      series: [{}, { scale: 'y', stroke: 'transparent', points: { show: false } }],
      axes: [
        {
          scale: 'x',
          space: 70,
          values: function (u, splits, ai, space, incr) { return splits.map(function (v) { return fmtTick(v, incr); }); },
          grid: { stroke: '#eee', width: 1 },
        },
        {
          scale: 'y',
          size: 96,
          gap: 4,
          grid: { show: false },
          ticks: { show: false },
          splits: function () { return rows.map(function (row, r) { return yOf(rowTop[r] + row.height / 2); }); },
          values: function () { return rows.map(function (row) { return row.label; }); },
          font: '12px system-ui,sans-serif',
        },
      ],
      hooks: {
        draw: [draw],
        setCursor: [showHover],
        setScale: [function (u, key) { if (key === 'x') { showRange(); showHover(); } }],
      },
    };
    u = new uPlot(uopts, [[xMin, xMax], [null, null]], plotEl);
    u.over.appendChild(hl);
    u.over.appendChild(tip);
    u.over.setAttribute('data-testid', 'plot');

    // ---- zoom and pan -------------------------------------------------------------
    function range() { return { min: u.scales.x.min, max: u.scales.x.max }; }
    function zoom(factor, center) {
      var s = range();
      var c = center == null ? (s.min + s.max) / 2 : center;
      setRange(c - (c - s.min) * factor, c + (s.max - c) * factor);
    }
    function pan(fraction) {
      var s = range();
      var d = (s.max - s.min) * fraction;
      setRange(s.min + d, s.max + d);
    }
    function reset() { setRange(xMin, xMax); }

    button('−', 'zoom out', function () { zoom(2); });
    button('+', 'zoom in', function () { zoom(0.5); });
    button('◀', 'pan left', function () { pan(-0.25); });
    button('▶', 'pan right', function () { pan(0.25); });
    button('reset', 'show everything', reset);
    (opts.buttons || []).forEach(function (b) { button(b.label, b.title || b.label, b.onClick); });
    bar.appendChild(rangeEl);

    u.over.addEventListener('wheel', function (e) {
      e.preventDefault();
      var s = range();
      if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
        var dx = e.shiftKey && e.deltaX === 0 ? e.deltaY : e.deltaX;
        pan(dx / 1000);
        return;
      }
      var c = u.posToVal(e.offsetX, 'x');
      zoom(Math.exp(Math.max(-1, Math.min(1, e.deltaY * 0.002))), Math.max(s.min, Math.min(s.max, c)));
    }, { passive: false });

    // Shift+drag (or the middle button) pans; a plain drag selects a range to zoom to (uPlot).
    var panFrom = null;
    plotEl.addEventListener('mousedown', function (e) {
      if (!(e.shiftKey || e.button === 1)) return;
      e.stopPropagation();
      e.preventDefault();
      panFrom = { x: e.clientX, range: range() };
    }, true);
    function onPanMove(e) {
      if (!panFrom) return;
      var ms = ((e.clientX - panFrom.x) / (u.bbox.width / uPlot.pxRatio)) * (panFrom.range.max - panFrom.range.min);
      setRange(panFrom.range.min - ms, panFrom.range.max - ms);
    }
    function onPanEnd() { panFrom = null; }
    // On window (a pan may leave the plot); removed by destroy(), so a page that
    // renders again and again (the node dashboard) does not pile them up.
    window.addEventListener('mousemove', onPanMove);
    window.addEventListener('mouseup', onPanEnd);

    // A click (not the end of a drag) picks the item under the cursor.
    var downAt = null;
    u.over.addEventListener('mousedown', function (e) { downAt = { x: e.clientX, y: e.clientY }; });
    u.over.addEventListener('click', function (e) {
      if (!downAt || Math.abs(e.clientX - downAt.x) > 3 || Math.abs(e.clientY - downAt.y) > 3) return;
      var h = hitAt(e.offsetX, e.offsetY);
      if (opts.details) opts.details.textContent = h ? h.text : '';
      if (opts.onPick) opts.onPick(h);
    });

    wrap.addEventListener('keydown', function (e) {
      var k = e.key;
      if (k === '+' || k === '=') zoom(0.5);
      else if (k === '-' || k === '_') zoom(2);
      else if (k === 'ArrowLeft') pan(-0.25);
      else if (k === 'ArrowRight') pan(0.25);
      else if (k === '0') reset();
      else return;
      e.preventDefault();
    });

    var ro = null;
    if (typeof ResizeObserver === 'function') {
      ro = new ResizeObserver(function () {
        var w = Math.max(320, container.clientWidth);
        if (Math.abs(w - u.width) > 2) u.setSize({ width: w, height: total + AXIS_X });
      });
      ro.observe(container);
    }

    chart = {
      uplot: u,
      rows: rows,
      layers: layers,
      range: range,
      setRange: setRange,
      zoom: zoom,
      pan: pan,
      reset: reset,
      hitAt: hitAt,
      hovered: function () { return hover; },
      /** A row's top and height in CSS px within the plot area. */
      rowBox: function (r) {
        var t = u.valToPos(yOf(rowTop[r]), 'y');
        var b = u.valToPos(yOf(rowTop[r] + rows[r].height), 'y');
        return { top: t, height: b - t };
      },
      posOf: function (ms) { return u.valToPos(ms, 'x'); },
      destroy: function () {
        window.removeEventListener('mousemove', onPanMove);
        window.removeEventListener('mouseup', onPanEnd);
        if (ro) ro.disconnect();
        u.destroy();
        wrap.remove();
      },
    };
    if (model.initial) setRange(model.initial.min, model.initial.max);
    showRange();
    return chart;
  }

  global.QuorumdLanes = { render: render, fmtSpan: fmtSpan, version: 1 };
})(typeof window !== 'undefined' ? window : this);
