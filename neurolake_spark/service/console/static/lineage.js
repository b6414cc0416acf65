// The lineage page: pan and zoom, redraw without a reload (as of, compare, steps, level), details on click.
// The page works without this script (the form and links reload it); nothing here is inline (strict CSP).
(function () {
  'use strict';
  var form = document.getElementById('lineage-controls');
  var slot = document.getElementById('drawing-slot');
  var details = document.getElementById('node-details');
  var base = form.getAttribute('data-base');
  var view = null; // {x, y, w, h} of the svg's viewBox

  document.querySelectorAll('.js-only').forEach(function (el) { el.hidden = false; });

  function svg() { return slot.querySelector('svg'); }
  function params() {
    var out = new URLSearchParams();
    new FormData(form).forEach(function (value, key) { if (String(value) !== '') out.set(key, String(value)); });
    return out;
  }
  function setBox(box) {
    view = box;
    svg().setAttribute('viewBox', [box.x, box.y, box.w, box.h].join(' '));
  }
  var READABLE = 0.6; // the smallest scale at which the boxes' words can be read
  function fit(readable) {
    // readable: show the root at a readable scale when the whole graph would be too small to read
    var s = svg();
    if (!s) return;
    if (s.hasAttribute('width')) {
      s.setAttribute('data-width', s.getAttribute('width'));
      s.setAttribute('data-height', s.getAttribute('height'));
      s.removeAttribute('width');
      s.removeAttribute('height');
      s.setAttribute('preserveAspectRatio', 'xMidYMid meet');
    }
    var w = parseFloat(s.getAttribute('data-width')), h = parseFloat(s.getAttribute('data-height'));
    var canvas = document.getElementById('canvas');
    var tallest = window.innerHeight * 0.72;
    var whole = Math.min(canvas.clientWidth / w, tallest / h);
    var scale = readable ? Math.max(whole, READABLE) : whole;
    canvas.style.height = Math.max(260, Math.min(h * scale + 24, tallest)) + 'px';
    if (!readable || whole >= READABLE) { setBox({x: 0, y: 0, w: w, h: h}); return; }
    var box = {w: canvas.clientWidth / READABLE, h: canvas.clientHeight / READABLE};
    var root = s.querySelector('.node.root rect');
    var cx = root ? parseFloat(root.getAttribute('x')) + parseFloat(root.getAttribute('width')) / 2 : w / 2;
    var cy = root ? parseFloat(root.getAttribute('y')) + parseFloat(root.getAttribute('height')) / 2 : h / 2;
    box.x = Math.max(0, Math.min(cx - box.w / 2, w - box.w));
    box.y = Math.max(Math.min(0, (h - box.h) / 2), Math.min(cy - box.h / 2, h - box.h));
    setBox(box);
  }
  function zoom(factor, cx, cy) {
    if (!view) return;
    var w = Math.max(60, Math.min(view.w * factor, 4 * parseFloat(svg().getAttribute('data-width'))));
    var h = view.h * (w / view.w);
    cx = cx === undefined ? view.x + view.w / 2 : cx;
    cy = cy === undefined ? view.y + view.h / 2 : cy;
    setBox({x: cx - (cx - view.x) * (w / view.w), y: cy - (cy - view.y) * (h / view.h), w: w, h: h});
  }
  function pan(dx, dy) { if (view) setBox({x: view.x + dx, y: view.y + dy, w: view.w, h: view.h}); }
  function point(event) {
    var s = svg(), r = s.getBoundingClientRect();
    var scale = Math.max(view.w / r.width, view.h / r.height);
    var ox = (r.width * scale - view.w) / 2, oy = (r.height * scale - view.h) / 2;
    return {x: view.x - ox + (event.clientX - r.left) * scale, y: view.y - oy + (event.clientY - r.top) * scale, scale: scale};
  }
  function select(node) {
    document.querySelectorAll('.node.selected').forEach(function (n) { n.classList.remove('selected'); });
    node.classList.add('selected');
    var query = new URLSearchParams({id: node.getAttribute('data-id')});
    var asOf = params().get('as_of');
    if (asOf) query.set('as_of', asOf);
    details.setAttribute('aria-busy', 'true');
    fetch(base + '/node?' + query.toString(), {credentials: 'same-origin'})
      .then(function (r) { return r.text().then(function (t) { return {ok: r.ok, text: t}; }); })
      .then(function (answer) {
        if (answer.ok) details.innerHTML = answer.text;
        else details.textContent = 'The details could not be loaded.';
      })
      .catch(function () { details.textContent = 'The details could not be loaded.'; })
      .then(function () { details.removeAttribute('aria-busy'); });
  }
  function wire() {
    var s = svg();
    var canvas = document.getElementById('canvas');
    if (!s || !canvas) return;
    s.setAttribute('role', 'group');
    s.setAttribute('aria-label', 'lineage graph');
    fit(true);
    s.querySelectorAll('.node').forEach(function (node) {
      node.setAttribute('role', 'button');
      node.addEventListener('click', function () { select(node); });
      node.addEventListener('keydown', function (e) {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(node); }
      });
    });
    canvas.addEventListener('wheel', function (e) {
      e.preventDefault();
      var p = point(e);
      zoom(e.deltaY > 0 ? 1.15 : 1 / 1.15, p.x, p.y);
    }, {passive: false});
    var drag = null;
    canvas.addEventListener('pointerdown', function (e) {
      if (e.target.closest && e.target.closest('.node')) return;
      drag = {x: e.clientX, y: e.clientY, scale: point(e).scale};
      canvas.setPointerCapture(e.pointerId);
      canvas.classList.add('dragging');
    });
    canvas.addEventListener('pointermove', function (e) {
      if (!drag) return;
      pan((drag.x - e.clientX) * drag.scale, (drag.y - e.clientY) * drag.scale);
      drag.x = e.clientX;
      drag.y = e.clientY;
    });
    canvas.addEventListener('pointerup', function () { drag = null; canvas.classList.remove('dragging'); });
    canvas.addEventListener('keydown', function (e) {
      if (e.target !== canvas) return;
      var step = view ? view.w / 10 : 50;
      var keys = {ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step]};
      if (keys[e.key]) { e.preventDefault(); pan(keys[e.key][0], keys[e.key][1]); }
      else if (e.key === '+' || e.key === '=') zoom(1 / 1.25);
      else if (e.key === '-') zoom(1.25);
      else if (e.key === '0') fit(false);
    });
    var root = s.querySelector('.node.root');
    if (root) select(root);
    var drawing = document.getElementById('drawing');
    document.body.setAttribute('data-nodes', drawing.getAttribute('data-nodes'));
    document.body.setAttribute('data-ready', 'true');
  }
  function links(query) {
    document.querySelectorAll('a.export').forEach(function (a) {
      a.href = base + '/export.' + a.getAttribute('data-kind') + '?' + query.toString();
    });
    document.querySelectorAll('a.step').forEach(function (a) {
      var next = new URLSearchParams(query.toString());
      var key = a.getAttribute('data-step');
      next.set(key, String(parseInt(query.get(key) || '3', 10) + 1));
      a.href = '?' + next.toString();
    });
  }
  function redraw(query, push) {
    document.body.setAttribute('data-ready', 'false');
    slot.setAttribute('aria-busy', 'true');
    return fetch(base + '/drawing?' + query.toString(), {credentials: 'same-origin'})
      .then(function (r) { return r.text().then(function (t) { return {ok: r.ok, text: t}; }); })
      .then(function (answer) {
        if (!answer.ok) {
          var doc = new DOMParser().parseFromString(answer.text, 'text/html');
          var alert = doc.querySelector('[role=alert]');
          slot.querySelector('.summary').textContent = alert ? alert.textContent : 'The graph could not be drawn.';
          document.body.setAttribute('data-ready', 'true');
          return;
        }
        slot.innerHTML = answer.text;
        if (push) history.pushState(null, '', '?' + query.toString());
        links(query);
        wire();
      })
      .catch(function () {
        slot.querySelector('.summary').textContent = 'The graph could not be drawn: is the service running?';
        document.body.setAttribute('data-ready', 'true');
      })
      .then(function () { slot.removeAttribute('aria-busy'); });
  }
  form.addEventListener('submit', function (e) { e.preventDefault(); redraw(params(), true); });
  document.querySelectorAll('a.step').forEach(function (a) {
    a.addEventListener('click', function (e) {
      e.preventDefault();
      var query = new URLSearchParams(a.getAttribute('href').slice(1));
      var key = a.getAttribute('data-step');
      form.elements[key].value = query.get(key);
      redraw(params(), true);
    });
  });
  document.querySelectorAll('[data-zoom]').forEach(function (b) {
    b.addEventListener('click', function () {
      var how = b.getAttribute('data-zoom');
      if (how === 'fit') fit(false); else zoom(how === 'in' ? 1 / 1.25 : 1.25);
    });
  });
  window.addEventListener('popstate', function () {
    var query = new URLSearchParams(location.search);
    ['as_of', 'compare', 'up', 'down', 'column'].forEach(function (key) {
      if (form.elements[key]) form.elements[key].value = query.get(key) || (key === 'up' || key === 'down' ? '3' : '');
    });
    redraw(params(), false);
  });
  wire();
})();
