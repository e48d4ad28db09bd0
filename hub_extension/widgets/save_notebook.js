// Saves the notebook that holds `element` (the Submit box's hidden output) and
// answers the kernel through the box's hidden text field `.compete-save-reply`
// with {token, status: "saved" | "requested" | "failed", detail}.
// A function expression: hub_extension/widgets/submit.py calls it with
// (element, token, issued), issued being when the kernel asked (ms since the epoch).
(async function (element, token, issued) {
  if (Math.abs(Date.now() - issued) > 600000) { return; }  // replayed from a saved notebook: do nothing
  // The output is rendered before it is attached to the page: wait until it is.
  for (var i = 0; i < 200 && element && !element.isConnected; i++) {
    await new Promise(function (resolve) { setTimeout(resolve, 25); });
  }
  var box = element && element.closest ? element.closest('.compete-submit') : null;
  function reply(status, detail) {
    var input = box ? box.querySelector('.compete-save-reply input') : null;
    if (!input) { return; }
    input.value = JSON.stringify({token: token, status: status, detail: String(detail || '')});
    input.dispatchEvent(new Event('input', {bubbles: true}));
  }
  try {
    var app = window.jupyterapp;
    if (app && app.shell && typeof app.shell.widgets === 'function') {
      for (const w of app.shell.widgets('main')) {
        if (w && w.node && w.node.contains(element) && w.context && typeof w.context.save === 'function') {
          await w.context.save();
          reply('saved', w.context.path);
          return;
        }
      }
    }
    var mac = /Mac|iPhone|iPad/.test(navigator.platform || '');
    var init = {key: 's', code: 'KeyS', ctrlKey: !mac, metaKey: mac, bubbles: true, cancelable: true, composed: true};
    var target = box || element;
    ['keydown', 'keyup'].forEach(function (type) {
      var ev = new KeyboardEvent(type, init);
      Object.defineProperty(ev, 'keyCode', {get: function () { return 83; }});
      Object.defineProperty(ev, 'which', {get: function () { return 83; }});
      target.dispatchEvent(ev);
    });
    reply('requested', 'shortcut');
  } catch (err) {
    reply('failed', err && err.message ? err.message : err);
  }
})
