// Tally /tasks pages, progressively enhanced. Without this script everything works by plain form
// posts (upload → estimate page → confirm → the task). With it: drag and drop, the upload and its
// estimate without leaving the page (the server's own HTML for the confirm step, fetched), live
// progress over server-sent events, a signal (tab title and a toast) when a job finishes while
// the page is open, and a button that copies the extracted text.
(function () {
  'use strict';

  var STATUS_LABELS = { queued: 'Queued', processing: 'Processing', completed: 'Completed', failed: 'Failed' };
  var DONE_KEY = 'tally:done';
  var MAX_STREAMS = 4; // browsers allow ~6 connections per host over HTTP/1.1: leave room for the rest

  function $(root, selector) { return root.querySelector(selector); }
  function $$(root, selector) { return Array.prototype.slice.call(root.querySelectorAll(selector)); }


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
        if (el.hasAttribute('data-detail')) {
          // The detail page shows the text and statistics: render it afresh, then signal.
          try { window.sessionStorage.setItem(DONE_KEY, JSON.stringify(task)); } catch (e) { /* private mode */ }
          window.setTimeout(function () { window.location.reload(); }, 300);
        } else {
          signalDone(task);
        }
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

  // ---- job-done signal: the tab title and a toast ---------------------------------------------

  var baseTitle = document.title;
  var toasts = $(document, '[data-toasts]');
  if (!toasts) {
    toasts = document.createElement('div');
    toasts.className = 'toast-region';
    toasts.setAttribute('role', 'status');
    toasts.setAttribute('aria-live', 'polite');
    document.body.appendChild(toasts);
  }

  function restoreTitle() { document.title = baseTitle; }
  window.addEventListener('focus', restoreTitle);
  document.addEventListener('visibilitychange', function () { if (!document.hidden) window.setTimeout(restoreTitle, 4000); });

  function signalDone(task) {
    var ok = task.status === 'completed';
    document.title = (ok ? '✓ Done: ' : '✗ Failed: ') + task.fileName + ' · Tally';
    var toast = document.createElement('div');
    toast.className = 'toast ' + (ok ? 'success' : 'error');
    toast.setAttribute('data-testid', 'toast');
    var text = document.createElement('span');
    text.textContent = ok ? task.fileName + ' is done. ' : task.fileName + ' failed; nothing was charged. ';
    toast.appendChild(text);
    if (!document.querySelector('[data-detail][data-task-id="' + task.id + '"]')) {
      var link = document.createElement('a');
      link.href = '/tasks/' + encodeURIComponent(task.id) + (ok ? '#text' : '');
      link.textContent = ok ? 'Read the text' : 'See why';
      toast.appendChild(link);
    }
    var dismiss = document.createElement('button');
    dismiss.type = 'button';
    dismiss.className = 'secondary outline small';
    dismiss.textContent = 'Dismiss';
    dismiss.setAttribute('aria-label', 'Dismiss: ' + text.textContent.trim());
    dismiss.addEventListener('click', function () { toast.remove(); restoreTitle(); });
    toast.appendChild(dismiss);
    toasts.appendChild(toast);
  }

  try {
    var done = window.sessionStorage.getItem(DONE_KEY);
    if (done) {
      window.sessionStorage.removeItem(DONE_KEY);
      signalDone(JSON.parse(done));
    }
  } catch (e) { /* private mode */ }

  $$(document, '[data-task]').forEach(track);

  // ---- copy the extracted text ---------------------------------------------------------------

  $$(document, '[data-copy]').forEach(function (button) {
    var target = document.querySelector(button.getAttribute('data-copy'));
    if (!target) return;
    button.hidden = false;
    var label = button.textContent;
    button.addEventListener('click', function () {
      var text = target.textContent;
      var copied = navigator.clipboard && window.isSecureContext
        ? navigator.clipboard.writeText(text)
        : new Promise(function (resolve, reject) {
          var range = document.createRange();
          range.selectNodeContents(target);
          var sel = window.getSelection();
          sel.removeAllRanges();
          sel.addRange(range);
          (document.execCommand('copy') ? resolve : reject)();
        });
      copied.then(function () { button.textContent = 'Copied'; }, function () { button.textContent = 'Select the text and copy it'; })
        .then(function () { window.setTimeout(function () { button.textContent = label; }, 2500); });
    });
  });

  // ---- delete confirmation -------------------------------------------------------------------

  $$(document, 'form[data-confirm]').forEach(function (form) {
    form.addEventListener('submit', function (event) {
      if (!window.confirm(form.getAttribute('data-confirm'))) event.preventDefault();
    });
  });

  // ---- upload: drop or choose, see the estimates, confirm once -------------------------------

  var form = $(document, '[data-upload-form]');
  var region = $(document, '[data-confirm-region]');
  if (!form || !region || !window.fetch || !window.FormData || !window.DOMParser) return;
  var input = $(form, 'input[type="file"]');
  var button = $(form, '[data-upload-submit]');
  var errorBox = $(form, '[data-upload-error]');
  var dropzone = $(form, '[data-dropzone]');
  var defaultLabel = button.textContent;
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

  // Sends the form as it would be sent without script (the files and the chosen language),
  // follows the redirect, and shows the confirm step from the server's page: one upload per file,
  // kept with its language until it is confirmed.
  function upload() {
    if (busy) return;
    var files = input.files;
    if (!files || files.length === 0) return;
    busy = true;
    errorBox.hidden = true;
    button.disabled = true;
    button.textContent = files.length === 1 ? 'Reading the document…' : 'Reading ' + files.length + ' documents…';
    fetch(form.action, { method: 'POST', body: new FormData(form), credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (res) {
        return res.text().then(function (html) { return { res: res, doc: new DOMParser().parseFromString(html, 'text/html') }; });
      })
      .then(function (r) {
        var fresh = r.doc.querySelector('[data-confirm-region]');
        // Signed out meanwhile (the session ended): go where the server sent us, the login page.
        if (r.res.ok && !fresh && r.res.redirected) { window.location.href = r.res.url; return; }
        if (!r.res.ok || !fresh) {
          var problem = r.doc.querySelector('main h1');
          showError(problem ? problem.textContent + '. Try again.' : 'The upload failed. Try again.', false);
          return;
        }
        region.innerHTML = fresh.innerHTML;
        var flash = r.doc.querySelector('[data-testid="flash"]');
        if (flash && flash.classList.contains('error')) showError(flash.textContent.replace(/\s*Buy more credits\s*$/, ''), !!flash.querySelector('a[href="/pricing"]'));
        if (window.history && window.history.replaceState) window.history.replaceState(null, '', r.res.url);
        // Clear the chosen files, but keep the chosen language (and wallet) for the next documents.
        var language = $(form, 'select[name="language"]');
        var chosen = language ? language.value : '';
        var wallet = $(form, 'select[name="wallet"]');
        var payer = wallet ? wallet.value : '';
        form.reset();
        if (language) language.value = chosen;
        if (wallet) wallet.value = payer;
        var next = $(region, '[data-confirm-submit]:not([disabled])') || $(region, '#confirm-heading');
        if (next) {
          if (next.tagName === 'H2') next.setAttribute('tabindex', '-1');
          next.focus();
        }
      })
      .catch(function () { showError('The upload did not complete. Try again.', false); })
      .then(function () {
        busy = false;
        button.disabled = false;
        button.textContent = defaultLabel;
      });
  }

  input.addEventListener('change', upload);
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    if (!input.files || input.files.length === 0) { if (input.reportValidity) input.reportValidity(); return; }
    upload();
  });

  if (dropzone) {
    ['dragenter', 'dragover'].forEach(function (type) {
      dropzone.addEventListener(type, function (event) {
        event.preventDefault();
        dropzone.classList.add('dragging');
      });
    });
    ['dragleave', 'dragend'].forEach(function (type) {
      dropzone.addEventListener(type, function () { dropzone.classList.remove('dragging'); });
    });
    dropzone.addEventListener('drop', function (event) {
      event.preventDefault();
      dropzone.classList.remove('dragging');
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      input.files = event.dataTransfer.files;
      upload();
    });
  }
})();
