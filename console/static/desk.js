// The call-centre desk (console/desk.py): live queue and transcript by server-sent events, and
// the "Insert" buttons that put a suggested answer into the reply box (never sent by themselves).
(function () {
  "use strict";
  function listen() {
    var box = document.querySelector("[data-events]");
    if (!box || !window.EventSource) return;
    var source = new EventSource(box.getAttribute("data-events"));
    ["queue", "transcript"].forEach(function (name) {
      source.addEventListener(name, function (event) {
        var target = document.getElementById(name);
        if (!target) return;
        target.innerHTML = event.data; // escaped by the server's templates
        if (name === "transcript") target.scrollTop = target.scrollHeight;
      });
    });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-insert]") : null;
    var reply = document.getElementById("reply-text");
    if (!button || !reply) return;
    var text = button.getAttribute("data-insert");
    reply.value = reply.value ? reply.value.replace(/\s*$/, "") + "\n" + text : text;
    reply.focus();
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", listen);
  else listen();
})();
