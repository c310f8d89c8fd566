// "My recent exports": while an export is waiting or running, poll its progress and update
// the rows in place (status, progress bar, rows, the download link once it is ready).
(function () {
  'use strict';
  var box = document.getElementById('recent-exports');
  if (!box) return;
  var body = box.querySelector('[data-rows]');
  var downloadLabel = box.querySelector('[data-download-label]').innerHTML.trim();

  function unfinished() {
    return body.querySelector('tr[data-finished="no"]') !== null;
  }

  function cell(text, key) {
    var td = document.createElement('td');
    if (key) td.setAttribute('data-k', key);
    td.textContent = text;
    return td;
  }

  function render(e) {
    var tr = document.createElement('tr');
    tr.setAttribute('data-export', e.id);
    tr.setAttribute('data-finished', e.finished ? 'yes' : 'no');
    tr.appendChild(cell(e.created));
    var status = cell(e.status_label, 'status_label');
    if (e.failed) status.className = 'error';
    tr.appendChild(status);
    var prog = document.createElement('td');
    var bar = document.createElement('progress');
    bar.max = 100;
    bar.value = e.percent;
    bar.setAttribute('data-k', 'percent');
    var pct = document.createElement('span');
    pct.setAttribute('data-k', 'percent_text');
    pct.textContent = e.percent + '%';
    prog.appendChild(bar);
    prog.appendChild(document.createTextNode(' '));
    prog.appendChild(pct);
    tr.appendChild(prog);
    tr.appendChild(cell(e.rows_expected ? e.rows_done + ' / ' + e.rows_expected : e.rows_done, 'rows'));
    var file = document.createElement('td');
    file.setAttribute('data-k', 'file');
    if (e.download_url) {
      var a = document.createElement('a');
      a.className = 'button';
      a.href = e.download_url;
      a.setAttribute('download', '');
      a.textContent = downloadLabel;
      file.appendChild(a);
      file.appendChild(document.createTextNode(' '));
    }
    var note = document.createElement('span');
    note.className = 'muted';
    note.setAttribute('data-k', 'note');
    note.textContent = e.note;
    file.appendChild(note);
    tr.appendChild(file);
    return tr;
  }

  function poll() {
    fetch(box.dataset.url, {credentials: 'same-origin', headers: {'Accept': 'application/json'}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (data) {
        if (!data.exports.length) return;
        var rows = document.createDocumentFragment();
        data.exports.forEach(function (e) { rows.appendChild(render(e)); });
        body.replaceChildren(rows);
        if (unfinished()) setTimeout(poll, 1500);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }

  if (unfinished()) setTimeout(poll, 1000);
})();
