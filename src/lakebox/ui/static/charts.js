// Charts on workspace pages: plotly.js (served from the plotly package) plus this helper.

// Empty a chart container before htmx swaps new charts in: htmx would otherwise carry the old
// plots' attributes over to the new elements of the same id (settling) and undo the classes
// plotly.js just gave them.
function lakeboxClearCharts(box) {
  box.querySelectorAll(".js-plotly-plot").forEach(function (plot) { Plotly.purge(plot); });
  box.innerHTML = "";
}
