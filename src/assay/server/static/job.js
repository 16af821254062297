// A job's page: follow its events (EventSource resumes by itself with Last-Event-ID), append
// log lines, update the state and the history, stop listening at the end event.
(function () {
  "use strict";
  var log = document.getElementById("log");
  var state = document.getElementById("state");
  var history = document.querySelector("#history tbody");
  var seen = {};
  history.querySelectorAll("tr").forEach(function (row) { seen[row.cells[0].textContent] = true; });
  var source = new EventSource(log.dataset.src);
  source.addEventListener("log", function (message) {
    var event = JSON.parse(message.data);
    var payload = event.payload || {};
    log.textContent += (payload.message !== undefined ? payload.message : JSON.stringify(payload)) + "\n";
    log.dataset.lines = String(Number(log.dataset.lines || 0) + 1);
  });
  source.addEventListener("transition", function (message) {
    var event = JSON.parse(message.data);
    // The stream replays from the start (for the log); the state shown at page load is
    // already as new as the transitions it had: only newer ones change it.
    if (event.seq > Number(state.dataset.seq)) {
      state.textContent = event.to_state;
      state.dataset.seq = String(event.seq);
    }
    if (!seen[String(event.seq)]) {
      seen[String(event.seq)] = true;
      var row = history.insertRow();
      [event.seq, (event.at || "").slice(0, 19), event.event, event.from_state || "", event.to_state || ""]
        .forEach(function (value) { row.insertCell().textContent = value; });
    }
  });
  source.addEventListener("end", function (message) {
    state.textContent = JSON.parse(message.data).state;
    state.dataset.final = "yes";
    var form = document.getElementById("stop-form");
    if (form) { form.remove(); }
    source.close();
  });
})();
