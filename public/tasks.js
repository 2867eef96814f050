// Tally /tasks pages: progressive enhancement of the upload form (estimate + balance before
// confirming, upload over the JSON API with an Idempotency-Key) and live progress of unfinished
// tasks over server-sent events. Without this script the form posts to /tasks and the pages
// still show every task's state; they just do not update by themselves.
(function () {
  'use strict';

  var STATUS_LABELS = { queued: 'Queued', processing: 'Processing', completed: 'Completed', failed: 'Failed' };
  // The same format as the server's pages (src/credits/view-helpers.ts): 21 Nov 2026, 19:35 UTC
  var DATE_TIME = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' });
  var MAX_STREAMS = 4; // browsers allow ~6 connections per host over HTTP/1.1: leave room for the rest

  function $(root, selector) { return root.querySelector(selector); }
  function $$(root, selector) { return Array.prototype.slice.call(root.querySelectorAll(selector)); }

  function uuid() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  // Credits are JSON numbers with at most 3 decimals: compute in millicredits to avoid float noise.
  function toMilli(credits) { return Math.round(Number(credits) * 1000); }
  function fromMilli(m) { return String(m / 1000); }

  function setBalance(available) {
    $$(document, '[data-balance]').forEach(function (el) { el.textContent = String(available); });
  }

  function refreshBalance() {
    return fetch('/api/credits/balance', { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (body) {
        if (body && typeof body.available === 'number') setBalance(body.available);
        return body ? body.available : null;
      })
      .catch(function () { return null; });
  }

  function problemMessage(body, fallback) {
    if (!body) return fallback;
    if (body.errors && body.errors.length) {
      return body.errors.map(function (e) { return e.message.charAt(0).toUpperCase() + e.message.slice(1); }).join(' ');
    }
    return body.detail || fallback;
  }

  function readJson(res) {
    return res.text().then(function (text) {
      try { return text ? JSON.parse(text) : null; } catch (e) { return null; }
    });
  }

  // ---- live progress -------------------------------------------------------------------------

  var waiting = [];
  var open = 0;

  function updateTaskElement(el, task) {
    el.setAttribute('data-status', task.status);
    var unfinished = task.status === 'queued' || task.status === 'processing';
    var status = $(el, '[data-field="status"]');
    if (status) {
      status.textContent = STATUS_LABELS[task.status] || task.status;
      status.className = 'task-status status-' + task.status;
    }
    var wrap = $(el, '[data-field="progress-wrap"]');
    if (wrap) wrap.hidden = !unfinished;
    var bar = $(el, '[data-field="progress"]');
    if (bar) { bar.value = task.progress; bar.textContent = task.progress + '%'; }
    var text = $(el, '[data-field="progress-text"]');
    if (text) text.textContent = task.pagesDone + ' of ' + task.pages + ' page' + (task.pages === 1 ? '' : 's');
    var done = $(el, '[data-field="done-text"]');
    if (done) {
      done.hidden = unfinished;
      done.textContent = task.status === 'completed' ? 'Done' : task.status === 'failed' ? 'Nothing charged' : '';
    }
    var pages = $(el, '[data-field="pages"]');
    if (pages) pages.textContent = String(task.pages);
    var credits = $(el, '[data-field="credits"]');
    if (credits) credits.textContent = task.chargedCredits === null ? task.estimatedCredits + ' held' : String(task.chargedCredits);
  }

  function track(el) {
    if (el.getAttribute('data-tracking')) return;
    var status = el.getAttribute('data-status');
    if (status !== 'queued' && status !== 'processing') return;
    el.setAttribute('data-tracking', 'waiting');
    waiting.push(el);
    pump();
  }

  function pump() {
    while (open < MAX_STREAMS && waiting.length > 0) stream(waiting.shift());
  }

  function stream(el) {
    var id = el.getAttribute('data-task-id');
    if (!id || !window.EventSource) return;
    open++;
    el.setAttribute('data-tracking', 'open');
    var source = new EventSource('/api/tasks/' + encodeURIComponent(id) + '/events');
    var closed = false;
    function close() {
      if (closed) return;
      closed = true;
      source.close();
      open--;
      pump();
    }
    source.addEventListener('task', function (event) {
      var task = JSON.parse(event.data).task;
      updateTaskElement(el, task);
      if (task.status === 'completed' || task.status === 'failed') {
        close();
        refreshBalance();
        // The detail page shows the text and statistics: render it afresh from the server.
        if (el.hasAttribute('data-detail')) window.setTimeout(function () { window.location.reload(); }, 300);
      }
    });
    source.addEventListener('deleted', function () {
      close();
      if (el.hasAttribute('data-detail')) window.location.href = '/tasks';
      else el.parentNode && el.parentNode.removeChild(el);
    });
    source.addEventListener('error', function () {
      // A closed stream (401/404, or the server gone) is not retried by the browser: free the slot.
      if (source.readyState === EventSource.CLOSED) close();
    });
  }

  $$(document, '[data-task]').forEach(track);

  // ---- delete confirmation -------------------------------------------------------------------

  $$(document, 'form[data-confirm]').forEach(function (form) {
    form.addEventListener('submit', function (event) {
      if (!window.confirm(form.getAttribute('data-confirm'))) event.preventDefault();
    });
  });

  // ---- upload: estimate, confirm, send --------------------------------------------------------

  var form = $(document, '[data-upload-form]');
  if (!form || !window.fetch || !window.FormData) return;
  var input = $(form, 'input[type="file"]');
  var button = $(form, '[data-upload-submit]');
  var panel = $(form, '[data-estimate]');
  var shortNotice = $(form, '[data-estimate-short]');
  var errorBox = $(form, '[data-upload-error]');
  var balanceLine = $(form, '[data-balance-line]');
  var keyInput = $(form, '[data-idempotency-key]');
  var defaultLabel = button.textContent;
  var estimate = null; // {credits, pages} of the chosen file
  var busy = false;

  function showError(message, topUp) {
    errorBox.textContent = message + (topUp ? ' ' : '');
    if (topUp) {
      var link = document.createElement('a');
      link.href = '/pricing';
      link.textContent = 'Buy more credits';
      errorBox.appendChild(link);
    }
    errorBox.hidden = false;
  }

  function reset() {
    estimate = null;
    panel.hidden = true;
    shortNotice.hidden = true;
    errorBox.hidden = true;
    balanceLine.hidden = false;
    button.disabled = false;
    button.textContent = defaultLabel;
  }

  function checkFile() {
    reset();
    var file = input.files && input.files[0];
    if (!file) return;
    busy = true;
    button.disabled = true;
    button.textContent = 'Reading the document…';
    var body = new FormData();
    body.append('file', file);
    var gotEstimate = fetch('/api/credits/estimate', { method: 'POST', body: body, credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (res) { return readJson(res).then(function (json) { return { res: res, json: json }; }); });
    Promise.all([gotEstimate, refreshBalance()])
      .then(function (results) {
        var res = results[0].res;
        var json = results[0].json;
        var available = results[1];
        if (input.files[0] !== file) return; // another file was chosen meanwhile
        if (!res.ok) {
          showError(problemMessage(json, 'The document could not be read.'), false);
          button.textContent = defaultLabel;
          return;
        }
        estimate = json;
        $(panel, '[data-estimate-pages]').textContent = String(json.pages);
        $(panel, '[data-estimate-credits]').textContent = String(json.credits);
        var after = available === null ? null : toMilli(available) - toMilli(json.credits);
        // What is left at least: the charge never exceeds the estimate.
        $(panel, '[data-estimate-after]').textContent =
          after === null ? '?' : after < 0 ? fromMilli(-after) + ' credits short' : 'at least ' + fromMilli(after) + ' credits';
        panel.hidden = false;
        balanceLine.hidden = true;
        if (after !== null && after < 0) {
          shortNotice.hidden = false;
          button.textContent = 'Not enough credits';
          return;
        }
        button.disabled = false;
        button.textContent = 'Confirm: run OCR for ' + json.credits + ' credits';
      })
      .catch(function () {
        showError('The document could not be checked. Try again.', false);
        button.textContent = defaultLabel;
      })
      .then(function () { busy = false; });
  }

  function addRow(task) {
    var tbody = $(document, '[data-task-list] tbody');
    var template = document.getElementById('task-row-template');
    if (!tbody || !template) return;
    var existing = $(tbody, '[data-task-id="' + task.id + '"]');
    var row = existing || template.content.firstElementChild.cloneNode(true);
    row.setAttribute('data-task-id', task.id);
    $(row, '[data-field="link"]').href = '/tasks/' + task.id;
    $(row, '[data-field="fileName"]').textContent = task.fileName;
    var time = $(row, '[data-field="createdAt"]');
    time.setAttribute('datetime', task.createdAt);
    time.textContent = DATE_TIME.format(new Date(task.createdAt)) + ' UTC';
    updateTaskElement(row, task);
    if (!existing) tbody.insertBefore(row, tbody.firstChild);
    var empty = $(document, '[data-empty]');
    if (empty) empty.hidden = true;
    track(row);
  }

  input.addEventListener('change', checkFile);

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    if (busy) return;
    var file = input.files && input.files[0];
    if (!file) { input.reportValidity && input.reportValidity(); return; }
    if (!estimate) { checkFile(); return; }
    busy = true;
    button.disabled = true;
    button.textContent = 'Uploading…';
    var key = keyInput.value;
    fetch('/api/tasks', {
      method: 'POST',
      body: new FormData(form),
      credentials: 'same-origin',
      headers: { Accept: 'application/json', 'Idempotency-Key': key },
    })
      .then(function (res) { return readJson(res).then(function (json) { return { res: res, json: json }; }); })
      .then(function (r) {
        if (r.res.status === 202 && r.json && r.json.task) {
          addRow(r.json.task);
          form.reset();
          keyInput.value = uuid();
          reset();
          refreshBalance();
          return;
        }
        if (r.res.status === 402) {
          showError('Not enough credits: this document needs ' + r.json.required + ' credits and you have ' + r.json.available + '.', true);
          button.textContent = 'Not enough credits';
          return;
        }
        showError(problemMessage(r.json, 'The upload failed.'), false);
        button.disabled = false;
        button.textContent = defaultLabel;
      })
      .catch(function () {
        // The request may or may not have arrived: the same Idempotency-Key makes a resend safe.
        showError('The upload did not complete. Try again: it will not be charged twice.', false);
        button.disabled = false;
        button.textContent = defaultLabel;
      })
      .then(function () { busy = false; });
  });
})();
