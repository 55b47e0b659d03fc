// The search boxes of the register's filters by name (obligations/adminsearch.py): as the
// user types, the first matching names from the filter's JSON endpoint are offered; picking
// one lists that one's obligations. Progressive help only: without it the box is a plain
// form that narrows the list to the names containing what was typed.
(function () {
  function start() {
    document.querySelectorAll("input[data-choices]").forEach(function (box) {
      var list = document.getElementById(box.getAttribute("list"));
      var form = box.form;
      var ids = {};
      var timer = null;
      var asked = "";
      function offer(results) {
        ids = {};
        list.textContent = "";
        results.forEach(function (row) {
          // Two rows of the same name are told apart by neither: the form's search finds both.
          ids[row.text] = ids.hasOwnProperty(row.text) ? null : row.id;
          var option = document.createElement("option");
          option.value = row.text;
          list.appendChild(option);
        });
      }
      function ask() {
        var term = box.value.trim();
        if (!term || term === asked) { return; }
        asked = term;
        var url = box.dataset.choices + "?term=" + encodeURIComponent(term);
        fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
          .then(function (response) { return response.ok ? response.json() : {results: []}; })
          .then(function (data) { if (box.value.trim() === term) { offer(data.results); } })
          .catch(function () { /* the form still searches */ });
      }
      function pick() {
        var id = ids.hasOwnProperty(box.value) ? ids[box.value] : null;
        if (id === null) { return false; }
        var chosen = document.createElement("input");
        chosen.type = "hidden";
        chosen.name = box.dataset.chosen;
        chosen.value = id;
        form.appendChild(chosen);
        box.disabled = true;  // the one picked, not every name containing its name
        form.submit();
        return true;
      }
      box.addEventListener("input", function (event) {
        // Choosing from the list types the whole name at once.
        if (event.inputType === "insertReplacementText" || !event.inputType) {
          if (pick()) { return; }
        }
        clearTimeout(timer);
        timer = setTimeout(ask, 200);
      });
      form.addEventListener("submit", function (event) {
        if (!box.disabled && pick()) { event.preventDefault(); }
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
