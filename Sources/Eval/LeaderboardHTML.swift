import Foundation

/// The leaderboard as an HTML page in the report folder: the comparison tables drawn in the page
/// from data it carries, so that a reader switches level, protocol output, metric and grouping, and
/// sorts by any column, without regenerating; the charts inline; thumbnails from `thumbs/`. It
/// fetches nothing from anywhere else.
extension LeaderboardReport {
    /// The tables as compact JSON for the page's script: per row the group, counts, best run and
    /// one array per run [mean, low, high, n, rank kept, Δ, Δ low, Δ high, p, p Holm] (or null).
    func pageData() throws -> String {
        func r(_ v: Double?) -> Any { v.map { ($0 * 10000).rounded() / 10000 } ?? NSNull() }
        let data: [String: Any] = [
            "runs": runs.map(\.name),
            "baseline": runs.firstIndex { $0.name == baseline } ?? 0,
            "primary": primaryVariant?.protocolLabel ?? "",
            "minimumCases": CaseStatistics.minimumCases,
            "tables": tables.map { t -> [String: Any] in
                ["protocol": t.variant.protocolLabel, "output": t.variant.output, "level": t.level, "grouping": t.grouping.rawValue,
                 "metric": t.metric.label, "columns": t.grouping.columns,
                 "rows": t.rows.map { row -> [Any] in
                     [row.group, row.cases, row.items, row.leftOut, row.best ?? NSNull(), row.cells.map { c -> Any in
                         guard let c else { return NSNull() }
                         let d = c.difference
                         return [r(c.mean), r(c.low), r(c.high), c.n, r(c.rankKept), r(d?.mean), r(d?.low), r(d?.high), r(d?.p), r(d?.pHolm)]
                     }]
                 }]
            },
            "thumbs": thumbnails.map { [$0.group, $0.run, $0.kind, r($0.dice), thumbnailPath($0)] },
        ]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: data, options: [.sortedKeys]), as: UTF8.self)
        return json.replacingOccurrences(of: "</", with: "<\\/")
    }

    public func html() throws -> String {
        var body = "<h1>medcat leaderboard</h1>\n<p>\(Self.escape(Self.intro)) NSD at \(Self.escape(tolerance)); HD95 in mm. "
        body += "Reference run: <b>\(Self.escape(baseline))</b>. Click a column to sort.</p>\n"
        body += "<h2>Runs</h2>\n<table class=sortable><thead><tr>"
            + ["run", "model", "checkpoint", "data", "images", "masks", "protocols", "seconds"].enumerated().map { i, h in
                [0, 1, 2, 3, 6].contains(i) ? "<th class=g>\(h)</th>" : "<th>\(h)</th>"
            }.joined() + "</tr></thead><tbody>\n"
        for r in runs {
            let cells = [r.name, r.model, r.shortHashes, r.settings.dataDescription, "\(r.images)", "\(r.masks)",
                         r.settings.protocols.map(\.rawValue).joined(separator: ", "), Self.number(r.seconds, 1)]
            body += "<tr>" + cells.enumerated().map { i, s in
                let cell = [0, 1, 2, 3, 6].contains(i) ? "<td class=g>" : "<td>"
                return cell + (i == 0 ? "<span class=key style=\"background:\(color(r.name))\"></span>" : "") + "\(Self.escape(s))</td>"
            }.joined() + "</tr>\n"
        }
        body += "</tbody></table>\n"
        for n in notes { body += "<p class=note>\(Self.escape(n))</p>\n" }
        body += """
            <h2>Runs side by side</h2>
            <div class=controls>
            <label>level <select id=level></select></label>
            <label>protocol <select id=protocol></select></label>
            <label>output <select id=output></select></label>
            <label>metric <select id=metric></select></label>
            <label>rows <select id=grouping></select></label>
            </div>
            <div id=matrix></div>
            <h3>Ranking stability</h3>
            <p>Rank in the row, and how often the run keeps it over the case bootstrap's resamples.</p>
            <div id=stability></div>

            """
        let charts = charts()
        if !charts.isEmpty {
            body += "<h2>Charts</h2>\n"
            for (path, svg) in charts {
                body += "<figure class=chart>" + svg.replacingOccurrences(of: "<svg xmlns", with: "<svg class=\"chart\" xmlns")
                    + "<figcaption><a href=\"\(path)\">\(path)</a></figcaption></figure>\n"
            }
        }
        if !thumbnails.isEmpty {
            body += """
                <h2>Best, median and worst masks <small>(prediction red, truth outlined yellow)</small></h2>
                <label>group <select id=thumbgroup></select></label>
                <div id=thumbs class=thumbs></div>

                """
        }
        body += "<h2>Each run</h2>\n<table class=sortable><thead><tr>"
            + ["protocol", "run", "Dice", "IoU", "NSD", "HD95", "class-mean Dice", "masks"].enumerated().map { i, h in
                i < 2 ? "<th class=g>\(h)</th>" : "<th>\(h)</th>"
            }.joined() + "</tr></thead><tbody>\n"
        for e in entries where e.level == "mask" {
            guard let g = e.groups.first(where: { $0.kind == "overall" }) else { continue }
            let cells: [(Double?, String)] = [(nil, e.variant.label), (nil, e.run), (g.dice.mean, Self.withCI(g.dice)), (g.iou.mean, Self.withCI(g.iou)),
                                              (g.nsd.mean, Self.withCI(g.nsd)), (g.hd95.mean, Self.withCI(g.hd95, 2)),
                                              (g.classMeanDice.mean, Self.withCI(g.classMeanDice)), (Double(g.count), "\(g.count)")]
            body += "<tr>" + cells.map { v, s in
                "<td\(v == nil ? " class=g" : "") data-v=\"\(v.map { "\($0)" } ?? Self.escape(s))\">\(Self.escape(s))</td>"
            }.joined() + "</tr>\n"
        }
        body += "</tbody></table>\n"
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>medcat leaderboard</title>
            <style>
            body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
            table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}
            th{cursor:pointer;background:#f4f4f4;user-select:none}th:hover{background:#e8e8e8}td.g,th.g{text-align:left}
            #matrix,#stability{overflow-x:auto}.ci{color:#888;font-size:85%}.best{font-weight:bold}.up{color:#1a7f37}.down{color:#b42318}
            .key{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}.note{background:#fff8e1;padding:4px 8px}
            .controls label{margin-right:1em}.thumbs{display:flex;flex-wrap:wrap;gap:10px}figure{margin:0}
            .thumbs figure{width:200px}.thumbs img{width:200px;image-rendering:pixelated}figcaption{font-size:12px;color:#555}
            small{color:#777;font-weight:normal}svg.chart{max-width:100%;height:auto}
            </style></head><body>
            \(body)
            <script id=data type="application/json">\(try pageData())</script>
            <script>
            \(Self.script)
            </script>
            </body></html>

            """
    }

    /// The page's behaviour: fills the selectors from the data, draws the chosen table, sorts on a
    /// header click, and marks the page ready (`data-ready` on body) once the first table is drawn.
    static let script = #"""
        (function () {
          'use strict';
          var D = JSON.parse(document.getElementById('data').textContent);
          var sel = {}; ['level', 'protocol', 'output', 'metric', 'grouping'].forEach(function (k) { sel[k] = document.getElementById(k); });
          function fmt(v, d) { return v === null || v === undefined ? '' : v.toFixed(d === undefined ? 3 : d); }
          function sgn(v) { return v === null ? '' : (v >= 0 ? '+' : '\u2212') + Math.abs(v).toFixed(3); }
          function pv(p) { return p === null ? '\u2013' : (p < 0.001 ? '<0.001' : p.toFixed(3)); }
          function esc(s) { return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;'); }
          function uniq(a) { return a.filter(function (x, i) { return a.indexOf(x) === i; }); }
          function options(el, values, keep) {
            var old = el.value;
            el.innerHTML = values.map(function (v) { return '<option>' + esc(v) + '</option>'; }).join('');
            if (values.indexOf(old) >= 0) el.value = old; else if (keep && values.indexOf(keep) >= 0) el.value = keep;
          }
          function chosen() {
            return D.tables.filter(function (t) {
              return t.level === sel.level.value && t.protocol === sel.protocol.value && t.output === sel.output.value && t.metric === sel.metric.value &&
                t.grouping === sel.grouping.value;
            })[0];
          }
          function refill() {
            var tabs = D.tables.filter(function (t) { return t.level === sel.level.value; });
            options(sel.protocol, uniq(tabs.map(function (t) { return t.protocol; })), D.primary);
            tabs = tabs.filter(function (t) { return t.protocol === sel.protocol.value; });
            options(sel.output, uniq(tabs.map(function (t) { return t.output; })), 'first');
            options(sel.metric, uniq(tabs.map(function (t) { return t.metric; })));
            options(sel.grouping, uniq(tabs.map(function (t) { return t.grouping; })), 'modality · class');
          }
          function draw() {
            var t = chosen(), m = document.getElementById('matrix'), s = document.getElementById('stability');
            if (!t) { m.innerHTML = '<p>No results for this choice.</p>'; s.innerHTML = ''; return; }
            var present = D.runs.map(function (_, r) { return t.rows.some(function (row) { return row[5][r] !== null; }); });
            var runs = D.runs.map(function (n, r) { return r; }).filter(function (r) { return present[r]; });
            var others = runs.filter(function (r) { return r !== D.baseline; });
            var withRef = present[D.baseline];
            var h = '<table class=sortable><thead><tr>' + t.columns.map(function (c) { return '<th class=g>' + esc(c) + '</th>'; }).join('') +
              '<th>cases</th><th>' + (t.level === 'case' ? 'volumes' : 'masks') + '</th>' +
              runs.map(function (r) { return '<th>' + esc(D.runs[r]) + (r === D.baseline ? ' (ref.)' : '') + '</th>'; }).join('') +
              (withRef ? others.map(function (r) { return '<th>\u0394 ' + esc(D.runs[r]) + '</th><th>p</th>'; }).join('') : '') + '</tr></thead><tbody>';
            t.rows.forEach(function (row) {
              h += '<tr>' + row[0].map(function (g) { return '<td class=g data-v="' + esc(g) + '">' + esc(g) + '</td>'; }).join('') +
                '<td data-v="' + row[1] + '"' + (row[1] < D.minimumCases ? ' title="too few cases for an interval or a test"' : '') + '>' + row[1] +
                (row[1] < D.minimumCases ? '\u2020' : '') + '</td><td data-v="' + row[2] + '"' + (row[3] ? ' title="' + row[3] + ' left out: not scored alike by every run"' : '') + '>' + row[2] + (row[3] ? '*' : '') + '</td>';
              runs.forEach(function (r) {
                var c = row[5][r];
                if (!c || c[0] === null) { h += '<td data-v=""></td>'; return; }
                h += '<td data-v="' + c[0] + '"' + (row[4] === r ? ' class=best' : '') + '>' + fmt(c[0]) +
                  (c[1] !== null ? '<span class=ci> [' + fmt(c[1]) + '\u2013' + fmt(c[2]) + ']</span>' : '') + '</td>';
              });
              if (withRef) others.forEach(function (r) {
                var c = row[5][r];
                if (!c || c[5] === null) { h += '<td data-v=""></td><td data-v=""></td>'; return; }
                var cls = c[9] !== null && c[9] < 0.05 ? (c[5] > 0 ? ' class=up' : ' class=down') : '';
                h += '<td data-v="' + c[5] + '"' + cls + '>' + sgn(c[5]) + (c[6] !== null ? '<span class=ci> [' + sgn(c[6]) + ', ' + sgn(c[7]) + ']</span>' : '') +
                  '</td><td data-v="' + (c[9] === null ? '' : c[9]) + '">' + pv(c[9]) + '</td>';
              });
              h += '</tr>';
            });
            m.innerHTML = h + '</tbody></table>';
            var stable = t.rows.filter(function (row) { return row[5].some(function (c) { return c && c[4] !== null; }); });
            if (!stable.length) { s.innerHTML = '<p>Needs two or more runs and at least 5 cases in a row.</p>'; }
            else {
              var k = '<table class=sortable><thead><tr>' + t.columns.map(function (c) { return '<th class=g>' + esc(c) + '</th>'; }).join('') +
                runs.map(function (r) { return '<th>' + esc(D.runs[r]) + '</th>'; }).join('') + '</tr></thead><tbody>';
              stable.forEach(function (row) {
                var means = runs.map(function (r) { var c = row[5][r]; return c && c[0] !== null ? c[0] : -Infinity; });
                k += '<tr>' + row[0].map(function (g) { return '<td class=g data-v="' + esc(g) + '">' + esc(g) + '</td>'; }).join('');
                runs.forEach(function (r, i) {
                  var c = row[5][r];
                  if (!c || c[4] === null) { k += '<td data-v=""></td>'; return; }
                  var rank = 1 + means.filter(function (x) { return x > means[i]; }).length;
                  k += '<td data-v="' + c[4] + '">' + rank + ' (' + Math.round(100 * c[4]) + ' %)</td>';
                });
                k += '</tr>';
              });
              s.innerHTML = k + '</tbody></table>';
            }
          }
          document.addEventListener('click', function (ev) {
            var th = ev.target.closest && ev.target.closest('table.sortable th');
            if (!th) return;
            var table = th.closest('table'), tbody = table.tBodies[0], col = Array.prototype.indexOf.call(th.parentNode.children, th);
            var down = th.dataset.dir !== 'down'; th.dataset.dir = down ? 'down' : 'up';
            var rows = Array.prototype.slice.call(tbody.rows);
            rows.sort(function (a, b) {
              var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
              if (x === undefined) x = a.cells[col].textContent;
              if (y === undefined) y = b.cells[col].textContent;
              var nx = parseFloat(x), ny = parseFloat(y), r;
              if (x === '' || y === '') r = (x === '') - (y === '');
              else if (!isNaN(nx) && !isNaN(ny)) r = down ? ny - nx : nx - ny;
              else r = down ? String(y).localeCompare(String(x)) : String(x).localeCompare(String(y));
              return r;
            });
            rows.forEach(function (r) { tbody.appendChild(r); });
          });
          options(sel.level, uniq(D.tables.map(function (t) { return t.level; })), 'mask');
          refill();
          sel.level.addEventListener('change', function () { refill(); draw(); });
          sel.protocol.addEventListener('change', function () { refill(); draw(); });
          sel.output.addEventListener('change', draw);
          sel.metric.addEventListener('change', draw);
          sel.grouping.addEventListener('change', draw);
          draw();
          var tg = document.getElementById('thumbgroup');
          if (tg) {
            options(tg, uniq(D.thumbs.map(function (t) { return t[0]; })).sort());
            var showThumbs = function () {
              document.getElementById('thumbs').innerHTML = D.thumbs.filter(function (t) { return t[0] === tg.value; }).map(function (t) {
                return '<figure><img loading=lazy alt="' + esc(t[2]) + '" src="' + esc(t[4]) + '"><figcaption>' + esc(t[1]) + ' · ' + esc(t[2]) +
                  ' · Dice ' + fmt(t[3]) + '</figcaption></figure>';
              }).join('');
            };
            tg.addEventListener('change', showThumbs);
            showThumbs();
          }
          document.body.dataset.ready = String(Math.round(performance.now()));
        })();
        """#
}
