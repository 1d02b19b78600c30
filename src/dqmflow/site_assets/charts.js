// dqmflow: draws the figures of merit of a page (Vega-Lite specifications inlined in
// <script type="application/json"> elements) with vega-embed; no fetch/XHR, so file:// works.
// Each chart element records the outcome in data-drawn ("1" or "error") and any warning of
// Vega-Lite in data-warnings, which the tests read.
(function () {
  "use strict";
  function draw(el) {
    var source = document.getElementById(el.getAttribute("data-spec"));
    var warnings = [];
    var logger = {
      level: function () { return logger; },
      error: function () { warnings.push(Array.prototype.join.call(arguments, " ")); return logger; },
      warn: function () { warnings.push(Array.prototype.join.call(arguments, " ")); return logger; },
      info: function () { return logger; },
      debug: function () { return logger; }
    };
    var spec;
    try {
      spec = JSON.parse(source.textContent);
    } catch (err) {
      el.textContent = "This figure could not be read: " + err;
      el.setAttribute("data-drawn", "error");
      return;
    }
    vegaEmbed(el, spec, {
      renderer: "svg",
      logger: logger,
      actions: {export: true, source: false, compiled: false, editor: false},
      downloadFileName: el.getAttribute("data-name") || "figure"
    }).then(function () {
      el.setAttribute("data-warnings", warnings.join("\n"));
      el.setAttribute("data-drawn", "1");
    }).catch(function (err) {
      el.textContent = "This figure could not be drawn: " + err;
      el.setAttribute("data-warnings", warnings.join("\n"));
      el.setAttribute("data-drawn", "error");
    });
  }
  var charts = document.querySelectorAll("div.vl[data-spec]");
  if (typeof vegaEmbed !== "function") {
    for (var i = 0; i < charts.length; i++) {
      charts[i].textContent = "The figures need the page's js/ folder (vega-embed did not load).";
      charts[i].setAttribute("data-drawn", "error");
    }
    return;
  }
  for (var k = 0; k < charts.length; k++) { draw(charts[k]); }
})();
