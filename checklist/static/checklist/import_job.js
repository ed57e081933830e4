// The import job page (checklist/admin_import.py): asks the job's status every few seconds,
// moves the progress bar, and reloads the page once the job has ended, which then shows the
// release or the errors. A static file: the Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  var box = document.getElementById("import-job");
  if (!box) {
    return;
  }
  var url = box.getAttribute("data-status-url");
  var bar = document.getElementById("import-job-progress");
  var state = document.getElementById("import-job-state");
  var phase = document.getElementById("import-job-phase");
  var delay = 1000;

  function show(status) {
    state.textContent = status.state_label;
    phase.textContent = status.phase;
    if (status.total > 0) {
      bar.max = status.total;
      bar.value = status.done;
      bar.textContent = status.done + " / " + status.total;
    }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (status) {
        if (status.finished) {
          window.location.reload();
          return;
        }
        show(status);
        delay = Math.min(delay * 1.5, 5000);
        window.setTimeout(poll, delay);
      })
      .catch(function () {
        delay = Math.min(delay * 2, 15000);
        window.setTimeout(poll, delay);
      });
  }

  window.setTimeout(poll, delay);
})();
