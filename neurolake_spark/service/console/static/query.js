// The query page: runs a statement through the statements API (POST /api/v1/queries), polls its
// state, cancels it (POST /api/v1/queries/{id}/cancel), pages through the result chunks and builds a CSV.
// Requests go with the session cookie and its CSRF token (the page's <meta name="csrf-token">).
(function () {
  'use strict';
  var PAGE = 100;
  var form = document.getElementById('query-form');
  var stateLine = document.getElementById('query-state');
  var result = document.getElementById('result');
  var runButton = document.getElementById('run');
  var cancelButton = document.getElementById('cancel');
  var csvButton = document.getElementById('csv');
  var prev = document.getElementById('prev');
  var next = document.getElementById('next');
  var pageInfo = document.getElementById('page-info');
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute('content');
  var current = null; // {id, columns, chunks: {index: rows}, total, offset}

  function api(method, path, body) {
    var headers = {Accept: 'application/json', 'X-CSRF-Token': csrf};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return fetch(path, {method: method, credentials: 'same-origin', headers: headers,
                        body: body === undefined ? undefined : JSON.stringify(body)})
      .then(function (r) { return r.json().catch(function () { return {}; }).then(function (j) { return {status: r.status, body: j}; }); });
  }
  function say(text) { stateLine.textContent = text; }
  function running(yes) {
    runButton.disabled = yes;
    cancelButton.disabled = !yes;
    document.body.setAttribute('data-query-running', yes ? 'true' : 'false');
  }
  function columnsOf(manifest) {
    var schema = (manifest || {}).schema || [];
    var list = Array.isArray(schema) ? schema : (schema.columns || schema.fields || []);
    return list.map(function (c) { return typeof c === 'string' ? c : c.name; });
  }
  function rowsOf(chunk) { return (chunk && (chunk.data_array || chunk.rows || chunk.data)) || []; }
  function show() {
    var rows = [];
    var start = current.offset;
    Object.keys(current.chunks).map(Number).sort(function (a, b) { return a - b; }).forEach(function (i) {
      rows = rows.concat(current.chunks[i]);
    });
    var slice = rows.slice(start, start + PAGE);
    result.textContent = '';
    if (!current.total) {
      var p = document.createElement('p');
      p.className = 'empty';
      p.textContent = 'The statement returned no rows.';
      result.appendChild(p);
    } else {
      var t = document.createElement('table');
      t.className = 'data';
      t.createCaption().textContent = 'Rows ' + (start + 1) + ' to ' + (start + slice.length) + ' of ' + current.total +
        (current.truncated ? ' (cut at the row limit)' : '');
      var head = t.createTHead().insertRow();
      current.columns.forEach(function (c) { var th = document.createElement('th'); th.scope = 'col'; th.textContent = c; head.appendChild(th); });
      var body = t.createTBody();
      slice.forEach(function (row) {
        var tr = body.insertRow();
        (Array.isArray(row) ? row : current.columns.map(function (c) { return row[c]; })).forEach(function (v) {
          tr.insertCell().textContent = v === null || v === undefined ? 'NULL' : String(v);
        });
      });
      result.appendChild(t);
    }
    pageInfo.textContent = current.total ? 'page ' + (Math.floor(start / PAGE) + 1) + ' of ' + Math.ceil(current.total / PAGE) : '';
    prev.disabled = start === 0;
    next.disabled = start + PAGE >= current.total;
    csvButton.disabled = !current.total;
  }
  function loaded() {
    return Object.keys(current.chunks).reduce(function (n, i) { return n + current.chunks[i].length; }, 0);
  }
  function fetchChunk(index) {
    return api('GET', '/api/v1/queries/' + current.id + '/result/chunks/' + index).then(function (answer) {
      if (answer.status !== 200) throw new Error(answer.body.detail || 'the result could not be read');
      current.chunks[index] = rowsOf(answer.body);
      return current.chunks[index].length;
    });
  }
  function ensure(rowsNeeded) {
    // fetch chunks in order until rowsNeeded rows are loaded or no chunk is left
    var index = Object.keys(current.chunks).length;
    if (loaded() >= Math.min(rowsNeeded, current.total) || index >= current.chunkCount) return Promise.resolve();
    return fetchChunk(index).then(function (n) { return n ? ensure(rowsNeeded) : undefined; });
  }
  function finished(body) {
    var state = body.status.state;
    running(false);
    if (state === 'SUCCEEDED') {
      var manifest = body.manifest || {};
      current.columns = columnsOf(manifest);
      current.total = manifest.total_row_count || 0;
      current.truncated = !!manifest.truncated;
      current.chunkCount = Array.isArray(manifest.chunks) ? manifest.chunks.length : (manifest.total_chunk_count || manifest.chunks || 1);
      current.chunks = {};
      current.offset = 0;
      if (body.result) current.chunks[0] = rowsOf(body.result);
      say('Succeeded: ' + current.total + ' row(s).');
      return ensure(PAGE).then(show);
    }
    var error = body.status.error;
    say(state === 'CANCELED' ? 'Canceled.' : 'Failed: ' + ((error && (error.message || error.detail)) || error || 'unknown error'));
    document.body.setAttribute('data-query-state', state);
  }
  function poll() {
    if (!current) return;
    api('GET', '/api/v1/queries/' + current.id).then(function (answer) {
      if (!current) return;
      if (answer.status !== 200) { running(false); say('Failed: ' + (answer.body.detail || 'the statement was lost')); return; }
      var state = answer.body.status.state;
      document.body.setAttribute('data-query-state', state);
      if (state === 'PENDING' || state === 'RUNNING') { say(state === 'PENDING' ? 'Waiting to run…' : 'Running…'); setTimeout(poll, 500); }
      else finished(answer.body);
    });
  }
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var limit = parseInt(document.getElementById('row_limit').value, 10) || 10000;
    current = null;
    result.textContent = '';
    csvButton.disabled = true;
    running(true);
    say('Sending…');
    document.body.setAttribute('data-query-state', 'PENDING');
    api('POST', '/api/v1/queries', {statement: document.getElementById('statement').value, wait_timeout: '2s',
                                   on_wait_timeout: 'CONTINUE', row_limit: limit})
      .then(function (answer) {
        if (answer.status !== 200 && answer.status !== 201 && answer.status !== 202) {
          running(false);
          document.body.setAttribute('data-query-state', 'REFUSED');
          say('Refused: ' + (answer.body.detail || 'error ' + answer.status));
          return;
        }
        current = {id: answer.body.statement_id, chunks: {}, offset: 0, total: 0};
        var state = answer.body.status.state;
        document.body.setAttribute('data-query-state', state);
        if (state === 'PENDING' || state === 'RUNNING') { say('Running…'); setTimeout(poll, 500); }
        else finished(answer.body);
      })
      .catch(function () { running(false); say('The service did not answer.'); });
  });
  cancelButton.addEventListener('click', function () {
    if (!current) return;
    cancelButton.disabled = true;
    say('Cancelling…');
    api('POST', '/api/v1/queries/' + current.id + '/cancel').then(function (answer) {
      if (answer.status >= 400) say('The statement could not be cancelled: ' + (answer.body.detail || answer.status));
    });
  });
  prev.addEventListener('click', function () { current.offset = Math.max(0, current.offset - PAGE); show(); });
  next.addEventListener('click', function () {
    current.offset += PAGE;
    ensure(current.offset + PAGE).then(show).catch(function (err) { say('Failed: ' + err.message); });
  });
  function csvCell(v) {
    var text = v === null || v === undefined ? '' : String(v);
    return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }
  csvButton.addEventListener('click', function () {
    say('Preparing the CSV…');
    ensure(current.total).then(function () {
      var lines = [current.columns.map(csvCell).join(',')];
      Object.keys(current.chunks).map(Number).sort(function (a, b) { return a - b; }).forEach(function (i) {
        current.chunks[i].forEach(function (row) {
          var values = Array.isArray(row) ? row : current.columns.map(function (c) { return row[c]; });
          lines.push(values.map(csvCell).join(','));
        });
      });
      var link = document.createElement('a');
      link.href = URL.createObjectURL(new Blob([lines.join('\r\n') + '\r\n'], {type: 'text/csv'}));
      link.download = 'query-' + current.id + '.csv';
      document.body.appendChild(link);
      link.click();
      link.remove();
      say('Succeeded: ' + current.total + ' row(s); CSV downloaded.');
    }).catch(function (err) { say('Failed: ' + err.message); });
  });
  running(false);
})();
