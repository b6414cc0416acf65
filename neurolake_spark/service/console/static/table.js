// The table page's preview: the first rows of the chosen version through the data API
// (GET /api/v1/data/tables/{name}/preview), with PII masked by the service as the user's role requires.
(function () {
  'use strict';
  var section = document.getElementById('preview');
  if (!section) return;
  var body = section.querySelector('.preview-body');
  var table = section.getAttribute('data-table');
  var version = section.getAttribute('data-version');
  var query = new URLSearchParams({limit: '20'});
  if (version) query.set('version', version);
  function say(text, cls) {
    body.textContent = '';
    var p = document.createElement('p');
    p.className = cls || 'muted';
    p.textContent = text;
    body.appendChild(p);
  }
  say('Loading the preview…');
  fetch('/api/v1/data/tables/' + encodeURIComponent(table) + '/preview?' + query.toString(),
        {credentials: 'same-origin', headers: {Accept: 'application/json'}})
    .then(function (r) { return r.json().then(function (j) { return {status: r.status, body: j}; }); })
    .then(function (answer) {
      if (answer.status !== 200) {
        say(answer.status === 404 && !answer.body.suggestions ? 'Previews are not available on this service.'
            : (answer.body.detail || 'The preview could not be loaded.'), answer.status === 404 ? 'empty' : 'error');
        return;
      }
      var data = answer.body;
      var columns = (data.schema || data.columns || []).map(function (c) { return c.name || c; });
      var rows = data.rows || [];
      if (!rows.length) { say('This version has no rows.', 'empty'); return; }
      var t = document.createElement('table');
      t.className = 'data';
      var caption = t.createCaption();
      caption.textContent = rows.length + ' row(s)' + (data.version !== undefined ? ' of version ' + data.version : '') +
        ((data.masked_columns || []).length ? '; masked: ' + data.masked_columns.join(', ') : '');
      var head = t.createTHead().insertRow();
      columns.forEach(function (c) { var th = document.createElement('th'); th.scope = 'col'; th.textContent = c; head.appendChild(th); });
      var tbody = t.createTBody();
      rows.forEach(function (row) {
        var tr = tbody.insertRow();
        (Array.isArray(row) ? row : columns.map(function (c) { return row[c]; })).forEach(function (v) {
          tr.insertCell().textContent = v === null || v === undefined ? '—' : String(v);
        });
      });
      body.textContent = '';
      body.appendChild(t);
    })
    .catch(function () { say('The preview could not be loaded.', 'error'); });
})();
