// The measures register (admin/obligations/service/measures.html): a live count of the
// measures selected, "select the whole group" boxes, and a refused form opened at its first
// error. Progressive help only: the form works the same without it.
(function () {
  var form = document.getElementById("measures-form");
  var count = document.getElementById("bulk-count");
  if (!form || !count) { return; }
  var boxes = function (scope) { return Array.prototype.slice.call(scope.querySelectorAll("input[name=selected]")); };
  function update() {
    var n = boxes(form).filter(function (b) { b.closest("tr").classList.toggle("selected", b.checked); return b.checked; }).length;
    count.textContent = n ? n + " measure" + (n === 1 ? "" : "s") + " selected: one decision and one rationale for all of them." : "Select measures with the boxes to decide them together.";
    form.querySelectorAll(".pick-group").forEach(function (g) {
      var mine = boxes(g.closest("tbody"));
      g.checked = mine.length > 0 && mine.every(function (b) { return b.checked; });
    });
  }
  form.querySelectorAll(".pick-group").forEach(function (g) {
    g.hidden = false;
    g.addEventListener("change", function () {
      boxes(g.closest("tbody")).forEach(function (b) { b.checked = g.checked; });
      update();
    });
  });
  form.addEventListener("change", function (e) { if (e.target.name === "selected") { update(); } });
  update();
  // A refused submission opens where the first error is, not at the top of the page.
  var error = form.querySelector(".errorlist");
  if (error) {
    var field = error.previousElementSibling;
    if (field && !field.matches("select, textarea")) { field = null; }
    (field || error).scrollIntoView({block: "center"});
    if (field) { field.focus({preventScroll: true}); }
  }
})();
