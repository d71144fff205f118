/* Progressive enhancement only: every page works without this file. */
(function () {
  "use strict";

  // Activity Detail: add and remove manual-entry rows without a round trip to the server.
  var form = document.getElementById("entry-form");
  var tbody = document.getElementById("entry-rows");
  var template = document.getElementById("blank-row");
  if (form && tbody && template) {
    var next = 1;
    form.querySelectorAll('input[name="row"]').forEach(function (input) {
      var n = parseInt(input.value, 10);
      if (n >= next) { next = n + 1; }
    });
    form.addEventListener("click", function (event) {
      var button = event.target.closest("button");
      if (!button) { return; }
      if (button.name === "add_row") {
        event.preventDefault();
        tbody.insertAdjacentHTML("beforeend", template.innerHTML.replace(/__N__/g, String(next)));
        var added = tbody.querySelector('tr.entry-row[data-row="' + next + '"] input[type="text"]');
        next += 1;
        if (added) { added.focus(); }
      } else if (button.name === "remove_row") {
        event.preventDefault();
        tbody.querySelectorAll('tr[data-row="' + button.value + '"]').forEach(function (row) { row.remove(); });
        var add = form.querySelector('button[name="add_row"]');
        if (add) { add.focus(); }
      }
    });
  }

  // Batch Upload: while the file is processing, check every two seconds and show the result when done.
  var box = document.querySelector("[data-status-url]");
  if (box && (box.dataset.status === "queued" || box.dataset.status === "processing") && window.fetch) {
    var poll = function () {
      fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (state) {
          if (state && state.status !== "queued" && state.status !== "processing") {
            window.location.reload();
          } else {
            window.setTimeout(poll, 2000);
          }
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    };
    window.setTimeout(poll, 1500);
  }
})();
