/* glaviz-map.js (MIT, glaviz): what a saved comparison map does without a kernel.
 * - switches off the layers listed as hidden (they stay in the layers control);
 * - binds tooltips (glacier id, name, area) to outline features;
 * - the pixel inspector: a click looks up the embedded value images.
 * Data: <script class="glaviz-maps" type="application/json">{model_id: {inspector, hidden}},
 * anywhere in the page (read when a map appears; a report has one per map output).
 */
(function () {
  "use strict";
  var R = 6378137.0;
  function allMaps() {
    var out = {};
    document.querySelectorAll("script.glaviz-maps").forEach(function (s) {
      var data = JSON.parse(s.textContent);
      for (var k in data) out[k] = data[k];
    });
    return out;
  }
  window.glavizMaps = [];

  function inflate(b64, dtype, shuffle) {
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    var types = {uint8: Uint8Array, uint16: Uint16Array, int32: Int32Array, float32: Float32Array};
    var Type = types[dtype];
    return new Response(stream).arrayBuffer().then(function (buf) {
      // undo the byte shuffle: all first bytes, then all second bytes, ... (little-endian)
      var n = Type.BYTES_PER_ELEMENT, src = new Uint8Array(buf), count = src.length / n;
      if (!shuffle || n === 1) return new Type(buf);
      var dst = new Uint8Array(src.length);
      for (var b = 0; b < n; b++) {
        var off = b * count;
        for (var k = 0; k < count; k++) dst[k * n + b] = src[off + k];
      }
      return new Type(dst.buffer);
    });
  }

  function decodeAll(insp) {
    if (!insp._ready) {
      insp._ready = Promise.all(insp.arrays.map(function (a) {
        return inflate(a.data, a.dtype, a.shuffle).then(function (v) { a.values = v; });
      }));
    }
    return insp._ready;
  }

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }

  function format(a, v, insp) {
    if (a.key === "error") return v in insp.errorClasses ? insp.errorClasses[v] : "true negative / no data";
    if (a.nodata !== null && v === a.nodata) return "no data";
    if (a.table) return Number(a.table[v].toPrecision(4)).toString();
    if ((a.key === "mask" || a.key === "reference") && v === 255) return "no data";
    if (a.dtype === "float32" || a.scale !== 1) {
      var x = v * a.scale;
      return isNaN(x) ? "no data" : Number(x.toPrecision(4)).toString();
    }
    return String(v);
  }

  function lookup(insp, lat, lon) {
    var x = R * lon * Math.PI / 180;
    var y = R * Math.log(Math.tan(Math.PI / 4 + lat * Math.PI / 360));
    var col = Math.floor((x - insp.left) / insp.resolution);
    var row = Math.floor((insp.top - y) / insp.resolution);
    if (row < 0 || col < 0) return null;
    var i = Math.floor(row / insp.step), j = Math.floor(col / insp.step);
    if (i >= insp.height || j >= insp.width) return null;
    var k = i * insp.width + j, out = {};
    insp.arrays.forEach(function (a) { out[a.key] = a.values[k]; });
    if (out.row < 0) return null;
    return out;
  }

  function describe(insp, hit, lat, lon) {
    var style = "<div style=\"font-size:11px;line-height:13px;max-height:260px;overflow:auto\">";
    if (!hit) return style + "<b>Pixel inspector</b><br>outside the scene</div>";
    var rows = ["<tr><td>row, column</td><td class=\"glaviz-rowcol\">" + hit.row + ", " + hit.col + "</td></tr>",
                "<tr><td>lat, lon</td><td>" + lat.toFixed(5) + ", " + lon.toFixed(5) + "</td></tr>"];
    insp.arrays.forEach(function (a) {
      if (a.key === "row" || a.key === "col") return;
      rows.push("<tr data-key=\"" + escapeHtml(a.key) + "\"><td>" + escapeHtml(a.label) + "</td><td>" +
                escapeHtml(format(a, hit[a.key], insp)) + "</td></tr>");
    });
    return style + "<b>Pixel inspector</b><table>" + rows.join("") + "</table></div>";
  }

  function panelOf(root) {
    var panel = root.querySelector(".glaviz-inspector");
    if (!panel) return null;
    return panel.querySelector(".widget-html-content") || panel;
  }

  function tooltip(props) {
    var area = props.area_km2 === null || props.area_km2 === undefined ? "" :
      "<br>area " + Number(props.area_km2).toFixed(3) + " km²";
    return "<b>" + escapeHtml(props.glacier_id || "") + "</b> " + escapeHtml(props.name || "") + area;
  }

  function attach(map) {
    var root = map.getContainer().closest(".glaviz-map");
    if (!root) return;
    var id = null, maps = allMaps();
    for (var name in maps) if (root.classList.contains("glaviz-map-" + name)) id = name;
    if (id === null) return;
    var spec = maps[id], hidden = new Set(spec.hidden), done = new Set();
    window.glavizMaps.push({map: map, id: id, root: root});
    function visit(layer) {
      if (done.has(layer)) return;
      done.add(layer);
      if (layer instanceof L.ImageOverlay && hidden.has(layer.options.pane || "")) {
        setTimeout(function () { map.removeLayer(layer); }, 0);
      }
      if (layer instanceof L.GeoJSON) {
        layer.eachLayer(function (f) {
          if (f.feature && f.feature.properties) f.bindTooltip(tooltip(f.feature.properties), {sticky: true});
        });
      }
    }
    map.on("layeradd", function (e) { visit(e.layer); });
    map.eachLayer(visit);
    var insp = spec.inspector;
    decodeAll(insp);
    map.on("click", function (e) {
      decodeAll(insp).then(function () {
        var panel = panelOf(root);
        if (!panel) return;
        panel.innerHTML = describe(insp, lookup(insp, e.latlng.lat, e.latlng.lng), e.latlng.lat, e.latlng.lng);
        root.dataset.glavizInspected = "1";
      });
    });
  }

  require(["jupyter-leaflet"], function () {
    L.Map.addInitHook(function () {
      var map = this;
      setTimeout(function () { attach(map); }, 0);
    });
  });
})();
