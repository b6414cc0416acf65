(function () {
  var data = JSON.parse(document.getElementById('lineage-data').textContent);
  var panel = document.getElementById('details');
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function show(value) { return value === null || value === undefined || value === '' ? '—' : value; }
  function table(headers, rows) {
    var t = el('table');
    if (headers) {
      var head = el('tr');
      headers.forEach(function (h) { head.appendChild(el('th', h)); });
      t.appendChild(head);
    }
    rows.forEach(function (row) {
      var tr = el('tr');
      row.forEach(function (cell) {
        if (cell instanceof Node) { var td = el('td'); td.appendChild(cell); tr.appendChild(td); }
        else tr.appendChild(el('td', show(cell)));
      });
      t.appendChild(tr);
    });
    return t;
  }
  function section(title, content) {
    panel.appendChild(el('h3', title));
    panel.appendChild(content);
  }
  function outcome(success) { return el('span', success ? 'passed' : 'FAILED', success ? 'pass' : 'fail'); }
  function renderDataset(d) {
    var facts = [['Namespace', d.namespace], ['Format', d.format], ['Owner', d.owner], ['Description', d.description],
                 ['Tags', (d.tags || []).join(', ')], ['Current version', d.version], ['Last written', d.last_updated],
                 ['Written by jobs', (d.written_by || []).join(', ')], ['Read by jobs', (d.read_by || []).join(', ')],
                 ['Quality checks (latest run)', d.quality.checks ? d.quality.passed + ' of ' + d.quality.checks +
                   ' passed (run date ' + show(d.quality.run_date) + ')' : 'none recorded']];
    section('About', table(null, facts));
    section('Versions (newest first)', d.versions.length ? table(
      ['Version', 'Written by', 'Run date', 'Completed', 'Rows', 'From inputs', 'Code version', 'Run id'],
      d.versions.map(function (v) {
        return [v.version, v.job, v.run_date, v.completed, v.rows,
                v.inputs.map(function (i) { return i.dataset + (i.version !== null ? ' v' + i.version : ''); }).join(', '),
                v.code_version, v.run];
      })) : el('p', 'No version written yet.', 'muted'));
    var lineage = Object.keys(d.column_lineage || {});
    if (lineage.length) {
      var rows = [];
      lineage.forEach(function (column) {
        d.column_lineage[column].forEach(function (s) { rows.push([column, s.how, s.dataset + '.' + s.column]); });
      });
      section('Column lineage (latest version)', table(['Column', 'How', 'From'], rows));
    }
    section('Schema', d.columns.length ? table(['Column', 'Type'], d.columns.map(function (c) { return [c.name, c.type]; }))
                                       : el('p', 'No schema recorded.', 'muted'));
    section('Quality results', d.quality_results.length ? table(
      ['Check', 'Column', 'Result', 'Observed', 'Unexpected rows', 'Severity', 'Version', 'Run date', 'Run id'],
      d.quality_results.map(function (q) {
        return [q.expectation, q.column, outcome(q.success), q.observed_value, q.unexpected_count, q.severity,
                q.version, q.run_date, q.run];
      })) : el('p', 'No quality results recorded for this table.', 'muted'));
  }
  function renderJob(d) {
    section('About', table(null, [['Writes', show(d.produces || 'nothing (reads only)')],
                                      ['Reads', d.inputs.join(', ')]]));
    section('Latest runs', d.runs.length ? table(
      ['Run id', 'State', 'Run date', 'Started', 'Ended', 'Seconds', 'Code version', 'Error'],
      d.runs.map(function (r) {
        return [r.run, r.state, r.run_date, r.started, r.ended,
                r.duration_seconds === null ? null : Math.round(r.duration_seconds * 10) / 10, r.code_version, r.error];
      })) : el('p', 'No runs.', 'muted'));
  }
  function select(id) {
    var d = data.details[id];
    if (!d) return;
    document.querySelectorAll('.node.selected').forEach(function (n) { n.classList.remove('selected'); });
    var g = document.querySelector('.node[data-id="' + id + '"]');
    if (g) g.classList.add('selected');
    panel.textContent = '';
    panel.appendChild(el('h2', d.title));
    if (d.kind === 'job') renderJob(d); else renderDataset(d);
  }
  document.querySelectorAll('.node').forEach(function (g) {
    g.addEventListener('click', function () { select(g.getAttribute('data-id')); });
    g.addEventListener('keydown', function (e) { if (e.key === 'Enter') select(g.getAttribute('data-id')); });
  });
  select(data.root);
  var root = document.querySelector('.node[data-id="' + data.root + '"]');
  if (root && root.scrollIntoView) root.scrollIntoView({block: 'center', inline: 'center'});
  document.body.setAttribute('data-nodes', String(document.querySelectorAll('.node').length));
  document.body.setAttribute('data-ready', 'true');
})();
