// Live status of submissions: polls the JSON API for rows that are not finished yet.
// The page is complete without it; this only saves a reload.
(function () {
  "use strict";
  var TERMINAL = ["Finished", "Failed", "Cancelled"];
  var INTERVAL_MS = 3000;

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-submission][data-terminal='no']"));
  }

  function formatElapsed(seconds) {
    if (seconds === null || seconds === undefined) { return "—"; }
    if (seconds < 60) { return seconds.toFixed(1) + " s"; }
    if (seconds < 3600) { return Math.floor(seconds / 60) + " min " + Math.floor(seconds % 60) + " s"; }
    return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
  }

  // Where a waiting submission stands, as the page first showed it (the JSON's `waiting`).
  function waitingText(data) {
    var waiting = data.waiting;
    if (!waiting) { return ""; }
    var text = "";
    if (data.queue_position) {
      text = "#" + data.queue_position + " in the queue";
      if (data.estimated_start) {
        text += ", starts about " + data.estimated_start.slice(0, 16).replace("T", " ") + " UTC";
      }
      text += " — ";
    }
    return text + (waiting.note || "");
  }

  function update(row, data) {
    var badge = row.querySelector("[data-status]");
    if (badge && data.status && badge.textContent !== data.status) {
      badge.textContent = data.status;
      badge.className = "status status-" + data.status;
    }
    var elapsed = row.querySelector("[data-elapsed]");
    var seconds = data.running_time !== null && data.running_time !== undefined ? data.running_time : data.elapsed;
    if (elapsed && seconds !== undefined) { elapsed.textContent = formatElapsed(seconds); }
    var waiting = row.querySelector("[data-waiting]");
    if (waiting) { waiting.textContent = waitingText(data); }
    return TERMINAL.indexOf(data.status) >= 0;
  }

  function poll() {
    var table = document.querySelector("[data-poll-url]");
    var pending = rows();
    if (!table || pending.length === 0) { return; }
    var base = table.getAttribute("data-poll-url");
    var headers = { "Accept": "application/json", "X-XSRFToken": table.getAttribute("data-xsrf") || "" };
    var requests = pending.map(function (row) {
      var id = row.getAttribute("data-submission");
      return fetch(base + encodeURIComponent(id), { credentials: "same-origin", headers: headers })
        .then(function (response) {
          if (response.ok) { return response.json(); }
          // Gone or no longer ours to see: stop asking about this row.
          if (response.status >= 400 && response.status < 500) { row.setAttribute("data-terminal", "unknown"); }
          return null;
        })
        .then(function (data) { return data ? update(row, data) : false; })
        .catch(function () { return false; });
    });
    Promise.all(requests).then(function (done) {
      if (done.some(Boolean)) {
        // Scores, logs and actions of a finished submission come from the server.
        window.location.reload();
      } else {
        window.setTimeout(poll, INTERVAL_MS);
      }
    });
  }

  if (window.fetch && window.Promise) {
    window.setTimeout(poll, INTERVAL_MS);
  }
})();
