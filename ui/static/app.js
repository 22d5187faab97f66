// TraceHouse dashboard: the little behaviour the server-rendered pages need.
(function () {
  "use strict";

  function linkOf(point) {
    var data = point && point.customdata;
    if (Array.isArray(data)) { data = data[0]; }
    return (typeof data === "string" && data) ? data : null;
  }

  // A click on a point whose customdata is a URL opens it; "#id" opens that detail on this page.
  window.thFollowClicks = function (plotId) {
    var plot = document.getElementById(plotId);
    if (!plot || !plot.on) { return; }
    plot.on("plotly_click", function (event) {
      var url = event && event.points && event.points.length ? linkOf(event.points[0]) : null;
      if (!url) { return; }
      if (url.charAt(0) === "#") {
        var target = document.getElementById(url.slice(1));
        if (target) {
          if (target.tagName === "DETAILS") { target.open = true; }
          target.scrollIntoView({ behavior: "smooth", block: "center" });
          target.classList.add("flash");
          window.setTimeout(function () { target.classList.remove("flash"); }, 1500);
        }
        return;
      }
      window.location.href = url;
    });
  };

  // Zooming a time chart (dragging across it) makes that span the page's time range, in the URL.
  function toInput(value) {  // plotly gives "2026-11-26 07:40:12.345" (UTC here)
    return String(value).replace(" ", "T").slice(0, 19);
  }
  window.thFollowZoom = function (plotId) {
    var plot = document.getElementById(plotId);
    if (!plot || !plot.on) { return; }
    plot.on("plotly_relayout", function (change) {
      var start, end;
      Object.keys(change).forEach(function (key) {  // xaxis, or xaxis2... of stacked charts
        var match = /^(xaxis\d*)\.range\[0\]$/.exec(key);
        if (match && change[match[1] + ".range[1]"] !== undefined) {
          start = change[key];
          end = change[match[1] + ".range[1]"];
        }
      });
      if (start === undefined || end === undefined) { return; }
      var url = new URL(window.location.href);
      url.searchParams.set("range", "custom");
      url.searchParams.set("start", toInput(start));
      url.searchParams.set("end", toInput(end));
      window.location.href = url.toString();
    });
  };

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("timebar");
    if (!form) { return; }
    var range = document.getElementById("range-select");
    var custom = document.getElementById("custom-range");
    var toggle = document.getElementById("refresh-toggle");
    var every = document.getElementById("refresh-select");
    range.addEventListener("change", function () {
      var isCustom = range.value === "custom";
      custom.hidden = !isCustom;
      custom.querySelectorAll("input").forEach(function (input) { input.disabled = !isCustom; });
      if (!isCustom) { form.submit(); }
    });
    toggle.addEventListener("change", function () {
      every.disabled = !toggle.checked;
      form.submit();
    });
    every.addEventListener("change", function () { form.submit(); });
  });
})();
