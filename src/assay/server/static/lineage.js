// The lineage graph page: fetch the bounded graph, draw it with cytoscape + dagre (left to
// right, the way data flows), open a bundle on click. The view state lives in the URL.
(function () {
  "use strict";
  var holder = document.getElementById("graph");
  var status = document.getElementById("status");
  fetch(holder.dataset.src, { credentials: "same-origin" })
    .then(function (response) { return response.json().then(function (body) { return [response, body]; }); })
    .then(function (pair) {
      var response = pair[0], graph = pair[1];
      if (!response.ok) { status.textContent = "Error: " + (graph.detail || response.status); return; }
      var elements = [];
      graph.nodes.forEach(function (node) {
        var data = node.data || {};
        elements.push({ data: {
          id: node.id,
          label: node.missing ? "(removed) " + node.id.slice(7, 15) : data.name + "@" + node.id.slice(7, 15),
          root: node.id === graph.root ? "yes" : "no",
          missing: node.missing ? "yes" : "no",
          uuid: node.id.slice(7)
        } });
        node.out_edges.forEach(function (edge) {
          elements.push({ data: { id: edge.origin + ">" + edge.destination + ">" + edge.arg_name,
                                  source: edge.origin, target: edge.destination, label: edge.arg_name } });
        });
      });
      var cut = graph.cut;
      status.textContent = graph.nodes.length + " nodes" + (graph.truncated
        ? " (truncated: " + cut.edges + " edges to " + cut.nodes_at_boundary + " more nodes not shown"
          + (cut.by_depth ? "; raise the depth" : "") + (cut.by_max_nodes ? "; raise max nodes" : "") + ")"
        : "");
      var cy = cytoscape({
        container: holder,
        elements: elements,
        layout: { name: "dagre", rankDir: "LR", nodeSep: 20, rankSep: 60 },
        style: [
          { selector: "node", style: { "label": "data(label)", "font-size": 10, "background-color": "#4a78b5",
                                       "text-valign": "bottom", "text-margin-y": 4, "width": 18, "height": 18 } },
          { selector: "node[root = 'yes']", style: { "background-color": "#d9822b", "width": 24, "height": 24 } },
          { selector: "node[missing = 'yes']", style: { "background-color": "#999", "shape": "diamond" } },
          { selector: "edge", style: { "curve-style": "bezier", "target-arrow-shape": "triangle", "width": 1.5,
                                       "line-color": "#9aa", "target-arrow-color": "#9aa" } }
        ]
      });
      cy.on("tap", "node", function (event) {
        if (event.target.data("missing") === "no") { window.location.href = "/ui/bundles/" + event.target.data("uuid"); }
      });
      window.assayGraph = cy;
      holder.dataset.ready = "yes";
    })
    .catch(function (error) { status.textContent = "Error: " + error; });
})();
