// The page editor's live preview: the text is sent to the service, which renders and
// sanitizes it as it does an uploaded page; only that answer is shown, never the raw text.
(function () {
  "use strict";
  var text = document.getElementById("page-content");
  var format = document.getElementById("page-format");
  var preview = document.getElementById("page-preview");
  if (!text || !preview) { return; }
  var timer = null;
  var sent = 0;
  function refresh() {
    var mine = ++sent;
    fetch(text.getAttribute("data-preview-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json",
                 "X-XSRFToken": text.getAttribute("data-xsrf") || "" },
      body: JSON.stringify({ text: text.value, format: format ? format.value : "markdown" })
    }).then(function (resp) {
      return resp.json().then(function (data) { return { ok: resp.ok, data: data }; });
    }).then(function (answer) {
      if (mine !== sent) { return; }  // a later keystroke's answer is on its way
      if (answer.ok) {
        preview.innerHTML = answer.data.html;  // sanitized by the service
        preview.removeAttribute("data-error");
      } else {
        preview.setAttribute("data-error", (answer.data.error || {}).message || "preview failed");
      }
    }).catch(function () { preview.setAttribute("data-error", "the preview could not be fetched"); });
  }
  function later() {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(refresh, 250);
  }
  text.addEventListener("input", later);
  if (format) { format.addEventListener("change", refresh); }
})();
